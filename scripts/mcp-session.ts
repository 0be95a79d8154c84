/**
 * An MCP client session against a running gateway, printed as a transcript: the official
 * TypeScript SDK's client (`@modelcontextprotocol/sdk`, protocol 2025-11-25, with URL elicitation)
 * connects, lists the tools, runs an allowed call, asks for an approval-gated one, and, once a
 * human has approved it (this script does it through the approvals API with a dev token, as
 * alice would in the console), runs it with `oc_execute_approved`, twice.
 *
 *   npm start                                  # in one terminal
 *   npx tsx scripts/mcp-session.ts             # in another
 *
 * It finds the running stack as `npx oc` does (the state file in OC_DATA_DIR, default .oc-data);
 * OC_BASE_URL names another gateway, OC_API_KEY another agent key.
 *
 * Every JSON-RPC message is printed as `->` (sent) and `<-` (received), long strings cut.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import path from 'node:path';
import { readStackState } from '../bin/local/state-file.js';
import { LOCAL_DEFAULTS } from '../bin/cli/target.js';
import { signDevToken } from '../functions/store/approver-tokens.js';

/** OC_BASE_URL, or the stack `npm start` runs on OC_DATA_DIR; without either, one line and exit 1. */
function gatewayUrl(): string {
  if (process.env.OC_BASE_URL) return process.env.OC_BASE_URL;
  const dataDir = path.resolve(process.env.OC_DATA_DIR || LOCAL_DEFAULTS.dataDir);
  const lookup = readStackState(dataDir);
  if (lookup.kind === 'found') return lookup.state.url;
  console.error(
    `no running stack in ${dataDir}: start one with \`npm start\` (OC_DATA_DIR names its data folder), or set OC_BASE_URL to a gateway`,
  );
  process.exit(1);
}

const base = gatewayUrl();
const key = process.env.OC_API_KEY ?? 'sk-test-key-1';

const cut = (value: unknown): unknown => {
  if (typeof value === 'string') return value.length > 160 ? `${value.slice(0, 157)}…` : value;
  if (Array.isArray(value)) return value.length > 8 ? [...value.slice(0, 8).map(cut), '…'] : value.map(cut);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        k === 'inputSchema' || k === 'outputSchema' ? '{…}' : cut(v),
      ]),
    );
  return value;
};
const show = (arrow: string, message: unknown) => console.log(`${arrow} ${JSON.stringify(cut(message))}`);

/** The transport's fetch, printing what goes out and what comes back. */
const logged: typeof fetch = async (input, init) => {
  if (typeof init?.body === 'string') show('->', JSON.parse(init.body));
  else console.log(`-> ${init?.method ?? 'GET'} /mcp (the client asks for a server stream)`);
  const response = await fetch(input, init);
  if (!response.ok) {
    console.log(
      `<- HTTP ${response.status} ${response.headers.get('allow') ? `Allow: ${response.headers.get('allow')}` : ''}`,
    );
    return response;
  }
  const text = await response.clone().text();
  for (const line of text.split('\n'))
    if (line.startsWith('data: ')) show('<-', JSON.parse(line.slice(6)));
    else if (line.startsWith('{')) show('<-', JSON.parse(line));
  if (text === '') console.log(`<- HTTP ${response.status}`);
  return response;
};

const client = new Client(
  { name: 'mcp-session-example', version: '1.0.0' },
  { capabilities: { elicitation: { url: {} } } },
);
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  console.log(
    `   (the client shows its human: ${request.params.message} ${'url' in request.params ? request.params.url : ''})`,
  );
  return { action: 'accept' };
});
await client.connect(
  new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { 'X-API-Key': key } },
    fetch: logged,
  }),
);

await client.listTools();
await client.callTool({ name: 'slack_msg_post', arguments: { channel: '#general', text: 'Hello over MCP' } });
const parked = await client.callTool({
  name: 'jira_issue_delete',
  arguments: { issue: 'OPS-3', idempotency_key: `mcp-session-${Date.now()}` },
});
const { event_id: eventId, approval } = parked.structuredContent as {
  event_id: string;
  approval: { id: string };
};
await client.callTool({ name: 'oc_execute_approved', arguments: { event_id: eventId } });

const token = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example' });
const approved = await fetch(`${base}/v1/approvals/${approval.id}/approve`, {
  method: 'POST',
  headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
  body: JSON.stringify({ comment: 'ok from the console' }),
});
console.log(
  `   (alice approves in the console: POST /v1/approvals/${approval.id}/approve -> ${approved.status})`,
);

await client.callTool({ name: 'oc_execute_approved', arguments: { event_id: eventId } });
await client.callTool({ name: 'oc_execute_approved', arguments: { event_id: eventId } });
await client.close();

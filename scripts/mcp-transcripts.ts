/**
 * Raw HTTP transcripts of a parked MCP call, one per way a client can wait on it, against a running
 * gateway (the ones in docs/agents.md were captured with this script):
 *
 *   1. 2026-07-28 with the Tasks extension (SEP-2663): a task, polled with `tasks/get`, approved,
 *      completed; a denied one (failed) and a cancelled one (`tasks/cancel`).
 *   2. 2026-07-28 with URL elicitation: `input_required` with the signed `requestState` and a poll
 *      hint; the retry after the approval runs it.
 *   3. 2025-11-25 with URL elicitation: the `elicitation/create` request (URL mode, its
 *      `elicitationId`) before the pending result.
 *   4. Any other client: the pending result, then `oc_execute_approved` once approved.
 *
 *   npm start                                  # in one terminal
 *   npx tsx scripts/mcp-transcripts.ts         # in another
 *
 * No SDK: every request is written by hand, as the specifications say a client sends it, and
 * printed with the headers that matter (`>`) and the answer (`<`), long strings cut and the envelope
 * keys every message repeats (protocol version, client and server info) left out. The human
 * decision is alice's, through the approvals API with a dev token (what the console does).
 * It finds the gateway as `npx oc` does; OC_BASE_URL names another, OC_API_KEY another agent key.
 */
import path from 'node:path';
import { readStackState } from '../bin/local/state-file.js';
import { LOCAL_DEFAULTS } from '../bin/cli/target.js';
import { signDevToken } from '../functions/store/approver-tokens.js';

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
/** Issue keys unique to this run (a Jira key: letters, a dash, digits). */
const run = Math.floor(Date.now() / 1000) % 900_000;
const TASKS = 'io.modelcontextprotocol/tasks';

/** Envelope keys every request and answer repeats: left out of the print (they are sent). */
const REPEATED = new Set([
  'io.modelcontextprotocol/protocolVersion',
  'io.modelcontextprotocol/clientInfo',
  'io.modelcontextprotocol/serverInfo',
]);
const cut = (value: unknown): unknown => {
  if (typeof value === 'string') return value.length > 90 ? `${value.slice(0, 60)}…` : value;
  if (Array.isArray(value)) return value.map(cut);
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([k]) => !REPEATED.has(k))
      .map(([k, v]) => [k, cut(v)] as const)
      .filter(([k, v]) => !(k === '_meta' && v && typeof v === 'object' && Object.keys(v).length === 0));
    return Object.fromEntries(entries);
  }
  return value;
};
const SHOWN = /^(mcp-protocol-version|mcp-method|mcp-name|mcp-param-.*|mcp-session-id)$/i;

let id = 0;
/** One POST /mcp, printed: the headers a conforming client sends, the body, and the answer. */
async function post(
  body: Record<string, unknown>,
  headers: Record<string, string>,
): Promise<{ json: Record<string, unknown>; headers: Headers }> {
  const shown = Object.entries(headers)
    .filter(([h]) => SHOWN.test(h))
    .map(([h, v]) => `${h}: ${String(cut(v))}`);
  console.log(['> POST /mcp', ...shown].join('  '));
  console.log(`> ${JSON.stringify(cut(body))}`);
  const response = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: {
      'X-API-Key': key,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  const session = response.headers.get('mcp-session-id');
  console.log(
    `< ${response.status} ${type.split(';')[0]}${session ? `  Mcp-Session-Id: ${String(cut(session))}` : ''}`,
  );
  let last: Record<string, unknown> = {};
  for (const line of text.split('\n')) {
    const data = line.startsWith('data: ') ? line.slice(6) : line.startsWith('{') ? line : '';
    if (!data) continue;
    last = JSON.parse(data) as Record<string, unknown>;
    console.log(`< ${JSON.stringify(cut(last))}`);
  }
  return { json: last, headers: response.headers };
}

/** A 2026-07-28 request: the per-request envelope, the standard headers (SEP-2243). */
async function modern(
  method: string,
  params: Record<string, unknown>,
  capabilities: Record<string, unknown>,
  extraHeaders: Record<string, string> = {},
) {
  const name = method === 'tools/call' ? params.name : params.taskId;
  return post(
    {
      jsonrpc: '2.0',
      id: ++id,
      method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'transcript-client', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': capabilities,
        },
      },
    },
    {
      'MCP-Protocol-Version': '2026-07-28',
      'Mcp-Method': method,
      ...(typeof name === 'string' ? { 'Mcp-Name': name } : {}),
      ...extraHeaders,
    },
  ).then((r) => r.json);
}

const token = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example' });
/** The human's decision, through the approvals API (the console's). */
async function decide(approvalId: string, how: 'approve' | 'deny') {
  const r = await fetch(`${base}/v1/approvals/${approvalId}/${how}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(how === 'deny' ? { reason: 'not during the freeze' } : { comment: 'ok' }),
  });
  console.log(`# alice ${how === 'approve' ? 'approves' : 'denies'} in the console (HTTP ${r.status})`);
}
async function pendingApproval(issue: string): Promise<string> {
  const r = await fetch(`${base}/v1/approvals?status=pending&limit=100`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const items = ((await r.json()) as { items: { id: string; resource: string }[] }).items;
  const found = items.find((a) => a.resource.includes(issue));
  if (!found) throw new Error(`no pending approval for ${issue}`);
  return found.id;
}
const deleteIssue = (issue: string) => ({ name: 'jira_issue_delete', arguments: { issue } });
const issueHeader = (issue: string) => ({ 'Mcp-Param-issue': issue });
const rpcResult = (r: Record<string, unknown>) => (r.result ?? {}) as Record<string, unknown>;

console.log('## 1. 2026-07-28, Tasks extension (SEP-2663)\n');
const withTasks = { extensions: { [TASKS]: {} } };
await modern('server/discover', {}, withTasks);
{
  const issue = `OPS-${run}1`;
  const created = rpcResult(await modern('tools/call', deleteIssue(issue), withTasks, issueHeader(issue)));
  const taskId = String(created.taskId);
  await modern('tasks/get', { taskId }, withTasks);
  await decide(await pendingApproval(issue), 'approve');
  await modern('tasks/get', { taskId }, withTasks);
}
{
  console.log('\n# denied:');
  const issue = `OPS-${run}2`;
  const created = rpcResult(await modern('tools/call', deleteIssue(issue), withTasks, issueHeader(issue)));
  await decide(await pendingApproval(issue), 'deny');
  await modern('tasks/get', { taskId: String(created.taskId) }, withTasks);
}
{
  console.log('\n# cancelled:');
  const issue = `OPS-${run}3`;
  const created = rpcResult(await modern('tools/call', deleteIssue(issue), withTasks, issueHeader(issue)));
  await modern('tasks/cancel', { taskId: String(created.taskId) }, withTasks);
  await modern('tasks/get', { taskId: String(created.taskId) }, withTasks);
}
{
  console.log('\n# no server stream to push task notifications on:');
  const r = await fetch(`${base}/mcp`, { headers: { 'X-API-Key': key, Accept: 'text/event-stream' } });
  console.log(`> GET /mcp\n< ${r.status} Allow: ${r.headers.get('allow')}`);
}

console.log('\n## 2. 2026-07-28, URL elicitation (no Tasks): input_required\n');
{
  const issue = `OPS-${run}4`;
  const elicit = { elicitation: { url: {} } };
  const asked = rpcResult(await modern('tools/call', deleteIssue(issue), elicit, issueHeader(issue)));
  await decide(await pendingApproval(issue), 'approve');
  await modern(
    'tools/call',
    {
      ...deleteIssue(issue),
      requestState: asked.requestState,
      inputResponses: { approval: { action: 'accept' } },
    },
    elicit,
    issueHeader(issue),
  );
}

/** A 2025-11-25 session: initialize (capabilities), then requests with the session id. */
async function legacySession(capabilities: Record<string, unknown>) {
  const init = await post(
    {
      jsonrpc: '2.0',
      id: ++id,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities,
        clientInfo: { name: 'transcript-client', version: '1' },
      },
    },
    {},
  );
  const session = init.headers.get('mcp-session-id') ?? '';
  const headers = { 'MCP-Protocol-Version': '2025-11-25', 'Mcp-Session-Id': session };
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, headers);
  return (body: Record<string, unknown>) => post({ jsonrpc: '2.0', id: ++id, ...body }, headers);
}

console.log('\n## 3. 2025-11-25, URL elicitation: the elicitation request, then the pending result\n');
{
  const issue = `OPS-${run}5`;
  const send = await legacySession({ elicitation: { url: {} } });
  await send({ method: 'tools/call', params: deleteIssue(issue) });
}

console.log('\n## 4. Any other client: the pending result, then oc_execute_approved\n');
{
  const issue = `OPS-${run}6`;
  const send = await legacySession({});
  const parked = await send({ method: 'tools/call', params: deleteIssue(issue) });
  const content = (rpcResult(parked.json).structuredContent ?? {}) as { event_id?: string };
  await decide(await pendingApproval(issue), 'approve');
  await send({
    method: 'tools/call',
    params: { name: 'oc_execute_approved', arguments: { event_id: content.event_id } },
  });
}

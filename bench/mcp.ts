/**
 * MCP governance overhead: an allowed `tools/call` over `POST /mcp` against the same call over
 * `POST /v1/toolcalls`, interleaved in blocks on the same stack, so the ratio holds on any machine.
 * The MCP requests are what the official clients send after connecting: a 2025-11-25 one (its
 * `Mcp-Session-Id` and `MCP-Protocol-Version` headers, an SSE answer) and a 2026-07-28 one (the
 * `_meta` envelope on every request, a JSON answer). Each call has a new JSON-RPC id, so each is a
 * new governed call (a derived idempotency key), as each REST call has a new key.
 *
 * Part of `npm run bench`; alone: `npx tsx bench/mcp.ts [count]` (its own DynamoDB Local and host).
 */
import { fileURLToPath } from 'node:url';
import { percentile } from './instrument.js';
import { withStandaloneStack } from './standalone.js';

export interface McpBenchResult {
  count: number;
  restP50: number;
  legacyP50: number;
  modernP50: number;
  legacyP95: number;
  failures: number;
}

const ACCEPT = 'application/json, text/event-stream';

export async function measureMcp(options: {
  baseUrl: string;
  key: string;
  count: number;
}): Promise<McpBenchResult> {
  const { baseUrl, key } = options;
  const init = await fetch(`${baseUrl}/mcp`, {
    method: 'POST',
    headers: { 'X-API-Key': key, 'Content-Type': 'application/json', Accept: ACCEPT },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'bench', version: '1' },
      },
    }),
  });
  await init.text();
  const session = init.headers.get('mcp-session-id');
  if (!session) throw new Error(`initialize answered ${init.status} without a session id`);
  let id = 0;
  let failures = 0;
  const args = { channel: '#general', text: 'Hello' };
  const timed = async (send: () => Promise<Response>, ok: (text: string) => boolean) => {
    const t = performance.now();
    const r = await send();
    const text = await r.text();
    const ms = performance.now() - t;
    if (r.status !== 200 || !ok(text)) failures += 1;
    return ms;
  };
  const rest = () =>
    timed(
      () =>
        fetch(`${baseUrl}/v1/toolcalls`, {
          method: 'POST',
          headers: { 'X-API-Key': key, 'Content-Type': 'application/json' },
          body: JSON.stringify({
            agent_id: 'mcp-bench',
            tool: 'slack',
            action: 'msg.post',
            params: args,
            idempotency_key: `mcp-bench-${Date.now()}-${++id}`,
          }),
        }),
      (text) => text.includes('"status":"success"'),
    );
  /** A tools/call over POST /mcp, with the era's headers and params. */
  const mcpCall = (headers: Record<string, string>, extra: Record<string, unknown> = {}) =>
    timed(
      () =>
        fetch(`${baseUrl}/mcp`, {
          method: 'POST',
          headers: { 'X-API-Key': key, 'Content-Type': 'application/json', Accept: ACCEPT, ...headers },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: ++id,
            method: 'tools/call',
            params: { name: 'slack_msg_post', arguments: args, ...extra },
          }),
        }),
      (text) => text.includes('"structuredContent"'),
    );
  const legacy = () => mcpCall({ 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' });
  const modern = () =>
    mcpCall(
      {
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'slack_msg_post',
        // The target the tool mirrors (its x-mcp-header, SEP-2243), as a conforming client sends it.
        'mcp-param-channel': args.channel,
      },
      {
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    );

  for (let i = 0; i < 10; i++) await Promise.all([rest(), legacy(), modern()]); // warm up
  failures = 0;
  const restMs: number[] = [];
  const legacyMs: number[] = [];
  const modernMs: number[] = [];
  const blocks = 5;
  for (let block = 0; block < blocks; block++) {
    for (let i = 0; i < options.count / blocks; i++) {
      restMs.push(await rest());
      legacyMs.push(await legacy());
      modernMs.push(await modern());
    }
  }
  return {
    count: restMs.length,
    restP50: percentile(restMs, 50),
    legacyP50: percentile(legacyMs, 50),
    modernP50: percentile(modernMs, 50),
    legacyP95: percentile(legacyMs, 95),
    failures,
  };
}

/** Standalone: its own DynamoDB Local and local host. */
async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 200);
  await withStandaloneStack('oc-bench-mcp', 'sk-bench-mcp', async (host) => {
    const r = await measureMcp({ baseUrl: host.url, key: 'sk-bench-mcp', count });
    console.log(
      `mcp tools/call vs POST /v1/toolcalls, ${r.count} each: REST p50 ${r.restP50.toFixed(1)} ms; ` +
        `MCP 2025-11-25 p50 ${r.legacyP50.toFixed(1)} ms (${(r.legacyP50 / r.restP50).toFixed(2)}×, p95 ${r.legacyP95.toFixed(1)} ms); ` +
        `MCP 2026-07-28 p50 ${r.modernP50.toFixed(1)} ms (${(r.modernP50 / r.restP50).toFixed(2)}×); ${r.failures} failures`,
    );
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

/**
 * The two latency ratios of the deciding path alone, as `npm run bench` measures them but without
 * the rest of the run (issue 26): governance overhead (an allowed `POST /v1/toolcalls` against a
 * DynamoDB Local `PutItem`, interleaved in blocks, the sequencer paused) and MCP governance
 * overhead (`bench/mcp.ts`: an allowed `tools/call` against the same REST call), with the
 * DynamoDB requests one allowed call makes. Its own DynamoDB Local and local host.
 *
 *   npx tsx bench/overhead.ts [--calls 300] [--mcp 200]
 *
 * To see where a call's time goes: `OC_BENCH_CPU_PROF=<dir>` profiles the measured phases of this
 * process (node:inspector) into `<dir>/overhead.cpuprofile` (open it in Chrome DevTools, or
 * `npx tsx bench/init-profile.ts <dir>` for self time by package and function).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { freePort, startDynamoDbLocal } from '../bin/local/emulators.js';
import { startLocalHost } from '../bin/local/host.js';
import { loadConfig } from '../functions/shared/config.js';
import { createDocumentClient } from '../functions/store/dynamo.js';
import { countingDocumentClient, describeRequests, percentile, since, snapshot } from './instrument.js';
import { measureMcp } from './mcp.js';

process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'local';

const { values } = parseArgs({
  options: { calls: { type: 'string', default: '300' }, mcp: { type: 'string', default: '200' } },
});
const calls = Number(values.calls);
const mcpCalls = Number(values.mcp);
const profileDir = process.env.OC_BENCH_CPU_PROF;

const dynamo = await startDynamoDbLocal({ port: await freePort() });
const { doc, counters } = countingDocumentClient(dynamo.endpoint);
const config = loadConfig({
  OC_TABLE_NAME: 'oc-bench-overhead',
  OC_DYNAMODB_ENDPOINT: dynamo.endpoint,
  OC_CONNECTORS_MODE: 'mock',
  OC_JWT_MODE: 'dev',
  OC_RATE_LIMIT_PER_SEC: '1000000',
  OC_RATE_LIMIT_BURST: '2000000',
});
const host = await startLocalHost({
  config,
  port: 0,
  overrides: { doc },
  pollerDoc: createDocumentClient({ endpoint: dynamo.endpoint }),
});
const session = profileDir ? new Session() : undefined;
try {
  await host.state.apiKeys.put('sk-bench-overhead', { tenantId: 'tenant1' });
  let seq = 0;
  const allow = async (): Promise<number> => {
    const t = performance.now();
    const r = await fetch(`${host.url}/v1/toolcalls`, {
      method: 'POST',
      headers: { 'X-API-Key': 'sk-bench-overhead', 'Content-Type': 'application/json' },
      body: JSON.stringify({
        agent_id: 'agent-1',
        idempotency_key: `o-${++seq}-${Date.now()}`,
        tool: 'slack',
        action: 'msg.post',
        params: { channel: '#general', text: 'Hello' },
        risk_score: 1,
      }),
    });
    const text = await r.text();
    if (r.status !== 200 || !text.includes('"decision":"allow"'))
      throw new Error(`allow answered ${r.status}`);
    return performance.now() - t;
  };
  const put = async (i: number): Promise<number> => {
    const t = performance.now();
    await doc.send(
      new PutCommand({ TableName: config.tableName, Item: { pk: `bench#${i % 50}`, sk: 'put', v: i } }),
    );
    return performance.now() - t;
  };
  for (let i = 0; i < 50; i++) await allow();
  await host.poller?.drained(60_000);
  await host.poller?.stop();

  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const putMs: number[] = [];
  const allowMs: number[] = [];
  const before = snapshot(counters);
  for (let block = 0; block < 5; block++) {
    for (let i = 0; i < 40; i++) putMs.push(await put(i));
    for (let i = 0; i < calls / 5; i++) allowMs.push(await allow());
  }
  const used = since(counters, before);
  const allowRequests = Object.values(used.requests).reduce((a, b) => a + b, 0) - putMs.length;
  const mcp = await measureMcp({ baseUrl: host.url, key: 'sk-bench-overhead', count: mcpCalls });
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(profileDir!, { recursive: true });
    writeFileSync(path.join(profileDir!, 'overhead.cpuprofile'), JSON.stringify(profile));
  }

  const putP50 = percentile(putMs, 50);
  const allowP50 = percentile(allowMs, 50);
  console.log(
    [
      `governance overhead: ${(allowP50 / putP50).toFixed(2)}× PutItem p50 (goal ≤ 6): allow p50 ${allowP50.toFixed(2)} ms over ${allowMs.length} calls, PutItem p50 ${putP50.toFixed(2)} ms over ${putMs.length}; DynamoDB requests per allowed call ${(allowRequests / allowMs.length).toFixed(2)} (${describeRequests(used)} in all, the PutItems included)`,
      `mcp governance overhead: ${(mcp.legacyP50 / mcp.restP50).toFixed(2)}× REST p50 (goal ≤ 1.2): REST p50 ${mcp.restP50.toFixed(2)} ms, MCP 2025-11-25 p50 ${mcp.legacyP50.toFixed(2)} ms, MCP 2026-07-28 p50 ${mcp.modernP50.toFixed(2)} ms (${(mcp.modernP50 / mcp.restP50).toFixed(2)}×), ${mcp.count} each, ${mcp.failures} failed`,
    ].join('\n'),
  );
} finally {
  session?.disconnect();
  await host.stop();
  await dynamo.stop();
}

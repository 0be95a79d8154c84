/**
 * Measures the foundation's figures on an in-memory local stack of its own (free ports):
 * allow-path latency over HTTP, DynamoDB requests per call, chain throughput for one tenant under
 * 32 concurrent writers with the sealing delay, and the PutItem round trip for scale.
 * Usage: npx tsx scripts/measure.ts [--calls 400] [--writers 32] [--seconds 10]
 */
import { parseArgs } from 'node:util';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { freePort, startDynamoDbLocal } from '../bin/local/emulators.js';
import { startLocalHost } from '../bin/local/host.js';
import { loadConfig } from '../functions/shared/config.js';
import { verifyTenantChain } from '../functions/store/chain.js';
import { createDocumentClient } from '../functions/store/dynamo.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '400' },
    writers: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '10' },
  },
});
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';

const delta = (now: Record<string, number>, before: Record<string, number>): Record<string, number> =>
  Object.fromEntries(
    Object.entries(now)
      .map(([k, v]) => [k, v - (before[k] ?? 0)] as const)
      .filter(([, v]) => v > 0),
  );
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

const dynamo = await startDynamoDbLocal({ port: await freePort() });
const doc = createDocumentClient({ endpoint: dynamo.endpoint });
const counts: Record<string, number> = {};
doc.middlewareStack.add(
  (next, context) => async (args) => {
    counts[context.commandName ?? '?'] = (counts[context.commandName ?? '?'] ?? 0) + 1;
    return next(args);
  },
  { step: 'initialize', name: 'countRequests' },
);
const config = loadConfig({
  OC_TABLE_NAME: 'oc-measure',
  OC_DYNAMODB_ENDPOINT: dynamo.endpoint,
  OC_CONNECTORS_MODE: 'mock',
  OC_JWT_MODE: 'dev',
  OC_RATE_LIMIT_PER_SEC: '1000000',
  OC_RATE_LIMIT_BURST: '2000000',
});
const host = await startLocalHost({ config, port: 0, overrides: { doc } });
await host.state.apiKeys.put('sk-measure', { tenantId: 'tenant1' });
let n = 0;
const post = async (body: Record<string, unknown>) => {
  const r = await fetch(`${host.url}/v1/toolcalls`, {
    method: 'POST',
    headers: { 'X-API-Key': 'sk-measure', 'Content-Type': 'application/json' },
    body: JSON.stringify({ agent_id: 'agent-1', idempotency_key: `m-${++n}-${Date.now()}`, ...body }),
  });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
  return r.json() as Promise<{ event_id: string }>;
};
const allow = {
  tool: 'slack',
  action: 'msg.post',
  params: { channel: '#general', text: 'Hello' },
  risk_score: 3,
};
const deny = { tool: 'unknown', action: 'thing', risk_score: 2 };
const approve = { tool: 'jira', action: 'issue.delete', resource: 'OPS-1', risk_score: 3 };

// warm-up (JIT, key cache, connections)
for (let i = 0; i < 50; i++) await post(allow);

// 1. PutItem round trip, for scale
const putMs: number[] = [];
for (let i = 0; i < 300; i++) {
  const t = performance.now();
  await doc.send(new PutCommand({ TableName: config.tableName, Item: { pk: `bench#${i}`, sk: 'x', v: i } }));
  putMs.push(performance.now() - t);
}

// 2. DynamoDB requests per call (sequencer stopped so only the request path counts)
await host.poller?.stop();
const perCall: Record<string, Record<string, number>> = {};
for (const [name, body] of Object.entries({ allow, deny, approve })) {
  const before = { ...counts };
  await post(body);
  perCall[name] = delta(counts, before);
}
const replayBody = { ...allow, idempotency_key: 'replay-me', agent_id: 'agent-1' };
await fetch(`${host.url}/v1/toolcalls`, {
  method: 'POST',
  headers: { 'X-API-Key': 'sk-measure' },
  body: JSON.stringify(replayBody),
});
{
  const before = { ...counts };
  await fetch(`${host.url}/v1/toolcalls`, {
    method: 'POST',
    headers: { 'X-API-Key': 'sk-measure' },
    body: JSON.stringify(replayBody),
  });
  perCall.replay = delta(counts, before);
}
// 2b. approvals: decision and execute, latency and DynamoDB requests
const { signDevToken } = await import('../functions/store/approver-tokens.js');
const token = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example' });
const approveMs: number[] = [];
const executeMs: number[] = [];
for (let i = 0; i < Math.min(100, Number(values.calls)); i++) {
  const parked = (await post({ ...approve, risk_score: 3 })) as unknown as {
    event_id: string;
    approval: { id: string };
  };
  const beforeApprove = { ...counts };
  let t = performance.now();
  const decided = await fetch(`${host.url}/v1/approvals/${parked.approval.id}/approve`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
  });
  approveMs.push(performance.now() - t);
  if (decided.status !== 200) throw new Error(`approve ${decided.status}: ${await decided.text()}`);
  if (i === 0) perCall['approve-decision'] = delta(counts, beforeApprove);
  const beforeExecute = { ...counts };
  t = performance.now();
  const executed = await fetch(`${host.url}/v1/toolcalls/${parked.event_id}/execute`, {
    method: 'POST',
    headers: { 'X-API-Key': 'sk-measure' },
  });
  executeMs.push(performance.now() - t);
  if (executed.status !== 200) throw new Error(`execute ${executed.status}: ${await executed.text()}`);
  if (i === 0) {
    perCall.execute = delta(counts, beforeExecute);
    const beforeReplay = { ...counts };
    await fetch(`${host.url}/v1/toolcalls/${parked.event_id}/execute`, {
      method: 'POST',
      headers: { 'X-API-Key': 'sk-measure' },
    });
    perCall['execute-replay'] = delta(counts, beforeReplay);
  }
}

host.poller?.start();

// 3. allow-path latency, sequential
const allowMs: number[] = [];
for (let i = 0; i < Number(values.calls); i++) {
  const t = performance.now();
  await post(allow);
  allowMs.push(performance.now() - t);
}
await host.poller?.drained(120_000);

// 4. chain throughput: one tenant, W concurrent writers for S seconds, sealing delay per event
await host.state.apiKeys.put('sk-chain', { tenantId: 'tenant-chain' });
const writers = Number(values.writers);
const until = Date.now() + Number(values.seconds) * 1000;
const submittedAt = new Map<string, number>();
let calls = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: writers }, async (_, w) => {
    let i = 0;
    while (Date.now() < until) {
      const body = i % 2 === 0 ? allow : deny;
      const r = await fetch(`${host.url}/v1/toolcalls`, {
        method: 'POST',
        headers: { 'X-API-Key': 'sk-chain' },
        body: JSON.stringify({
          agent_id: 'agent-1',
          idempotency_key: `c-${w}-${i++}`,
          ...body,
          risk_score: 1,
        }),
      });
      const json = (await r.json()) as { event_id: string };
      submittedAt.set(json.event_id, performance.now());
      calls += 1;
    }
  }),
);
const writeSec = (performance.now() - t0) / 1000;
await host.poller?.drained(300_000);
const sealSec = (performance.now() - t0) / 1000;
const report = await verifyTenantChain(host.state.chain, 'tenant-chain', {
  now: new Date(),
  unsealedGraceMs: 60_000,
});

// sealing delay: submit one call at a time while idle and wait for its facts to be sealed
const delays: number[] = [];
for (let i = 0; i < 20; i++) {
  const t = performance.now();
  const { event_id } = await post(deny);
  for (;;) {
    const r = await fetch(`${host.url}/v1/toolcalls/${event_id}`, { headers: { 'X-API-Key': 'sk-measure' } });
    const ev = (await r.json()) as { evidence: { status: string }[] };
    if (ev.evidence.every((f) => f.status === 'sealed')) break;
    await new Promise((res) => setTimeout(res, 10));
  }
  delays.push(performance.now() - t);
}

console.log(`
| figure | value |
|---|---|
| machine | ${(await import('node:os')).cpus().length} cores, Node ${process.version} |
| DynamoDB Local PutItem p50 / p95 | ${pct(putMs, 50).toFixed(1)} / ${pct(putMs, 95).toFixed(1)} ms |
| allow path over HTTP p50 / p95 / p99 (${allowMs.length} sequential calls, mock connector) | ${pct(allowMs, 50).toFixed(1)} / ${pct(allowMs, 95).toFixed(1)} / ${pct(allowMs, 99).toFixed(1)} ms |
| DynamoDB requests per call (authorizer key lookup cached) | ${Object.entries(perCall)
  .map(
    ([k, v]) =>
      `${k}: ${Object.values(v).reduce((a, b) => a + b, 0)} (${Object.entries(v)
        .map(([c, m]) => `${m} ${c.replace('Command', '')}`)
        .join(', ')})`,
  )
  .join('; ')} |
| chain, one tenant, ${writers} writers, ${values.seconds} s | ${calls} calls, ${report.entries} entries sealed, ${(report.entries / sealSec).toFixed(0)} entries/s end to end (${(calls / writeSec).toFixed(0)} calls/s accepted); verify ${report.ok ? 'ok' : 'FAILED ' + report.problems.join('; ')} |
| approve decision over HTTP p50 / p95 (${approveMs.length} sequential) | ${pct(approveMs, 50).toFixed(1)} / ${pct(approveMs, 95).toFixed(1)} ms |
| execute over HTTP p50 / p95 (mock connector) | ${pct(executeMs, 50).toFixed(1)} / ${pct(executeMs, 95).toFixed(1)} ms |
| sealing delay, idle (submit -> every fact sealed, seen via GET) p50 / max | ${pct(delays, 50).toFixed(0)} / ${Math.max(...delays).toFixed(0)} ms |
`);
await host.stop();
await dynamo.stop();

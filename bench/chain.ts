/**
 * Chain throughput (bench section 5): 32 concurrent writers on ONE tenant through the local host,
 * the sequencer sealing as they write, then drained and the chain verified. Reports entries/s
 * against the emulator's ceiling, and what sealing costs: the DynamoDB requests the sequencer sent
 * (counted by the function that sent them) per sealed entry, and where they went.
 *
 *   npx tsx bench/chain.ts [--seconds 8]   # alone; `npm run bench` runs it too
 */
import { parseArgs } from 'node:util';
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { LocalHost } from '../bin/local/host.js';
import { chainOf } from '../functions/handlers/chain-state.js';
import { verifyTenantChain } from '../functions/store/chain.js';
import { since, snapshot, totalRequests, type Counters } from './instrument.js';

/** PutItem round trips per second at 32-way concurrency on this client: the emulator's ceiling. */
export async function putCapacity(doc: DynamoDBDocumentClient, table: string, ms = 3000): Promise<number> {
  const until = Date.now() + ms;
  let n = 0;
  await Promise.all(
    Array.from({ length: 32 }, async (_, w) => {
      while (Date.now() < until)
        await doc.send(new PutCommand({ TableName: table, Item: { pk: `cap#${w}`, sk: String(n++ % 100) } }));
    }),
  );
  return n / (ms / 1000);
}

export interface ChainRun {
  calls: number;
  seconds: number;
  entries: number;
  ok: boolean;
  problems: string[];
  /** Every DynamoDB request of the phase (request path and sealing) per entry. */
  requestsPerEntry: number;
  /** The sequencer's requests alone per sealed entry. */
  sealRequestsPerEntry: number;
  /** The sequencer's requests by operation. */
  sealRequests: Record<string, number>;
  /** Every request of the phase by operation. */
  requestsByOp: Record<string, number>;
  /** Stream batches the sequencer was handed. */
  batches: number;
  /** Every request of the phase by function and operation. */
  byFunctionOp: Record<string, number>;
}

/** `12 BatchGetItem, 13 PutItem, ...` */
export const describeSeal = (requests: Record<string, number>): string =>
  Object.entries(requests)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');

const allow = {
  tool: 'slack',
  action: 'msg.post',
  params: { channel: '#general', text: 'Hello' },
  risk_score: 1,
};
const deny = { tool: 'unknown', action: 'thing', risk_score: 2 };

export async function measureChain(options: {
  host: LocalHost;
  counters: Counters;
  /** Sequencer invocations the host reports (`onInvoke`), appended to as it runs. */
  sequencerRuns: () => number;
  seconds: number;
  tenantId?: string;
}): Promise<ChainRun> {
  const { host, counters } = options;
  const tenantId = options.tenantId ?? 'tenant-chain';
  const key = `sk-bench-${tenantId}`;
  await host.state.apiKeys.put(key, { tenantId });
  await host.poller?.drained(300_000);
  const until = Date.now() + options.seconds * 1000;
  const before = snapshot(counters);
  const runsBefore = options.sequencerRuns();
  let calls = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async (_, w) => {
      let i = 0;
      while (Date.now() < until) {
        const r = await fetch(`${host.url}/v1/toolcalls`, {
          method: 'POST',
          headers: { 'X-API-Key': key, 'Content-Type': 'application/json' },
          body: JSON.stringify({
            agent_id: 'a',
            idempotency_key: `c-${w}-${i++}`,
            ...(i % 2 ? allow : deny),
          }),
        });
        await r.text();
        calls += 1;
      }
    }),
  );
  await host.poller?.drained(300_000);
  const seconds = (performance.now() - t0) / 1000;
  const used = since(counters, before);
  const batches = options.sequencerRuns() - runsBefore;
  const report = await verifyTenantChain(chainOf(host.state), tenantId, {
    now: new Date(),
    unsealedGraceMs: 60_000,
  });
  const entries = Math.max(1, report.entries);
  const sealRequests = Object.fromEntries(
    Object.entries(used.byFunctionOp ?? {})
      .filter(([k]) => k.startsWith('sequencer '))
      .map(([k, v]) => [k.slice('sequencer '.length).replace('Command', ''), v]),
  );
  return {
    calls,
    seconds,
    entries: report.entries,
    ok: report.ok,
    problems: report.problems,
    requestsPerEntry: totalRequests(used) / entries,
    sealRequestsPerEntry: (used.byFunction?.sequencer ?? 0) / entries,
    sealRequests,
    requestsByOp: Object.entries(used.byFunctionOp ?? {}).reduce<Record<string, number>>((acc, [k, v]) => {
      const op = k.slice(k.lastIndexOf(' ') + 1).replace('Command', '');
      acc[op] = (acc[op] ?? 0) + v;
      return acc;
    }, {}),
    batches,
    byFunctionOp: used.byFunctionOp ?? {},
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' } } });
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const { freePort, startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const { startLocalHost } = await import('../bin/local/host.js');
  const { loadConfig } = await import('../functions/shared/config.js');
  const { createDocumentClient } = await import('../functions/store/dynamo.js');
  const { countingDocumentClient } = await import('./instrument.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  const { doc, counters } = countingDocumentClient(dynamo.endpoint);
  let runs = 0;
  const config = loadConfig({
    OC_TABLE_NAME: 'oc-bench-chain',
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
    onInvoke: (name) => {
      if (name === 'sequencer') runs += 1;
    },
    pollerDoc: createDocumentClient({ endpoint: dynamo.endpoint }),
  });
  try {
    const capacity = await putCapacity(doc, config.tableName);
    const r = await measureChain({
      host,
      counters,
      sequencerRuns: () => runs,
      seconds: Number(values.seconds),
    });
    const ceiling = capacity / r.requestsPerEntry;
    console.log(
      JSON.stringify(
        {
          capacity: Math.round(capacity),
          entriesPerSec: Math.round(r.entries / r.seconds),
          ceiling: Math.round(ceiling),
          ratio: Number((r.entries / r.seconds / ceiling).toFixed(2)),
          ...r,
          requestsPerEntry: Number(r.requestsPerEntry.toFixed(2)),
          sealRequestsPerEntry: Number(r.sealRequestsPerEntry.toFixed(2)),
          recordsPerBatch: Number((r.entries / Math.max(1, r.batches)).toFixed(1)),
        },
        null,
        2,
      ),
    );
  } finally {
    await host.stop();
    await dynamo.stop();
  }
}

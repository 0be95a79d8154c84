/**
 * What waiting on a parked MCP call as a task costs (issue 22): the DynamoDB requests, capacity
 * units and handler time of one `tasks/get` poll (2026-07-28 Tasks extension) while the approval is
 * pending, of the first poll after the approval (it runs the call: the exactly-once execute), and
 * of a later poll (it reads the recorded result); then what polling a parked call nobody decides
 * costs over its whole lifetime at the advertised `pollIntervalMs` (until the approval expires).
 *
 * Each poll is alone in a second of its own (no leased rate-limit permit: a client polling every
 * 5 s never has one), on a warm instance (the API key cached, as it is between polls 5 s apart).
 *
 * Part of `npm run bench`; alone: `npx tsx bench/mcp-tasks.ts` (its own DynamoDB Local and host).
 */
import { fileURLToPath } from 'node:url';
import { costPerMillion, type LambdaInvocation, type PathCost } from './cost.js';
import { describeRequests, percentile, since, snapshot, totalRequests, type Counters } from './instrument.js';

const TASKS = 'io.modelcontextprotocol/tasks';

export interface TaskPollResult {
  /** Per pending poll (the mean of `polls`). */
  pending: Counters;
  pendingMs: number;
  /** The first poll after the approval: it runs the approved call. */
  approved: Counters;
  approvedMs: number;
  /** A poll after completion: the recorded result, read back. */
  completed: Counters;
  completedMs: number;
  polls: number;
  pollIntervalMs: number;
  /** From the task's creation to the approval's expiry: how long a parked call can be polled. */
  pendingLifetimeSec: number;
  failures: number;
}

const perPoll = (c: Counters, n: number): Counters => ({
  requests: Object.fromEntries(Object.entries(c.requests).map(([k, v]) => [k, v / n])),
  ms: Object.fromEntries(Object.entries(c.ms).map(([k, v]) => [k, v / n])),
  readUnits: c.readUnits / n,
  writeUnits: c.writeUnits / n,
});

export async function measureTaskPolls(options: {
  baseUrl: string;
  key: string;
  approverToken: string;
  counters: Counters;
  /** Handler durations the host reports (`onInvoke`), by handler. */
  invocations: Record<string, number[]>;
  polls: number;
}): Promise<TaskPollResult> {
  const { baseUrl, key, counters, invocations } = options;
  let id = 0;
  let failures = 0;
  const rpc = async (method: string, params: Record<string, unknown>, headers: Record<string, string>) => {
    const r = await fetch(`${baseUrl}/mcp`, {
      method: 'POST',
      headers: {
        'X-API-Key': key,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'MCP-Protocol-Version': '2026-07-28',
        'Mcp-Method': method,
        ...headers,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: ++id,
        method,
        params: {
          ...params,
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
            'io.modelcontextprotocol/clientCapabilities': { extensions: { [TASKS]: {} } },
          },
        },
      }),
    });
    const body = (await r.json()) as { result?: Record<string, unknown> };
    return body.result ?? {};
  };
  const issue = `OPS-${(Date.now() % 900_000) + 100_000}`;
  const created = await rpc(
    'tools/call',
    { name: 'jira_issue_delete', arguments: { issue } },
    { 'Mcp-Name': 'jira_issue_delete', 'Mcp-Param-issue': issue },
  );
  if (created.resultType !== 'task') throw new Error(`no task: ${JSON.stringify(created)}`);
  const taskId = String(created.taskId);
  const pollIntervalMs = Number(created.pollIntervalMs);
  const createdAt = Date.parse(String(created.createdAt));

  /** One poll alone in its second: its DynamoDB requests and the mcp handler's time. */
  const poll = async (expect: string) => {
    await new Promise((r) => setTimeout(r, 1100));
    const before = snapshot(counters);
    const handled = invocations.mcp?.length ?? 0;
    const task = await rpc('tasks/get', { taskId }, { 'Mcp-Name': taskId });
    if (task.status !== expect) failures += 1;
    return { counters: since(counters, before), ms: invocations.mcp?.[handled] ?? NaN };
  };
  await poll('working'); // warm: the first poll of an instance reads the state key ring
  const pendingPolls = [];
  for (let i = 0; i < options.polls; i++) pendingPolls.push(await poll('working'));
  const sum = pendingPolls.reduce<Counters>(
    (acc, p) => {
      for (const [k, v] of Object.entries(p.counters.requests)) acc.requests[k] = (acc.requests[k] ?? 0) + v;
      for (const [k, v] of Object.entries(p.counters.ms)) acc.ms[k] = (acc.ms[k] ?? 0) + v;
      acc.readUnits += p.counters.readUnits;
      acc.writeUnits += p.counters.writeUnits;
      return acc;
    },
    { requests: {}, ms: {}, readUnits: 0, writeUnits: 0 },
  );

  // The console page the status message names is the approval's (another run's approvals may be many).
  const approvalId = /\/approvals\/([0-9a-f-]{36})/.exec(String(created.statusMessage))?.[1];
  const read = await fetch(`${baseUrl}/v1/approvals/${approvalId}`, {
    headers: { Authorization: `Bearer ${options.approverToken}` },
  });
  const approval = (await read.json()) as { id?: string; expires_at: string };
  if (read.status !== 200 || !approval.id) throw new Error(`no approval for ${issue} (${read.status})`);
  const approved = await fetch(`${baseUrl}/v1/approvals/${approval.id}/approve`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${options.approverToken}`, 'Content-Type': 'application/json' },
    body: '{}',
  });
  await approved.text();
  if (approved.status !== 200) throw new Error(`approve answered ${approved.status}`);
  const first = await poll('completed');
  const later = await poll('completed');
  return {
    pending: perPoll(sum, pendingPolls.length),
    pendingMs: percentile(
      pendingPolls.map((p) => p.ms),
      50,
    ),
    approved: first.counters,
    approvedMs: first.ms,
    completed: later.counters,
    completedMs: later.ms,
    polls: pendingPolls.length,
    pollIntervalMs,
    pendingLifetimeSec: Math.round((Date.parse(approval.expires_at) - createdAt) / 1000),
    failures,
  };
}

export interface TaskPollCosts {
  pending: PathCost;
  approved: PathCost;
  completed: PathCost;
  /** Polls of a parked call nobody decides, at the advertised interval, until its approval expires. */
  lifetimePolls: number;
  /** USD for one such call (pending polls × the pending poll's cost). */
  lifetimeUsd: number;
}

/**
 * The cost model of `bench/cost.ts` applied to the measured polls: one HTTP API request, one mcp
 * invocation (the first poll after approval also invokes the connector), the counted capacity
 * units. `lambda(handler, ms)` gives a function's deployed settings (memory, tracing).
 */
export function taskPollCosts(
  r: TaskPollResult,
  lambda: (handler: string, durationMs: number) => LambdaInvocation,
): TaskPollCosts {
  const cost = (path: string, c: Counters, ms: number, connector = false) =>
    costPerMillion({
      path,
      httpRequests: 1,
      lambdaInvocations: [lambda('mcp', ms), ...(connector ? [lambda('connector-jira', 5)] : [])],
      dynamo: { writeUnits: c.writeUnits, readUnits: c.readUnits },
    });
  const pending = cost('tasks/get (pending)', r.pending, r.pendingMs);
  const lifetimePolls = Math.ceil((r.pendingLifetimeSec * 1000) / r.pollIntervalMs);
  return {
    pending,
    approved: cost('tasks/get (first after approval: runs the call)', r.approved, r.approvedMs, true),
    completed: cost('tasks/get (completed: recorded result)', r.completed, r.completedMs),
    lifetimePolls,
    lifetimeUsd: (pending.usdPerMillion / 1_000_000) * lifetimePolls,
  };
}

export const describePoll = (c: Counters): string =>
  `${Math.round(totalRequests(c) * 100) / 100} DynamoDB requests (${describeRequests(c)}), ` +
  `${Math.round(c.writeUnits * 100) / 100} WRU + ${Math.round(c.readUnits * 100) / 100} RRU`;

/** Standalone: its own DynamoDB Local and local host, counting what the table is sent. */
async function main(): Promise<void> {
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const { freePort, startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const { startLocalHost } = await import('../bin/local/host.js');
  const { loadConfig } = await import('../functions/shared/config.js');
  const { createDocumentClient } = await import('../functions/store/dynamo.js');
  const { signDevToken } = await import('../functions/store/approver-tokens.js');
  const { countingDocumentClient } = await import('./instrument.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  const { doc, counters } = countingDocumentClient(dynamo.endpoint);
  const invocations: Record<string, number[]> = {};
  const host = await startLocalHost({
    config: loadConfig({
      OC_TABLE_NAME: 'oc-bench-mcp-tasks',
      OC_DYNAMODB_ENDPOINT: dynamo.endpoint,
      OC_CONNECTORS_MODE: 'mock',
      OC_JWT_MODE: 'dev',
      OC_RATE_LIMIT_PER_SEC: '1000000',
      OC_RATE_LIMIT_BURST: '2000000',
    }),
    port: 0,
    overrides: { doc },
    onInvoke: (name, ms) => (invocations[name] ??= []).push(ms),
    pollerDoc: createDocumentClient({ endpoint: dynamo.endpoint }),
  });
  try {
    await host.state.apiKeys.put('sk-bench-tasks', { tenantId: 'tenant1' });
    const r = await measureTaskPolls({
      baseUrl: host.url,
      key: 'sk-bench-tasks',
      approverToken: await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example' }),
      counters,
      invocations,
      polls: Number(process.argv[2] ?? 10),
    });
    // Standalone, without a synthesized template: the deployed default (lib/function.ts, 512 MB).
    const costs = taskPollCosts(r, (fn, durationMs) => ({ fn, memoryMb: 512, durationMs, traced: true }));
    const show = (label: string, c: Counters, ms: number, p: PathCost) =>
      console.log(
        `${label}: ${describePoll(c)}; mcp handler ${ms.toFixed(1)} ms; $${p.usdPerMillion.toFixed(2)} per million polls\n  ` +
          p.lines.map((l) => `${l.item}: ${l.arithmetic} = $${l.usd.toFixed(4)}`).join('\n  '),
      );
    show(`tasks/get while pending (mean of ${r.polls})`, r.pending, r.pendingMs, costs.pending);
    show('tasks/get, the first after the approval (runs the call)', r.approved, r.approvedMs, costs.approved);
    show('tasks/get after completion (the recorded result)', r.completed, r.completedMs, costs.completed);
    console.log(
      `a parked call nobody decides, polled every ${r.pollIntervalMs / 1000} s until its approval expires ` +
        `(${r.pendingLifetimeSec} s): ${costs.lifetimePolls} polls = $${costs.lifetimeUsd.toFixed(4)} per call ` +
        `($${(costs.lifetimeUsd * 1000).toFixed(2)} per thousand parked calls); ${r.failures} unexpected answers`,
    );
  } finally {
    await host.stop();
    await dynamo.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

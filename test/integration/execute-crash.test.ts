/**
 * A crash between claim and connector, or between connector and record: the tool never runs a
 * second time, the execution reads `unknown`, and an operator resolves it.
 */
import type { ConnectorInvoker } from '../../functions/connectors/types.js';
import { resolveExecution } from '../../functions/core/execute.js';
import type { Clock } from '../../functions/core/ports.js';
import { resolveDeps } from '../../functions/handlers/execution-state.js';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker } from '../support/connectors.js';
import { faultyDocumentClient } from '../support/faults.js';
import { startTestStack, toolCall, type TestStack } from '../support/stack.js';

const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
const { doc, plan } = faultyDocumentClient();
const counted = countingInvoker();
let crashBeforeConnector = false;
const connector: ConnectorInvoker = {
  async invoke(req, opts) {
    // A Lambda that dies after claiming, before the connector: nothing after this line runs.
    if (crashBeforeConnector) throw new Error('Runtime exited: out of memory');
    return counted.invoke(req, opts);
  },
};
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ overrides: { doc, connectors: connector, clock }, consumers: false });
});
afterAll(async () => {
  await stack.stop();
});

async function approved(): Promise<string> {
  const r = await stack.post('/v1/toolcalls', toolCall({ tool: 'slack', action: 'msg.post', risk_score: 9 }));
  expect(r.json.decision).toBe('approve');
  const ok = await stack.request('POST', `/v1/approvals/${r.json.approval.id}/approve`, {
    token: await tokenFor('alice'),
  });
  expect(ok.status).toBe(200);
  return r.json.event_id;
}

const operatorResolves = (eventId: string) =>
  resolveExecution(resolveDeps(stack.state), {
    tenantId: 'tenant1',
    eventId,
    status: 'success',
    note: 'message seen in #general',
    operator: 'operator:test',
  });

describe('crash injection on execute', () => {
  it('between claim and connector: no connector run, running then unknown, never re-run, resolvable', async () => {
    const eventId = await approved();
    crashBeforeConnector = true;
    const crashed = await stack.post(`/v1/toolcalls/${eventId}/execute`, '');
    crashBeforeConnector = false;
    expect(crashed.status).toBe(500);
    expect(counted.calls).toHaveLength(0);

    const during = await stack.post(`/v1/toolcalls/${eventId}/execute`, '');
    expect(during.status).toBe(409);
    expect(during.json.code).toBe('EXECUTION_IN_PROGRESS');

    clock.offsetMs = 10 * 60 * 1000; // past every timeout: the claim is orphaned
    const record = await stack.get(`/v1/toolcalls/${eventId}`);
    expect(record.json.execution.status).toBe('unknown');
    const after = await stack.post(`/v1/toolcalls/${eventId}/execute`, '');
    expect(after.status).toBe(409);
    expect(after.json.code).toBe('EXECUTION_OUTCOME_UNKNOWN');
    expect(counted.calls).toHaveLength(0);

    const body = JSON.parse(await operatorResolves(eventId));
    expect(body.result).toMatchObject({ status: 'success' });
    const replay = await stack.post(`/v1/toolcalls/${eventId}/execute`, '');
    expect(replay.status).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    const resolved = await stack.get(`/v1/toolcalls/${eventId}`);
    expect(resolved.json.execution).toMatchObject({ status: 'completed', resolved_by: 'operator:test' });
    expect(counted.calls).toHaveLength(0);
    clock.offsetMs = 0;
  });

  it('between connector and record: 500, the connector ran once, unknown, never re-run, resolvable', async () => {
    const eventId = await approved();
    const before = counted.calls.length;
    // Execute does: Query (event), TransactWrite (claim), connector, TransactWrite (finalize).
    plan.fail = { command: 'TransactWriteCommand', nth: 2 };
    const r = await stack.post(`/v1/toolcalls/${eventId}/execute`, '');
    expect(r.status).toBe(500);
    expect(r.json.retryable).toBe(false);
    expect(counted.calls.length - before).toBe(1);

    const record = await stack.get(`/v1/toolcalls/${eventId}`);
    expect(record.json.execution.status).toBe('unknown');
    const again = await stack.post(`/v1/toolcalls/${eventId}/execute`, '');
    expect(again.json.code).toBe('EXECUTION_OUTCOME_UNKNOWN');
    expect(counted.calls.length - before).toBe(1);

    await operatorResolves(eventId);
    await expect(operatorResolves(eventId)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await stack.post(`/v1/toolcalls/${eventId}/execute`, '')).status).toBe(200);
    expect(counted.calls.length - before).toBe(1);
  });

  it('a storage failure while claiming runs nothing and leaves the grant usable', async () => {
    const eventId = await approved();
    const before = counted.calls.length;
    plan.fail = { command: 'TransactWriteCommand', nth: 1 };
    const r = await stack.post(`/v1/toolcalls/${eventId}/execute`, '');
    expect(r.status).toBe(500);
    expect(counted.calls.length).toBe(before);
    const ok = await stack.post(`/v1/toolcalls/${eventId}/execute`, '');
    expect(ok.status).toBe(200);
    expect(counted.calls.length - before).toBe(1);
  });
});

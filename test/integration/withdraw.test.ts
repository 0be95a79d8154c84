/**
 * Withdrawal (issue 21 deliverable 5, built with issue 22's `tasks/cancel`): the agent takes back its
 * pending approval request over HTTP on the local stack. Afterwards nobody decides it and nothing
 * executes it; it is recorded (`approval.withdrawn`, sealed) and walled like every tool-call route
 * (answers checked against the OpenAPI contract by the stack's client).
 */
import { generateApiKey } from '../../functions/store/api-keys.js';
import type { Clock } from '../../functions/core/ports.js';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker } from '../support/connectors.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';

const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
const connector = countingInvoker();
let stack: TestStack;
/** Keys of tenant1 bound to agent-1 (the caller of `parked`) and to agent-7. */
const AGENT1 = generateApiKey();
const AGENT7 = generateApiKey();

beforeAll(async () => {
  stack = await startTestStack({ overrides: { connectors: connector, clock } });
  await stack.state.apiKeys.put(AGENT1, { tenantId: 'tenant1', agentId: 'agent-1' });
  await stack.state.apiKeys.put(AGENT7, { tenantId: 'tenant1', agentId: 'agent-7' });
  await stack.state.apiKeys.put(KEYS.tenant2, { tenantId: 'tenant2' });
});
afterAll(async () => {
  await stack.stop();
});
beforeEach(() => {
  clock.offsetMs = 0;
});

const withdraw = (eventId: string, key: string = AGENT1) =>
  stack.post(`/v1/toolcalls/${eventId}/withdraw`, '', key);
const execute = (eventId: string, key: string = AGENT1) =>
  stack.post(`/v1/toolcalls/${eventId}/execute`, '', key);

async function parked(resource: string) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ agent_id: 'agent-1', tool: 'jira', action: 'issue.delete', resource, params: {} }),
    AGENT1,
  );
  expect(r.json.decision).toBe('approve');
  return { eventId: r.json.event_id as string, approvalId: r.json.approval.id as string };
}

describe('POST /v1/toolcalls/{event_id}/withdraw', () => {
  it('withdraws a pending request: nobody can decide it, nothing executes it, and it is on record', async () => {
    const { eventId, approvalId } = await parked('WD-1');
    const first = await withdraw(eventId);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ event_id: eventId, approval_id: approvalId, status: 'withdrawn' });
    expect(first.json.withdrawn_by).toMatch(/^agent:agent-1 \(key_[0-9a-f]{16}\)$/);
    expect(first.headers['idempotent-replayed']).toBeUndefined();

    const again = await withdraw(eventId);
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(again.headers['idempotent-replayed']).toBe('true');

    const approve = await stack.request('POST', `/v1/approvals/${approvalId}/approve`, {
      token: await tokenFor('alice'),
    });
    expect([approve.status, approve.json.code]).toEqual([409, 'APPROVAL_ALREADY_DECIDED']);
    expect(approve.json.details).toContainEqual({ path: 'status', message: 'withdrawn' });

    const calls = connector.calls.length;
    const run = await execute(eventId);
    expect([run.status, run.json.code, run.json.retryable]).toEqual([409, 'APPROVAL_WITHDRAWN', false]);
    expect(connector.calls.length).toBe(calls);

    const shown = await stack.request('GET', `/v1/approvals/${approvalId}`, {
      token: await tokenFor('alice'),
    });
    expect(shown.json).toMatchObject({ status: 'withdrawn', decided_by: first.json.withdrawn_by });
    const listed = await stack.request('GET', '/v1/approvals?status=withdrawn&limit=100', {
      token: await tokenFor('alice'),
    });
    expect(listed.json.items.map((a: { id: string }) => a.id)).toContain(approvalId);

    await stack.poller!.drained();
    const record = await stack.get(`/v1/toolcalls/${eventId}`);
    expect(
      record.json.evidence.map((f: { kind: string; status: string }) => `${f.kind}:${f.status}`),
    ).toEqual(['toolcall.decided:sealed', 'approval.withdrawn:sealed']);
    expect(record.json.evidence[1].record).toMatchObject({
      approval_id: approvalId,
      withdrawn_by: { agent_id: 'agent-1' },
    });
  });

  it('is walled: another agent’s key and another tenant’s key get 404, and the request stays pending', async () => {
    const { eventId, approvalId } = await parked('WD-2');
    for (const key of [AGENT7, KEYS.tenant2]) {
      const r = await withdraw(eventId, key);
      expect([r.status, r.json.code]).toEqual([404, 'NOT_FOUND']);
    }
    const hostile = await stack.post(`/v1/toolcalls/${eventId}/withdraw`, { reason: 'x' }, AGENT1);
    expect([hostile.status, hostile.json.code]).toEqual([422, 'VALIDATION_ERROR']);
    const missing = await withdraw('00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    const shown = await stack.request('GET', `/v1/approvals/${approvalId}`, {
      token: await tokenFor('alice'),
    });
    expect(shown.json.status).toBe('pending');
    // The tenant's own unbound key acts for the whole tenant.
    expect((await withdraw(eventId, KEYS.tenant1)).status).toBe(200);
  });

  it('answers for every other state: decided 409, expired 410, an allow event NOT_APPROVAL_GATED', async () => {
    const approved = await parked('WD-3');
    await stack.request('POST', `/v1/approvals/${approved.approvalId}/approve`, {
      token: await tokenFor('alice'),
    });
    const late = await withdraw(approved.eventId);
    expect([late.status, late.json.code]).toEqual([409, 'APPROVAL_ALREADY_DECIDED']);
    expect((await execute(approved.eventId)).status).toBe(200);

    const expiring = await parked('WD-4');
    clock.offsetMs = 25 * 3600 * 1000;
    const expired = await withdraw(expiring.eventId);
    expect([expired.status, expired.json.code]).toEqual([410, 'APPROVAL_EXPIRED']);
    clock.offsetMs = 0;

    const allowed = await stack.post('/v1/toolcalls', toolCall(), AGENT1);
    expect(allowed.json.decision).toBe('allow');
    const notGated = await withdraw(allowed.json.event_id);
    expect([notGated.status, notGated.json.code]).toEqual([409, 'NOT_APPROVAL_GATED']);
  });

  it('races an approval: exactly one wins, and a grant exists only if the approval did', async () => {
    const { eventId, approvalId } = await parked('WD-6');
    const alice = await tokenFor('alice');
    const [w, a] = await Promise.all([
      withdraw(eventId),
      stack.request('POST', `/v1/approvals/${approvalId}/approve`, { token: alice }),
    ]);
    expect([w.status, a.status].filter((s) => s === 200)).toHaveLength(1);
    const run = await execute(eventId);
    if (w.status === 200) expect(run.json.code).toBe('APPROVAL_WITHDRAWN');
    else expect(run.status).toBe(200);
  });
});

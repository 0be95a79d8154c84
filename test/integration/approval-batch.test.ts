/**
 * Batch decisions that show every item (issue 21 deliverable 4), on the local stack: up to 50
 * (approval id, view hash) pairs, one result per item; each item decided, recorded and bound on
 * its own (a stale, decided, foreign or self-requested item is refused alone); an approver can
 * never batch-decide what they could not decide alone; the tenant wall holds per item.
 */
import { randomUUID } from 'node:crypto';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker } from '../support/connectors.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';

const connector = countingInvoker();
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ overrides: { connectors: connector } });
});
afterAll(async () => {
  await stack.stop();
});

type Who = 'alice' | 'carol' | 'bob' | 'mallory';
const batch = async (who: Who, body: unknown) =>
  stack.request('POST', '/v1/approvals/batch', { token: await tokenFor(who), body });

async function parked(issue: string, overrides: Record<string, unknown> = {}, key: string = KEYS.tenant1) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource: issue, params: {}, ...overrides }),
    key,
  );
  expect(r.json.decision).toBe('approve');
  return {
    eventId: r.json.event_id as string,
    approval_id: r.json.approval.id as string,
    view_hash: r.json.approval.view.hash as string,
  };
}
const item = (p: { approval_id: string; view_hash: string }) => ({
  approval_id: p.approval_id,
  view_hash: p.view_hash,
});

describe('POST /v1/approvals/batch', () => {
  it('decides each item on its own and refuses a stale, foreign, unknown or self-requested item alone', async () => {
    const a = await parked('BAT-1');
    const b = await parked('BAT-2');
    const c = await parked('BAT-3');
    const own = await parked('BAT-4', { user_id: 'alice@acme.example' });
    const foreign = await parked('BAT-5', { risk_score: 8 }, KEYS.tenant2);
    const unknown = { approval_id: randomUUID(), view_hash: a.view_hash };
    const r = await batch('alice', {
      decision: 'approve',
      comment: 'reviewed one by one',
      items: [item(a), { ...item(b), view_hash: c.view_hash }, item(c), item(own), item(foreign), unknown],
    });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ decision: 'approve', decided: 2, refused: 4 });
    expect(
      r.json.results.map((x: { approval_id: string; status: number }) => [x.approval_id, x.status]),
    ).toEqual([
      [a.approval_id, 200],
      [b.approval_id, 409],
      [c.approval_id, 200],
      [own.approval_id, 403],
      [foreign.approval_id, 404],
      [unknown.approval_id, 404],
    ]);
    expect(r.json.results[1].error.code).toBe('CONFLICT');
    expect(r.json.results[3].error.code).toBe('SELF_APPROVAL');
    // Each approved item has its own grant, bound to its own request, and its own decision.
    const [ga, gc] = [r.json.results[0].approval.grant, r.json.results[2].approval.grant];
    expect(ga.id).not.toBe(gc.id);
    expect(ga.request_hash).not.toBe(gc.request_hash);
    expect(r.json.results[0].approval).toMatchObject({ status: 'approved', comment: 'reviewed one by one' });

    // The refused items are untouched: still pending, for a decision on what they show.
    const bNow = await stack.request('GET', `/v1/approvals/${b.approval_id}`, {
      token: await tokenFor('alice'),
    });
    expect(bNow.json.status).toBe('pending');
    const foreignNow = await stack.request('GET', `/v1/approvals/${foreign.approval_id}`, {
      token: await tokenFor('bob'),
    });
    expect(foreignNow.json.status).toBe('pending');

    // Deciding again answers per item as a single decision would.
    const again = await batch('carol', { decision: 'deny', items: [item(a), item(b)], reason: 'freeze' });
    expect(again.json.results.map((x: { status: number }) => x.status)).toEqual([409, 200]);
    expect(again.json.results[0].error.code).toBe('APPROVAL_ALREADY_DECIDED');

    // Execute runs each approved call once, with its own request; a denied one carries its reason.
    const calls = connector.calls.length;
    expect((await stack.post(`/v1/toolcalls/${a.eventId}/execute`, '', KEYS.tenant1)).status).toBe(200);
    expect((await stack.post(`/v1/toolcalls/${c.eventId}/execute`, '', KEYS.tenant1)).status).toBe(200);
    expect(connector.calls.slice(calls).map((x) => x.resource)).toEqual(['BAT-1', 'BAT-3']);
    const denied = await stack.post(`/v1/toolcalls/${b.eventId}/execute`, '', KEYS.tenant1);
    expect([denied.status, denied.json.code]).toEqual([403, 'APPROVAL_DENIED']);
    expect(denied.json.details).toContainEqual({ path: 'deny_reason', message: 'freeze' });
  });

  it('is walled by tenant: another tenant’s approver decides none of these items', async () => {
    const a = await parked('BAT-10');
    const r = await batch('bob', { decision: 'approve', items: [item(a)] });
    expect(r.status).toBe(200);
    expect(r.json.results).toEqual([
      {
        approval_id: a.approval_id,
        status: 404,
        error: { code: 'NOT_FOUND', message: 'approval request not found', retryable: false },
      },
    ]);
    const now = await stack.request('GET', `/v1/approvals/${a.approval_id}`, {
      token: await tokenFor('alice'),
    });
    expect(now.json.status).toBe('pending');
  });

  it('refuses whole a batch nobody could decide: not an approver, blind items, duplicates, over 50', async () => {
    const a = await parked('BAT-20');
    const notListed = await batch('mallory', { decision: 'approve', items: [item(a)] });
    expect([notListed.status, notListed.json.code]).toEqual([403, 'APPROVER_NOT_ALLOWED']);
    const blind = await batch('alice', { decision: 'approve', items: [{ approval_id: a.approval_id }] });
    expect(blind.status).toBe(422);
    const twice = await batch('alice', { decision: 'approve', items: [item(a), item(a)] });
    expect(twice.status).toBe(422);
    const many = Array.from({ length: 51 }, () => ({ approval_id: randomUUID(), view_hash: a.view_hash }));
    expect((await batch('alice', { decision: 'approve', items: many })).status).toBe(422);
    const reasonOnApprove = await batch('alice', { decision: 'approve', items: [item(a)], reason: 'x' });
    expect(reasonOnApprove.status).toBe(422);
    const now = await stack.request('GET', `/v1/approvals/${a.approval_id}`, {
      token: await tokenFor('alice'),
    });
    expect(now.json.status).toBe('pending');
  });
});

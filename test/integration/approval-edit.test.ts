/**
 * Edit-on-approve, re-judged (issue 21 deliverable 3), on the local stack: an approver changes the
 * params policy data lets them change; the edited call is judged again as a submitted one (deny:
 * refused, nothing written; approve: parked again, the editor cannot approve it; allow: approved
 * by the edit); the grant binds to the edited request, execute runs it and answers the RFC 6902
 * patch, and the evidence keeps the original, the edit, its author and the decision on it.
 */
import jsonPatch from 'fast-json-patch';
import { decide } from '../../functions/core/approvals.js';
import { executeOutcome } from '../../functions/core/mcp.js';
import { approvalDeps } from '../../functions/handlers/approvals-state.js';
import { ViewEvidence } from '../../functions/core/view-evidence.js';
import { createClient } from '../../sdk/src/index.js';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker } from '../support/connectors.js';
import { editPolicyDir } from '../support/edit-policy.js';
import { contractFetch } from '../support/sdk-fetch.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';

const connector = countingInvoker();
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({
    env: { OC_POLICY_DIR: editPolicyDir() },
    overrides: { connectors: connector },
  });
});
afterAll(async () => {
  await stack.stop();
});

type Who = 'alice' | 'carol' | 'bob' | 'mallory';
const as = async (who: Who, method: string, url: string, body?: unknown) =>
  stack.request(method, url, { token: await tokenFor(who), ...(body === undefined ? {} : { body }) });

async function parked(key: string = KEYS.tenant1, risk_score = 3) {
  const params = { channel: '#all-hands', text: 'Deploy at 5' };
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ params, risk_score, user_id: 'dave@acme.example' }),
    key,
  );
  expect(r.json.decision).toBe('approve');
  return {
    eventId: r.json.event_id as string,
    approvalId: r.json.approval.id as string,
    viewHash: r.json.approval.view.hash as string,
  };
}

describe('POST /v1/approvals/{approval_id}/edit', () => {
  it('parks an edit that still needs approval again: someone else approves, the edited request runs, its patch is answered', async () => {
    const { eventId, approvalId, viewHash } = await parked();
    const edit = await as('alice', 'POST', `/v1/approvals/${approvalId}/edit`, {
      params: { text: 'Deploy at 6' },
      view_hash: viewHash,
      comment: 'moved to 6',
    });
    expect(edit.status).toBe(200);
    expect(edit.json.status).toBe('pending');
    expect(edit.json.params).toEqual({ channel: '#all-hands', text: 'Deploy at 6' });
    expect(edit.json.edit).toMatchObject({
      patch: [{ op: 'replace', path: '/params/text', value: 'Deploy at 6' }],
      editors: ['alice@acme.example'],
      edited_by: 'alice@acme.example',
      count: 1,
      comment: 'moved to 6',
    });
    expect(edit.json.view.hash).not.toBe(viewHash);
    expect(edit.json.view.lines).toContain('  text = "Deploy at 6"');

    // The editor counts as a requester; a decision on the old view is on something else.
    const self = await as('alice', 'POST', `/v1/approvals/${approvalId}/approve`, {
      view_hash: edit.json.view.hash,
    });
    expect([self.status, self.json.code]).toEqual([403, 'SELF_APPROVAL']);
    const stale = await as('carol', 'POST', `/v1/approvals/${approvalId}/approve`, { view_hash: viewHash });
    expect([stale.status, stale.json.code]).toEqual([409, 'CONFLICT']);
    const approved = await as('carol', 'POST', `/v1/approvals/${approvalId}/approve`, {
      view_hash: edit.json.view.hash,
    });
    expect(approved.status).toBe(200);
    expect(approved.json.grant.request_hash).not.toBe(edit.json.edit.original_request_hash);

    const calls = connector.calls.length;
    const run = await stack.post(`/v1/toolcalls/${eventId}/execute`, '', KEYS.tenant1);
    expect(run.status).toBe(200);
    expect(connector.calls.slice(calls).map((c) => c.params)).toEqual([
      { channel: '#all-hands', text: 'Deploy at 6' },
    ]);
    expect(run.json.edit).toMatchObject({ approval_id: approvalId, edited_by: 'alice@acme.example' });
    // The patch turns what the agent sent into what ran.
    const sent = await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant1);
    const original = { params: sent.json.request.params, resource: sent.json.request.resource };
    expect(jsonPatch.applyPatch(original, run.json.edit.patch, true, false).newDocument).toEqual({
      params: { channel: '#all-hands', text: 'Deploy at 6' },
      resource: '#all-hands',
    });

    // Evidence: the original decision, the edit (who, the patch, policy's word on it), the decision.
    const shown = await as('carol', 'GET', `/v1/approvals/${approvalId}`);
    expect(shown.json.facts.map((f: { kind: string }) => f.kind)).toEqual([
      'toolcall.decided',
      'approval.edited',
      'approval.decided',
      'execution.started',
    ]);
  });

  it('approves at once an edit that policy now allows: the edit is the editor’s approval, bound to the edited request', async () => {
    const { eventId, approvalId, viewHash } = await parked();
    const edit = await as('alice', 'POST', `/v1/approvals/${approvalId}/edit`, {
      params: { channel: 'general' },
      view_hash: viewHash,
    });
    expect(edit.status).toBe(200);
    expect(edit.json).toMatchObject({
      status: 'approved',
      decided_by: 'alice@acme.example',
      resource: '#general',
    });
    expect(edit.json.edit.patch).toEqual(
      expect.arrayContaining([
        { op: 'replace', path: '/params/channel', value: '#general' },
        { op: 'replace', path: '/resource', value: '#general' },
      ]),
    );
    // The SDK's wait surfaces the edit to the agent (typed from the contract), and MCP's result says it.
    const calls = connector.calls.length;
    const sdk = createClient({ baseUrl: stack.url, apiKey: KEYS.tenant1, fetch: contractFetch(stack) });
    const run = await sdk.waitForApprovalThenExecute(eventId);
    expect(run.edit?.patch).toEqual(edit.json.edit.patch);
    expect(connector.calls.slice(calls).map((c) => [c.resource, c.params])).toEqual([
      ['#general', { channel: '#general', text: 'Deploy at 5' }],
    ]);
    const mcp = executeOutcome(eventId, { response: { body: JSON.stringify(run) } });
    expect(mcp.structuredContent).toMatchObject({
      status: 'executed',
      edit: { edited_by: 'alice@acme.example' },
    });
    expect(mcp.content[0]!.text).toContain('an approver (alice@acme.example) edited the call before it ran');
  });

  it('refuses an edit policy denies, a param not listed, an action with none, a bad value or a stale view, and writes nothing', async () => {
    const { approvalId, viewHash } = await parked();
    const edit = (body: unknown, who: Who = 'alice') =>
      as(who, 'POST', `/v1/approvals/${approvalId}/edit`, body);
    const denied = await edit({ params: { channel: '#exec' }, view_hash: viewHash });
    expect([denied.status, denied.json.code]).toEqual([403, 'EDIT_DENIED']);
    expect(denied.json.details).toContainEqual({ path: 'reason', message: 'no agent posts to #exec' });
    const unlisted = await edit({ params: { thread_ts: '1' }, view_hash: viewHash });
    expect([unlisted.status, unlisted.json.code]).toEqual([422, 'VALIDATION_ERROR']);
    expect(unlisted.json.details[0].path).toBe('/params/thread_ts');
    const badValue = await edit({ params: { text: 42 }, view_hash: viewHash });
    expect([badValue.status, badValue.json.code]).toEqual([422, 'VALIDATION_ERROR']);
    const badTarget = await edit({ params: { channel: 'NOT A CHANNEL' }, view_hash: viewHash });
    expect([badTarget.status, badTarget.json.code]).toEqual([422, 'VALIDATION_ERROR']);
    const same = await edit({ params: { text: 'Deploy at 5' }, view_hash: viewHash });
    expect([same.status, same.json.code]).toEqual([422, 'VALIDATION_ERROR']);
    const stale = await edit({ params: { text: 'x' }, view_hash: 'a'.repeat(64) });
    expect([stale.status, stale.json.code]).toEqual([409, 'CONFLICT']);
    const blind = await edit({ params: { text: 'x' } });
    expect([blind.status, blind.json.details[0].path]).toEqual([422, '/view_hash']);
    const unlistedApprover = await edit({ params: { text: 'x' }, view_hash: viewHash }, 'mallory');
    expect([unlistedApprover.status, unlistedApprover.json.code]).toEqual([403, 'APPROVER_NOT_ALLOWED']);

    const after = await as('alice', 'GET', `/v1/approvals/${approvalId}`);
    expect(after.json).toMatchObject({
      status: 'pending',
      params: { channel: '#all-hands', text: 'Deploy at 5' },
    });
    expect(after.json.view.hash).toBe(viewHash);
    expect(after.json.edit).toBeUndefined();
    expect(after.json.facts.map((f: { kind: string }) => f.kind)).toEqual(['toolcall.decided']);

    // An action this tenant's data does not list cannot be edited at all.
    const del = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource: 'ED-1', params: {} }),
      KEYS.tenant1,
    );
    const notEditable = await as('alice', 'POST', `/v1/approvals/${del.json.approval.id}/edit`, {
      params: { issue: 'ED-2' },
      view_hash: del.json.approval.view.hash,
    });
    expect([notEditable.status, notEditable.json.code]).toEqual([403, 'EDIT_NOT_ALLOWED']);
  });

  it('is walled by tenant: another tenant’s approver finds no such approval', async () => {
    const { approvalId, viewHash } = await parked();
    const bob = await as('bob', 'POST', `/v1/approvals/${approvalId}/edit`, {
      params: { text: 'from globex' },
      view_hash: viewHash,
    });
    expect([bob.status, bob.json.code]).toEqual([404, 'NOT_FOUND']);
    // tenant2 may edit only the text: its own approval's target stays.
    const own = await parked(KEYS.tenant2, 8);
    const retarget = await as('bob', 'POST', `/v1/approvals/${own.approvalId}/edit`, {
      params: { channel: '#general' },
      view_hash: own.viewHash,
    });
    expect([retarget.status, retarget.json.details[0].path]).toEqual([422, '/params/channel']);
  });

  it('a decision that read the approval before an edit cannot approve the original request over it', async () => {
    const { approvalId, viewHash } = await parked();
    const before = await stack.state.approvals.get('tenant1', approvalId);
    const edit = await as('alice', 'POST', `/v1/approvals/${approvalId}/edit`, {
      params: { text: 'fixed by alice' },
      view_hash: viewHash,
    });
    expect(edit.json.status).toBe('pending');
    // carol's decision read the approval before the edit committed (an injected stale read).
    const staleRead = Object.assign(Object.create(stack.state.approvals) as typeof stack.state.approvals, {
      get: async () => before,
    });
    const carol = {
      sub: 'carol@acme.example',
      email: 'carol@acme.example',
      tenantId: 'tenant1',
      via: 'api' as const,
    };
    await expect(
      decide({ ...approvalDeps(stack.state), approvals: staleRead }, carol, approvalId, {
        decision: 'approve',
        view_hash: viewHash,
      }),
    ).rejects.toMatchObject({ status: 409, code: 'CONFLICT' });
    const now = await as('carol', 'GET', `/v1/approvals/${approvalId}`);
    expect(now.json).toMatchObject({ status: 'pending', params: { text: 'fixed by alice' } });
    expect(now.json.grant).toBeUndefined();
  });

  it('the edit fact re-renders to the view it records (the auditor’s check)', async () => {
    const { eventId, approvalId, viewHash } = await parked();
    const edit = await as('alice', 'POST', `/v1/approvals/${approvalId}/edit`, {
      params: { text: 'audited' },
      view_hash: viewHash,
    });
    await as('carol', 'POST', `/v1/approvals/${approvalId}/approve`, { view_hash: edit.json.view.hash });
    const event = await stack.state.toolcalls.getEvent('tenant1', eventId);
    const evidence = new ViewEvidence();
    const problems = event!.facts.map((f) => evidence.check(f.record)).filter(Boolean);
    expect(problems).toEqual([]);
    expect(evidence.checked).toBe(2);
    // A tampered edit fact is caught.
    const tampered = event!.facts.find((f) => f.kind === 'approval.edited')!.record;
    const again = new ViewEvidence();
    again.check(event!.facts[0]!.record);
    expect(
      again.check({ ...tampered, request: { ...(tampered.request as object), params: { text: 'other' } } }),
    ).toMatch(/is not the hash of the view/);
  });
});

/**
 * The verifiers re-render every recorded approval view from the recorded request, with the
 * recorded version, and check its hash (issue 19, deliverable 4): a known-answer record of v1, a
 * hash that is not the request's view, a decision on another view, legacy approvals.
 */
import { buildApprovalView, viewHash } from '../../functions/core/approval-view.js';
import { ViewEvidence } from '../../functions/core/view-evidence.js';

/** The known answer of test/unit/approval-view.test.ts, as submit records it. */
const KNOWN_V1 = 'aeae46b191e160ab3a629f11b355fa809bbb318b318d429f12e9060aefd913c6';
const APPROVAL = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

const requested = (view: Record<string, unknown> | undefined, params: Record<string, unknown> = {}) => ({
  kind: 'toolcall.decided',
  event_id: 'e',
  request: {
    tenant_id: 'tenant1',
    agent_id: 'agent-1',
    user_id: 'alice@acme.example',
    tool: 'jira',
    action: 'issue.delete',
    resource: 'PROD-42',
    params: { issue: 'PROD-42', note: 'o\u200bk', ...params },
    risk_score: 9,
  },
  risk: { claimed: 3, floor: 9, effective: 9 },
  decision: 'approve',
  reason: 'destructive actions need approval',
  approval: {
    id: APPROVAL,
    expires_at: '2026-08-01T12:00:00.000Z',
    request_hash: 'h',
    ...(view ? { view } : {}),
  },
});
const decided = (view: Record<string, unknown>) => ({
  kind: 'approval.decided',
  approval_id: APPROVAL,
  view,
});

describe('the verifiers re-render the recorded approval views', () => {
  it('accepts the known-answer v1 record and a decision on its view', () => {
    const views = new ViewEvidence();
    expect(views.check(requested({ version: 'oc-approval-view/v1', hash: KNOWN_V1 }))).toBeUndefined();
    expect(
      views.check(decided({ version: 'oc-approval-view/v1', hash: KNOWN_V1, confirmed: true })),
    ).toBeUndefined();
    expect(views.checked).toBe(1);
  });

  it('finds a recorded hash that is not the view of the recorded request', () => {
    expect(
      new ViewEvidence().check(requested({ version: 'oc-approval-view/v1', hash: KNOWN_V1 }, { note: 'ok' })),
    ).toMatch(/view hash aeae46b1.* is not the hash of the view its request renders in oc-approval-view\/v1/);
    expect(
      new ViewEvidence().check(requested({ version: 'oc-approval-view/v1', hash: '0'.repeat(64) })),
    ).toMatch(/is not the hash of the view/);
  });

  it('names a version it does not know instead of guessing', () => {
    expect(new ViewEvidence().check(requested({ version: 'oc-approval-view/v9', hash: KNOWN_V1 }))).toMatch(
      /view version "oc-approval-view\/v9" is unknown to this verifier/,
    );
  });

  it('finds a decision that names another view than its request recorded', () => {
    const views = new ViewEvidence();
    views.check(requested({ version: 'oc-approval-view/v1', hash: KNOWN_V1 }));
    expect(
      views.check(decided({ version: 'oc-approval-view/v1', hash: '1'.repeat(64), confirmed: false })),
    ).toMatch(/names view .* not the view its request recorded/);
  });

  it("finds a quorum vote that names another view than its request recorded (each voter's view is evidence)", () => {
    const views = new ViewEvidence();
    views.check(requested({ version: 'oc-approval-view/v1', hash: KNOWN_V1 }));
    const vote = (hash: string) => ({
      ...decided({ version: 'oc-approval-view/v1', hash, confirmed: true }),
      kind: 'approval.vote',
    });
    expect(views.check(vote(KNOWN_V1))).toBeUndefined();
    expect(views.check(vote('1'.repeat(64)))).toMatch(/names view .* not the view its request recorded/);
  });

  it('checks a legacy approval by the view its stored request renders (without the risk it did not store)', () => {
    const views = new ViewEvidence();
    const record = requested(undefined);
    expect(views.check(record)).toBeUndefined();
    const legacyHash = viewHash(
      buildApprovalView({
        ...record.request,
        reason: record.reason,
        expires_at: record.approval.expires_at,
      }),
    );
    expect(
      views.check(
        decided({ version: 'legacy', rendered: 'oc-approval-view/v1', hash: legacyHash, confirmed: true }),
      ),
    ).toBeUndefined();
    expect(
      views.check(
        decided({ version: 'legacy', rendered: 'oc-approval-view/v1', hash: KNOWN_V1, confirmed: true }),
      ),
    ).toMatch(/is not the hash of the view/);
  });

  it('leaves a decision whose request is before the walk alone (a partial archive)', () => {
    expect(
      new ViewEvidence().check(decided({ version: 'oc-approval-view/v1', hash: KNOWN_V1, confirmed: true })),
    ).toBeUndefined();
  });
});

import {
  approvalView,
  authorizeApprover,
  decideApproval,
  effectiveStatus,
  type StoredApproval,
} from '../../functions/core/approvals.js';
import type { TenantConfig } from '../../functions/core/policy-data.js';

const tenant: TenantConfig = {
  name: 'Acme',
  max_risk_auto_approve: 5,
  approver_group: 'security',
  notify: [{ kind: 'webhook', url: 'https://hooks.example/x', secret_ref: 'ref' }],
  approvers: { emails: ['Alice@Acme.example'], slack_user_ids: ['U123'] },
  approval_ttl_sec: 86_400,
  grant_ttl_sec: 600,
};

const approval = (over: Partial<StoredApproval['record']> = {}): StoredApproval => ({
  status: 'pending',
  record: {
    id: '11111111-1111-4111-8111-111111111111',
    event_id: '22222222-2222-4222-8222-222222222222',
    tenant_id: 'tenant1',
    agent_id: 'agent-1',
    user_id: 'bob@acme.example',
    tool: 'jira',
    action: 'issue.delete',
    resource: 'OPS-1',
    params: {},
    risk_score: 3,
    reason: 'destructive action requires approval',
    approver_group: 'security',
    status: 'pending',
    created_at: '2025-01-01T00:00:00.000Z',
    expires_at: '2025-01-02T00:00:00.000Z',
    request_hash: 'a'.repeat(64),
    requirements: { approval_scope: 'single_use' },
    notify: tenant.notify,
    trace_id: '',
    risk_factors: [],
    ...over,
  },
});

const at = (iso: string) => ({ now: () => new Date(iso) });
let n = 0;
const ids = { uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}` };
const alice = { sub: 'u-alice', email: 'alice@acme.example', tenantId: 'tenant1', via: 'api' as const };

describe('approval rules', () => {
  it('reads a pending request past its expiry as expired, and only then', () => {
    expect(effectiveStatus(approval(), new Date('2025-01-01T23:59:59Z'))).toBe('pending');
    expect(effectiveStatus(approval(), new Date('2025-01-02T00:00:00Z'))).toBe('expired');
    expect(effectiveStatus({ ...approval(), status: 'approved' }, new Date('2026-01-01T00:00:00Z'))).toBe(
      'approved',
    );
  });

  it('matches allowlisted emails case-insensitively and Slack users by id; everyone else is refused', () => {
    expect(() => authorizeApprover(tenant, alice, approval().record)).not.toThrow();
    expect(() =>
      authorizeApprover(tenant, { ...alice, email: 'eve@acme.example' }, approval().record),
    ).toThrow(expect.objectContaining({ code: 'APPROVER_NOT_ALLOWED' }));
    expect(() =>
      authorizeApprover(
        tenant,
        { sub: 'u123', email: '', tenantId: 'tenant1', via: 'slack' },
        approval().record,
      ),
    ).not.toThrow();
    expect(() => authorizeApprover(undefined, alice, approval().record)).toThrow(
      expect.objectContaining({ code: 'APPROVER_NOT_ALLOWED' }),
    );
  });

  it('refuses the requester, by email or by subject', () => {
    expect(() =>
      authorizeApprover(tenant, alice, approval({ user_id: 'ALICE@acme.example' }).record),
    ).toThrow(expect.objectContaining({ code: 'SELF_APPROVAL' }));
    expect(() => authorizeApprover(tenant, alice, approval({ user_id: 'u-alice' }).record)).toThrow(
      expect.objectContaining({ code: 'SELF_APPROVAL' }),
    );
  });

  it('refuses the requester however their id is disguised (requests stored before submit refused them too)', () => {
    for (const userId of [
      'alice@acme.example\u200b',
      'alice＠acme.example',
      'alice@acme.example\u0000',
      '\u200falice@acme.example',
      'ａｌｉｃｅ@acme.example',
      'u-\u2060alice',
    ])
      expect(() => authorizeApprover(tenant, alice, approval({ user_id: userId }).record)).toThrow(
        expect.objectContaining({ code: 'SELF_APPROVAL' }),
      );
    expect(() =>
      authorizeApprover(tenant, alice, approval({ user_id: 'malice@acme.example' }).record),
    ).not.toThrow();
  });

  it('issues one single-use grant bound to the event and request hash, living the tenant grant TTL', () => {
    const outcome = decideApproval(approval(), { decision: 'approve', comment: 'ok' }, alice, {
      clock: at('2025-01-01T10:00:00Z'),
      ids,
      tenant,
    });
    expect(outcome.grant).toMatchObject({
      event_id: '22222222-2222-4222-8222-222222222222',
      request_hash: 'a'.repeat(64),
      uses_left: 1,
      expires_at: '2025-01-01T10:10:00.000Z',
      granted_by: 'alice@acme.example',
    });
    expect(outcome.fact).toMatchObject({
      kind: 'approval.decided',
      decision: 'approved',
      approver_group: 'security',
      comment: 'ok',
    });
  });

  it('denies without a grant and keeps the reason', () => {
    const outcome = decideApproval(approval(), { decision: 'deny', reason: 'no' }, alice, {
      clock: at('2025-01-01T10:00:00Z'),
      ids,
      tenant,
    });
    expect(outcome).toMatchObject({ status: 'denied', denyReason: 'no' });
    expect(outcome.grant).toBeUndefined();
  });

  it('answers 410 after expiry and 409 once decided', () => {
    const late = () =>
      decideApproval(approval(), { decision: 'approve' }, alice, {
        clock: at('2025-01-03T00:00:00Z'),
        ids,
        tenant,
      });
    expect(late).toThrow(expect.objectContaining({ code: 'APPROVAL_EXPIRED', status: 410 }));
    const decided: StoredApproval = { ...approval(), status: 'denied', decided_by: 'carol@acme.example' };
    const twice = () =>
      decideApproval(decided, { decision: 'approve' }, alice, {
        clock: at('2025-01-01T10:00:00Z'),
        ids,
        tenant,
      });
    expect(twice).toThrow(expect.objectContaining({ code: 'APPROVAL_ALREADY_DECIDED', status: 409 }));
  });

  it('never shows notification routes or the request hash', () => {
    const view = approvalView(approval(), new Date('2025-01-01T00:00:00Z'));
    expect(JSON.stringify(view)).not.toContain('hooks.example');
    expect(view).not.toHaveProperty('request_hash');
    expect(view).not.toHaveProperty('notify');
  });
});

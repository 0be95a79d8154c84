/**
 * Issue 21 deliverables 5 and 6, the pure rules: reminder times, extension bounds, target patterns
 * (exact or one trailing `*`, never a regex), which grant a call uses, the policy-load refusal of
 * destructive actions without `allow_destructive`, and what a pending approval's stream record
 * announces (each reminder and extension its own delivery id).
 */
import { mkdtempSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { StoredApproval } from '../../functions/core/approvals.js';
import {
  grantStatus,
  patternProblem,
  revokeStandingGrant,
  targetMatches,
  usableGrants,
  type StandingGrant,
} from '../../functions/core/grants.js';
import { deliveryId, eventTypeOf, occurrenceOf } from '../../functions/core/notifications.js';
import { standingGrantProblems, TenantConfig } from '../../functions/core/policy-data.js';
import {
  planExtension,
  reminderAt,
  sendDueReminders,
  type DueReminder,
} from '../../functions/core/reminders.js';
import {
  APPROVAL_END_STATES,
  APPROVAL_STATES,
  isApprovalEndState,
} from '../../functions/shared/constants.js';
import { defaultPolicyDir, loadPolicyBundle } from '../../functions/store/policy-files.js';

const NOW = new Date('2026-01-01T12:00:00.000Z');
const clock = { now: () => NOW };
let n = 0;
const ids = { uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}` };

describe('end states', () => {
  it('are one list, every one an approval state, and pending is not one', () => {
    expect(APPROVAL_END_STATES.every((s) => (APPROVAL_STATES as readonly string[]).includes(s))).toBe(true);
    expect(isApprovalEndState('pending')).toBe(false);
    expect(isApprovalEndState('expired')).toBe(true);
  });
});

describe('reminders', () => {
  it("one reminder the store cannot send holds no other tenant's: it is reported and left due", async () => {
    const due: DueReminder[] = [
      { remindAt: '2026-12-07T10:00:00.000Z', tenantId: 'tenant1', approvalId: 'a-broken' },
      { remindAt: '2026-12-07T10:00:01.000Z', tenantId: 'tenant2', approvalId: 'a-2' },
      { remindAt: '2026-12-07T10:00:02.000Z', tenantId: 'tenant3', approvalId: 'a-3' },
    ];
    const sent: string[] = [];
    const broken = new Error('ValidationException: notices is not a number');
    const r = await sendDueReminders({
      clock: { now: () => new Date('2026-12-07T10:01:00.000Z') },
      deadlines: {
        dueReminders: async () => due,
        remind: async (d: DueReminder) => {
          if (d.approvalId === 'a-broken') throw broken;
          sent.push(d.approvalId);
          return true;
        },
      } as never,
    });
    expect(sent).toEqual(['a-2', 'a-3']);
    expect(r).toEqual({ reminded: 2, failed: [{ due: due[0], error: broken }] });
  });

  it('are due the lead time before expiry, and never for a request shorter than the lead', () => {
    expect(
      reminderAt({ reminder_before_sec: 600 }, '2026-01-01T00:00:00.000Z', '2026-01-01T01:00:00.000Z'),
    ).toBe('2026-01-01T00:50:00.000Z');
    expect(
      reminderAt({ reminder_before_sec: 3600 }, '2026-01-01T00:00:00.000Z', '2026-01-01T01:00:00.000Z'),
    ).toBe(undefined);
    expect(reminderAt({}, '2026-01-01T00:00:00.000Z', '2026-01-01T01:00:00.000Z')).toBe(undefined);
  });
});

function approval(
  extra: Partial<StoredApproval> = {},
  expiresAt = '2026-01-01T13:00:00.000Z',
): StoredApproval {
  return {
    record: {
      id: 'a1',
      event_id: 'e1',
      tenant_id: 't1',
      agent_id: 'agent-1',
      user_id: 'dev@acme.example',
      tool: 'jira',
      action: 'issue.delete',
      resource: 'OPS-1',
      params: {},
      risk_score: 6,
      reason: 'r',
      approver_group: '',
      status: 'pending',
      created_at: '2026-01-01T11:00:00.000Z',
      expires_at: expiresAt,
      request_hash: 'h',
      requirements: {},
      notify: [],
      trace_id: '',
      risk_factors: [],
    },
    status: 'pending',
    ...extra,
  };
}
const tenant = TenantConfig.parse({
  name: 'T',
  max_risk_auto_approve: 5,
  approvers: { emails: ['alice@acme.example'] },
  reminder_before_sec: 600,
  extensions: { max_sec: 7200, max_times: 2 },
});
const alice = { sub: 'alice', email: 'alice@acme.example', tenantId: 't1', via: 'api' as const };

describe('extensions', () => {
  it('move the deadline, record who and from where, and move the reminder', () => {
    const x = planExtension(approval(), { extend_sec: 3600 }, alice, { clock, ids, tenant });
    expect(x.extension).toMatchObject({
      by: 'alice@acme.example',
      from: '2026-01-01T13:00:00.000Z',
      to: '2026-01-01T14:00:00.000Z',
    });
    expect(x.remindAt).toBe('2026-01-01T13:50:00.000Z');
    expect(x.fact).toMatchObject({ kind: 'approval.extended', approval_id: 'a1', from: x.extension.from });
  });

  it('are bounded from the deadline the request was created with, and in number', () => {
    const once = approval(
      {
        extensions: [
          {
            by: 'x',
            at: NOW.toISOString(),
            from: '2026-01-01T13:00:00.000Z',
            to: '2026-01-01T14:30:00.000Z',
          },
        ],
      },
      '2026-01-01T14:30:00.000Z',
    );
    // 13:00 + 2 h = 15:00 at most: 30 minutes are left, not 31.
    expect(() => planExtension(once, { extend_sec: 1860 }, alice, { clock, ids, tenant })).toThrow(
      expect.objectContaining({ status: 422 }),
    );
    expect(planExtension(once, { extend_sec: 1800 }, alice, { clock, ids, tenant }).extension.to).toBe(
      '2026-01-01T15:00:00.000Z',
    );
    const twice = approval(
      { extensions: [once.extensions![0]!, once.extensions![0]!] },
      '2026-01-01T14:30:00.000Z',
    );
    expect(() => planExtension(twice, { extend_sec: 60 }, alice, { clock, ids, tenant })).toThrow(
      expect.objectContaining({ status: 422 }),
    );
  });

  it('are refused to the requester, without policy data, and for a request that is over', () => {
    const own = approval();
    own.record.user_id = 'alice@acme.example';
    expect(() => planExtension(own, { extend_sec: 600 }, alice, { clock, ids, tenant })).toThrow(
      expect.objectContaining({ code: 'SELF_APPROVAL' }),
    );
    const { extensions: _none, ...without } = tenant;
    expect(() =>
      planExtension(approval(), { extend_sec: 600 }, alice, { clock, ids, tenant: without }),
    ).toThrow(expect.objectContaining({ code: 'EXTENSION_NOT_ALLOWED' }));
    expect(() =>
      planExtension(approval({}, '2026-01-01T11:59:00.000Z'), { extend_sec: 600 }, alice, {
        clock,
        ids,
        tenant,
      }),
    ).toThrow(expect.objectContaining({ code: 'APPROVAL_EXPIRED' }));
    expect(() =>
      planExtension(approval({ status: 'denied' }), { extend_sec: 600 }, alice, { clock, ids, tenant }),
    ).toThrow(expect.objectContaining({ code: 'APPROVAL_ALREADY_DECIDED' }));
  });
});

describe('with an approver directory, extensions and revocations name the directory id', () => {
  // Issue 21 deliverable 1: one person is one id on every surface, as votes and decisions record
  // it. Found by scripts/approval-transcripts.ts: an extension and a revocation recorded the
  // console's email (and `slack:U123` from Slack) where the decision next to them said `alice`.
  const directory = TenantConfig.parse({
    name: 'T',
    max_risk_auto_approve: 5,
    approvers: { emails: [] },
    directory: {
      alice: { email: 'alice@acme.example', slack: { user_id: 'U123', team_id: 'T0001' } },
    },
    slack: { team_id: 'T0001' },
    extensions: { max_sec: 7200, max_times: 2 },
  });
  const aliceInSlack = { sub: 'U123', email: '', tenantId: 't1', via: 'slack' as const, teamId: 'T0001' };

  it('an extension from the console or from Slack is by alice', () => {
    for (const who of [alice, aliceInSlack]) {
      const x = planExtension(approval(), { extend_sec: 600 }, who, { clock, ids, tenant: directory });
      expect(x.extension.by).toBe('alice');
      expect(x.fact).toMatchObject({ approver: { id: 'alice' } });
    }
  });

  it('a revocation is by alice, in the grant and in its fact', async () => {
    const grant: StandingGrant = {
      id: 'g1',
      tenant_id: 't1',
      agent_id: 'agent-1',
      tool: 'jira',
      action: 'issue.delete',
      target_pattern: 'OPS-*',
      max_uses: 3,
      uses_left: 3,
      expires_at: '2026-01-01T13:00:00.000Z',
      created_by: 'carol',
      created_at: '2026-01-01T11:00:00.000Z',
      approval_id: 'a1',
      event_id: 'e1',
      status: 'active',
    };
    const revoked: { by: string; fact: Record<string, any> }[] = [];
    const deps = {
      clock,
      ids,
      tenant: () => directory,
      grants: {
        get: async () => grant,
        list: async () => ({ items: [] }),
        revoke: async (_g: StandingGrant, r: { by: string; fact: Record<string, any> }) => {
          revoked.push(r);
          return true;
        },
      },
    } as never;
    const answer = await revokeStandingGrant(deps, alice, 'g1', {});
    expect(answer.revoked_by).toBe('alice');
    expect(revoked[0]!.by).toBe('alice');
    expect(revoked[0]!.fact.revoked_by).toMatchObject({ id: 'alice' });
  });
});

describe('target patterns', () => {
  it.each([
    ['OPS-1', 'OPS-1', true],
    ['OPS-1', 'OPS-10', false],
    ['OPS-*', 'OPS-10', true],
    ['OPS-*', 'OPS-', true],
    ['OPS-*', 'DEV-1', false],
    ['*', 'anything', true],
    ['OPS.1', 'OPSx1', false], // never a regex
    ['[A-Z]+-1', 'OPS-1', false],
  ])('%s over %s: %s', (pattern, target, matches) => {
    expect(targetMatches(pattern, target)).toBe(matches);
  });

  it('are exact or one trailing *, nothing else', () => {
    expect(patternProblem('OPS-*')).toBeUndefined();
    expect(patternProblem('OPS-1')).toBeUndefined();
    expect(patternProblem('*')).toBeUndefined();
    expect(patternProblem('')).toMatch(/empty/);
    expect(patternProblem('O*S-1')).toMatch(/only one/);
    expect(patternProblem('OPS-**')).toMatch(/only one/);
  });
});

describe('which grant a call uses', () => {
  const grant = (id: string, extra: Partial<StandingGrant> = {}): StandingGrant => ({
    id,
    tenant_id: 't1',
    agent_id: 'agent-1',
    tool: 'jira',
    action: 'issue.delete',
    target_pattern: 'OPS-*',
    max_uses: 5,
    uses_left: 5,
    expires_at: '2026-01-01T13:00:00.000Z',
    created_by: 'alice',
    created_at: '2026-01-01T11:00:00.000Z',
    approval_id: 'a',
    event_id: 'e',
    status: 'active',
    ...extra,
  });
  const call = { agent_id: 'agent-1', tool: 'jira', action: 'issue.delete', resource: 'OPS-12' };

  it('only an active grant of the same agent, tool and action whose pattern covers the target, most specific first', () => {
    const grants = [
      grant('broad', { target_pattern: '*' }),
      grant('prefix'),
      grant('longer', { target_pattern: 'OPS-1*' }),
      grant('exact', { target_pattern: 'OPS-12', expires_at: '2026-01-01T12:30:00.000Z' }),
      grant('revoked', { target_pattern: 'OPS-12', status: 'revoked' }),
      grant('used', { target_pattern: 'OPS-12', uses_left: 0 }),
      grant('old', { target_pattern: 'OPS-12', expires_at: '2026-01-01T11:59:59.000Z' }),
      grant('agent', { agent_id: 'agent-7' }),
      grant('action', { action: 'issue.create' }),
    ];
    expect(usableGrants(grants, call, NOW).map((g) => g.id)).toEqual(['exact', 'longer', 'prefix', 'broad']);
    expect(grants.map((g) => grantStatus(g, NOW)).slice(4, 7)).toEqual(['revoked', 'exhausted', 'expired']);
  });
});

describe('policy data', () => {
  const actions = {
    read: ['jira.issue.list'],
    write: ['jira.issue.create'],
    destructive: ['jira.issue.delete'],
  };
  const tenants = (grants: Record<string, unknown>) => ({
    t1: TenantConfig.parse({ name: 'T', max_risk_auto_approve: 5, standing_grants: grants }),
  });

  it('refuses standing grants for a destructive action unless the tenant says so explicitly', () => {
    const bounds = { actions: ['jira.issue.delete'], max_uses: 5, max_ttl_sec: 3600 };
    expect(standingGrantProblems(actions, tenants(bounds))).toEqual([
      expect.stringMatching(/jira\.issue\.delete is destructive.*allow_destructive/),
    ]);
    expect(standingGrantProblems(actions, tenants({ ...bounds, allow_destructive: true }))).toEqual([]);
    expect(standingGrantProblems(actions, tenants({ ...bounds, actions: ['jira.issue.create'] }))).toEqual(
      [],
    );
    expect(standingGrantProblems(actions, tenants({ ...bounds, actions: ['x.unknown'] }))).toEqual([
      expect.stringMatching(/not a listed action/),
    ]);
  });

  it('a policy folder with such a tenant does not load', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'oc-policy-'));
    cpSync(defaultPolicyDir(), dir, { recursive: true });
    const file = path.join(dir, 'tenants.json');
    const all = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
    all.tenant1!.standing_grants = { actions: ['jira.issue.delete'], max_uses: 5, max_ttl_sec: 3600 };
    writeFileSync(file, JSON.stringify(all));
    expect(() => loadPolicyBundle(dir)).toThrow(/destructive/);
    all.tenant1!.standing_grants = {
      actions: ['jira.issue.delete'],
      max_uses: 5,
      max_ttl_sec: 3600,
      allow_destructive: true,
    };
    writeFileSync(file, JSON.stringify(all));
    expect(() => loadPolicyBundle(dir)).not.toThrow();
  });
});

describe('announcements of a pending approval', () => {
  it('a MODIFY that leaves it pending announces its latest notice, and each has its own delivery id', () => {
    expect(eventTypeOf('MODIFY', 'pending', 'reminder')).toBe('oc.approval.reminder');
    expect(eventTypeOf('MODIFY', 'pending', 'extended')).toBe('oc.approval.extended');
    expect(eventTypeOf('MODIFY', 'pending', undefined)).toBeUndefined();
    // A decision after a reminder is the decision.
    expect(eventTypeOf('MODIFY', 'approved', 'reminder')).toBe('oc.approval.decided');
    const route = { kind: 'slack' as const, channel: '#x' };
    const first = occurrenceOf(approval({ notices: 1 }), 'oc.approval.extended');
    const second = occurrenceOf(approval({ notices: 2 }), 'oc.approval.extended');
    expect(deliveryId('a1', 'oc.approval.extended', route, first)).not.toBe(
      deliveryId('a1', 'oc.approval.extended', route, second),
    );
    // One-off events keep the ids they always had.
    expect(occurrenceOf(approval({ notices: 2 }), 'oc.approval.decided')).toBeUndefined();
  });
});

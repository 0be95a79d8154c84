/** What the default policies decide, beyond the original's 17 cases. */
import { createPolicyEngine } from '../../functions/core/policy.js';
import { bundleWith, repoBundle, repoEngine, request } from './builders.js';

const HIGH_RISK = 'high risk score requires approval';
const DESTRUCTIVE = 'destructive action requires approval';

// The decision and reason of each threshold, destructive, floor and unlisted case are the policy's
// own cases (policy/tests/*.jsonl, run by `oc policy test` and test/policy/policy-cases.test.ts);
// what a case cannot say (routing, requirements, determining policies) is asserted here.
describe('tenant auto-approve thresholds', () => {
  it('gives an unknown tenant the default threshold 7 and no approval routing', () => {
    const engine = repoEngine();

    expect(
      engine.evaluate(request('slack.msg.post', { tenantId: 'acme-unknown', riskScore: 6 })).decision,
    ).toBe('allow');
    expect(engine.evaluate(request('jira.issue.delete', { tenantId: 'acme-unknown' }))).toMatchObject({
      decision: 'approve',
      approverGroup: '',
      notify: [],
      requirements: { approval_scope: 'single_use' },
      approvalTtlSec: 86_400,
    });
  });
});

describe('destructive actions', () => {
  it.each([0, 3, 6])('need approval at risk %i', (riskScore) => {
    const result = repoEngine().evaluate(request('jira.issue.delete', { riskScore }));

    expect(result).toMatchObject({ decision: 'approve', reason: DESTRUCTIVE });
    expect(result.determiningPolicies).toEqual(['approve-destructive']);
  });

  it('give the high-risk reason precedence over the destructive one', () => {
    const result = repoEngine().evaluate(request('jira.issue.delete', { riskScore: 10 }));

    expect(result).toMatchObject({ decision: 'approve', reason: HIGH_RISK });
    expect(result.determiningPolicies).toEqual(['approve-high-risk', 'approve-destructive']);
  });
});

describe('unlisted actions', () => {
  it('are denied with no determining policy, whatever the tenant and risk', () => {
    for (const tenantId of ['tenant1', 'tenant2', 'nobody'])
      expect(
        repoEngine().evaluate(request('unknown.do.something', { tenantId, riskScore: 7 })),
      ).toMatchObject({
        decision: 'deny',
        reason: 'action not in allowlist',
        determiningPolicies: [],
      });
  });
});

describe('decision fields', () => {
  it('carry the tenant routing, scope and TTL on approve', () => {
    const result = repoEngine().evaluate(request('slack.msg.post', { riskScore: 9 }));

    expect(result).toEqual({
      decision: 'approve',
      reason: HIGH_RISK,
      policyVersion: repoEngine().version,
      approverGroup: 'security',
      notify: [
        { kind: 'webhook', url: 'http://localhost:8090/hooks/approvals', secret_ref: 'tenant1_webhook' },
        { kind: 'slack', channel: '#security-approvals' },
      ],
      requirements: { approval_scope: 'single_use' },
      approvalTtlSec: 86_400,
      determiningPolicies: ['approve-high-risk'],
    });
  });

  it('carry the single-use scope and the routes on the original cases 83 and 84 (jira.issue.delete)', () => {
    for (const riskScore of [3, 8]) {
      const result = repoEngine().evaluate(request('jira.issue.delete', { riskScore }));

      expect(result.requirements).toEqual({ approval_scope: 'single_use' });
      expect(result.notify.length).toBeGreaterThanOrEqual(1);
    }
  });

  it('carry no routing or requirements on allow and deny', () => {
    for (const riskScore of [0, 5]) {
      const result = repoEngine().evaluate(request('slack.msg.post', { riskScore }));

      expect(result).toMatchObject({ approverGroup: '', notify: [], requirements: {} });
      expect(result.policyVersion).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
  });

  it('use tenant2 routing: group ops, no routes', () => {
    expect(repoEngine().evaluate(request('jira.issue.delete', { tenantId: 'tenant2' }))).toMatchObject({
      decision: 'approve',
      approverGroup: 'ops',
      notify: [],
    });
  });

  it('are fresh objects: changing one does not change the next', () => {
    const first = repoEngine().evaluate(request('jira.issue.delete'));
    first.notify.push({ kind: 'slack', channel: '#evil' });
    first.requirements['approval_scope'] = 'unlimited';

    const second = repoEngine().evaluate(request('jira.issue.delete'));

    expect(second.notify).toHaveLength(2);
    expect(second.requirements).toEqual({ approval_scope: 'single_use' });
  });
});

describe('tenant()', () => {
  it('returns the frozen tenant configuration', () => {
    const tenant = repoEngine().tenant('tenant1');

    expect(tenant).toMatchObject({
      name: 'Acme Corp',
      max_risk_auto_approve: 5,
      approvers: { emails: ['alice@acme.example', 'carol@acme.example'], slack_user_ids: ['U123'] },
    });
    expect(Object.isFrozen(tenant)).toBe(true);
    expect(Object.isFrozen(tenant?.notify[0])).toBe(true);
  });

  it.each(['no-such-tenant', 'constructor', '__proto__', 'toString', ''])('is undefined for %j', (id) => {
    expect(repoEngine().tenant(id)).toBeUndefined();
  });
});

describe('slack_view (issue 19)', () => {
  it("gives the tenant's Slack routes its slack_view, unless a route names its own; webhooks are untouched", () => {
    const base = repoBundle().tenants;
    const engine = createPolicyEngine(
      bundleWith({
        tenants: {
          ...base,
          tenant1: {
            ...base.tenant1!,
            slack_view: 'target',
            notify: [
              ...base.tenant1!.notify,
              { kind: 'slack', channel: '#full-here', events: base.tenant1!.notify[0]!.events, view: 'full' },
            ],
          },
        },
      }),
    );
    const { notify } = engine.evaluate(request('jira.issue.delete'));
    expect(notify.map((r) => [r.kind, r.kind === 'slack' ? r.view : undefined])).toEqual([
      ['webhook', undefined],
      ['slack', 'target'],
      ['slack', 'full'],
    ]);
  });

  it('leaves routes as written when the tenant sets none (the message then shows the full view)', () => {
    const { notify } = repoEngine().evaluate(request('jira.issue.delete'));
    expect(notify.find((r) => r.kind === 'slack')).toEqual({ kind: 'slack', channel: '#security-approvals' });
  });
});

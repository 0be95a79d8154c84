/** What the default policies decide, beyond the original's 17 cases. */
import { createPolicyEngine } from '../../functions/core/policy.js';
import { bundleWith, repoBundle, repoEngine, request } from './builders.js';

const W34_REASON = 'risk score exceeds tenant auto-approve threshold';
const READ = 'read action on allowlist within tenant threshold';
const WRITE = 'write action on allowlist within tenant threshold';
const HIGH_RISK = 'high risk score requires approval';
const DESTRUCTIVE = 'destructive action requires approval';

describe('tenant auto-approve thresholds', () => {
  // threshold t: risk < t allows, t <= risk < 7 denies (W34 reason), risk >= 7 needs approval
  const tenants = [
    { tenantId: 'tenant1', threshold: 5 },
    { tenantId: 'tenant2', threshold: 3 },
    { tenantId: 'no-such-tenant', threshold: 7 },
  ];
  const actions = [
    ['jira.issue.list', READ],
    ['jira.issue.create', WRITE],
  ] as const;
  const rows = tenants.flatMap(({ tenantId, threshold }) =>
    actions.flatMap(([toolAction, allowReason]) =>
      [...new Set([0, threshold - 1, threshold, 6, 7, 10])].map(
        (risk): [string, string, number, string, string] => {
          if (risk >= 7) return [tenantId, toolAction, risk, 'approve', HIGH_RISK];
          if (risk < threshold) return [tenantId, toolAction, risk, 'allow', allowReason];
          return [tenantId, toolAction, risk, 'deny', W34_REASON];
        },
      ),
    ),
  );

  it.each(rows)('%s %s at risk %i: %s (%s)', (tenantId, toolAction, riskScore, decision, reason) => {
    const result = repoEngine().evaluate(request(toolAction, { tenantId, riskScore }));

    expect(result.decision).toBe(decision);
    expect(result.reason).toBe(reason);
  });

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
  it.each([0, 2, 6, 7, 10])('are denied at risk %i, whatever the tenant', (riskScore) => {
    for (const tenantId of ['tenant1', 'tenant2', 'nobody']) {
      const result = repoEngine().evaluate(request('unknown.do.something', { tenantId, riskScore }));

      expect(result).toMatchObject({
        decision: 'deny',
        reason: 'action not in allowlist',
        determiningPolicies: [],
      });
    }
  });

  it('include names that only look like listed ones', () => {
    for (const toolAction of ['jira.issue', 'jira.issue.list.all', 'jira.issue.lis', 'read.x', 'x.read']) {
      expect(repoEngine().evaluate(request(toolAction)).decision).toBe('deny');
    }
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

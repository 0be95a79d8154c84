/** How policies combine into one decision, with bundles that add or change policies. */
import { createPolicyEngine } from '../../functions/core/policy.js';
import { bundleWith, request } from './builders.js';

describe('forbid', () => {
  const engine = createPolicyEngine(
    bundleWith({
      extraPolicies: `
        @id("no-prod-writes") @priority("5") @reason("writes to production are frozen")
        forbid (principal, action in [Action::"write", Action::"destructive"], resource)
        when { context.labels.hasTag("env") && context.labels.getTag("env") == "prod" };`,
    }),
  );

  it('overrides a permit that would allow', () => {
    const result = engine.evaluate(request('slack.msg.post', { labels: { env: 'prod' } }));

    expect(result).toMatchObject({ decision: 'deny', reason: 'writes to production are frozen' });
    expect(result.determiningPolicies).toEqual(['no-prod-writes']);
  });

  it('overrides a permit that would ask for approval', () => {
    const result = engine.evaluate(request('jira.issue.delete', { riskScore: 9, labels: { env: 'prod' } }));

    expect(result).toMatchObject({ decision: 'deny', reason: 'writes to production are frozen', notify: [] });
  });

  it('does nothing when its condition is false', () => {
    expect(engine.evaluate(request('slack.msg.post', { labels: { env: 'dev' } })).decision).toBe('allow');
    expect(engine.evaluate(request('slack.msg.post')).decision).toBe('allow');
  });

  it('reports the highest-priority forbid when several are satisfied', () => {
    const result = engine.evaluate(request('slack.msg.post', { riskScore: 6, labels: { env: 'prod' } }));

    expect(result.reason).toBe('risk score exceeds tenant auto-approve threshold'); // priority 10 > 5
    expect(result.determiningPolicies).toEqual(['deny-over-tenant-threshold', 'no-prod-writes']);
  });

  it('applies to unlisted actions when its scope is every action', () => {
    const withGlobalForbid = createPolicyEngine(
      bundleWith({
        extraPolicies: `
          @id("blocked-user") @reason("user is blocked")
          forbid (principal, action, resource) when { context.user_id == "mallory" };`,
      }),
    );

    expect(withGlobalForbid.evaluate(request('unknown.thing', { userId: 'mallory' }))).toMatchObject({
      decision: 'deny',
      reason: 'user is blocked',
    });
    expect(withGlobalForbid.evaluate(request('unknown.thing'))).toMatchObject({
      decision: 'deny',
      reason: 'action not in allowlist',
    });
    expect(withGlobalForbid.evaluate(request('jira.issue.list', { userId: 'mallory' })).decision).toBe(
      'deny',
    );
    expect(withGlobalForbid.evaluate(request('jira.issue.list', { userId: 'alice' })).decision).toBe('allow');
  });
});

describe('approval', () => {
  it('dominates allow when both are satisfied', () => {
    // threshold 10: a read at risk 8 satisfies both the read allow and the high-risk approval
    const engine = createPolicyEngine(
      bundleWith({ tenants: { lax: { ...createTenant(), max_risk_auto_approve: 10 } } }),
    );

    const result = engine.evaluate(request('jira.issue.list', { tenantId: 'lax', riskScore: 8 }));

    expect(result).toMatchObject({ decision: 'approve', reason: 'high risk score requires approval' });
    expect(result.determiningPolicies).toEqual(['approve-high-risk']);
    expect(engine.evaluate(request('jira.issue.list', { tenantId: 'lax', riskScore: 6 })).decision).toBe(
      'allow',
    );
  });

  it('comes from any permit annotated @outcome("approve")', () => {
    const engine = createPolicyEngine(
      bundleWith({
        extraPolicies: `
          @id("approve-pii") @outcome("approve") @priority("200") @reason("call touches personal data")
          permit (principal, action in [Action::"read", Action::"write"], resource)
          when { context.risk_factors.contains("pii") };`,
      }),
    );

    expect(engine.evaluate(request('jira.issue.list', { riskFactors: ['pii'] }))).toMatchObject({
      decision: 'approve',
      reason: 'call touches personal data',
      determiningPolicies: ['approve-pii'],
    });
    expect(engine.evaluate(request('jira.issue.list', { riskFactors: ['other'] })).decision).toBe('allow');
  });
});

describe('reason precedence', () => {
  const swapped = (text: string) =>
    text
      .replace('@priority("100")', '@priority("__HIGH__")')
      .replace('@priority("50")', '@priority("100")')
      .replace('@priority("__HIGH__")', '@priority("50")');

  it('follows @priority, not policy order', () => {
    const engine = createPolicyEngine(bundleWith({ policies: swapped }));

    const result = engine.evaluate(request('jira.issue.delete', { riskScore: 8 }));

    expect(result.reason).toBe('destructive action requires approval');
    expect(result.determiningPolicies).toEqual(['approve-destructive', 'approve-high-risk']);
  });

  it('breaks ties by policy id', () => {
    const engine = createPolicyEngine(
      bundleWith({ policies: (text) => text.replace('@priority("100")', '@priority("50")') }),
    );

    const result = engine.evaluate(request('jira.issue.delete', { riskScore: 8 }));

    expect(result.determiningPolicies).toEqual(['approve-destructive', 'approve-high-risk']);
    expect(result.reason).toBe('destructive action requires approval');
  });

  it('treats a missing @priority as 0 and accepts negative ones', () => {
    const engine = createPolicyEngine(
      bundleWith({
        extraPolicies: `
          @id("a-low") @priority("-5") @reason("low")
          forbid (principal, action in Action::"read", resource) when { context.tool == "jira" };
          @id("b-default") @reason("default")
          forbid (principal, action in Action::"read", resource) when { context.tool == "jira" };`,
      }),
    );

    const result = engine.evaluate(request('jira.issue.list'));

    expect(result.reason).toBe('default');
    expect(result.determiningPolicies).toEqual(['b-default', 'a-low']);
  });
});

describe('request attributes reach the policies', () => {
  const engine = createPolicyEngine(
    bundleWith({
      extraPolicies: `
        @id("f-resource") @reason("resource") forbid (principal, action, resource)
          when { context.resource_name like "prod-*" };
        @id("f-session") @reason("session") forbid (principal, action, resource)
          when { context.session_id == "s-bad" };
        @id("f-time") @reason("time") forbid (principal, action, resource)
          when { context.now >= datetime("2030-01-01") };
        @id("f-night") @reason("night") forbid (principal, action, resource)
          when { context.now.toTime() < duration("1h") };
        @id("f-tool-action") @reason("tool_action") forbid (principal, action, resource)
          when { context.tool_action == "slack.msg.post" && context.tool == "slack" };
        @id("f-agent") @reason("agent") forbid (principal, action, resource)
          when { principal == Agent::"agent-banned" };
        @id("f-tenant") @reason("tenant") forbid (principal, action, resource)
          unless { principal in resource };
        @id("f-labels") @reason("labels") forbid (principal, action, resource)
          when { context has labels && context.labels.hasTag("ünïcødé ✓") };`,
    }),
  );

  it.each([
    ['resource', { resource: 'prod-db' }],
    ['session', { sessionId: 's-bad' }],
    ['time', { now: new Date('2030-01-01T12:00:00Z') }],
    ['night', { now: new Date('2025-06-01T00:30:00Z') }],
    ['agent', { agentId: 'agent-banned' }],
    ['labels', { labels: { 'ünïcødé ✓': '' } }],
  ] as const)('%s', (reason, overrides) => {
    expect(engine.evaluate(request('jira.issue.list', overrides))).toMatchObject({
      decision: 'deny',
      reason,
    });
    expect(engine.evaluate(request('jira.issue.list')).decision).toBe('allow');
  });

  it('tool and tool_action', () => {
    expect(engine.evaluate(request('slack.msg.post')).reason).toBe('tool_action');
    expect(engine.evaluate(request('slack.channel.list')).decision).toBe('allow');
  });

  it('the agent is a member of its tenant', () => {
    expect(engine.evaluate(request('jira.issue.list', { tenantId: 'nobody' })).decision).toBe('allow');
  });
});

function createTenant() {
  return {
    name: 'Lax Ltd',
    max_risk_auto_approve: 5,
    approver_group: 'lax',
    notify: [],
    approvers: { emails: [], slack_user_ids: [] },
    approval_ttl_sec: 3600,
    grant_ttl_sec: 3600,
  };
}

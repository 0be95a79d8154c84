/** createPolicyEngine checks everything once and refuses a bundle it cannot trust. */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { createPolicyEngine, PolicyLoadError, type PolicyBundle } from '../../functions/core/policy.js';
import { bundleWith, repoBundle } from './builders.js';

const policyTexts = (text: string): string[] => {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type !== 'success') throw new Error('policies do not parse');
  return parts.policies;
};

describe('the repository policies', () => {
  it('load, and validate against the schema in strict mode', () => {
    expect(() => createPolicyEngine(repoBundle())).not.toThrow();
  });

  it.each(policyTexts(repoBundle().policies).map((p) => [p.match(/@id\("([^"]+)"\)/)?.[1], p]))(
    'each validates on its own: %s',
    (_, text) => {
      expect(() => createPolicyEngine(bundleWith({ policies: () => text! }))).not.toThrow();
    },
  );

  it('each has @id, @reason and a known @outcome', () => {
    for (const text of policyTexts(repoBundle().policies)) {
      const json = cedar.policyToJson(text);
      if (json.type !== 'success') throw new Error('policy does not parse');
      const annotations = json.json.annotations ?? {};

      expect(annotations['id']).toMatch(/^[a-z0-9-]+$/);
      expect(annotations['reason']).toBeTruthy();
      expect([undefined, 'approve']).toContain(annotations['outcome']);
    }
  });
});

describe('a bundle is refused with PolicyLoadError', () => {
  const refused: Array<[string, () => PolicyBundle, RegExp]> = [
    [
      'a syntax error',
      () => bundleWith({ extraPolicies: '@id("x") @reason("x") permit (principal, action' }),
      /policies/,
    ],
    [
      'an undeclared context attribute',
      () =>
        bundleWith({
          extraPolicies:
            '@id("x") @reason("x") permit (principal, action, resource) when { context.risk > 1 };',
        }),
      /x: .*risk/,
    ],
    [
      'an undeclared tenant attribute',
      () =>
        bundleWith({
          extraPolicies:
            '@id("x") @reason("x") permit (principal, action, resource) when { resource.tier == "gold" };',
        }),
      /tier/,
    ],
    [
      'a type error',
      () =>
        bundleWith({
          extraPolicies:
            '@id("x") @reason("x") permit (principal, action, resource) when { context.risk_score == "high" };',
        }),
      /x: /,
    ],
    [
      'an undeclared action',
      () =>
        bundleWith({
          extraPolicies:
            '@id("x") @reason("x") permit (principal, action == Action::"jira.issue.nuke", resource);',
        }),
      /jira\.issue\.nuke/,
    ],
    [
      'an unguarded optional tag',
      () =>
        bundleWith({
          extraPolicies:
            '@id("x") @reason("x") permit (principal, action, resource) when { context.labels.getTag("a") == "b" };',
        }),
      /x: /,
    ],
    [
      'an impossible policy',
      () =>
        bundleWith({
          extraPolicies: '@id("x") @reason("x") permit (principal is Tenant, action, resource);',
        }),
      /x: .*impossible/,
    ],
    [
      'a policy without @id',
      () => bundleWith({ extraPolicies: '@reason("x") forbid (principal, action, resource);' }),
      /@id/,
    ],
    [
      'a duplicate @id',
      () =>
        bundleWith({
          extraPolicies: '@id("approve-high-risk") @reason("x") forbid (principal, action, resource);',
        }),
      /duplicate @id\("approve-high-risk"\)/,
    ],
    [
      'a policy without @reason',
      () => bundleWith({ extraPolicies: '@id("x") forbid (principal, action, resource);' }),
      /@reason/,
    ],
    [
      'an unknown @outcome',
      () =>
        bundleWith({
          extraPolicies: '@id("x") @reason("x") @outcome("escalate") permit (principal, action, resource);',
        }),
      /@outcome\("escalate"\)/,
    ],
    [
      'a forbid that claims to approve',
      () =>
        bundleWith({
          extraPolicies: '@id("x") @reason("x") @outcome("approve") forbid (principal, action, resource);',
        }),
      /forbid/,
    ],
    [
      'a non-integer @priority',
      () =>
        bundleWith({
          extraPolicies: '@id("x") @reason("x") @priority("high") forbid (principal, action, resource);',
        }),
      /@priority/,
    ],
    [
      'a template',
      () =>
        bundleWith({
          extraPolicies: '@id("x") @reason("x") permit (principal == ?principal, action, resource);',
        }),
      /template/,
    ],
    ['no policies at all', () => bundleWith({ policies: () => '// nothing\n' }), /no policies/],
    ['a schema syntax error', () => bundleWith({ schema: (s) => `${s}\nentity Broken = {` }), /schema/],
    [
      'a schema whose context the engine does not build',
      () =>
        bundleWith({ schema: (s) => s.replace('"now": datetime,', '"now": datetime,\n  "params": String,') }),
      /params/,
    ],
    [
      'a schema whose tenant the engine does not build',
      () =>
        bundleWith({
          schema: (s) =>
            s.replace('"max_risk_auto_approve": Long,', '"max_risk_auto_approve": Long, "tier": String,'),
        }),
      /tier/,
    ],
    [
      'a schema without an action group',
      () => bundleWith({ schema: (s) => s.replace('action read, write, destructive', 'action read, write') }),
      /destructive/,
    ],
    ['a schema in a namespace', () => bundleWith({ schema: (s) => `namespace OC {\n${s}\n}` }), /namespace/],
    [
      'an action declared in both the schema and actions.json',
      () =>
        bundleWith({
          schema: (s) =>
            `${s}\naction "jira.issue.list" in [read] appliesTo { principal: [Agent], resource: [Tenant], context: ToolCallContext };`,
        }),
      /jira\.issue\.list/,
    ],
    [
      'an action name without a tool',
      () => bundleWith({ actions: { read: ['list'], write: [], destructive: [] } }),
      /actions.*read\.0/,
    ],
    [
      'a webhook route without a secret',
      () =>
        bundleWith({ tenants: { t: tenant({ notify: [{ kind: 'webhook', url: 'https://x.example/h' }] }) } }),
      /tenants.*t\.notify\.0\.secret_ref/,
    ],
    [
      'a webhook route that is not http(s)',
      () =>
        bundleWith({
          tenants: {
            t: tenant({ notify: [{ kind: 'webhook', url: 'file:///etc/passwd', secret_ref: 's' }] }),
          },
        }),
      /t\.notify\.0\.url/,
    ],
    [
      'a misspelled tenant field',
      () => bundleWith({ tenants: { t: tenant({ approver_groups: 'x' }) } }),
      /approver_groups/,
    ],
    [
      'a fractional threshold',
      () => bundleWith({ tenants: { t: tenant({ max_risk_auto_approve: 4.5 }) } }),
      /max_risk_auto_approve/,
    ],
    [
      'an approval TTL over 7 days',
      () => bundleWith({ tenants: { t: tenant({ approval_ttl_sec: 8 * 86_400 }) } }),
      /approval_ttl_sec/,
    ],
    [
      'a tenant with Slack approvers and no Slack workspace',
      () => bundleWith({ tenants: { t: tenant({ approvers: { slack_user_ids: ['U1'] } }) } }),
      /t\.slack\.team_id: required with a Slack route or slack_user_ids/,
    ],
    [
      'a tenant with a Slack route and no Slack workspace',
      () => bundleWith({ tenants: { t: tenant({ notify: [{ kind: 'slack', channel: '#a' }] }) } }),
      /t\.slack\.team_id: required/,
    ],
    [
      'a Slack workspace id that is not one',
      () => bundleWith({ tenants: { t: tenant({ slack: { team_id: 'acme' } }) } }),
      /t\.slack\.team_id: must be a Slack workspace id/,
    ],
    ['an empty version', () => bundleWith({ version: '' }), /version/],
  ];

  it.each(refused)('%s', (_, bundle, message) => {
    const load = () => createPolicyEngine(bundle());

    expect(load).toThrow(PolicyLoadError);
    expect(load).toThrow(message);
  });

  it('is an Error named PolicyLoadError', () => {
    try {
      createPolicyEngine(bundleWith({ version: '' }));
      throw new Error('expected a PolicyLoadError');
    } catch (err) {
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).toBe('PolicyLoadError');
    }
  });
});

describe('tenant data defaults', () => {
  it('fill in optional fields', () => {
    const engine = createPolicyEngine(
      bundleWith({ tenants: { minimal: { name: 'Minimal', max_risk_auto_approve: 2 } as never } }),
    );

    expect(engine.tenant('minimal')).toEqual({
      name: 'Minimal',
      max_risk_auto_approve: 2,
      approver_group: '',
      notify: [],
      approvers: { emails: [], slack_user_ids: [] },
      approval_ttl_sec: 86_400,
      grant_ttl_sec: 3_600,
    });
  });

  it('let an action belong to two groups', () => {
    const base = repoBundle().actions;
    const engine = createPolicyEngine(
      bundleWith({ actions: { ...base, destructive: [...base.destructive, 'slack.msg.post'] } }),
    );

    expect(engine.evaluate(requestFor('slack.msg.post')).decision).toBe('approve');
  });
});

function tenant(overrides: Record<string, unknown>): never {
  return { name: 'T', max_risk_auto_approve: 5, ...overrides } as never;
}

function requestFor(toolAction: string) {
  const [tool, ...rest] = toolAction.split('.');
  return {
    tenantId: 'tenant1',
    agentId: 'a',
    tool: tool!,
    action: rest.join('.'),
    resource: '',
    riskScore: 0,
    riskFactors: [],
    labels: {},
    userId: '',
    sessionId: '',
    now: new Date(),
  };
}

/**
 * Issue 21's Slack workflow buttons, pure: which a message offers by policy data (core/slack-offers.ts),
 * how the one approval message renders them and a standing grant (core/slack-message.ts), and
 * how a click on them is parsed (core/slack-interaction.ts), with hostile inputs and Slack's limits.
 */
import { buildApprovalView, viewHash } from '../../functions/core/approval-view.js';
import type { TenantConfig } from '../../functions/core/policy.js';
import { decodeButtonValue, parseInteraction } from '../../functions/core/slack-interaction.js';
import {
  BLOCK_KIT_LIMITS,
  approvalOutcomeMessage,
  approvalRequestMessage,
  durationText,
  encodeButtonValue,
  type ApprovalMessageInput,
  type SlackMessage,
} from '../../functions/core/slack-message.js';
import {
  defaultGrantScope,
  extendOffer,
  extendStep,
  slackOffers,
} from '../../functions/core/slack-offers.js';
import { AppError } from '../../functions/shared/errors.js';

const approval = {
  id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
  event_id: '0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
  tenant_id: 'tenant1',
  tool: 'jira',
  action: 'issue.delete',
  resource: 'OPS-42',
  params: { issue: 'OPS-42' } as Record<string, unknown>,
  risk_score: 7,
  reason: 'destructive action requires approval',
  agent_id: 'agent-7',
  user_id: 'dana@acme.example',
  expires_at: '2025-06-02T12:34:56.130Z',
};
const input: ApprovalMessageInput = {
  approval,
  consoleUrl: `https://oc.example/console/approvals/${approval.id}`,
};
const tenant = {
  extensions: { max_sec: 7200, max_times: 3 },
  standing_grants: {
    actions: ['jira.issue.delete'],
    max_uses: 5,
    max_ttl_sec: 86_400,
    allow_destructive: true,
  },
} as unknown as TenantConfig;
const offers = slackOffers(tenant, approval);

const buttons = (m: SlackMessage) =>
  ((m.blocks.find((b) => b.type === 'actions') as { elements: any[] } | undefined)?.elements ?? []) as any[];
const ids = (m: SlackMessage) => buttons(m).map((e) => e.action_id as string);

describe('what a message offers, by policy data', () => {
  it('Extend by an hour (or the whole bound if less) and the default grant scope: exact target, max uses, an hour', () => {
    expect(offers).toEqual({
      extend_sec: 3600,
      standing_grant: { target_pattern: 'OPS-42', max_uses: 5, expires_in_sec: 3600 },
    });
    const tight = {
      extensions: { max_sec: 1800, max_times: 1 },
      standing_grants: { actions: ['jira.issue.delete'], max_uses: 2, max_ttl_sec: 600 },
    } as unknown as TenantConfig;
    expect(slackOffers(tight, approval)).toEqual({
      extend_sec: 1800,
      standing_grant: { target_pattern: 'OPS-42', max_uses: 2, expires_in_sec: 600 },
    });
  });

  it('offers nothing policy data does not turn on, no grant for an unpatternable target, and a grant vote on a quorum call', () => {
    expect(slackOffers(undefined, approval)).toEqual({});
    expect(slackOffers({} as TenantConfig, approval)).toEqual({});
    expect(slackOffers(tenant, { ...approval, action: 'issue.create' })).toEqual({ extend_sec: 3600 });
    // On a quorum call the click is a vote asking for the grant (the core makes it once all asked).
    expect(slackOffers(tenant, { ...approval, quorum: { rule: 'default', stages: [{ n: 2 }] } })).toEqual(
      offers,
    );
    // A target with a `*` of its own would widen into a prefix; an empty one is no pattern.
    expect(slackOffers(tenant, { ...approval, resource: 'OPS-*' }).standing_grant).toBeUndefined();
    expect(slackOffers(tenant, { ...approval, resource: '' }).standing_grant).toBeUndefined();
    // The click's scope is policy's alone: the core judges the quorum.
    expect(
      defaultGrantScope(tenant, { ...approval, quorum: { rule: 'default', stages: [{ n: 2 }] } }),
    ).toEqual(offers.standing_grant);
  });

  it("cuts Extend's step to what the bound still leaves, and asks the full step when under a minute is left", () => {
    const record = { created_at: '2025-06-01T12:00:00.000Z', expires_at: '2025-06-02T12:00:00.000Z' };
    expect(extendStep(tenant, { record })).toBe(3600);
    const once = { from: record.expires_at, to: '2025-06-02T13:30:00.000Z', by: 'a', at: 'x' };
    expect(extendStep(tenant, { record: { ...record, expires_at: once.to }, extensions: [once] })).toBe(1800);
    const full = { ...once, to: '2025-06-02T13:59:30.000Z' };
    expect(extendStep(tenant, { record: { ...record, expires_at: full.to }, extensions: [full] })).toBe(3600);
  });

  it("offers the console's step only where an extension could succeed", () => {
    const record = { created_at: '2025-06-02T11:00:00.000Z', expires_at: '2025-06-02T12:00:00.000Z' };
    expect(extendOffer(tenant, { record })).toBe(3600);
    expect(extendOffer({ extensions: { max_sec: 1800, max_times: 1 } } as never, { record })).toBe(1800);
    expect(extendOffer({} as never, { record })).toBeUndefined();
    const once = { from: record.expires_at, to: '2025-06-02T13:30:00.000Z', by: 'a', at: 'x' };
    const moved = { record: { ...record, expires_at: once.to }, extensions: [once] };
    expect(extendOffer(tenant, moved)).toBe(1800);
    // The count spent, or under a minute left under the bound: nothing to offer.
    expect(extendOffer({ extensions: { max_sec: 7200, max_times: 1 } } as never, moved)).toBeUndefined();
    const full = { ...once, to: '2025-06-02T13:59:30.000Z' };
    expect(
      extendOffer(tenant, { record: { ...record, expires_at: full.to }, extensions: [full] }),
    ).toBeUndefined();
  });

  it('says spans in words', () => {
    expect([3600, 7200, 1800, 86_400, 45].map(durationText)).toEqual([
      '1 hour',
      '2 hours',
      '30 min',
      '1 day',
      '45 s',
    ]);
  });
});

describe('the one approval message with the workflow buttons', () => {
  it('adds Approve + calls like it (confirmed, with its scope) and Extend; each value carries the view hash', () => {
    const m = approvalRequestMessage({ ...input, offers });
    expect(ids(m)).toEqual(['oc_approve', 'oc_grant', 'oc_deny', 'oc_extend', 'oc_open']);
    const hash = viewHash(buildApprovalView(approval));
    const [, grant, , extend] = buttons(m);
    expect(decodeButtonValue(grant.value)).toEqual({
      d: 'grant',
      r: approval.id,
      e: approval.event_id,
      t: 'tenant1',
      h: hash,
    });
    expect(decodeButtonValue(extend.value)).toMatchObject({ d: 'extend', h: hash });
    expect(extend.text.text).toBe('Extend by 1 hour');
    expect(grant.confirm.text.text).toBe(
      'Approves this call, and for 1 hour up to 5 more calls by agent-7 of jira.issue.delete on OPS-42 run without asking (policy still checks each). Revoke any time: oc grants revoke.',
    );
    // Without offers: the message as before.
    expect(ids(approvalRequestMessage(input))).toEqual(['oc_approve', 'oc_deny', 'oc_open']);
  });

  it('offers no grant where there is no one-click Approve (slack_view: target, or more than Slack can show); Extend stays', () => {
    expect(ids(approvalRequestMessage({ ...input, offers, slackView: 'target' }))).toEqual([
      'oc_deny',
      'oc_extend',
      'oc_open',
    ]);
    const params: Record<string, unknown> = {};
    for (let i = 0; i < 400; i += 1) params[`p${i}`] = 'x'.repeat(400);
    expect(ids(approvalRequestMessage({ ...input, offers, approval: { ...approval, params } }))).toEqual([
      'oc_deny',
      'oc_extend',
      'oc_open',
    ]);
  });

  it("keeps a hostile agent id and target inside Slack's limits, as plain text in the confirmation", () => {
    const long = '<!here> `x` '.repeat(400);
    const m = approvalRequestMessage({
      ...input,
      approval: { ...approval, agent_id: long },
      offers: { ...offers, standing_grant: { ...offers.standing_grant!, target_pattern: long } },
    });
    const grant = buttons(m)[1];
    expect(grant.confirm.text.type).toBe('plain_text');
    expect([...grant.confirm.text.text].length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.confirmText);
    expect(grant.confirm.title.text.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.confirmTitle);
    expect(grant.confirm.confirm.text.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.confirmButton);
  });

  it('shows the standing grant once approved: id, scope, uses, expiry and how to revoke it, escaped; no buttons', () => {
    const g = {
      id: '7d1f0c2e-1111-4a2b-8c3d-000000000001',
      agent_id: 'agent-7',
      tool: 'jira',
      action: 'issue.delete',
      target_pattern: 'OPS-<!here>`*',
      max_uses: 5,
      expires_at: '2025-06-02T13:34:56.000Z',
    };
    const m = approvalOutcomeMessage(input, {
      status: 'approved',
      decidedBy: 'slack:U123',
      standingGrant: g,
    });
    expect(ids(m)).toEqual([]);
    const block = m.blocks.find((b) => b.block_id === 'oc_standing_grant') as any;
    expect(block.text.text).toContain(`*Standing grant* \`${g.id}\``);
    expect(block.text.text).toContain("on `OPS-&lt;!here&gt;'*`: up to 5 uses, until <!date^");
    expect(block.text.text).toContain(`\`npx oc grants revoke ${g.id} --tenant tenant1\``);
    expect(JSON.stringify(m.blocks)).toContain('Approved by <@U123>');
    expect(JSON.stringify(m.blocks)).not.toContain('<!here>');
  });
});

describe('a click on a workflow button', () => {
  const payload = (actionId: string, d: string) => ({
    type: 'block_actions',
    user: { id: 'U123', team_id: 'T0001' },
    team: { id: 'T0001' },
    response_url: 'https://hooks.slack.com/actions/T0001/1/x',
    actions: [
      {
        action_id: actionId,
        value: encodeButtonValue({
          d: d as 'grant',
          r: approval.id,
          e: approval.event_id,
          t: 'tenant1',
          h: 'a'.repeat(64),
        }),
      },
    ],
  });

  it('is a workflow click of its own kind (never an approve or deny)', () => {
    expect(parseInteraction(payload('oc_extend', 'extend'))).toMatchObject({
      kind: 'workflow',
      click: { workflow: 'extend', approvalId: approval.id, viewHash: 'a'.repeat(64) },
    });
    const grant = parseInteraction(payload('oc_grant', 'grant'));
    expect(grant).toMatchObject({ kind: 'workflow', click: { workflow: 'grant' } });
    expect('decision' in (grant as { click: object }).click).toBe(false);
  });

  it.each([
    ['oc_grant', 'approve'],
    ['oc_approve', 'grant'],
    ['oc_extend', 'deny'],
    ['oc_deny', 'extend'],
  ])('is refused when the button %s carries the value of %s (400)', (actionId, d) => {
    expect(() => parseInteraction(payload(actionId, d))).toThrow(AppError);
    expect(() => parseInteraction(payload(actionId, d))).toThrow(/invalid action value/);
  });
});

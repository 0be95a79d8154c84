/** The Block Kit approval message: content, escaping, and Slack's limits with long, hostile inputs. */
import {
  BLOCK_KIT_LIMITS,
  approvalOutcomeMessage,
  approvalRequestMessage,
  lateClickText,
  mrkdwnText,
  type ApprovalMessageInput,
  type Block,
  type SlackMessage,
} from '../../functions/core/slack-message.js';
import { decodeButtonValue } from '../../functions/core/slack-interaction.js';

const approval = {
  id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
  event_id: '0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
  tenant_id: 'tenant1',
  tool: 'jira',
  action: 'issue.delete',
  resource: 'OPS-42',
  risk_score: 7,
  reason: 'destructive action requires approval',
  agent_id: 'agent-7',
  user_id: 'dana@acme.example',
  expires_at: '2025-06-02T12:34:56.130Z',
};
const input: ApprovalMessageInput = {
  approval,
  consoleUrl: `https://oc.example/console/approvals/${approval.id}`,
  summary: 'Approval requested: jira.issue.delete on OPS-42 (risk=7)',
};

const texts = (blocks: Block[]): string => JSON.stringify(blocks);
const actions = (m: SlackMessage) =>
  m.blocks.find((b) => b.type === 'actions') as { elements: any[] } | undefined;

/** Every limit of BLOCK_KIT_LIMITS that applies to these blocks. */
function assertWithinLimits(m: SlackMessage): void {
  expect(m.blocks.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.blocks);
  expect([...m.text].length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.messageText);
  for (const b of m.blocks as any[]) {
    if (b.type === 'header') expect([...b.text.text].length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.headerText);
    if (b.type === 'section') {
      if (b.text) expect(b.text.text.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.sectionText);
      for (const f of b.fields ?? []) expect(f.text.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.fieldText);
      expect((b.fields ?? []).length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.sectionFields);
    }
    if (b.type === 'context') {
      expect(b.elements.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.contextElements);
      for (const e of b.elements) expect(e.text.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.contextText);
    }
    if (b.type === 'actions')
      for (const e of b.elements) {
        expect(e.text.text.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.buttonText);
        expect(e.action_id.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.actionId);
        if (e.value) expect(e.value.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.buttonValue);
        if (e.url) expect(e.url.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.buttonUrl);
        if (e.confirm) {
          expect(e.confirm.title.text.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.confirmTitle);
          expect(e.confirm.text.text.length).toBeLessThanOrEqual(BLOCK_KIT_LIMITS.confirmText);
        }
      }
  }
}

describe('the approval request message', () => {
  it('has a header, the summary, the details, the expiry and Approve / Deny (confirmed) / Open', () => {
    const m = approvalRequestMessage(input);
    expect(m.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'context', 'actions']);
    expect((m.blocks[0] as any).text.text).toBe('Approval needed: jira.issue.delete');
    expect((m.blocks[1] as any).text.text).toBe(input.summary);
    const fields = (m.blocks[2] as any).fields.map((f: { text: string }) => f.text);
    expect(fields).toEqual([
      '*Action*\njira.issue.delete',
      '*Resource*\nOPS-42',
      '*Risk*\n7 / 10',
      '*Reason*\ndestructive action requires approval',
      '*Agent*\nagent-7',
      '*Requester*\ndana@acme.example',
    ]);
    expect((m.blocks[3] as any).elements[0].text).toBe(
      'Expires <!date^1748867696^{date_short_pretty} at {time}|2025-06-02T12:34:56.000Z>',
    );
    const [approve, deny, open] = actions(m)!.elements;
    expect(approve).toMatchObject({ action_id: 'oc_approve', style: 'primary', text: { text: 'Approve' } });
    expect(deny).toMatchObject({
      action_id: 'oc_deny',
      style: 'danger',
      confirm: { confirm: { text: 'Deny' } },
    });
    expect(open).toMatchObject({ action_id: 'oc_open', url: input.consoleUrl });
    expect(decodeButtonValue(approve.value)).toEqual({
      d: 'approve',
      r: approval.id,
      e: approval.event_id,
      t: 'tenant1',
    });
    expect(decodeButtonValue(deny.value)).toEqual({
      d: 'deny',
      r: approval.id,
      e: approval.event_id,
      t: 'tenant1',
    });
    expect(m.text).toBe('Approval needed: jira.issue.delete on OPS-42 (risk 7)');
    assertWithinLimits(m);
  });

  it('escapes mentions, links and markup in what requesters and agents control', () => {
    const m = approvalRequestMessage({
      ...input,
      approval: {
        ...approval,
        resource: '<!channel> <https://evil.example|click here> & more',
        reason: 'a\u0000b\u202ec <@U999>',
        agent_id: '<!here>',
      },
      summary: 'Approval for <!everyone> &amp; friends',
    });
    const all = texts(m.blocks) + m.text;
    expect(all).not.toMatch(/<!channel>|<!here>|<!everyone>|<https:|<@U999>/);
    expect(all).toContain('&lt;!channel&gt; &lt;https://evil.example|click here&gt; &amp; more');
    expect(all).toContain('abc &lt;@U999&gt;');
    // The summary is already escaped: its entities are kept, its stray brackets escaped.
    expect((m.blocks[1] as any).text).toEqual({
      type: 'mrkdwn',
      text: 'Approval for &lt;!everyone&gt; &amp; friends',
      verbatim: true,
    });
  });

  it('stays within every Block Kit limit with very long inputs, cutting with an ellipsis, never inside an escape', () => {
    const long = '<&>'.repeat(5000) + 'x'.repeat(70_000);
    const m = approvalRequestMessage({
      approval: { ...approval, resource: long, reason: long, agent_id: long, user_id: long },
      consoleUrl: `https://oc.example/console/approvals/${approval.id}?${'q'.repeat(5000)}`,
      summary: 'é'.repeat(10_000),
    });
    assertWithinLimits(m);
    const fields = (m.blocks[2] as any).fields.map((f: { text: string }) => f.text) as string[];
    for (const f of fields.filter((t) => t.length > 100)) expect(f).toMatch(/(&lt;|&amp;|&gt;)…$/);
    expect((m.blocks[1] as any).text.text).toMatch(/^é+…$/);
    // An Open URL Slack cannot carry is left out rather than sent broken (W26).
    expect(actions(m)!.elements.map((e: { action_id: string }) => e.action_id)).toEqual([
      'oc_approve',
      'oc_deny',
    ]);
    expect(mrkdwnText('&&&&', 10)).toBe('&amp;…');
  });
});

describe('the message once decided or expired', () => {
  it('says who approved (a Slack approver as a mention), keeps the details, removes the buttons', () => {
    const m = approvalOutcomeMessage(input, { status: 'approved', decidedBy: 'slack:U123' });
    expect(m.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'context']);
    expect((m.blocks[0] as any).text.text).toBe('Approved: jira.issue.delete');
    expect((m.blocks[3] as any).elements[0].text).toBe(':white_check_mark: Approved by <@U123>');
    expect((m.blocks[3] as any).elements[1].text).toBe(`<${input.consoleUrl}|Open in the console>`);
    assertWithinLimits(m);
  });

  it('says who denied and why, escaped; and that it expired', () => {
    const denied = approvalOutcomeMessage(input, {
      status: 'denied',
      decidedBy: 'carol@acme.example',
      denyReason: 'not in <!channel> freeze',
    });
    expect((denied.blocks[3] as any).elements[0].text).toBe(
      ':no_entry: Denied by carol@acme.example: not in &lt;!channel&gt; freeze',
    );
    const expired = approvalOutcomeMessage(input, { status: 'expired' });
    expect((expired.blocks[0] as any).text.text).toBe('Expired: jira.issue.delete');
    expect(texts(expired.blocks)).toContain('Expired without a decision');
    expect(actions(expired)).toBeUndefined();
    // A decided_by that pretends to be a Slack id with markup is text, not a mention.
    expect(
      approvalOutcomeMessage(input, { status: 'approved', decidedBy: 'slack:<!here>' }).blocks[3],
    ).toMatchObject({
      elements: [{ text: ':white_check_mark: Approved by slack:&lt;!here&gt;' }, expect.anything()],
    });
  });

  it('answers late clicks in words', () => {
    expect(lateClickText({ kind: 'decided', status: 'approved', decidedBy: 'slack:U123' })).toBe(
      'This approval was already approved by <@U123>.',
    );
    expect(lateClickText({ kind: 'expired', expiresAt: approval.expires_at })).toMatch(
      /^This approval expired <!date\^/,
    );
  });
});

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
import { buildApprovalView, viewHash, viewLines } from '../../functions/core/approval-view.js';

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
const hashOf = (a: typeof approval) => viewHash(buildApprovalView(a));

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
  it('renders the approval view (target and every param), the expiry and Approve: <act> / Deny / Open', () => {
    const m = approvalRequestMessage(input);
    expect(m.blocks.map((b) => b.type)).toEqual(['header', 'section', 'context', 'actions']);
    expect((m.blocks[0] as any).text.text).toBe('Approval needed: jira.issue.delete');
    // The view's lines, as plain text: Slack interprets nothing in it.
    expect((m.blocks[1] as any).text).toEqual({
      type: 'plain_text',
      emoji: false,
      text: viewLines(buildApprovalView(approval)).join('\n'),
    });
    expect((m.blocks[1] as any).text.text).toContain('Target: OPS-42');
    expect((m.blocks[1] as any).text.text).toContain('issue = "OPS-42"');
    expect((m.blocks[2] as any).elements[0].text).toBe(
      'Expires <!date^1748867696^{date_short_pretty} at {time}|2025-06-02T12:34:56.000Z>',
    );
    const [approve, deny, open] = actions(m)!.elements;
    expect(approve).toMatchObject({
      action_id: 'oc_approve',
      style: 'primary',
      text: { text: 'Approve: delete OPS-42' },
    });
    expect(deny).toMatchObject({
      action_id: 'oc_deny',
      style: 'danger',
      confirm: { confirm: { text: 'Deny' } },
    });
    expect(open).toMatchObject({ action_id: 'oc_open', url: input.consoleUrl, text: { text: 'Open' } });
    // Approve carries the hash of the view the message showed whole.
    expect(decodeButtonValue(approve.value)).toEqual({
      d: 'approve',
      r: approval.id,
      e: approval.event_id,
      t: 'tenant1',
      h: hashOf(approval),
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

  it('uses the recorded view hash when the approval carries one', () => {
    const m = approvalRequestMessage({ ...input, approval: { ...approval, view_hash: 'a'.repeat(64) } });
    expect(decodeButtonValue(actions(m)!.elements[0].value).h).toBe('a'.repeat(64));
  });

  it('shows a slack.msg.post approval its channel and text, invisible characters as ⟨U+…⟩, never stripped', () => {
    const m = approvalRequestMessage({
      ...input,
      approval: {
        ...approval,
        tool: 'slack',
        action: 'msg.post',
        resource: '#o\u200bps',
        params: { channel: '#o\u200bps', text: 'Deploy finished \u202e:eludehcs ot gnidrocca\u202c ok' },
      },
    });
    const all = texts(m.blocks) + m.text;
    expect(all).not.toMatch(/[\u200b\u202e\u202c]/u);
    expect((m.blocks[1] as any).text.text).toContain('channel = "#o⟨U+200B⟩ps"');
    expect((m.blocks[1] as any).text.text).toContain(
      'text = "Deploy finished ⟨U+202E⟩:eludehcs ot gnidrocca⟨U+202C⟩ ok"',
    );
    expect(actions(m)!.elements[0].text.text).toBe('Approve: post #o⟨U+200B⟩ps');
  });

  it('sends what requesters and agents control only as plain text (no mention, link or markup is live)', () => {
    const m = approvalRequestMessage({
      ...input,
      approval: {
        ...approval,
        resource: '<!channel> <https://evil.example|click here> & more',
        reason: 'a\u0000b\u202ec <@U999>',
        agent_id: '<!here>',
      },
    });
    for (const b of m.blocks as any[]) {
      if (b.type === 'section') expect(b.text.type).toBe('plain_text');
    }
    expect((m.blocks[1] as any).text.text).toContain('Reason: a⟨U+0000⟩b⟨U+202E⟩c <@U999>');
    // The notification text is mrkdwn: escaped.
    expect(m.text).not.toMatch(/<!channel>|<https:/);
  });

  it('with more than Slack can show, says "and N more" and offers no one-click Approve, only the console', () => {
    const params: Record<string, unknown> = {};
    for (let i = 0; i < 400; i += 1) params[`p${String(i).padStart(3, '0')}`] = 'x'.repeat(400);
    const m = approvalRequestMessage({ ...input, approval: { ...approval, params } });
    assertWithinLimits(m);
    expect(m.blocks.length).toBe(BLOCK_KIT_LIMITS.blocks);
    expect(texts(m.blocks)).toMatch(/… and \d+ more \(\d+ of 408 shown\)/);
    const ids = actions(m)!.elements.map((e: { action_id: string }) => e.action_id);
    expect(ids).toEqual(['oc_deny', 'oc_open']);
    expect(actions(m)!.elements[1]).toMatchObject({
      text: { text: 'Review in the console' },
      url: input.consoleUrl,
    });
  });

  it('shows a param longer than a section whole, across sections, and still offers Approve', () => {
    const m = approvalRequestMessage({
      ...input,
      approval: { ...approval, params: { text: 'y'.repeat(7000) } },
    });
    assertWithinLimits(m);
    const viewText = (m.blocks as any[])
      .filter((b) => String(b.block_id).startsWith('oc_view'))
      .map((b) => b.text.text as string)
      .join('');
    expect(viewText.split('y').length - 1).toBe(7000);
    expect(actions(m)!.elements[0].action_id).toBe('oc_approve');
  });

  it('with slack_view: target shows the act and target and a link: no params, no one-click Approve', () => {
    const m = approvalRequestMessage({
      ...input,
      slackView: 'target',
      approval: { ...approval, params: { issue: 'OPS-42', secret_note: 'do not send to Slack' } },
    });
    expect(texts(m.blocks)).not.toContain('do not send to Slack');
    expect((m.blocks[1] as any).text.text).toContain('Target: OPS-42');
    expect((m.blocks[1] as any).text.text).toContain(
      '2 params, the risk and the reason are not sent to Slack',
    );
    expect(actions(m)!.elements.map((e: { action_id: string }) => e.action_id)).toEqual([
      'oc_deny',
      'oc_open',
    ]);
  });

  it('stays within every Block Kit limit with very long inputs', () => {
    const long = '<&>'.repeat(5000) + 'x'.repeat(70_000);
    const m = approvalRequestMessage({
      approval: { ...approval, resource: long, reason: long, agent_id: long, user_id: long },
      consoleUrl: `https://oc.example/console/approvals/${approval.id}?${'q'.repeat(5000)}`,
    });
    assertWithinLimits(m);
    // An Open URL Slack cannot carry is left out rather than sent broken (W26).
    expect(actions(m)!.elements.map((e: { action_id: string }) => e.action_id)).not.toContain('oc_open');
    expect(mrkdwnText('&&&&', 10)).toBe('&amp;…');
  });
});

describe('the message once decided or expired', () => {
  it('says who approved (a Slack approver as a mention), keeps the details, removes the buttons', () => {
    const m = approvalOutcomeMessage(input, { status: 'approved', decidedBy: 'slack:U123' });
    expect(m.blocks.map((b) => b.type)).toEqual(['header', 'section', 'context']);
    expect((m.blocks[0] as any).text.text).toBe('Approved: jira.issue.delete');
    expect((m.blocks[2] as any).elements[0].text).toBe(':white_check_mark: Approved by <@U123>');
    expect((m.blocks[2] as any).elements[1].text).toBe(`<${input.consoleUrl}|Open in the console>`);
    assertWithinLimits(m);
  });

  it('says who denied and why, escaped; and that it expired', () => {
    const denied = approvalOutcomeMessage(input, {
      status: 'denied',
      decidedBy: 'carol@acme.example',
      denyReason: 'not in <!channel> freeze',
    });
    expect((denied.blocks[2] as any).elements[0].text).toBe(
      ':no_entry: Denied by carol@acme.example: not in &lt;!channel&gt; freeze',
    );
    const expired = approvalOutcomeMessage(input, { status: 'expired' });
    expect((expired.blocks[0] as any).text.text).toBe('Expired: jira.issue.delete');
    expect(texts(expired.blocks)).toContain('Expired without a decision');
    expect(actions(expired)).toBeUndefined();
    const revoked = approvalOutcomeMessage(input, {
      status: 'revoked_by_policy',
      decidedBy: 'alice@acme.example',
      reason: 'deletes are <!here> frozen',
    });
    expect((revoked.blocks[0] as any).text.text).toBe('Revoked: jira.issue.delete');
    expect(texts(revoked.blocks)).toContain('live policy refused it (deletes are &lt;!here&gt; frozen)');
    expect(actions(revoked)).toBeUndefined();
    const withdrawn = approvalOutcomeMessage(input, {
      status: 'withdrawn',
      withdrawnBy: 'agent:<!here> (key_1)',
    });
    expect((withdrawn.blocks[0] as any).text.text).toBe('Withdrawn: jira.issue.delete');
    expect(texts(withdrawn.blocks)).toContain('Withdrawn by the agent (agent:&lt;!here&gt; (key_1))');
    expect(actions(withdrawn)).toBeUndefined();
    // A decided_by that pretends to be a Slack id with markup is text, not a mention.
    expect(
      approvalOutcomeMessage(input, { status: 'approved', decidedBy: 'slack:<!here>' }).blocks[2],
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
    // Withdrawn is the agent's doing, not an approver's (as the console says it); found by
    // scripts/approval-transcripts.ts: it read "already withdrawn by key_1e65193bdb95bdb1".
    expect(lateClickText({ kind: 'decided', status: 'withdrawn', decidedBy: 'key_1e65193bdb95bdb1' })).toBe(
      'The agent withdrew this request (key_1e65193bdb95bdb1) before anyone decided: the tool call will not run.',
    );
  });
});

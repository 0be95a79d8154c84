/**
 * The Slack approval message (SPEC §5, reference §11.1, W25, W26), pure: the Block Kit message
 * the Slack route posts, the same message once decided or expired (what `chat.update` and the
 * clicked message's `response_url` replace it with: buttons removed), the ephemeral answers to a
 * late click, and the button values.
 *
 * Everything a requester or agent controls (resource, reason, agent, requester) is mrkdwn-escaped
 * (`& < >`), stripped of control characters and cut to Slack's limits, and sent with `verbatim`
 * so Slack does not turn it into links or mentions: no `<!channel>`, no spoofed `<url|label>`.
 * The summary arrives already sanitized (the summarizer's job); it is still cut to size and its
 * `<` `>` escaped, which is a no-op on escaped text.
 */
import { SLACK } from '../shared/constants.js';

/** Slack's Block Kit limits (api.slack.com/reference/block-kit), the ones this message touches. */
export const BLOCK_KIT_LIMITS = {
  blocks: 50,
  headerText: 150,
  sectionText: 3000,
  sectionFields: 10,
  fieldText: 2000,
  contextElements: 10,
  contextText: 3000,
  buttonText: 75,
  buttonValue: 2000,
  buttonUrl: 3000,
  actionId: 255,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  /** chat.postMessage `text`: Slack truncates beyond 40,000; notifications read the first few hundred. */
  messageText: 3000,
} as const;

/** What the message shows of an approval (the stored request's fields). */
export interface ApprovalMessageApproval {
  id: string;
  event_id: string;
  tenant_id: string;
  tool: string;
  action: string;
  resource: string;
  risk_score: number;
  reason: string;
  agent_id: string;
  user_id: string;
  expires_at: string;
}

export interface ApprovalMessageInput {
  approval: ApprovalMessageApproval;
  /** The console's page for this approval (`approval.url`). */
  consoleUrl: string;
  /** The deterministic, sanitized summary (SPEC §5), computed by the summarizer. */
  summary: string;
}

export type ApprovalOutcome =
  | { status: 'approved'; decidedBy: string; comment?: string }
  | { status: 'denied'; decidedBy: string; denyReason?: string }
  | { status: 'expired' };

export interface SlackMessage {
  text: string;
  blocks: Block[];
}

export type TextObject = { type: 'plain_text'; text: string; emoji?: boolean } | Mrkdwn;
type Mrkdwn = { type: 'mrkdwn'; text: string; verbatim?: boolean };
export type Block = Record<string, unknown> & { type: string };

/** The button value: `{d, r, e, t}` (in that order) as base64url JSON with `=` padding, as the original. */
export interface ButtonValue {
  d: 'approve' | 'deny';
  r: string;
  e: string;
  t: string;
}

export function encodeButtonValue(v: ButtonValue): string {
  const json = JSON.stringify({ d: v.d, r: v.r, e: v.e, t: v.t });
  const b64 = Buffer.from(json, 'utf8').toString('base64url');
  return b64 + '='.repeat((4 - (b64.length % 4)) % 4);
}

// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g;
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/**
 * `raw` as mrkdwn text of at most `max` characters: controls stripped, `& < >` escaped, cut with
 * an ellipsis between escapes (never inside `&amp;`), on code-point boundaries.
 */
export function mrkdwnText(raw: string, max: number, escape: RegExp = /[&<>]/): string {
  const clean = raw.replace(CONTROLS, '');
  const out: string[] = [];
  let length = 0;
  const points = [...clean];
  for (const [i, ch] of points.entries()) {
    const piece = escape.test(ch) ? (ESCAPES[ch] ?? ch) : ch;
    const room = i === points.length - 1 ? max : max - 1; // keep one for the ellipsis
    if (length + piece.length > room) {
      out.push('…');
      return out.join('');
    }
    out.push(piece);
    length += piece.length;
  }
  return out.join('');
}

/** Plain text (no markup at all) of at most `max` characters. */
export function plainText(raw: string, max: number): string {
  const points = [...raw.replace(CONTROLS, '').replace(/[\r\n\t]+/g, ' ')];
  return points.length <= max ? points.join('') : `${points.slice(0, max - 1).join('')}…`;
}

/** A Slack date token: shown in the reader's time zone, with the ISO time as the fallback. */
export function slackDate(iso: string): string {
  const seconds = Math.floor(Date.parse(iso) / 1000);
  if (!Number.isFinite(seconds)) return mrkdwnText(iso, 64);
  return `<!date^${seconds}^{date_short_pretty} at {time}|${new Date(seconds * 1000).toISOString()}>`;
}

const field = (label: string, value: string): Mrkdwn => ({
  type: 'mrkdwn',
  // The label is ours; the value is the escaped user text, cut to what the field has left.
  text: `*${label}*\n${mrkdwnText(value || '—', BLOCK_KIT_LIMITS.fieldText - label.length - 3)}`,
  verbatim: true,
});

/** Who decided, as Slack shows it: a Slack approver as a mention of their user id, anyone else as text. */
export function approverName(decidedBy: string): string {
  const slack = /^slack:([UW][A-Z0-9]{1,20})$/.exec(decidedBy);
  return slack ? `<@${slack[1]}>` : mrkdwnText(decidedBy, 256);
}

function headerBlock(a: ApprovalMessageApproval, prefix: string): Block {
  return {
    type: 'header',
    text: {
      type: 'plain_text',
      text: plainText(`${prefix}: ${a.tool}.${a.action}`, BLOCK_KIT_LIMITS.headerText),
    },
  };
}

function detailBlocks(input: ApprovalMessageInput): Block[] {
  const a = input.approval;
  return [
    {
      type: 'section',
      block_id: 'oc_summary',
      text: {
        type: 'mrkdwn',
        text: mrkdwnText(input.summary || `${a.tool}.${a.action}`, BLOCK_KIT_LIMITS.sectionText, /[<>]/),
        verbatim: true,
      },
    },
    {
      type: 'section',
      block_id: 'oc_details',
      fields: [
        field('Action', `${a.tool}.${a.action}`),
        field('Resource', a.resource),
        field('Risk', `${a.risk_score} / 10`),
        field('Reason', a.reason),
        field('Agent', a.agent_id),
        field('Requester', a.user_id),
      ],
    },
  ];
}

/** The Open link's URL, if it is one Slack can carry (an http(s) URL within the limit). */
function openUrl(url: string): string | undefined {
  try {
    const u = new URL(url);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.href.length <= BLOCK_KIT_LIMITS.buttonUrl
      ? u.href
      : undefined;
  } catch {
    return undefined;
  }
}

function fallbackText(prefix: string, a: ApprovalMessageApproval): string {
  return mrkdwnText(
    `${prefix}: ${a.tool}.${a.action}${a.resource ? ` on ${a.resource}` : ''} (risk ${a.risk_score})`,
    BLOCK_KIT_LIMITS.messageText,
  );
}

/** The message asking for a decision, with Approve, Deny (confirmed) and Open. */
export function approvalRequestMessage(input: ApprovalMessageInput): SlackMessage {
  const a = input.approval;
  const value = (d: ButtonValue['d']) => encodeButtonValue({ d, r: a.id, e: a.event_id, t: a.tenant_id });
  const url = openUrl(input.consoleUrl);
  return {
    text: fallbackText('Approval needed', a),
    blocks: [
      headerBlock(a, 'Approval needed'),
      ...detailBlocks(input),
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `Expires ${slackDate(a.expires_at)}` }],
      },
      {
        type: 'actions',
        block_id: 'oc_decision',
        elements: [
          {
            type: 'button',
            action_id: SLACK.approveActionId,
            text: { type: 'plain_text', text: 'Approve' },
            style: 'primary',
            value: value('approve'),
          },
          {
            type: 'button',
            action_id: SLACK.denyActionId,
            text: { type: 'plain_text', text: 'Deny' },
            style: 'danger',
            value: value('deny'),
            confirm: {
              title: { type: 'plain_text', text: 'Deny this tool call?' },
              text: {
                type: 'plain_text',
                text: plainText(`${a.tool}.${a.action} will not run. The agent is told it was denied.`, 300),
              },
              confirm: { type: 'plain_text', text: 'Deny' },
              deny: { type: 'plain_text', text: 'Cancel' },
              style: 'danger',
            },
          },
          ...(url
            ? [
                {
                  type: 'button',
                  action_id: SLACK.openActionId,
                  text: { type: 'plain_text', text: 'Open' },
                  url,
                },
              ]
            : []),
        ],
      },
    ],
  };
}

/** One line saying how it ended, as mrkdwn. */
export function outcomeLine(outcome: ApprovalOutcome): string {
  if (outcome.status === 'approved')
    return `:white_check_mark: Approved by ${approverName(outcome.decidedBy)}${outcome.comment ? `: ${mrkdwnText(outcome.comment, 1000)}` : ''}`;
  if (outcome.status === 'denied')
    return `:no_entry: Denied by ${approverName(outcome.decidedBy)}${outcome.denyReason ? `: ${mrkdwnText(outcome.denyReason, 1000)}` : ''}`;
  return ':hourglass: Expired without a decision; the tool call will not run.';
}

/** The message once decided or expired (chat.update / response_url): the same details, no buttons. */
export function approvalOutcomeMessage(input: ApprovalMessageInput, outcome: ApprovalOutcome): SlackMessage {
  const a = input.approval;
  const prefix =
    outcome.status === 'approved' ? 'Approved' : outcome.status === 'denied' ? 'Denied' : 'Expired';
  const url = openUrl(input.consoleUrl);
  return {
    text: fallbackText(prefix, a),
    blocks: [
      headerBlock(a, prefix),
      ...detailBlocks(input),
      {
        type: 'context',
        elements: [
          { type: 'mrkdwn', text: outcomeLine(outcome) },
          ...(url ? [{ type: 'mrkdwn', text: `<${url}|Open in the console>` }] : []),
        ],
      },
    ],
  };
}

/** The ephemeral answer to a click that decided nothing, in words. */
export function lateClickText(
  reason:
    | { kind: 'decided'; status: string; decidedBy?: string }
    | { kind: 'expired'; expiresAt?: string }
    | { kind: 'not_allowed' }
    | { kind: 'self_approval' }
    | { kind: 'not_found' }
    | { kind: 'unavailable' },
): string {
  switch (reason.kind) {
    case 'decided':
      return `This approval was already ${mrkdwnText(reason.status, 20)}${reason.decidedBy ? ` by ${approverName(reason.decidedBy)}` : ''}.`;
    case 'expired':
      return `This approval expired${reason.expiresAt ? ` ${slackDate(reason.expiresAt)}` : ''}; the tool call will not run.`;
    case 'not_allowed':
      return 'You are not an approver for this tenant: your decision was not recorded.';
    case 'self_approval':
      return 'You requested this tool call, so someone else must decide it (separation of duties).';
    case 'not_found':
      return 'This approval no longer exists.';
    case 'unavailable':
      return 'Your decision could not be recorded right now; try again in a moment.';
  }
}

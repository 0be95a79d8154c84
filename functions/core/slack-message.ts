/**
 * The Slack approval message (SPEC §5, reference §11.1, W25, W26), pure: the Block Kit message
 * the Slack route posts, the same message once decided or expired (what `chat.update` and the
 * clicked message's `response_url` replace it with: buttons removed), the ephemeral answers to a
 * late click, and the button values.
 *
 * The message renders the approval view (`core/approval-view.ts`) and builds no text of its own:
 * target and every param, each invisible character shown as `⟨U+202E⟩`, in `plain_text` sections
 * that Slack interprets not at all (no mrkdwn, links, mentions or emoji codes). A message that
 * cannot show the whole view (Slack's 3,000 characters a section and 50 blocks, or the tenant's
 * `slack_view: target`) says how much it left out and has no one-click Approve: a button opens the
 * console instead. Approve's value carries the view's hash, which the decision checks.
 */
import { SLACK } from '../shared/constants.js';
import {
  actLabel,
  APPROVAL_VIEW_VERSION,
  buildApprovalView,
  headline,
  viewHash,
  viewLines,
  type ApprovalViewData,
  type ApprovalViewSource,
} from './approval-view.js';

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

/** What the message shows of an approval: the stored request's fields, and its view stamp. */
export interface ApprovalMessageApproval extends ApprovalViewSource {
  id: string;
  event_id: string;
  tenant_id: string;
  /** The stored view's version and hash; absent on a legacy approval (rendered with the current version). */
  view_version?: string;
  view_hash?: string;
}

/** `full`: the whole view; `target`: the act and target only, params stay out of Slack (a third party). */
export type SlackView = 'full' | 'target';

export interface ApprovalMessageInput {
  approval: ApprovalMessageApproval;
  /** The console's page for this approval (`approval.url`). */
  consoleUrl: string;
  /** The tenant's `slack_view`; `full` when absent. */
  slackView?: SlackView;
  /**
   * A quorum approval's votes so far (issue 21): who has voted and what is still needed, shown
   * under the request while it stays open for the next approver.
   */
  progress?: { summary: string; voters: string[] };
  /** A line under the deadline on a still pending request: its reminder, or who extended it. */
  note?: string;
  /** What else the tenant's policy data lets an approver do from this message (issue 21). */
  offers?: SlackOffers;
}

/**
 * The workflows a pending request's message offers besides Approve and Deny (issue 21), each
 * only where the tenant's policy data allows it (`core/slack-workflows.ts` works them out):
 * Extend by `extend_sec`, and "Approve + calls like it" with the standing grant's default scope.
 */
export interface SlackOffers {
  extend_sec?: number;
  standing_grant?: { target_pattern: string; max_uses: number; expires_in_sec: number };
}

/** A standing grant as a decided message shows it (its id, scope, uses and expiry). */
export interface StandingGrantNote {
  id: string;
  agent_id: string;
  tool: string;
  action: string;
  target_pattern: string;
  max_uses: number;
  expires_at: string;
}

export type ApprovalOutcome =
  | { status: 'approved'; decidedBy: string; comment?: string; standingGrant?: StandingGrantNote }
  | { status: 'denied'; decidedBy: string; denyReason?: string }
  | { status: 'expired' }
  | { status: 'revoked_by_policy'; decidedBy: string; reason: string }
  | { status: 'withdrawn'; withdrawnBy: string };

export interface SlackMessage {
  text: string;
  blocks: Block[];
}

export type TextObject = { type: 'plain_text'; text: string; emoji?: boolean } | Mrkdwn;
type Mrkdwn = { type: 'mrkdwn'; text: string; verbatim?: boolean };
export type Block = Record<string, unknown> & { type: string };

/** The button value: `{d, r, e, t}` (in that order) as base64url JSON with `=` padding, as the original. */
export interface ButtonValue {
  /** Approve, Deny, or (issue 21) Extend and Approve + calls like it (`grant`). */
  d: 'approve' | 'deny' | 'extend' | 'grant';
  r: string;
  e: string;
  t: string;
  /**
   * The hash of the view the message showed: an Approve (or Approve + calls like it) click is
   * accepted only with it; Extend carries it too, so a stale message moves no deadline.
   */
  h?: string;
}

export function encodeButtonValue(v: ButtonValue): string {
  const json = JSON.stringify({ d: v.d, r: v.r, e: v.e, t: v.t, ...(v.h ? { h: v.h } : {}) });
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

/** Who decided, as Slack shows it: a Slack approver as a mention of their user id, anyone else as text. */
export function approverName(decidedBy: string): string {
  const slack = /^slack:([UW][A-Z0-9]{1,20})$/.exec(decidedBy);
  return slack ? `<@${slack[1]}>` : mrkdwnText(decidedBy, 256);
}

function headerBlock(view: ApprovalViewData, prefix: string): Block {
  return {
    type: 'header',
    text: {
      type: 'plain_text',
      text: plainText(`${prefix}: ${view.tool}.${view.action}`, BLOCK_KIT_LIMITS.headerText),
    },
  };
}

/** A section of plain text: Slack interprets none of it (no mrkdwn, no emoji codes, no links). */
const plainSection = (text: string, blockId?: string): Block => ({
  type: 'section',
  ...(blockId ? { block_id: blockId } : {}),
  text: { type: 'plain_text', text, emoji: false },
});

/** The view's lines packed into sections of at most `max` characters, a long line split across them. */
export function packLines(lines: string[], max: number = BLOCK_KIT_LIMITS.sectionText): string[][] {
  const pieces: string[] = [];
  for (const line of lines) {
    const points = [...line];
    if (line.length <= max) {
      pieces.push(line);
      continue;
    }
    // A line longer than a section (a long param value) continues in the next one, whole.
    let piece = '';
    for (const ch of points) {
      if (piece.length + ch.length > max) {
        pieces.push(piece);
        piece = '';
      }
      piece += ch;
    }
    if (piece) pieces.push(piece);
  }
  const sections: string[][] = [];
  let current: string[] = [];
  let length = 0;
  for (const piece of pieces) {
    const added = (current.length ? 1 : 0) + piece.length;
    if (current.length && length + added > max) {
      sections.push(current);
      current = [];
      length = 0;
    }
    length += (current.length ? 1 : 0) + piece.length;
    current.push(piece);
  }
  if (current.length) sections.push(current);
  return sections;
}

/** The blocks a message has besides its view: header, expiry or outcome context, actions. */
const FRAME_BLOCKS = 3;

/**
 * The view as Slack sections, and whether they show all of it. `full`: every line, unless the
 * sections would pass Slack's 50 blocks, when what does not fit is counted ("and N more lines").
 * `target`: the act and the target only; the params are counted, not sent.
 */
export function viewBlocks(
  view: ApprovalViewData,
  mode: SlackView,
): { blocks: Block[]; complete: boolean; omitted: number } {
  const lines = viewLines(view);
  if (mode === 'target') {
    const shown = [`Action: ${view.tool}.${view.action}`, `Target: ${view.target || '(none)'}`];
    const omitted = view.params.length;
    const note = `${omitted} param${omitted === 1 ? '' : 's'}, the risk and the reason are not sent to Slack (slack_view: target): review them in the console.`;
    return {
      blocks: packLines([...shown, note]).map((s, i) => plainSection(s.join('\n'), `oc_view_${i}`)),
      complete: false,
      omitted: lines.length - shown.length,
    };
  }
  const sections = packLines(lines);
  const room = BLOCK_KIT_LIMITS.blocks - FRAME_BLOCKS;
  if (sections.length <= room)
    return {
      blocks: sections.map((s, i) => plainSection(s.join('\n'), `oc_view_${i}`)),
      complete: true,
      omitted: 0,
    };
  const kept = sections.slice(0, room - 1);
  const shownLines = kept.reduce((n, s) => n + s.length, 0);
  const omitted = sections.slice(room - 1).reduce((n, s) => n + s.length, 0);
  return {
    blocks: [
      ...kept.map((s, i) => plainSection(s.join('\n'), `oc_view_${i}`)),
      plainSection(
        `… and ${omitted} more (${shownLines} of ${shownLines + omitted} shown): the whole request is in the console, decide there.`,
        'oc_view_more',
      ),
    ],
    complete: false,
    omitted,
  };
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

function fallbackText(prefix: string, view: ApprovalViewData): string {
  return mrkdwnText(
    `${prefix}: ${headline(view)} (risk ${view.risk.effective})`,
    BLOCK_KIT_LIMITS.messageText,
  );
}

/**
 * The note under a moved deadline (the outbox's update and the Extend click's answer say the
 * same): who moved it, and the deadline it had. The new one is the message's "Expires".
 */
export function extensionNote(x: { by?: string; from?: string } | undefined): string {
  return `Deadline extended by ${x?.by ?? 'an approver'}${x?.from ? ` (it was ${x.from})` : ''}`;
}

/** A policy-bounded span in words: `1 hour`, `90 min`, `2 days`, `45 s`. */
export function durationText(sec: number): string {
  const unit = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;
  if (sec % 86_400 === 0) return unit(sec / 86_400, 'day');
  if (sec % 3_600 === 0) return unit(sec / 3_600, 'hour');
  if (sec % 60 === 0) return `${sec / 60} min`;
  return `${sec} s`;
}

/** The approval's view, in its recorded version (the current one for a legacy approval), and its hash. */
export function messageView(a: ApprovalMessageApproval): { view: ApprovalViewData; hash: string } {
  const view = buildApprovalView(a, a.view_version ?? APPROVAL_VIEW_VERSION);
  return { view, hash: a.view_hash ?? viewHash(view) };
}

/**
 * The message asking for a decision. When it shows the whole view: Approve (named after the act,
 * its value carrying the view's hash), Deny (confirmed) and Open. When it cannot (Slack's limits,
 * or `slack_view: target`): no one-click Approve; its place is a button to the console.
 */
export function approvalRequestMessage(input: ApprovalMessageInput): SlackMessage {
  const a = input.approval;
  const { view, hash } = messageView(a);
  const shown = viewBlocks(view, input.slackView ?? 'full');
  const value = (d: ButtonValue['d']) =>
    encodeButtonValue({ d, r: a.id, e: a.event_id, t: a.tenant_id, ...(d !== 'deny' ? { h: hash } : {}) });
  const url = openUrl(input.consoleUrl);
  const oneClick = shown.complete && value('approve').length <= BLOCK_KIT_LIMITS.buttonValue;
  const approve = {
    type: 'button',
    action_id: SLACK.approveActionId,
    text: { type: 'plain_text', text: plainText(`Approve: ${actLabel(view)}`, BLOCK_KIT_LIMITS.buttonText) },
    style: 'primary',
    value: value('approve'),
  };
  // "This and calls like it" approves this call too: only where a one-click Approve is shown.
  const scope = oneClick ? input.offers?.standing_grant : undefined;
  const grant = scope
    ? [
        {
          type: 'button',
          action_id: SLACK.grantActionId,
          text: { type: 'plain_text', text: 'Approve + calls like it' },
          value: value('grant'),
          confirm: {
            title: { type: 'plain_text', text: 'Approve calls like it?' },
            text: {
              type: 'plain_text',
              text: plainText(
                `Approves this call, and for ${durationText(scope.expires_in_sec)} up to ${scope.max_uses} more calls by ${a.agent_id} of ${view.tool}.${view.action} on ${scope.target_pattern} run without asking (policy still checks each). Revoke any time: oc grants revoke.`,
                BLOCK_KIT_LIMITS.confirmText,
              ),
            },
            confirm: { type: 'plain_text', text: 'Approve and grant' },
            deny: { type: 'plain_text', text: 'Cancel' },
          },
        },
      ]
    : [];
  const extendSec = input.offers?.extend_sec;
  const extend =
    extendSec !== undefined
      ? [
          {
            type: 'button',
            action_id: SLACK.extendActionId,
            text: { type: 'plain_text', text: plainText(`Extend by ${durationText(extendSec)}`, 75) },
            value: value('extend'),
          },
        ]
      : [];
  const review = url
    ? [
        {
          type: 'button',
          action_id: SLACK.openActionId,
          text: { type: 'plain_text', text: oneClick ? 'Open' : 'Review in the console' },
          ...(oneClick ? {} : { style: 'primary' }),
          url,
        },
      ]
    : [];
  return {
    text: fallbackText('Approval needed', view),
    blocks: [
      headerBlock(view, 'Approval needed'),
      ...shown.blocks,
      ...(input.progress
        ? [
            {
              type: 'context',
              elements: [
                {
                  type: 'mrkdwn',
                  text: mrkdwnText(
                    `:ballot_box_with_check: ${input.progress.summary}${
                      input.progress.voters.length > 0
                        ? `. Voted: ${input.progress.voters.map(approverName).join(', ')}`
                        : ''
                    }`,
                    BLOCK_KIT_LIMITS.sectionText,
                  ),
                },
              ],
            },
          ]
        : []),
      {
        type: 'context',
        elements: [
          { type: 'mrkdwn', text: `Expires ${slackDate(a.expires_at)}` },
          ...(input.note ? [{ type: 'mrkdwn', text: mrkdwnText(input.note, 300) }] : []),
        ],
      },
      {
        type: 'actions',
        block_id: 'oc_decision',
        elements: [
          ...(oneClick ? [approve] : []),
          ...grant,
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
                text: plainText(`${headline(view)} will not run. The agent is told it was denied.`, 300),
              },
              confirm: { type: 'plain_text', text: 'Deny' },
              deny: { type: 'plain_text', text: 'Cancel' },
              style: 'danger',
            },
          },
          ...extend,
          ...review,
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
  if (outcome.status === 'revoked_by_policy')
    return `:no_entry_sign: Approved by ${approverName(outcome.decidedBy)}, then revoked: the policy changed and the live policy refused it (${mrkdwnText(outcome.reason, 1000)}). The tool call will not run.`;
  if (outcome.status === 'withdrawn')
    return `:leftwards_arrow_with_hook: Withdrawn by the agent (${mrkdwnText(outcome.withdrawnBy, 256)}) before anyone decided; the tool call will not run.`;
  return ':hourglass: Expired without a decision; the tool call will not run.';
}

/** The standing grant an approval created: its id, scope, uses and expiry, and how to take it back. */
export function standingGrantBlock(g: StandingGrantNote, tenantId: string): Block {
  // Inside inline code, so a backtick in a target cannot end it.
  const code = (raw: string, max: number) => mrkdwnText(raw.replace(/`/g, "'"), max);
  return {
    type: 'section',
    block_id: 'oc_standing_grant',
    text: {
      type: 'mrkdwn',
      text: [
        `:repeat: *Standing grant* \`${code(g.id, 64)}\``,
        `Calls by \`${code(g.agent_id, 128)}\` of \`${code(`${g.tool}.${g.action}`, 130)}\` on \`${code(g.target_pattern, 1024)}\`: up to ${g.max_uses} uses, until ${slackDate(g.expires_at)}. Each is still checked by policy.`,
        `Revoke: \`npx oc grants revoke ${code(g.id, 64)} --tenant ${code(tenantId, 64)}\` (or the console's Standing grants page).`,
      ].join('\n'),
    },
  };
}

/** The message once decided or expired (chat.update / response_url): the same details, no buttons. */
export function approvalOutcomeMessage(input: ApprovalMessageInput, outcome: ApprovalOutcome): SlackMessage {
  const { view } = messageView(input.approval);
  const prefix =
    outcome.status === 'approved'
      ? 'Approved'
      : outcome.status === 'denied'
        ? 'Denied'
        : outcome.status === 'revoked_by_policy'
          ? 'Revoked'
          : outcome.status === 'withdrawn'
            ? 'Withdrawn'
            : 'Expired';
  const url = openUrl(input.consoleUrl);
  return {
    text: fallbackText(prefix, view),
    blocks: [
      headerBlock(view, prefix),
      ...viewBlocks(view, input.slackView ?? 'full').blocks,
      ...(outcome.status === 'approved' && outcome.standingGrant
        ? [standingGrantBlock(outcome.standingGrant, input.approval.tenant_id)]
        : []),
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
    /** A listed approver outside the quorum's current stage: the server's words say which. */
    | { kind: 'not_in_stage'; why: string }
    | { kind: 'self_approval' }
    | { kind: 'not_found' }
    | { kind: 'unavailable' },
): string {
  switch (reason.kind) {
    case 'decided':
      if (reason.status === 'withdrawn')
        return `The agent withdrew this request${reason.decidedBy ? ` (${mrkdwnText(reason.decidedBy, 100)})` : ''} before anyone decided: the tool call will not run.`;
      return `This approval was already ${mrkdwnText(reason.status, 20)}${reason.decidedBy ? ` by ${approverName(reason.decidedBy)}` : ''}.`;
    case 'expired':
      return `This approval expired${reason.expiresAt ? ` ${slackDate(reason.expiresAt)}` : ''}; the tool call will not run.`;
    case 'not_allowed':
      return 'You are not an approver for this tenant: your decision was not recorded.';
    case 'not_in_stage':
      return `Your vote was not recorded: ${mrkdwnText(reason.why, 300)}.`;
    case 'self_approval':
      return 'You requested this tool call, so someone else must decide it (separation of duties).';
    case 'not_found':
      return 'This approval no longer exists.';
    case 'unavailable':
      return 'Your decision could not be recorded right now; try again in a moment.';
  }
}

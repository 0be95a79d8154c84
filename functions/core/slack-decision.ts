/**
 * A click on Approve or Deny in Slack, decided through the same use case as the API (`decide`):
 * the tenant's `slack_user_ids` allowlist, separation of duties (the requester against the Slack
 * user id and, when known, their Slack email), expiry, and one decision however many clicks race.
 * The approver is recorded as `slack:<user id>`.
 *
 * Primary course:
 * 0. The click must come from the tenant's Slack workspace (else 403, nothing read or written).
 * 1. Read the approval of the button's tenant; it must exist and belong to the button's event.
 * 2. Claim the request's signature (a replay stops here, before anything is decided).
 * 3. Decide (`decide`): the conditional write lets exactly one racing click win.
 * 4. Answer the clicker: the winner's message is replaced with the outcome (buttons gone); any
 *    other click is told ephemerally who decided, that it expired, or why it may not decide.
 */
import { AppError, badRequest, unauthorized } from '../shared/errors.js';
import { decide, type ApprovalDeps, type ApprovalView, type Approver } from './approvals.js';
import { checkWorkspace, type SlackClick } from './slack-interaction.js';
import {
  approvalOutcomeMessage,
  lateClickText,
  mrkdwnText,
  type ApprovalMessageApproval,
} from './slack-message.js';

export type SlackOutcome =
  'approved' | 'denied' | 'already_decided' | 'expired' | 'not_allowed' | 'self_approval' | 'not_found';

export interface SlackDecisionResult {
  outcome: SlackOutcome;
  /** What to post to the click's `response_url`. */
  response: Record<string, unknown>;
}

export interface SlackDecisionDeps extends ApprovalDeps {
  /** The console page of an approval (`approval.url`). */
  consoleUrl(approvalId: string): string;
  /** The message summary (the summarizer's, SPEC §5). */
  summary(approval: ApprovalMessageApproval): string;
}

const ephemeral = (text: string) => ({ response_type: 'ephemeral', replace_original: false, text });

/** The summary when no summarizer is wired: the request's own fields, escaped. */
export function plainSummary(a: ApprovalMessageApproval): string {
  return mrkdwnText(
    `${a.tool}.${a.action}${a.resource ? ` on ${a.resource}` : ''} (risk ${a.risk_score}): ${a.reason}`,
    1000,
  );
}

export async function decideFromSlack(
  deps: SlackDecisionDeps,
  click: SlackClick,
  request: {
    /** Remembers the request's signature; false if it was seen before (a replay). */
    claim: () => Promise<boolean>;
    /** The clicker's Slack email (live mode), for separation of duties. */
    email?: () => Promise<string | undefined>;
  },
): Promise<SlackDecisionResult> {
  checkWorkspace(deps.tenant(click.tenantId)?.slack, click);
  const stored = await deps.approvals.get(click.tenantId, click.approvalId);
  if (stored && stored.record.event_id !== click.eventId)
    throw badRequest('interaction event mismatch', [
      { path: 'actions.0.value', message: 'the approval belongs to another event' },
    ]);
  // Claimed before deciding: a replay inside the window is refused, even one racing the original.
  if (!(await request.claim()))
    throw unauthorized('replayed slack request (this signature was already used)');
  const approver: Approver = {
    sub: click.user.id,
    email: (await request.email?.()) ?? '',
    tenantId: click.tenantId,
    via: 'slack',
  };
  if (!stored) return { outcome: 'not_found', response: ephemeral(lateClickText({ kind: 'not_found' })) };

  let view: ApprovalView;
  try {
    view = await decide(
      deps,
      approver,
      click.approvalId,
      click.decision === 'approve'
        ? { decision: 'approve' }
        : { decision: 'deny', reason: 'denied from Slack' },
    );
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    const detail = (path: string) => error.options.details?.find((d) => d.path === path)?.message;
    switch (error.code) {
      case 'APPROVAL_ALREADY_DECIDED':
        return {
          outcome: 'already_decided',
          response: ephemeral(
            lateClickText({
              kind: 'decided',
              status: detail('status') ?? 'decided',
              ...(detail('decided_by') ? { decidedBy: detail('decided_by') } : {}),
            }),
          ),
        };
      case 'APPROVAL_EXPIRED':
        return {
          outcome: 'expired',
          response: ephemeral(lateClickText({ kind: 'expired', expiresAt: stored.record.expires_at })),
        };
      case 'APPROVER_NOT_ALLOWED':
        return { outcome: 'not_allowed', response: ephemeral(lateClickText({ kind: 'not_allowed' })) };
      case 'SELF_APPROVAL':
        return { outcome: 'self_approval', response: ephemeral(lateClickText({ kind: 'self_approval' })) };
      case 'NOT_FOUND':
        return { outcome: 'not_found', response: ephemeral(lateClickText({ kind: 'not_found' })) };
      default:
        throw error;
    }
  }

  const message = approvalOutcomeMessage(
    { approval: view, consoleUrl: deps.consoleUrl(view.id), summary: deps.summary(view) },
    view.status === 'approved'
      ? { status: 'approved', decidedBy: view.decided_by ?? approver.sub }
      : {
          status: 'denied',
          decidedBy: view.decided_by ?? approver.sub,
          ...(view.deny_reason ? { denyReason: view.deny_reason } : {}),
        },
  );
  return {
    outcome: view.status === 'approved' ? 'approved' : 'denied',
    response: { replace_original: true, text: message.text, blocks: message.blocks },
  };
}

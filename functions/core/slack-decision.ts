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
import {
  decide,
  type ApprovalDeps,
  type ApprovalView,
  type Approver,
  type StoredApproval,
} from './approvals.js';
import { checkWorkspace, type SlackClick } from './slack-interaction.js';
import type { ApprovalRecord } from './ports.js';
import { slackOffers } from './slack-offers.js';
import {
  approvalOutcomeMessage,
  approvalRequestMessage,
  lateClickText,
  type ApprovalMessageApproval,
  type SlackView,
} from './slack-message.js';

export type SlackOutcome =
  | 'approved'
  | 'denied'
  | 'already_decided'
  | 'expired'
  | 'not_allowed'
  | 'self_approval'
  | 'not_found'
  | 'needs_console'
  | 'voted'
  | 'already_voted'
  // Issue 21's workflow buttons (core/slack-workflows.ts): the deadline moved, a standing grant
  // was made, or policy refused the workflow (not allowed, past its bound), the reason ephemeral.
  | 'extended'
  | 'granted'
  | 'refused';

export interface SlackDecisionResult {
  outcome: SlackOutcome;
  /** What to post to the click's `response_url`. */
  response: Record<string, unknown>;
}

export interface SlackDecisionDeps extends ApprovalDeps {
  /** The console page of an approval (`approval.url`). */
  consoleUrl(approvalId: string): string;
}

export const ephemeral = (text: string) => ({ response_type: 'ephemeral', replace_original: false, text });

/** What the Slack message renders of a stored approval: its request and its recorded view. */
export function messageApproval(r: ApprovalRecord): ApprovalMessageApproval {
  return {
    id: r.id,
    event_id: r.event_id,
    tenant_id: r.tenant_id,
    tool: r.tool,
    action: r.action,
    resource: r.resource,
    params: r.params,
    risk_score: r.risk_score,
    ...(r.risk ? { risk: r.risk } : {}),
    reason: r.reason,
    agent_id: r.agent_id,
    user_id: r.user_id,
    expires_at: r.expires_at,
    ...(r.view && 'hash' in r.view ? { view_version: r.view.version, view_hash: r.view.hash } : {}),
    ...(r.upstream_claims ? { upstream_claims: r.upstream_claims } : {}),
  };
}

/** The `slack_view` the approval's Slack route was posted with. */
export function slackViewOf(r: ApprovalRecord): SlackView {
  for (const route of r.notify ?? []) if (route.kind === 'slack' && route.view) return route.view;
  return 'full';
}

/** "Review it in the console": the answer to a click that may not decide in one click. */
export const needsConsole = (url: string, why: string) =>
  ephemeral(`${why} Review the whole request and decide in the console: ${url}`);

export interface SlackRequest {
  /** Remembers the request's signature; false if it was seen before (a replay). */
  claim: () => Promise<boolean>;
  /** The clicker's Slack email (live mode), for separation of duties. */
  email?: () => Promise<string | undefined>;
}

/**
 * What every click does before it acts (steps 0 to 2 above), shared by Approve/Deny and issue
 * 21's workflow buttons: the workspace wall, the button's approval (of the button's event), the
 * replay claim, and the clicker as an approver of the button's tenant.
 */
export async function openClick(
  deps: ApprovalDeps,
  click: Omit<SlackClick, 'decision'>,
  request: SlackRequest,
): Promise<{ stored: StoredApproval | undefined; approver: Approver }> {
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
    // The directory names a Slack user with its workspace (issue 21).
    ...(click.workspace.teamId ? { teamId: click.workspace.teamId } : {}),
  };
  return { stored, approver };
}

export const notFoundAnswer = (): SlackDecisionResult => ({
  outcome: 'not_found',
  response: ephemeral(lateClickText({ kind: 'not_found' })),
});

/**
 * The ephemeral answer to a click the approvals core refused for a reason every surface shares
 * (decided, expired, not an approver, separation of duties, gone, voted already), or undefined.
 */
export function sharedRefusal(error: AppError, stored: StoredApproval): SlackDecisionResult | undefined {
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
      return {
        outcome: 'not_allowed',
        response: ephemeral(
          lateClickText(
            detail('stage') ? { kind: 'not_in_stage', why: error.message } : { kind: 'not_allowed' },
          ),
        ),
      };
    case 'SELF_APPROVAL':
      return { outcome: 'self_approval', response: ephemeral(lateClickText({ kind: 'self_approval' })) };
    case 'NOT_FOUND':
      return notFoundAnswer();
    case 'ALREADY_VOTED':
      return {
        outcome: 'already_voted',
        response: ephemeral(
          'You have already voted on this approval (from Slack or the console): someone else must cast the next vote.',
        ),
      };
    default:
      return undefined;
  }
}

export async function decideFromSlack(
  deps: SlackDecisionDeps,
  click: SlackClick,
  request: SlackRequest,
): Promise<SlackDecisionResult> {
  const { stored, approver } = await openClick(deps, click, request);
  if (!stored) return notFoundAnswer();
  let view: ApprovalView;
  try {
    view = await decide(
      deps,
      approver,
      click.approvalId,
      // One-click approval only from a message that showed the whole view: its Approve carries
      // the view's hash. A message that could not (Slack's limits, `slack_view: target`, or one
      // posted before views) has no such button, and a click without the hash approves nothing.
      click.decision === 'approve'
        ? { decision: 'approve', oneClick: true, ...(click.viewHash ? { view_hash: click.viewHash } : {}) }
        : { decision: 'deny', reason: 'denied from Slack', oneClick: true },
    );
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    const shared = sharedRefusal(error, stored);
    if (shared) return shared;
    switch (error.code) {
      case 'CONFLICT':
        return {
          outcome: 'needs_console',
          response: needsConsole(
            deps.consoleUrl(stored.record.id),
            click.viewHash === undefined
              ? 'This message does not show the whole request, so it cannot approve it.'
              : 'This message shows another view than the approval has, so it cannot approve it.',
          ),
        };
      default:
        throw error;
    }
  }

  if (view.status === 'pending' && view.quorum) {
    // A quorum vote that did not complete it: the request stays open for the next approver.
    const request = approvalRequestMessage({
      approval: messageApproval(stored.record),
      consoleUrl: deps.consoleUrl(view.id),
      slackView: slackViewOf(stored.record),
      offers: slackOffers(deps.tenant(click.tenantId), stored.record),
      progress: {
        summary: view.quorum.summary,
        voters: view.quorum.stages.flatMap((s) => s.votes.map((v) => v.approver)),
      },
    });
    return {
      outcome: 'voted',
      response: { replace_original: true, text: request.text, blocks: request.blocks },
    };
  }
  const message = approvalOutcomeMessage(
    {
      approval: messageApproval(stored.record),
      consoleUrl: deps.consoleUrl(view.id),
      slackView: slackViewOf(stored.record),
    },
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

/**
 * Issue 21's workflows from Slack: a click on **Extend** or on **Approve + calls like it** of a
 * pending request's message, each through the same use case as its API route (`extendApproval`,
 * `createStandingGrant`), so each is bounded, recorded and announced exactly as there.
 *
 * Primary course (both):
 * 0-2. As an Approve click (`openClick`): the tenant's workspace, the button's approval of the
 *      button's event, the replay claim, the clicker as an approver (directory id, tenant wall).
 * 3.   Extend: `extendApproval` with the step the message offered, cut to what the bound still
 *      leaves (`extendStep`), and the view hash the message carried. Grant: `createStandingGrant`
 *      with the policy's default scope (`defaultGrantScope`), recomputed now from policy data,
 *      never taken from the button, and the view hash (a grant also approves this call).
 * 4.   Answer the clicker: the clicked message is replaced with the one approval view again, with
 *      its new deadline and who moved it (still pending, its buttons kept), or with "Approved by"
 *      and the standing grant (id, scope, uses, expiry, how to revoke it). A refusal (not allowed,
 *      past the bound, a quorum the grant needs) is an ephemeral answer with the reason, and
 *      nothing is written but the replay claim.
 */
import { AppError } from '../shared/errors.js';
import { requireListedApprover, type ApprovalView } from './approvals.js';
import { createStandingGrant, type GrantDeps, type StandingGrantView } from './grants.js';
import { extendApproval, type DeadlineDeps } from './reminders.js';
import {
  ephemeral,
  messageApproval,
  needsConsole,
  notFoundAnswer,
  openClick,
  sharedRefusal,
  slackViewOf,
  type SlackDecisionDeps,
  type SlackDecisionResult,
  type SlackRequest,
} from './slack-decision.js';
import type { SlackWorkflowClick } from './slack-interaction.js';
import { approvalOutcomeMessage, approvalRequestMessage, extensionNote } from './slack-message.js';
import { defaultGrantScope, extendStep, slackOffers } from './slack-offers.js';
import type { StoredApproval } from './approvals.js';

export interface SlackWorkflowDeps extends SlackDecisionDeps, DeadlineDeps, GrantDeps {}

/** The reason a workflow was refused for, in words: the core's message and its first detail. */
function refusal(error: AppError, deps: SlackDecisionDeps, stored: StoredApproval): SlackDecisionResult {
  const detail = error.options.details?.[0]?.message;
  if (error.code === 'CONFLICT' && error.options.details?.some((d) => d.path === 'view_hash'))
    return {
      outcome: 'needs_console',
      response: needsConsole(
        deps.consoleUrl(stored.record.id),
        'This message shows another view than the approval has (it was edited), so it cannot act on it.',
      ),
    };
  return {
    outcome: 'refused',
    response: ephemeral(`Not done: ${error.message}${detail ? ` (${detail})` : ''}. Nothing was changed.`),
  };
}

const refused = (error: unknown, deps: SlackDecisionDeps, stored: StoredApproval): SlackDecisionResult => {
  // Storage and other failures are not the clicker's: the handler answers them (fail closed).
  if (!(error instanceof AppError) || error.status >= 500) throw error;
  return sharedRefusal(error, stored) ?? refusal(error, deps, stored);
};

/** A click on Extend: the deadline moves by one step within policy's bound, recorded and announced. */
export async function extendFromSlack(
  deps: SlackWorkflowDeps,
  click: SlackWorkflowClick,
  request: SlackRequest,
): Promise<SlackDecisionResult> {
  const { stored, approver } = await openClick(deps, click, request);
  if (!stored) return notFoundAnswer();
  const tenant = deps.tenant(click.tenantId);
  let view: ApprovalView;
  try {
    view = await extendApproval(deps, approver, click.approvalId, {
      extend_sec: extendStep(tenant, stored),
      ...(click.viewHash ? { view_hash: click.viewHash } : {}),
    });
  } catch (error) {
    return refused(error, deps, stored);
  }
  const moved = view.extensions?.at(-1);
  const message = approvalRequestMessage({
    approval: messageApproval({ ...stored.record, expires_at: view.expires_at }),
    consoleUrl: deps.consoleUrl(view.id),
    slackView: slackViewOf(stored.record),
    offers: slackOffers(tenant, stored.record),
    ...(view.quorum
      ? {
          progress: {
            summary: view.quorum.summary,
            voters: view.quorum.stages.flatMap((s) => s.votes.map((v) => v.approver)),
          },
        }
      : {}),
    ...(moved ? { note: extensionNote(moved) } : {}),
  });
  return {
    outcome: 'extended',
    response: { replace_original: true, text: message.text, blocks: message.blocks },
  };
}

/**
 * A click on Approve + calls like it: this call approved and a standing grant with the policy's
 * default scope, in the one transaction `createStandingGrant` writes. The scope is worked out now
 * from policy data; where policy offers none (the action is not listed, or it needs a quorum),
 * the core function is still the judge, and its refusal is the answer.
 */
export async function grantFromSlack(
  deps: SlackWorkflowDeps,
  click: SlackWorkflowClick,
  request: SlackRequest,
): Promise<SlackDecisionResult> {
  const { stored, approver } = await openClick(deps, click, request);
  if (!stored) return notFoundAnswer();
  // As Approve: one click acts only from a message that showed the whole view (its hash); who
  // may not decide at all is told that first, as the core's decision would.
  if (click.viewHash === undefined) {
    try {
      requireListedApprover(deps, approver);
    } catch (error) {
      return refused(error, deps, stored);
    }
    return {
      outcome: 'needs_console',
      response: needsConsole(
        deps.consoleUrl(stored.record.id),
        'This message does not show the whole request, so it cannot approve it.',
      ),
    };
  }
  // A quorum is not checked here: the core decides whether one approver's grant is enough.
  const scope = defaultGrantScope(deps.tenant(click.tenantId), stored.record);
  if (!scope)
    return {
      outcome: 'refused',
      response: ephemeral(
        "Not done: this tenant's policy data offers no standing grant for this call from Slack. Nothing was changed.",
      ),
    };
  let created: { approval: ApprovalView; standing_grant?: StandingGrantView };
  try {
    created = await createStandingGrant(deps, approver, click.approvalId, {
      ...scope,
      view_hash: click.viewHash,
    });
  } catch (error) {
    return refused(error, deps, stored);
  }
  const g = created.standing_grant;
  if (created.approval.status === 'pending' && created.approval.quorum) {
    // A vote toward a quorum's grant: the request stays open, with who has voted and what is
    // still needed, as an Approve vote's answer.
    const quorum = created.approval.quorum;
    const request = approvalRequestMessage({
      approval: messageApproval(stored.record),
      consoleUrl: deps.consoleUrl(stored.record.id),
      slackView: slackViewOf(stored.record),
      offers: slackOffers(deps.tenant(click.tenantId), stored.record),
      progress: {
        summary: quorum.summary,
        voters: quorum.stages.flatMap((s) => s.votes.map((v) => v.approver)),
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
      consoleUrl: deps.consoleUrl(stored.record.id),
      slackView: slackViewOf(stored.record),
    },
    {
      status: 'approved',
      decidedBy: created.approval.decided_by ?? `slack:${approver.sub}`,
      // A quorum in which some vote did not ask for the grant approves this call once, no grant.
      ...(g
        ? {
            standingGrant: {
              id: g.id,
              agent_id: g.agent_id,
              tool: g.tool,
              action: g.action,
              target_pattern: g.target_pattern,
              max_uses: g.max_uses,
              expires_at: g.expires_at,
            },
          }
        : {}),
    },
  );
  return {
    outcome: g ? 'granted' : 'approved',
    response: { replace_original: true, text: message.text, blocks: message.blocks },
  };
}

/**
 * What a pending request's Slack message offers besides Approve and Deny (issue 21), pure: worked
 * out from the tenant's policy data, the same data the API's routes enforce, so a button is shown
 * only where its route would accept it.
 *
 * - **Extend** by one step: an hour, or the tenant's whole `extensions.max_sec` if that is less.
 *   At the click the step is cut to what the bound still leaves (so the last move reaches it);
 *   `planExtension` (core/reminders.ts) checks the bound, the count and the approver, as for the API.
 * - **Approve + calls like it**: a standing grant with the default scope, the safest one policy
 *   allows: this agent, tool and action on this exact canonical target, the policy's `max_uses`,
 *   for an hour (or `max_ttl_sec` if less). A wider pattern is an API call with its own scope.
 *   On a call that needs a quorum the click is an approve vote asking for the grant: the grant is
 *   made only when the last stage completes and every vote asked for one (`createStandingGrant`
 *   in core/grants.ts), the narrowest scope the votes asked for.
 */
import { grantsAllowedFor, patternProblem } from './grants.js';
import type { TenantConfig } from './policy.js';
import type { ApprovalRecord } from './ports.js';
import { MAX_APPROVAL_LIFE_SEC, type Extension } from './reminders.js';
import type { SlackOffers } from './slack-message.js';

/** Extend's step from Slack, the console's ("Extend by 1 hour"). */
export const SLACK_EXTEND_STEP_SEC = 3_600;
/** How long a standing grant made from Slack lasts, at most ("allow this for the next hour"). */
export const SLACK_GRANT_TTL_SEC = 3_600;

/** The call, and whether it needs a quorum (its requirement or progress, whichever is at hand). */
type OfferSource = Pick<ApprovalRecord, 'tool' | 'action' | 'resource'> & { quorum?: unknown };

/**
 * The default scope of a standing grant for this request by policy data alone, or undefined (the
 * action is not listed, or its target cannot be a pattern of its own). Whether one approver may
 * create it is the core's to say (`createStandingGrant`).
 */
export function defaultGrantScope(
  tenant: TenantConfig | undefined,
  a: OfferSource,
): SlackOffers['standing_grant'] | undefined {
  const bounds = tenant?.standing_grants;
  if (!bounds || !grantsAllowedFor(tenant, a.tool, a.action)) return undefined;
  // The exact target as the pattern: a target with a `*` of its own would be read as a prefix.
  if (a.resource.includes('*') || patternProblem(a.resource) !== undefined) return undefined;
  return {
    target_pattern: a.resource,
    max_uses: bounds.max_uses,
    expires_in_sec: Math.min(SLACK_GRANT_TTL_SEC, bounds.max_ttl_sec),
  };
}

/** What the message of this pending request offers, by the tenant's policy data. */
export function slackOffers(tenant: TenantConfig | undefined, a: OfferSource): SlackOffers {
  const extensions = tenant?.extensions;
  // On a quorum approval the click is this approver's vote asking for the grant; the grant exists
  // only if every vote asked for it (core/grants.ts `createStandingGrant`).
  const scope = defaultGrantScope(tenant, a);
  return {
    ...(extensions ? { extend_sec: Math.min(SLACK_EXTEND_STEP_SEC, extensions.max_sec) } : {}),
    ...(scope ? { standing_grant: scope } : {}),
  };
}

/**
 * The step an Extend click asks for now: the offered step, cut to what the bound still leaves.
 * With less than a minute left (or none), the full step, which `planExtension` refuses with the
 * latest deadline policy allows: the clicker is told why.
 */
export function extendStep(
  tenant: TenantConfig | undefined,
  a: { record: Pick<ApprovalRecord, 'created_at' | 'expires_at'>; extensions?: Extension[] },
): number {
  const step = Math.min(SLACK_EXTEND_STEP_SEC, tenant?.extensions?.max_sec ?? SLACK_EXTEND_STEP_SEC);
  const from = Date.parse(a.record.expires_at);
  const original = Date.parse(a.extensions?.[0]?.from ?? a.record.expires_at);
  const latest = Math.min(
    original + (tenant?.extensions?.max_sec ?? 0) * 1000,
    Date.parse(a.record.created_at) + MAX_APPROVAL_LIFE_SEC * 1000,
  );
  const room = Math.floor((latest - from) / 1000);
  return room >= 60 ? Math.min(step, room) : step;
}

/**
 * The step to offer on a pending approval's page (the console's Extend, `extend_sec` of its read),
 * or undefined where no extension could succeed: none in policy data, the count spent, or less
 * than a minute left under the bound. The step is Slack's (`extendStep`).
 */
export function extendOffer(
  tenant: TenantConfig | undefined,
  a: { record: Pick<ApprovalRecord, 'created_at' | 'expires_at'>; extensions?: Extension[] },
): number | undefined {
  const bound = tenant?.extensions;
  if (!bound || (a.extensions?.length ?? 0) >= bound.max_times) return undefined;
  const step = extendStep(tenant, a);
  const original = Date.parse(a.extensions?.[0]?.from ?? a.record.expires_at);
  const latest = Math.min(
    original + bound.max_sec * 1000,
    Date.parse(a.record.created_at) + MAX_APPROVAL_LIFE_SEC * 1000,
  );
  return latest - Date.parse(a.record.expires_at) >= 60_000 ? step : undefined;
}

/**
 * Scoped standing grants (issue 21 deliverable 6), pure rules and the use cases behind their
 * routes. An approver who approves a pending call may approve "this and calls like it": the same
 * agent, tool and action, a target pattern (the exact canonical target, or a prefix ending in one
 * trailing `*`; never a regex), a number of uses and an expiry, each bounded by the tenant's
 * policy data (`standing_grants`, which names the actions; a destructive one only with
 * `allow_destructive: true`, checked when the policy folder loads).
 *
 * A grant substitutes for the human approval only: every call that uses one is still evaluated by
 * policy first (a forbid or a risk floor still denies it; only an `approve` outcome looks for a
 * grant), is recorded with the grant's id in its `toolcall.decided` fact, and spends one use by a
 * conditional decrement in the same transaction that claims the call, whose condition is also the
 * revocation check (a strongly consistent read of the grant item at each use): a revoked, used up
 * or expired grant spends nothing and the call is parked for a human as before.
 */
import { STANDING_GRANT_STATES, type StandingGrantState } from '../shared/constants.js';
import { AppError, validationError } from '../shared/errors.js';
import {
  alreadyDecided,
  approvalExpired,
  authorizeApprover,
  effectiveStatus,
  approvalNotFound,
  approvalView,
  approverId,
  decideApproval,
  requireListedApprover,
  voteOnQuorum,
  type ApprovalDeps,
  type ApprovalView,
  type Approver,
  type DecisionOutcome,
  type StoredApproval,
} from './approvals.js';
import type { FactRecord } from './evidence.js';
import type { TenantConfig } from './policy.js';
import type { Clock, IdGenerator } from './ports.js';

export { STANDING_GRANT_STATES, type StandingGrantState };

/** A standing grant as stored. */
export interface StandingGrant {
  id: string;
  tenant_id: string;
  agent_id: string;
  tool: string;
  action: string;
  /** The canonical target, exactly, or a prefix ending in `*`. */
  target_pattern: string;
  max_uses: number;
  uses_left: number;
  expires_at: string;
  created_by: string;
  created_at: string;
  /** The approval it was created with, and that approval's event (where its facts live). */
  approval_id: string;
  event_id: string;
  /** `active` or `revoked` as stored; `exhausted` and `expired` are read from uses and time. */
  status: 'active' | 'revoked';
  revoked_by?: string;
  revoked_at?: string;
  revoke_reason?: string;
  last_used_at?: string;
  comment?: string;
}

/** What an approval and its facts say about the grant created with it. */
export type StandingGrantSummary = Pick<
  StandingGrant,
  'id' | 'agent_id' | 'tool' | 'action' | 'target_pattern' | 'max_uses' | 'expires_at'
>;

/** A grant as the API shows it: its state as of now. */
export interface StandingGrantView extends Omit<StandingGrant, 'status'> {
  status: StandingGrantState;
}

export function grantStatus(g: StandingGrant, now: Date): StandingGrantState {
  if (g.status === 'revoked') return 'revoked';
  if (g.uses_left <= 0) return 'exhausted';
  if (Date.parse(g.expires_at) <= now.getTime()) return 'expired';
  return 'active';
}

export const grantView = (g: StandingGrant, now: Date): StandingGrantView => ({
  ...g,
  status: grantStatus(g, now),
});

export const summaryOf = (g: StandingGrant): StandingGrantSummary => ({
  id: g.id,
  agent_id: g.agent_id,
  tool: g.tool,
  action: g.action,
  target_pattern: g.target_pattern,
  max_uses: g.max_uses,
  expires_at: g.expires_at,
});

// ---------------------------------------------------------------------------------------------
// Target patterns: exact, or one trailing `*` (a prefix). No other wildcard, no regex.

/** Why a pattern is refused, or undefined when it is one. */
export function patternProblem(pattern: string): string | undefined {
  if (pattern === '') return 'must not be empty (`*` alone covers every target)';
  const star = pattern.indexOf('*');
  if (star !== -1 && star !== pattern.length - 1)
    return 'only one `*`, at the end (a prefix), is allowed: no other wildcard, no regex';
  return undefined;
}

/** Does `pattern` cover this canonical target? */
export function targetMatches(pattern: string, target: string): boolean {
  return pattern.endsWith('*') ? target.startsWith(pattern.slice(0, -1)) : target === pattern;
}

/** Does this grant, as stored, cover this call now (the store's read; the write re-checks)? */
export function grantCovers(
  g: StandingGrant,
  call: { agent_id: string; tool: string; action: string; resource: string },
  now: Date,
): boolean {
  return (
    grantStatus(g, now) === 'active' &&
    g.agent_id === call.agent_id &&
    g.tool === call.tool &&
    g.action === call.action &&
    targetMatches(g.target_pattern, call.resource)
  );
}

/**
 * The grants to try for a call, best first: the most specific pattern (an exact target before any
 * prefix, a longer prefix before a shorter one), then the one that expires first.
 */
export function usableGrants(
  grants: readonly StandingGrant[],
  call: { agent_id: string; tool: string; action: string; resource: string },
  now: Date,
): StandingGrant[] {
  const specificity = (g: StandingGrant) =>
    g.target_pattern.endsWith('*') ? g.target_pattern.length - 1 : Number.MAX_SAFE_INTEGER;
  return grants
    .filter((g) => grantCovers(g, call, now))
    .sort((a, b) => specificity(b) - specificity(a) || Date.parse(a.expires_at) - Date.parse(b.expires_at));
}

/** Is the tenant's policy data open to standing grants for this action? */
export const grantsAllowedFor = (tenant: TenantConfig | undefined, tool: string, action: string): boolean =>
  tenant?.standing_grants?.actions.includes(`${tool}.${action}`) ?? false;

// ---------------------------------------------------------------------------------------------
// Creation, from a pending approval

export interface StandingGrantInput {
  target_pattern: string;
  max_uses: number;
  expires_in_sec: number;
  comment?: string;
  view_hash?: string;
}

export const grantsNotAllowed = (action: string) =>
  new AppError(
    403,
    'STANDING_GRANT_NOT_ALLOWED',
    `this tenant's policy data allows no standing grants for ${action} (tenants.json \`standing_grants\`)`,
  );

/** Checks the grant asked for against policy data and builds it (with its approval). */
export function planStandingGrant(
  a: StoredApproval,
  input: StandingGrantInput,
  decidedBy: string,
  deps: { clock: Clock; ids: IdGenerator; tenant: TenantConfig | undefined },
): StandingGrant {
  const r = a.record;
  const bounds = deps.tenant?.standing_grants;
  if (!bounds || !grantsAllowedFor(deps.tenant, r.tool, r.action))
    throw grantsNotAllowed(`${r.tool}.${r.action}`);
  const problem = patternProblem(input.target_pattern);
  if (problem)
    throw validationError(`validation: target_pattern ${problem}`, [
      { path: '/target_pattern', message: problem },
    ]);
  // "This and calls like it": the grant must cover the call it is created with.
  if (!targetMatches(input.target_pattern, r.resource))
    throw validationError('validation: target_pattern does not cover this call', [
      { path: '/target_pattern', message: `must match this call's target ${JSON.stringify(r.resource)}` },
    ]);
  if (input.max_uses > bounds.max_uses)
    throw validationError('validation: max_uses is above what policy allows', [
      { path: '/max_uses', message: `at most ${bounds.max_uses}` },
    ]);
  if (input.expires_in_sec > bounds.max_ttl_sec)
    throw validationError('validation: expires_in_sec is above what policy allows', [
      { path: '/expires_in_sec', message: `at most ${bounds.max_ttl_sec}` },
    ]);
  const now = deps.clock.now();
  return {
    id: deps.ids.uuid(),
    tenant_id: r.tenant_id,
    agent_id: r.agent_id,
    tool: r.tool,
    action: r.action,
    target_pattern: input.target_pattern,
    max_uses: input.max_uses,
    uses_left: input.max_uses,
    expires_at: new Date(now.getTime() + input.expires_in_sec * 1000).toISOString(),
    created_by: decidedBy,
    created_at: now.toISOString(),
    approval_id: r.id,
    event_id: r.event_id,
    status: 'active',
    ...(input.comment ? { comment: input.comment } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Use cases behind the routes

export interface StandingGrantsPort {
  get(tenantId: string, grantId: string): Promise<StandingGrant | undefined>;
  list(
    tenantId: string,
    limit: number,
    cursor: string | undefined,
  ): Promise<{ items: StandingGrant[]; nextCursor?: string }>;
  /** `revoked` only while `active` as stored, with its fact: false if it was revoked already. */
  revoke(
    g: StandingGrant,
    r: { by: string; at: string; reason?: string; fact: FactRecord },
  ): Promise<boolean>;
}

export interface GrantDeps extends ApprovalDeps {
  /** The approvals store's decision with a grant (one transaction: decision, grant, fact). */
  decideWithGrant(
    a: StoredApproval,
    outcome: DecisionOutcome,
    grant: StandingGrant,
    now: Date,
  ): Promise<{ ok: true } | { ok: false; current: StoredApproval | undefined }>;
  grants: StandingGrantsPort;
}

/**
 * Approve the pending call and create its standing grant. One approver (no quorum): the
 * approval's decision (single-use grant for this call, as `approve` issues), the standing grant
 * and the `approval.decided` fact naming it, in ONE transaction that holds only while the approval
 * is pending. A call parked with a quorum: "creating one needs the quorum the action needs", so this
 * is the caller's approve vote carrying the grant they ask for (checked against policy data now);
 * the vote that completes the last stage creates the grant in its own transaction, and only if
 * EVERY vote of the quorum asked for one (the intersection of what they asked: `agreedGrant` in
 * core/quorum.ts); otherwise the call is approved once, without one. The answer carries
 * `standing_grant` only once it exists.
 *
 * This is the one function every surface calls for "this and calls like it" (the API route, the
 * console, a Slack button): it picks the single-approver or the quorum path itself.
 */
export async function createStandingGrant(
  deps: GrantDeps,
  approver: Approver,
  approvalId: string,
  input: StandingGrantInput,
): Promise<{ approval: ApprovalView; standing_grant?: StandingGrantView }> {
  requireListedApprover(deps, approver);
  const a = await deps.approvals.get(approver.tenantId, approvalId);
  if (!a) throw approvalNotFound();
  const tenant = deps.tenant(approver.tenantId);
  const decision = {
    decision: 'approve' as const,
    ...(input.comment ? { comment: input.comment } : {}),
    ...(input.view_hash ? { view_hash: input.view_hash } : {}),
  };
  if (a.record.quorum) return voteForStandingGrant(deps, approver, a, input, decision);
  const outcome = decideApproval(a, decision, approver, { clock: deps.clock, ids: deps.ids, tenant });
  const grant = planStandingGrant(a, input, outcome.decidedBy, { clock: deps.clock, ids: deps.ids, tenant });
  const summary = summaryOf(grant);
  const withGrant: DecisionOutcome = { ...outcome, fact: { ...outcome.fact, standing_grant: summary } };
  const now = deps.clock.now();
  const written = await deps.decideWithGrant(a, withGrant, grant, now);
  if (!written.ok) {
    const current = written.current ?? a;
    if (current.status === 'pending' || current.status === 'expired') throw approvalExpired();
    throw alreadyDecided(current, now);
  }
  return {
    approval: approvalView(
      {
        ...a,
        status: 'approved',
        decided_by: outcome.decidedBy,
        decided_at: outcome.decidedAt,
        ...(outcome.comment ? { comment: outcome.comment } : {}),
        ...(outcome.grant ? { grant: outcome.grant } : {}),
        standing_grant: summary,
      },
      now,
    ),
    standing_grant: grantView(grant, now),
  };
}

/** A quorum approval's vote that asks for a standing grant (see `createStandingGrant`). */
async function voteForStandingGrant(
  deps: GrantDeps,
  approver: Approver,
  a: StoredApproval,
  input: StandingGrantInput,
  decision: { decision: 'approve'; comment?: string; view_hash?: string },
): Promise<{ approval: ApprovalView; standing_grant?: StandingGrantView }> {
  const now = deps.clock.now();
  if (effectiveStatus(a, now) === 'expired') throw approvalExpired();
  if (a.status !== 'pending') throw alreadyDecided(a, now);
  const tenant = deps.tenant(approver.tenantId);
  // Who may vote is checked first (a stranger learns nothing of the tenant's grant bounds).
  authorizeApprover(tenant, approver, a.record);
  // The scope asked for, within policy data's bounds, as a single approver's grant would be.
  const asked = planStandingGrant(a, input, '', { clock: deps.clock, ids: deps.ids, tenant });
  const { created, ...approval } = await voteOnQuorum(deps, approver, a, decision, {
    target_pattern: asked.target_pattern,
    max_uses: asked.max_uses,
    expires_at: asked.expires_at,
    ...(input.comment ? { comment: input.comment } : {}),
  });
  return created ? { approval, standing_grant: grantView(created, deps.clock.now()) } : { approval };
}

export const grantNotFound = () => new AppError(404, 'NOT_FOUND', 'standing grant not found');

export async function listStandingGrants(
  deps: GrantDeps,
  approver: Approver,
  query: { status?: StandingGrantState; limit: number; cursor?: string },
): Promise<{ items: StandingGrantView[]; next_cursor?: string }> {
  requireListedApprover(deps, approver);
  const now = deps.clock.now();
  const page = await deps.grants.list(approver.tenantId, query.limit, query.cursor);
  return {
    items: page.items
      .map((g) => grantView(g, now))
      .filter((g) => query.status === undefined || g.status === query.status),
    ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}),
  };
}

export async function getStandingGrant(
  deps: GrantDeps,
  approver: Approver,
  grantId: string,
): Promise<StandingGrantView> {
  // As one approval's read: someone who may not see grants learns nothing about which ids exist.
  try {
    requireListedApprover(deps, approver);
  } catch {
    throw grantNotFound();
  }
  const g = await deps.grants.get(approver.tenantId, grantId);
  if (!g) throw grantNotFound();
  return grantView(g, deps.clock.now());
}

/**
 * Revoke: effective at once (every use's conditional decrement requires `active`). Any listed
 * approver of the tenant may revoke (taking a grant back never needs a quorum). A repeat answers
 * the grant as it is.
 */
export async function revokeStandingGrant(
  deps: GrantDeps,
  approver: Approver,
  grantId: string,
  input: { reason?: string },
): Promise<StandingGrantView> {
  requireListedApprover(deps, approver);
  const g = await deps.grants.get(approver.tenantId, grantId);
  if (!g) throw grantNotFound();
  const now = deps.clock.now();
  if (g.status === 'revoked') return grantView(g, now);
  // Named as decisions name the approver: the directory id where the tenant has one (listed above).
  const by = approverId(deps.tenant(approver.tenantId), approver)!;
  const at = now.toISOString();
  const fact: FactRecord = {
    v: 1,
    tenant_id: g.tenant_id,
    kind: 'standing_grant.revoked',
    event_id: g.event_id,
    fact_id: deps.ids.uuid(),
    at,
    approval_id: g.approval_id,
    standing_grant_id: g.id,
    revoked_by: { id: by, sub: approver.sub, email: approver.email, via: approver.via },
    ...(input.reason ? { reason: input.reason } : {}),
  };
  const revoked = await deps.grants.revoke(g, {
    by,
    at,
    ...(input.reason ? { reason: input.reason } : {}),
    fact,
  });
  const current = revoked ? undefined : await deps.grants.get(approver.tenantId, grantId);
  return grantView(
    current ?? {
      ...g,
      status: 'revoked',
      revoked_by: by,
      revoked_at: at,
      ...(input.reason ? { revoke_reason: input.reason } : {}),
    },
    now,
  );
}

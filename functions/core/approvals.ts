/**
 * The approval state machine (SPEC §4), pure. An approval is pending until an allowed approver,
 * who is not the requester, approves or denies it, or until it expires. Approving issues one
 * single-use grant bound to the approval, its event and the SHA-256 of the canonical stored
 * request: nothing the approver sends can widen it (W1, W2, W3, W5, W6, W7).
 */
import { APPROVAL_FACT_KINDS, type ApprovalFactKind } from '../shared/constants.js';
import { AppError, conflict } from '../shared/errors.js';
import {
  actLabel,
  APPROVAL_VIEW_VERSION,
  buildApprovalView,
  LEGACY_VIEW,
  viewHash,
  viewLines,
  type ApprovalViewData,
} from './approval-view.js';
import { approverIdOf, inStage, isRequester } from './approver-directory.js';
import {
  alreadyVoted,
  castVote,
  quorumProgress,
  withdrawVote,
  type QuorumProgress,
  type Vote,
  type VoteGrantRequest,
  type VoteOutcome,
} from './quorum.js';
import type { FactRecord } from './evidence.js';
import type { TenantConfig } from './policy.js';
import type { ApprovalRecord, Clock, GrantEdit, IdGenerator, JsonPatchOp, StoredEvent } from './ports.js';
import type { ToolCallRequest } from './toolcall.js';
import type { Extension } from './reminders.js';
import { extendOffer } from './slack-offers.js';
import type { StandingGrant, StandingGrantSummary } from './grants.js';

export type ApprovalStatus = ApprovalRecord['status'];

export interface Grant {
  id: string;
  approval_id: string;
  event_id: string;
  tenant_id: string;
  request_hash: string;
  uses_left: 0 | 1;
  expires_at: string;
  granted_by: string;
  granted_at: string;
  /**
   * The policy version that parked the call (from the approval): execute re-checks the call under
   * the live policy when it is another one. Absent on approvals created before it was stored.
   */
  policy_version?: string;
  /** An edited approval's grant: the edited request execute runs, and the patch it reports. */
  request?: ToolCallRequest;
  edit?: GrantEdit;
}

export interface Approver {
  sub: string;
  /** A verified email, or '' (a Slack user without one, an OIDC token whose email is unverified). */
  email: string;
  tenantId: string;
  /** API approvers: the token's issuer, listed with `sub` in `approvers.subjects`. */
  issuer?: string;
  /** How the decision arrived: api (JWT), slack. */
  via: 'api' | 'slack';
  /** Slack: the workspace the click came from (a user id is unique only within it). */
  teamId?: string;
}

/** The stored approval plus its decision, as the API shows it. */
export interface ApprovalView extends Omit<
  ApprovalRecord,
  'request_hash' | 'requirements' | 'notify' | 'trace_id' | 'risk_factors' | 'view' | 'edit' | 'quorum'
> {
  /** What every surface shows of it (`oc-approval-view`), and the hash a decision may carry. */
  view: ShownView;
  decided_by?: string;
  decided_at?: string;
  comment?: string;
  deny_reason?: string;
  grant?: Pick<Grant, 'id' | 'event_id' | 'request_hash' | 'uses_left' | 'expires_at'>;
  revocation?: PolicyRevocation;
  /** Edited by an approver: the change from the agent's request, and who made it. */
  edit?: ShownEdit;
  /** One pending approval's read: the params this tenant's policy data lets an approver edit. */
  editable_params?: string[];
  /**
   * One pending approval's read: the step an Extend offers now (Slack's, `extendStep`), where the
   * tenant's policy data allows extensions: an hour, or less when the bound leaves less.
   */
  extend_sec?: number;
  /** An approval parked with a quorum (issue 21): the rule, each stage's votes, what is still needed. */
  quorum?: QuorumProgress & { rule: string };
  /** When its reminder went out (issue 21 deliverable 5). */
  reminded_at?: string;
  /** The deadline's moves, oldest first (issue 21 deliverable 5). */
  extensions?: Extension[];
  /** The standing grant its approver created with the approval (issue 21 deliverable 6). */
  standing_grant?: StandingGrantSummary;
}

/** An edit as the API shows it (the edited request itself is what `view` shows). */
export interface ShownEdit {
  patch: JsonPatchOp[];
  editors: string[];
  edited_by: string;
  edited_at: string;
  count: number;
  original_request_hash: string;
  comment?: string;
}

/** The approval view as the API gives it: the lines every surface shows, the act, the hash. */
export interface ShownView {
  /** The version the lines were rendered with. */
  version: string;
  /** What the approval carries: that version, or `legacy` (created before views: rendered now). */
  recorded: string;
  hash: string;
  /** The act in a few words, for a button: "delete PROD-42". */
  act: string;
  lines: string[];
  /** Lines left out where the answer is size-bounded (the submit response); none elsewhere. */
  omitted?: number;
}

/**
 * The approval's view and the hash a decision must name: the stored one, or for a legacy approval
 * the current version rendered from its stored request (all it can be shown).
 */
export function approvalViewOf(record: ApprovalRecord): {
  data: ApprovalViewData;
  hash: string;
  recorded: string;
} {
  const stamp = record.view;
  const version = stamp && stamp.version !== LEGACY_VIEW ? stamp.version : APPROVAL_VIEW_VERSION;
  const data = buildApprovalView(record, version);
  const hash = stamp && 'hash' in stamp ? stamp.hash : viewHash(data);
  return { data, hash, recorded: stamp?.version ?? LEGACY_VIEW };
}

/**
 * The view as the API shows it. `maxLineBytes` bounds the lines where the answer is stored (the
 * submit response is kept for replays in an item of at most 400 KB, and escapes can quadruple a
 * request's params): the lines that do not fit are counted in `omitted`, never cut silently.
 */
export function shownView(record: ApprovalRecord, maxLineBytes?: number): ShownView {
  const { data, hash, recorded } = approvalViewOf(record);
  const all = viewLines(data);
  let lines = all;
  if (maxLineBytes !== undefined) {
    let used = 0;
    const kept = all.findIndex((line) => (used += Buffer.byteLength(line, 'utf8') + 1) > maxLineBytes);
    if (kept !== -1) lines = all.slice(0, kept);
  }
  return {
    version: data.v,
    recorded,
    hash,
    act: actLabel(data),
    lines,
    ...(lines.length < all.length ? { omitted: all.length - lines.length } : {}),
  };
}

/** One fact about an approval and where it sits in the tenant's chain (`seq` once sealed). */
export interface ApprovalFact {
  kind: ApprovalFactKind;
  fact_id: string;
  at: string;
  seq?: number;
  hash?: string;
}

/** The approval with the policy version that asked for it and its facts' chain positions (one approval's read). */
export interface ApprovalDetail extends ApprovalView {
  policy_version?: string;
  facts?: ApprovalFact[];
}

/**
 * The facts of this approval, in the order written: the decision that asked for it
 * (`toolcall.decided`), what humans or the sweep did with it (`approval.decided|expired`) and the
 * execution that spent its grant (`execution.started`): the registry's APPROVAL_FACT_KINDS, the
 * contract's `ApprovalFact.kind`, and nothing else, whatever later kinds name the approval.
 */
const isApprovalFactKind = (kind: string): kind is ApprovalFactKind =>
  (APPROVAL_FACT_KINDS as readonly string[]).includes(kind);

export function approvalDetail(view: ApprovalView, event: StoredEvent | undefined): ApprovalDetail {
  if (!event) return view;
  const facts = event.facts
    .filter(
      (f) =>
        isApprovalFactKind(f.kind) && (f.kind === 'toolcall.decided' || f.record.approval_id === view.id),
    )
    .map((f) => ({
      kind: f.kind as ApprovalFactKind,
      fact_id: f.fact_id,
      at: f.record.at,
      ...(f.seq === undefined ? {} : { seq: f.seq, hash: f.hash }),
    }));
  return { ...view, policy_version: event.policy_version, facts };
}

export interface StoredApproval {
  record: ApprovalRecord;
  status: ApprovalStatus;
  decided_by?: string;
  decided_at?: string;
  comment?: string;
  deny_reason?: string;
  grant?: Grant;
  /** Why a `revoked_by_policy` approval was revoked at execute. */
  revocation?: PolicyRevocation;
  /** A quorum's approve votes so far, and their revision (each vote or withdrawal adds one). */
  votes?: Vote[];
  vote_rev?: number;
  /** When its reminder is due (the sparse reminder item's time), and when it went out. */
  remind_at?: string;
  reminded_at?: string;
  /** The deadline's moves, oldest first. */
  extensions?: Extension[];
  /**
   * The latest notice on a still pending approval (`reminder` or `extended`) and how many there
   * were: the outbox announces it, and the count keeps each notice's delivery id its own.
   */
  notice?: 'reminder' | 'extended' | 'vote';
  notices?: number;
  /** The standing grant created with the approval. */
  standing_grant?: StandingGrantSummary;
}

/**
 * An approved call the live policy refused at execute (`core/execute.ts`): the version it was
 * approved under, the live one, and what the live policy decided (`deny`, or any outcome when the
 * tenant requires re-approval after a policy change).
 */
export interface PolicyRevocation {
  at: string;
  approved_under: string;
  policy_version: string;
  decision: 'allow' | 'approve' | 'deny';
  reason: string;
  reapproval_required?: true;
}

/** Expiry is enforced on read: a pending approval past its expiry reads `expired`. */
export function effectiveStatus(a: StoredApproval, now: Date): ApprovalStatus {
  return a.status === 'pending' && Date.parse(a.record.expires_at) <= now.getTime() ? 'expired' : a.status;
}

export function approvalView(a: StoredApproval, now: Date): ApprovalView {
  const {
    request_hash: _h,
    requirements: _r,
    notify: _n,
    trace_id: _t,
    risk_factors: _f,
    view: _v,
    edit,
    quorum: _q,
    // Shown in the view's lines (issue 25), not as a field of the API's approval.
    upstream_claims: _u,
    ...shown
  } = a.record;
  return {
    ...shown,
    view: shownView(a.record),
    ...(edit
      ? {
          edit: {
            patch: edit.patch,
            editors: edit.editors,
            edited_by: edit.edited_by,
            edited_at: edit.edited_at,
            count: edit.count,
            original_request_hash: edit.original_request_hash,
            ...(edit.comment ? { comment: edit.comment } : {}),
          },
        }
      : {}),
    status: effectiveStatus(a, now),
    ...(a.record.quorum
      ? { quorum: { rule: a.record.quorum.rule, ...quorumProgress(a.record, a.votes ?? [], a.status) } }
      : {}),
    ...(a.decided_by ? { decided_by: a.decided_by } : {}),
    ...(a.decided_at ? { decided_at: a.decided_at } : {}),
    ...(a.comment ? { comment: a.comment } : {}),
    ...(a.deny_reason ? { deny_reason: a.deny_reason } : {}),
    ...(a.revocation ? { revocation: a.revocation } : {}),
    ...(a.reminded_at ? { reminded_at: a.reminded_at } : {}),
    ...(a.extensions?.length ? { extensions: a.extensions } : {}),
    ...(a.standing_grant ? { standing_grant: a.standing_grant } : {}),
    ...(a.grant
      ? {
          grant: {
            id: a.grant.id,
            event_id: a.grant.event_id,
            request_hash: a.grant.request_hash,
            // The revocation spent the grant item; the approval keeps the grant as issued.
            uses_left: a.status === 'revoked_by_policy' ? 0 : a.grant.uses_left,
            expires_at: a.grant.expires_at,
          },
        }
      : {}),
  };
}

export const approverNotAllowed = () =>
  new AppError(403, 'APPROVER_NOT_ALLOWED', 'you are not an approver for this tenant');
export const selfApproval = () =>
  new AppError(403, 'SELF_APPROVAL', 'the requester of a tool call cannot decide its approval');
export const approvalExpired = () =>
  new AppError(410, 'APPROVAL_EXPIRED', 'the approval request has expired');
export const alreadyDecided = (a: StoredApproval, now: Date) =>
  new AppError(
    409,
    'APPROVAL_ALREADY_DECIDED',
    `the approval request is already ${effectiveStatus(a, now)}`,
    {
      details: [
        { path: 'status', message: effectiveStatus(a, now) },
        ...(a.decided_by ? [{ path: 'decided_by', message: a.decided_by }] : []),
      ],
    },
  );

/**
 * The caller's approver id: a directory id (core/approver-directory.ts), or for a tenant without a
 * directory one of its listed identities as decisions always named them (`slack:<user id>`, the
 * verified email, or `sub` for a listed OIDC subject). Undefined: not an approver of this tenant.
 */
export function approverId(tenant: TenantConfig | undefined, approver: Approver): string | undefined {
  return approverIdOf(tenant, {
    via: approver.via,
    sub: approver.sub,
    email: approver.email,
    ...(approver.issuer !== undefined ? { issuer: approver.issuer } : {}),
    ...(approver.teamId !== undefined ? { teamId: approver.teamId } : {}),
  });
}

const isListed = (tenant: TenantConfig | undefined, approver: Approver) =>
  approverId(tenant, approver) !== undefined;

/**
 * Default deny: an approver must be in the tenant's directory (or lists), and may not decide their
 * own call. The requester is compared as a human reads it (NFKC, case-folded, invisible characters
 * gone) with every identity of the approver's directory entry: alice who asked as
 * `alice@acme.example` cannot approve as her Slack user. Returns the approver's id.
 */
export function authorizeApprover(
  tenant: TenantConfig | undefined,
  approver: Approver,
  approval: ApprovalRecord,
): string {
  const id = approverId(tenant, approver);
  if (id === undefined) throw approverNotAllowed();
  // Whoever edited the call counts as a requester of the edited call (core/edit.ts).
  const requesters = [approval.user_id, ...(approval.edit?.editors ?? [])];
  if (requesters.some((r) => isRequester(tenant, id, approver, r))) throw selfApproval();
  return id;
}

/**
 * `view_hash`: the hash of the view the approver was shown (the console and Slack send it; API
 * clients should). A decision naming another view is refused: the approver saw something else.
 */
export type DecisionInput = (
  | { decision: 'approve'; comment?: string; view_hash?: string }
  | { decision: 'deny'; reason?: string; view_hash?: string }
) & {
  /** A one-click surface (a Slack button): an approval counts only with the view's hash. */
  oneClick?: boolean;
};

export const viewMismatch = (expected: string) =>
  conflict(
    "the decision names another view than this approval's: reload the approval and decide on what it shows",
    undefined,
    [{ path: 'view_hash', message: `this approval's view is sha256:${expected}` }],
  );

export interface DecisionOutcome {
  status: 'approved' | 'denied';
  decidedBy: string;
  decidedAt: string;
  comment?: string;
  denyReason?: string;
  grant?: Grant;
  fact: FactRecord;
}

/** The view a decision names must be the approval's; a one-click approval must name it. */
function checkDecisionView(a: StoredApproval, input: DecisionInput) {
  const view = approvalViewOf(a.record);
  if (input.view_hash !== undefined && input.view_hash !== view.hash) throw viewMismatch(view.hash);
  // One click approves only from a surface that showed the whole view (and so carries its hash).
  if (input.oneClick && input.decision === 'approve' && input.view_hash === undefined)
    throw conflict('a one-click approval must come from a surface that showed the whole view', undefined, [
      { path: 'view_hash', message: 'required for a one-click approval' },
    ]);
  return view;
}

/** Which view a decision (or vote) was on; `confirmed` when the approver's surface named its hash. */
const decisionViewFact = (view: ReturnType<typeof approvalViewOf>, input: DecisionInput) => ({
  version: view.recorded,
  ...(view.recorded === LEGACY_VIEW ? { rendered: view.data.v } : {}),
  hash: view.hash,
  confirmed: input.view_hash !== undefined,
});

/** Checks that the approval can be decided now and builds the decision, its grant and its fact. */
export function decideApproval(
  a: StoredApproval,
  input: DecisionInput,
  approver: Approver,
  deps: { clock: Clock; ids: IdGenerator; tenant: TenantConfig | undefined },
): DecisionOutcome {
  const now = deps.clock.now();
  if (effectiveStatus(a, now) === 'expired') throw approvalExpired();
  if (a.status !== 'pending') throw alreadyDecided(a, now);
  const id = authorizeApprover(deps.tenant, approver, a.record);
  // A deny of a quorum approval is final at once, from anyone who may vote in one of its stages.
  if (a.record.quorum && !a.record.quorum.stages.some((s) => inStage(deps.tenant, s, id)))
    throw approverNotAllowed();
  const view = checkDecisionView(a, input);

  const decidedBy = id;
  const decidedAt = now.toISOString();
  const status = input.decision === 'approve' ? 'approved' : 'denied';
  let grant: Grant | undefined;
  if (input.decision === 'approve') {
    // The grant's lifetime comes from tenant policy (capped there); nothing the approver sends changes it.
    const expiresAt = now.getTime() + (deps.tenant?.grant_ttl_sec ?? 3_600) * 1000;
    grant = {
      id: deps.ids.uuid(),
      approval_id: a.record.id,
      event_id: a.record.event_id,
      tenant_id: a.record.tenant_id,
      request_hash: a.record.request_hash,
      uses_left: 1,
      expires_at: new Date(expiresAt).toISOString(),
      granted_by: decidedBy,
      granted_at: decidedAt,
      ...(a.record.policy_version ? { policy_version: a.record.policy_version } : {}),
      // An edited approval's grant runs the edited request (bound by request_hash, its hash).
      ...(a.record.edit
        ? {
            request: a.record.edit.request,
            edit: {
              patch: a.record.edit.patch,
              edited_by: a.record.edit.edited_by,
              original_request_hash: a.record.edit.original_request_hash,
            },
          }
        : {}),
    };
  }
  const comment = input.decision === 'approve' ? input.comment : undefined;
  const denyReason = input.decision === 'deny' ? input.reason : undefined;
  return {
    status,
    decidedBy,
    decidedAt,
    ...(comment ? { comment } : {}),
    ...(denyReason ? { denyReason } : {}),
    ...(grant ? { grant } : {}),
    fact: {
      v: 1,
      tenant_id: a.record.tenant_id,
      kind: 'approval.decided',
      event_id: a.record.event_id,
      fact_id: deps.ids.uuid(),
      at: decidedAt,
      approval_id: a.record.id,
      decision: status,
      approver: { id: decidedBy, sub: approver.sub, email: approver.email, via: approver.via },
      approver_group: a.record.approver_group,
      // Which view this decision was on; `confirmed` when the approver's surface named its hash.
      view: decisionViewFact(view, input),
      ...(comment ? { comment } : {}),
      ...(denyReason ? { deny_reason: denyReason } : {}),
      ...(grant
        ? {
            grant: {
              id: grant.id,
              expires_at: grant.expires_at,
              request_hash: grant.request_hash,
              // The policy the approver approved under: execute re-checks under any other.
              ...(grant.policy_version ? { policy_version: grant.policy_version } : {}),
            },
          }
        : {}),
    },
  };
}

export function expiryFact(a: StoredApproval, deps: { clock: Clock; ids: IdGenerator }): FactRecord {
  return {
    v: 1,
    tenant_id: a.record.tenant_id,
    kind: 'approval.expired',
    event_id: a.record.event_id,
    fact_id: deps.ids.uuid(),
    at: deps.clock.now().toISOString(),
    approval_id: a.record.id,
    expired_at: a.record.expires_at,
  };
}

// ---------------------------------------------------------------------------------------------
// Use cases behind the approvals API, the Slack button and the expiry sweep.

export interface ApprovalsPort {
  get(tenantId: string, approvalId: string): Promise<StoredApproval | undefined>;
  list(
    tenantId: string,
    status: string,
    limit: number,
    cursor: string | undefined,
    now: Date,
  ): Promise<{ items: StoredApproval[]; nextCursor?: string }>;
  decide(
    a: StoredApproval,
    outcome: DecisionOutcome,
    now: Date,
  ): Promise<{ ok: true } | { ok: false; current: StoredApproval | undefined }>;
  expire(a: StoredApproval, fact: FactRecord, now: Date): Promise<boolean>;
  /**
   * A quorum vote: written only if the approval is pending, unexpired and at `outcome.rev`, and the
   * approver has no vote item yet; `voted` when they have, `changed` (with the current approval)
   * when another vote or a decision came first.
   */
  vote(
    a: StoredApproval,
    outcome: VoteOutcome,
    now: Date,
  ): Promise<{ ok: true } | { ok: false; reason: 'voted' | 'changed'; current: StoredApproval | undefined }>;
  /** Removes an approve vote (its item and its count) if the approval is still at `rev`. */
  unvote(
    a: StoredApproval,
    w: ReturnType<typeof withdrawVote>,
    now: Date,
  ): Promise<{ ok: true } | { ok: false; current: StoredApproval | undefined }>;
  overdue(tenantId: string, now: Date, limit?: number): Promise<StoredApproval[]>;
  tenants(): Promise<string[]>;
}

export interface ApprovalDeps {
  approvals: ApprovalsPort;
  tenant(tenantId: string): TenantConfig | undefined;
  knownTenants(): string[];
  clock: Clock;
  ids: IdGenerator;
}

export const approvalNotFound = () => new AppError(404, 'NOT_FOUND', 'approval request not found');

/** Reading approvals is for the tenant's approvers too (default deny). */
export function requireListedApprover(deps: ApprovalDeps, approver: Approver): void {
  if (!isListed(deps.tenant(approver.tenantId), approver)) throw approverNotAllowed();
}

export async function listApprovals(
  deps: ApprovalDeps,
  approver: Approver,
  query: { status: ApprovalStatus; limit: number; cursor?: string },
): Promise<{ items: ApprovalView[]; next_cursor?: string }> {
  requireListedApprover(deps, approver);
  const now = deps.clock.now();
  const page = await deps.approvals.list(approver.tenantId, query.status, query.limit, query.cursor, now);
  return {
    // The listing index does not carry a quorum's votes: its progress is one approval's read.
    items: page.items.map((a) => {
      const { quorum: _q, ...shown } = approvalView(a, now);
      return shown;
    }),
    ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}),
  };
}

export async function getApproval(
  deps: ApprovalDeps,
  approver: Approver,
  approvalId: string,
): Promise<ApprovalView> {
  // Someone who may not see approvals learns nothing about which ids exist: 404 for every id.
  if (!isListed(deps.tenant(approver.tenantId), approver)) throw approvalNotFound();
  const a = await deps.approvals.get(approver.tenantId, approvalId);
  if (!a) throw approvalNotFound();
  const view = approvalView(a, deps.clock.now());
  // What the console's edit form offers (core/edit.ts checks it again on every edit).
  const editable =
    view.status === 'pending'
      ? deps.tenant(approver.tenantId)?.editable_params?.[`${a.record.tool}.${a.record.action}`]
      : undefined;
  // What the console's Extend offers: the step Slack's button asks for (core/reminders.ts checks
  // the bound again on every extension), so a tenant allowing less than an hour is not offered
  // one, and nothing where no extension could succeed.
  const tenant = deps.tenant(approver.tenantId);
  const extend = view.status === 'pending' ? extendOffer(tenant, a) : undefined;
  return {
    ...view,
    ...(editable ? { editable_params: editable } : {}),
    ...(extend ? { extend_sec: extend } : {}),
  };
}

/** Approve or deny; two approvers racing get one decision and one APPROVAL_ALREADY_DECIDED. */
export async function decide(
  deps: ApprovalDeps,
  approver: Approver,
  approvalId: string,
  input: DecisionInput,
): Promise<ApprovalView> {
  // Checked before the read, so the answer is the same 403 for every id: no id oracle.
  requireListedApprover(deps, approver);
  const a = await deps.approvals.get(approver.tenantId, approvalId);
  if (!a) throw approvalNotFound();
  if (a.record.quorum && input.decision === 'approve') return voteOnQuorum(deps, approver, a, input);
  const outcome = decideApproval(a, input, approver, {
    clock: deps.clock,
    ids: deps.ids,
    tenant: deps.tenant(approver.tenantId),
  });
  const now = deps.clock.now();
  const written = await deps.approvals.decide(a, outcome, now);
  if (!written.ok) {
    const current = written.current ?? a;
    // Still pending and open: an edit changed it since it was read (core/edit.ts).
    if (current.status === 'pending' && effectiveStatus(current, now) === 'pending')
      throw viewMismatch(approvalViewOf(current.record).hash);
    if (current.status === 'pending' || current.status === 'expired') throw approvalExpired();
    throw alreadyDecided(current, now);
  }
  return approvalView(
    {
      ...a,
      status: outcome.status,
      decided_by: outcome.decidedBy,
      decided_at: outcome.decidedAt,
      ...(outcome.comment ? { comment: outcome.comment } : {}),
      ...(outcome.denyReason ? { deny_reason: outcome.denyReason } : {}),
      ...(outcome.grant ? { grant: outcome.grant } : {}),
    },
    now,
  );
}

const voteContended = () =>
  new AppError(409, 'VOTE_CONTENDED', 'too many votes at once on this approval: try again', {
    retryable: true,
  });

/** How often a vote is recomputed when another vote changed the approval first. */
const VOTE_ATTEMPTS = 8;

/**
 * An approve vote on a quorum approval (core/quorum.ts). Racing votes each read the approval and
 * write only if it is unchanged: the loser reads again and counts anew, so every vote counts once
 * and only the vote that completes the last stage issues the grant. A vote is on the view first
 * read (or the one it names): an edit committed meanwhile (core/edit.ts, which resets the votes)
 * makes it a vote on another view, refused (409 CONFLICT), never counted toward the edited call.
 * `standingGrant`: the standing grant this vote asks for (core/grants.ts, checked against policy
 * data by the caller); the quorum creates it only if every vote asks (`agreedGrant`).
 */
export async function voteOnQuorum(
  deps: ApprovalDeps,
  approver: Approver,
  first: StoredApproval,
  input: DecisionInput,
  standingGrant?: VoteGrantRequest,
): Promise<ApprovalView & { created?: StandingGrant }> {
  const tenant = deps.tenant(approver.tenantId);
  const seen = input.view_hash ?? approvalViewOf(first.record).hash;
  let a = first;
  for (let attempt = 0; attempt < VOTE_ATTEMPTS; attempt += 1) {
    const now = deps.clock.now();
    if (effectiveStatus(a, now) === 'expired') throw approvalExpired();
    if (a.status !== 'pending') throw alreadyDecided(a, now);
    // An edit can drop the quorum (policy data gives the edited call one approver): decide it so.
    if (!a.record.quorum) {
      if (approvalViewOf(a.record).hash !== seen) throw viewMismatch(approvalViewOf(a.record).hash);
      // A vote asking for a standing grant is one approver's grant now: asked again, on purpose.
      if (standingGrant) throw viewMismatch(approvalViewOf(a.record).hash);
      return decide(deps, approver, a.record.id, { ...input, view_hash: seen });
    }
    const id = authorizeApprover(tenant, approver, a.record);
    const view = checkDecisionView(a, { ...input, view_hash: seen });
    const outcome = castVote(
      a,
      { id, via: approver.via, sub: approver.sub, email: approver.email },
      {
        ...(input.decision === 'approve' && input.comment ? { comment: input.comment } : {}),
        view: decisionViewFact(view, input),
        ...(standingGrant ? { standingGrant } : {}),
      },
      {
        clock: deps.clock,
        ids: deps.ids,
        mayVote: (stage) => inStage(tenant, stage, id),
        grantTtlSec: tenant?.grant_ttl_sec ?? 3_600,
      },
    );
    const written = await deps.approvals.vote(a, outcome, now);
    if (written.ok) {
      const voted: StoredApproval = { ...a, votes: outcome.votes, vote_rev: outcome.rev + 1 };
      const standing = outcome.final?.standingSummary;
      const view = approvalView(
        outcome.final
          ? {
              ...voted,
              status: 'approved',
              decided_by: id,
              decided_at: outcome.final.decidedAt,
              ...(outcome.final.comment ? { comment: outcome.final.comment } : {}),
              grant: outcome.final.grant,
              ...(standing ? { standing_grant: standing } : {}),
            }
          : voted,
        now,
      );
      // The standing grant the quorum agreed on, as written (the caller answers it; not a field).
      return outcome.final?.standing ? Object.assign(view, { created: outcome.final.standing }) : view;
    }
    if (written.reason === 'voted') throw alreadyVoted(id);
    const current = written.current ?? (await deps.approvals.get(approver.tenantId, a.record.id));
    if (!current) throw approvalNotFound();
    a = current;
  }
  throw voteContended();
}

/** An approver takes back their approve vote while its stage is still incomplete. */
export async function withdrawMyVote(
  deps: ApprovalDeps,
  approver: Approver,
  approvalId: string,
): Promise<ApprovalView> {
  requireListedApprover(deps, approver);
  const tenant = deps.tenant(approver.tenantId);
  const id = approverId(tenant, approver)!;
  let a = await deps.approvals.get(approver.tenantId, approvalId);
  if (!a) throw approvalNotFound();
  for (let attempt = 0; attempt < VOTE_ATTEMPTS; attempt += 1) {
    const now = deps.clock.now();
    if (effectiveStatus(a, now) === 'expired') throw approvalExpired();
    if (a.status !== 'pending') throw alreadyDecided(a, now);
    const w = withdrawVote(a, id, deps);
    const written = await deps.approvals.unvote(a, w, now);
    if (written.ok) return approvalView({ ...a, votes: w.votes, vote_rev: w.rev + 1 }, now);
    const current = written.current ?? (await deps.approvals.get(approver.tenantId, approvalId));
    if (!current) throw approvalNotFound();
    a = current;
  }
  throw voteContended();
}

/** The sweep: every pending request past its expiry becomes `expired`, with an `approval.expired` fact. */
export async function expireOverdue(deps: ApprovalDeps): Promise<{ expired: number; tenants: number }> {
  const now = deps.clock.now();
  const tenants = new Set([...(await deps.approvals.tenants()), ...deps.knownTenants()]);
  let expired = 0;
  for (const tenantId of tenants) {
    for (const a of await deps.approvals.overdue(tenantId, now)) {
      if (await deps.approvals.expire(a, expiryFact(a, deps), now)) expired += 1;
    }
  }
  return { expired, tenants: tenants.size };
}

/**
 * Use case: edit-on-approve, re-judged (issue 21 deliverable 3). Where the tenant's policy data
 * lists editable params for an action (`editable_params`), an approver may change those params
 * instead of only approving or denying. Primary course:
 *  1. The approver may decide this approval alone (listed, not its requester nor an earlier
 *     editor) and names the view they were shown (`view_hash`, required: an edit is never blind).
 *  2. Only listed params change (422 naming the others; 403 EDIT_NOT_ALLOWED for an action with
 *     none); the target changes only if its param is listed.
 *  3. The edited request goes through everything a submitted one does: the request body's strict
 *     schema, the action's input schema and derived target (`targeted`), the agent's risk claim
 *     raised to the floor and Cedar with the original agent as principal (`evaluateCall`).
 *  4. deny: the edit is refused (403 EDIT_DENIED, the policy's reason), nothing is written.
 *     approve: the approval is parked again on the edited request (new view, new hash), and the
 *     editor counts as a requester: someone else must approve it.
 *     allow: the edit is the editor's approval: the grant binds to the edited request's hash.
 *  5. ONE transaction, conditional on the approval still being pending, unexpired and on the
 *     request the editor saw, writes the edited record and the `approval.edited` fact (the
 *     original request's hash, the edited request, the RFC 6902 patch, the editor, the policy's
 *     decision on it and the new view), and for allow the decision and grant as an approve does.
 * Execute then runs the grant's (edited) request and answers the patch (`core/execute.ts`).
 *
 * A quorum approval (core/quorum.ts) is edited by anyone who may vote in one of its stages. Votes
 * are bound to the view they were cast on, so the edit resets them: the write deletes their vote
 * items and moves the vote revision on (conditional on the revision read, like a vote), the fact
 * lists them (`votes_reset`), and parked again the edited call needs the quorum policy data gives
 * it, from no votes. A vote racing the edit either lands first (a completing one approves the old
 * view and the edit is refused as decided; another is reset with the rest) or fails on the
 * revision and, read again, names another view (409): never a grant on the old request after it.
 */
import jsonPatch from 'fast-json-patch';
import type { ActionSpec } from '../connectors/sdk.js';
import { AppError, validationError } from '../shared/errors.js';
import { viewStamp } from './approval-view.js';
import {
  alreadyDecided,
  approvalExpired,
  approvalViewOf,
  approvalView,
  approverNotAllowed,
  authorizeApprover,
  decideApproval,
  effectiveStatus,
  requireListedApprover,
  viewMismatch,
  type ApprovalDeps,
  type ApprovalView,
  type Approver,
  type DecisionOutcome,
  type StoredApproval,
} from './approvals.js';
import { inStage, resolveQuorum } from './approver-directory.js';
import { evaluateCall, type EvaluationDeps } from './evaluate.js';
import { canon, sha256Hex, type FactRecord } from './evidence.js';
import type { ApprovalEdit, ApprovalRecord, JsonPatchOp, StoredEvent } from './ports.js';
import { targeted } from './submit.js';
import { parseToolCallBody, type ToolCallRequest } from './toolcall.js';

/** How many times one approval may be edited: each edit is a fact, and someone must still decide. */
export const MAX_EDITS = 20;

export interface EditInput {
  /** Top-level params to set, each one listed as editable for the action. */
  params: Record<string, unknown>;
  /** The view the editor was shown (required). */
  view_hash: string;
  comment?: string;
}

export type EditWriteResult = { ok: true } | { ok: false; current: StoredApproval | undefined };

/**
 * Both writes hold only while the approval is pending, unexpired, on the request the editor read
 * and at the vote revision read (`a.vote_rev`): they reset a quorum's votes (`a.votes`, their vote
 * items gone, the revision moved on), so a vote racing the edit either lands first (and the edit
 * counts it, then resets it) or is refused as a vote on another view.
 */
export interface EditPort {
  /** The approval parked again on the edited record, with its fact. */
  park(a: StoredApproval, edited: ApprovalRecord, fact: FactRecord, now: Date): Promise<EditWriteResult>;
  /** The edited record approved at once (policy allows it): the decision, grant and both facts. */
  approve(
    a: StoredApproval,
    edited: ApprovalRecord,
    fact: FactRecord,
    outcome: DecisionOutcome,
    now: Date,
  ): Promise<EditWriteResult>;
}

export interface EditDeps extends ApprovalDeps, EvaluationDeps {
  /** The connector actions by `tool.action` (their input schema and target). */
  actions: ReadonlyMap<string, Pick<ActionSpec, 'normalize' | 'target'>>;
  events: {
    getEvent(
      tenantId: string,
      eventId: string,
      options?: { withApproval?: boolean },
    ): Promise<StoredEvent | undefined>;
  };
  edits: EditPort;
}

export const editNotAllowed = (action: string) =>
  new AppError(403, 'EDIT_NOT_ALLOWED', `this tenant's policy data lets no approver edit ${action}`);

export const editDenied = (reason: string, policyVersion: string) =>
  new AppError(403, 'EDIT_DENIED', 'policy denies the edited call: the edit is refused, nothing changed', {
    details: [
      { path: 'reason', message: reason },
      { path: 'policy_version', message: policyVersion },
    ],
  });

const approvalNotFound = () => new AppError(404, 'NOT_FOUND', 'approval request not found');

/** What the patch compares: the parts of a request an edit can change. */
const patchable = (r: ToolCallRequest) => ({ params: r.params, resource: r.resource });

/** How often an edit is recomputed when only a quorum's votes moved under it (the view did not). */
const EDIT_ATTEMPTS = 8;

/** The edit's write lost to a vote (cast or withdrawn) on the same view: edit again, from it. */
class VotesMoved {
  constructor(readonly current: StoredApproval) {}
}

export async function editApproval(
  deps: EditDeps,
  approver: Approver,
  approvalId: string,
  input: EditInput,
): Promise<ApprovalView> {
  // 1. As a decision: the same 403 for every id to someone not listed, then the approval's state.
  let a = await readDecidable(deps, approver, approvalId);
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await editOnce(deps, approver, a, input);
    } catch (error) {
      if (!(error instanceof VotesMoved)) throw error;
      if (attempt >= EDIT_ATTEMPTS)
        throw new AppError(409, 'VOTE_CONTENDED', 'too many votes at once on this approval: try again', {
          retryable: true,
        });
      a = error.current;
    }
  }
}

async function editOnce(
  deps: EditDeps,
  approver: Approver,
  a: StoredApproval,
  input: EditInput,
): Promise<ApprovalView> {
  const tenant = deps.tenant(approver.tenantId);
  const now = deps.clock.now();
  const editor = authorizeApprover(tenant, approver, a.record);
  // A quorum approval is edited by someone who may vote on it (as a deny is final from anyone who
  // may vote in one of its stages). The edit resets every vote: votes are cast on a view, and the
  // edited call is another one (see the write below).
  if (a.record.quorum && !a.record.quorum.stages.some((s) => inStage(tenant, s, editor)))
    throw approverNotAllowed();
  const shown = approvalViewOf(a.record);
  if (input.view_hash !== shown.hash) throw viewMismatch(shown.hash);
  const count = (a.record.edit?.count ?? 0) + 1;
  if (count > MAX_EDITS)
    throw validationError(`validation: an approval can be edited at most ${MAX_EDITS} times`, [
      { path: 'params', message: `edited ${MAX_EDITS} times already: approve or deny it` },
    ]);

  // 2. the allowlist
  const action = `${a.record.tool}.${a.record.action}`;
  const editable = tenant?.editable_params?.[action];
  if (!editable) throw editNotAllowed(action);
  const refused = Object.keys(input.params).filter((k) => !editable.includes(k));
  if (refused.length > 0)
    throw validationError(
      `validation: params.${refused[0]} is not editable for ${action}`,
      refused.slice(0, 20).map((k) => ({
        path: `params.${k}`,
        message: `not editable for ${action} (editable: ${editable.join(', ')})`,
      })),
    );

  // 3. the edited request, judged as a submitted one
  const event = await deps.events.getEvent(a.record.tenant_id, a.record.event_id, { withApproval: false });
  if (!event) throw new Error(`approval ${a.record.id} has no event ${a.record.event_id}`);
  const original = event.request;
  const current = a.record.edit?.request ?? original;
  const spec = deps.actions.get(action);
  const merged = {
    ...current,
    params: { ...current.params, ...input.params },
    // A derived target follows its param: the action's normalization derives it again.
    resource: spec && spec.target !== null ? '' : current.resource,
  };
  const parsed = parseToolCallBody(merged);
  if (!parsed.ok)
    throw validationError(
      `validation: ${parsed.details[0]?.path || 'the edit'} ${parsed.details[0]?.message ?? 'invalid'}`,
      parsed.details,
    );
  const body = targeted(deps, parsed.body);
  if (body.resource !== current.resource && !(spec?.target && editable.includes(spec.target)))
    throw validationError('validation: the edit changes the target, which is not editable', [
      { path: 'resource', message: `would change from ${current.resource} to ${body.resource}` },
    ]);
  const edited: ToolCallRequest = { ...current, params: body.params, resource: body.resource };
  if (sha256Hex(canon(edited)) === sha256Hex(canon(current)))
    throw validationError('validation: the edit changes nothing: approve the call as it is', [
      { path: 'params', message: 'equal to the current request' },
    ]);
  const decided = event.facts.find((f) => f.kind === 'toolcall.decided')?.record;
  const claim = (decided?.risk as { claimed?: unknown } | undefined)?.claimed;
  const claimed = typeof claim === 'number' ? claim : original.risk_score;
  const { decision, risk, request } = evaluateCall(deps, edited, claimed, now);

  // 4. what policy says of the edited call
  if (decision.decision === 'deny') throw editDenied(decision.reason, decision.policyVersion);
  const by = editor;
  const at = now.toISOString();
  const requestHash = sha256Hex(canon(request));
  const patch = jsonPatch.compare(patchable(original), patchable(request)) as JsonPatchOp[];
  const parksAgain = decision.decision === 'approve';
  const edit: ApprovalEdit = {
    request,
    patch,
    original_request_hash: sha256Hex(canon(original)),
    // Parked again: the editor counts as a requester. Allowed: the editor decides it, so is none.
    editors: [...(a.record.edit?.editors ?? []), ...(parksAgain ? [by] : [])],
    edited_by: by,
    edited_at: at,
    count,
    ...(input.comment ? { comment: input.comment } : {}),
  };
  const base: ApprovalRecord = {
    ...a.record,
    resource: request.resource,
    params: request.params,
    risk_score: request.risk_score,
    risk: { claimed: risk.claimed, floor: risk.floor, effective: risk.effective },
    reason: decision.reason,
    approver_group: decision.approverGroup,
    request_hash: requestHash,
    policy_version: decision.policyVersion,
    requirements: decision.requirements,
    notify: decision.notify,
    edit,
  };
  // Parked again, the edited call needs the quorum policy data gives it, as a submitted one would
  // (its risk may have moved a band), counted from no votes; allowed, it needs none.
  const quorum = parksAgain ? resolveQuorum(tenant, action, risk.effective) : undefined;
  delete base.quorum;
  if (quorum) base.quorum = quorum;
  // The view every surface shows from now on: the edited call's, with its own hash.
  const record: ApprovalRecord = { ...base, view: viewStamp(base) };
  const view = record.view as { version: string; hash: string };
  const fact: FactRecord = {
    v: 1,
    tenant_id: a.record.tenant_id,
    kind: 'approval.edited',
    event_id: a.record.event_id,
    fact_id: deps.ids.uuid(),
    at,
    approval_id: a.record.id,
    edit_seq: count,
    editor: { id: by, sub: approver.sub, email: approver.email, via: approver.via },
    // What the editor was shown, what they changed and what it became.
    edited_view: { version: shown.recorded, hash: shown.hash },
    original_request_hash: edit.original_request_hash,
    previous_request_hash: a.record.request_hash,
    request,
    request_hash: requestHash,
    patch,
    risk: record.risk,
    decision: decision.decision,
    reason: decision.reason,
    policy_version: decision.policyVersion,
    determining_policies: decision.determiningPolicies,
    outcome: parksAgain ? 'parked' : 'approved',
    expires_at: record.expires_at,
    view,
    ...(input.comment ? { comment: input.comment } : {}),
    // The votes cast on the view before it, which no longer count (each is its own fact).
    ...(a.votes?.length
      ? { votes_reset: a.votes.map((v) => ({ approver: v.approver, stage: v.stage, fact_id: v.fact_id })) }
      : {}),
    ...(quorum ? { quorum: { rule: quorum.rule, stages: quorum.stages } } : {}),
  };

  // 5. one conditional write
  const next: StoredApproval = { ...a, record, votes: [], vote_rev: (a.vote_rev ?? 0) + 1 };
  if (parksAgain) {
    await settle(a, await deps.edits.park(a, record, fact, now), now);
    return approvalView(next, now);
  }
  const outcome = decideApproval(
    next,
    { decision: 'approve', view_hash: view.hash, ...(input.comment ? { comment: input.comment } : {}) },
    approver,
    { clock: deps.clock, ids: deps.ids, tenant },
  );
  await settle(a, await deps.edits.approve(a, record, fact, outcome, now), now);
  return approvalView(
    {
      ...next,
      status: outcome.status,
      decided_by: outcome.decidedBy,
      decided_at: outcome.decidedAt,
      ...(outcome.comment ? { comment: outcome.comment } : {}),
      ...(outcome.grant ? { grant: outcome.grant } : {}),
    },
    now,
  );
}

/** The approval, if this approver may decide it now (the checks `decide` makes, in its order). */
async function readDecidable(deps: ApprovalDeps, approver: Approver, approvalId: string) {
  // Checked before the read: the same 403 for every id to someone not listed (no id oracle).
  requireListedApprover(deps, approver);
  const a = await deps.approvals.get(approver.tenantId, approvalId);
  if (!a) throw approvalNotFound();
  const now = deps.clock.now();
  if (effectiveStatus(a, now) === 'expired') throw approvalExpired();
  if (a.status !== 'pending') throw alreadyDecided(a, now);
  return a;
}

/** A write that lost a race answers as the state that won (or a changed view: decide again on it). */
async function settle(a: StoredApproval, written: EditWriteResult, now: Date): Promise<void> {
  if (written.ok) return;
  const current = written.current ?? a;
  if (current.status === 'pending' && effectiveStatus(current, now) === 'pending') {
    // Only a quorum's votes moved (the request is the one the editor saw): edit again from them.
    if (current.record.request_hash === a.record.request_hash && current.vote_rev !== a.vote_rev)
      throw new VotesMoved(current);
    throw viewMismatch(approvalViewOf(current.record).hash);
  }
  if (effectiveStatus(current, now) === 'expired') throw approvalExpired();
  throw alreadyDecided(current, now);
}

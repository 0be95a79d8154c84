/**
 * Use case: execute an approved tool call exactly once (SPEC §3 execute, fixes W1, W8, W9, W10).
 * Primary course:
 *  1. Load the approval-gated event with its grant and execution claim (one read). Another
 *     agent's event is missing to a key bound to an agent (core/scope.ts).
 *  2. An earlier execution answers for itself: completed -> the same body, replayed; running ->
 *     EXECUTION_IN_PROGRESS; crashed -> EXECUTION_OUTCOME_UNKNOWN (never re-run).
 *  3. Without a usable grant the approval's state answers: pending 409, denied 403 with the
 *     approver's reason, expired 410, revoked_by_policy 409 POLICY_CHANGED, withdrawn 409
 *     APPROVAL_WITHDRAWN.
 *  3b. The grant is bound to the policy that parked the call: if the live policy is another
 *     version, the stored request is evaluated again under it, at the execute time (`evaluateCall`,
 *     the same evaluation submit does). A deny, or any outcome when the tenant's policy data says
 *     `reapprove_on_policy_change`, revokes the approval instead of running it: ONE transaction
 *     spends the grant, turns the approval `revoked_by_policy` and writes the
 *     `approval.revoked_by_policy` fact; the answer is 409 POLICY_CHANGED, now and on every retry.
 *     The same version evaluates nothing.
 *  4. ONE transaction consumes the grant (bound to this event and the SHA-256 of the stored
 *     request) and claims the execution, with an `execution.started` fact naming the caller
 *     (key id and agent): whoever spent the grant is on record.
 *  5. Run the connector with the stored request, never a new one.
 *  6. Finalize: the result, the execution event and its `execution.completed` fact, in one
 *     transaction. If that fails, the claim reads `unknown` and an operator resolves it.
 */
import { quorumProgress } from './quorum.js';
import type { ConnectorInvoker, ExecutionResult } from '../connectors/types.js';
import { AppError, notFound } from '../shared/errors.js';
import { approvalExpired, effectiveStatus, type PolicyRevocation, type StoredApproval } from './approvals.js';
import { evaluateCall, type EvaluationDeps } from './evaluate.js';
import { canon, sha256Hex, type FactRecord } from './evidence.js';
import type { PolicyDecision } from './policy.js';
import { callerRecord, inScope, type CallerScope } from './scope.js';
import type { Clock, IdGenerator, StoredEvent, StoredGrant, ToolCallStore } from './ports.js';
import type { HttpResult } from './submit.js';

export interface ExecutionPort {
  claim(
    parent: StoredEvent,
    grant: StoredGrant,
    claim: { executionEventId: string; requestHash: string; fact: FactRecord; now: string },
  ): Promise<{ ok: true } | { ok: false; reason: 'grant_unusable' | 'already_claimed' }>;
  finalize(
    w: {
      parent: StoredEvent;
      executionEventId: string;
      result: ExecutionResult;
      response: string;
      fact: FactRecord;
      completedAt: string;
      resolvedBy?: string;
    },
    expectedStatuses?: Array<'running' | 'unknown'>,
  ): Promise<boolean>;
  markUnknown(tenantId: string, parentEventId: string): Promise<void>;
  /**
   * Spends the grant without running anything, turns its approval `revoked_by_policy` (from
   * `approved`) and writes the fact, in one transaction; false if the grant was spent (claimed or
   * revoked) first.
   */
  revoke(
    parent: StoredEvent,
    grant: StoredGrant,
    revocation: { revocation: PolicyRevocation; fact: FactRecord; now: string },
  ): Promise<boolean>;
}

/** The live policy, to re-check an approved call parked under another version. */
export interface ExecuteDeps extends EvaluationDeps {
  events: {
    getEvent(
      tenantId: string,
      eventId: string,
      options?: { withApproval?: boolean },
    ): Promise<StoredEvent | undefined>;
  };
  approvals: { get(tenantId: string, approvalId: string): Promise<StoredApproval | undefined> };
  executions: ExecutionPort;
  connectors: ConnectorInvoker;
  clock: Clock;
  ids: IdGenerator;
  config: { connectorTimeoutMs: number; inFlightWaitMs: number };
}

export const APPROVED_EXECUTION_REASON = 'approved execution';

/** Still pending; for a quorum (issue 21), how far its votes are ("1 of 2 approvals; needs 1 more"). */
const awaitingApproval = (approval?: StoredApproval) =>
  new AppError(409, 'AWAITING_APPROVAL', 'the approval request is still pending', {
    retryable: true,
    headers: { 'Retry-After': '5' },
    ...(approval?.record.quorum
      ? {
          details: [
            { path: 'quorum', message: quorumProgress(approval.record, approval.votes ?? []).summary },
          ],
        }
      : {}),
  });
const inProgress = () =>
  new AppError(409, 'EXECUTION_IN_PROGRESS', 'another call is executing this tool call', {
    retryable: true,
    headers: { 'Retry-After': '1' },
  });
const outcomeUnknown = (executionEventId: string) =>
  new AppError(
    409,
    'EXECUTION_OUTCOME_UNKNOWN',
    'an earlier execution was interrupted after it started; it is never re-run. An operator records its outcome with `oc executions resolve`',
    { details: [{ path: 'execution_event_id', message: executionEventId }] },
  );

export async function executeApproved(
  deps: ExecuteDeps,
  input: { caller: CallerScope; eventId: string },
): Promise<HttpResult> {
  const { caller } = input;
  const deadline = Date.now() + deps.config.inFlightWaitMs;
  for (;;) {
    // The grant and the execution claim come with the event; the approval is read only if needed.
    const parent = await deps.events.getEvent(caller.tenantId, input.eventId, { withApproval: false });
    if (!parent || parent.parent_event_id !== undefined || !inScope(parent, caller))
      throw notFound('event not found');
    if (parent.decision !== 'approve') {
      throw new AppError(
        409,
        'NOT_APPROVAL_GATED',
        `this event was decided ${parent.decision}; only approval-gated events are executed`,
      );
    }

    // 2. an earlier execution answers for itself
    const execution = parent.execution;
    if (execution) {
      if (execution.status === 'completed' && execution.response) {
        return { status: 200, body: execution.response, headers: { 'Idempotent-Replayed': 'true' } };
      }
      const stale =
        deps.clock.now().getTime() - Date.parse(execution.claimed_at) >
        deps.config.connectorTimeoutMs + 30_000;
      if (execution.status === 'unknown' || stale) throw outcomeUnknown(execution.execution_event_id);
      if (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      throw inProgress();
    }

    // 3. the approval's state, when there is no grant to use (or it was spent by a revocation)
    const now = deps.clock.now();
    const grant = parent.grant;
    if (!grant || grant.uses_left < 1) await explainMissingGrant(deps, parent, now);
    if (!grant) throw awaitingApproval();
    if (Date.parse(grant.expires_at) <= now.getTime()) throw approvalExpired();
    // An edited approval's grant runs the edited request (core/edit.ts), bound by its hash.
    const run = grant.request ?? parent.request;
    const requestHash = sha256Hex(canon(run));

    // 3b. bound to the policy that granted it
    const check = policyCheck(deps, parent, run, grant, now);
    if (check?.revocation) {
      const revoked = await deps.executions.revoke(parent, grant, {
        revocation: check.revocation,
        now: now.toISOString(),
        fact: {
          v: 1,
          tenant_id: parent.tenant_id,
          kind: 'approval.revoked_by_policy',
          event_id: parent.event_id,
          fact_id: deps.ids.uuid(),
          at: now.toISOString(),
          approval_id: grant.approval_id,
          grant_id: grant.id,
          request_hash: requestHash,
          approved_under: check.revocation.approved_under,
          policy_version: check.revocation.policy_version,
          decision: check.revocation.decision,
          reason: check.revocation.reason,
          determining_policies: check.decision.determiningPolicies,
          risk: check.risk,
          ...(check.revocation.reapproval_required ? { reapproval_required: true } : {}),
          ...callerRecord(caller),
        },
      });
      if (revoked) throw policyChanged(check.revocation);
      if (Date.now() > deadline) throw inProgress();
      continue; // another caller spent the grant first (ran it, or revoked it): answer with that
    }

    // 4. consume the grant and claim the execution, atomically
    const executionEventId = deps.ids.uuid();
    const claimed = await deps.executions.claim(parent, grant, {
      executionEventId,
      requestHash,
      now: now.toISOString(),
      fact: {
        v: 1,
        tenant_id: parent.tenant_id,
        kind: 'execution.started',
        event_id: parent.event_id,
        fact_id: deps.ids.uuid(),
        at: now.toISOString(),
        execution_event_id: executionEventId,
        grant_id: grant.id,
        approval_id: grant.approval_id,
        request_hash: requestHash,
        // Approved under another version, and the live policy still lets it run: on record.
        ...(check
          ? {
              policy_check: {
                approved_under: check.approvedUnder,
                policy_version: check.decision.policyVersion,
                decision: check.decision.decision,
                reason: check.decision.reason,
              },
            }
          : {}),
        ...callerRecord(caller),
      },
    });
    if (!claimed.ok) {
      if (Date.now() > deadline) throw inProgress();
      if (claimed.reason === 'already_claimed') continue; // another caller won: answer with its execution
      // The stored request no longer hashes to what was approved: refuse, fail closed, never run it.
      if (grant.request_hash !== requestHash)
        throw new Error(`stored request of ${parent.event_id} does not match its grant`);
      continue; // the grant was consumed or expired meanwhile: re-read and explain
    }

    // 5. run the stored request
    const result = await deps.connectors.invoke(
      {
        event_id: executionEventId,
        tenant_id: parent.tenant_id,
        agent_id: run.agent_id,
        tool: run.tool,
        action: run.action,
        params: run.params,
        resource: run.resource,
      },
      { timeoutMs: deps.config.connectorTimeoutMs },
    );

    // 6. finalize
    const body = JSON.stringify({
      event_id: executionEventId,
      parent_event_id: parent.event_id,
      decision: 'allow',
      reason: APPROVED_EXECUTION_REASON,
      result,
      // The agent learns what ran instead of what it sent: RFC 6902 from its request to the edited one.
      ...(grant.edit
        ? {
            edit: {
              approval_id: grant.approval_id,
              edited_by: grant.edit.edited_by,
              patch: grant.edit.patch,
              original_request_hash: grant.edit.original_request_hash,
              request_hash: requestHash,
            },
          }
        : {}),
    });
    const completedAt = deps.clock.now().toISOString();
    try {
      const ok = await deps.executions.finalize({
        parent,
        executionEventId,
        result,
        response: body,
        completedAt,
        fact: {
          v: 1,
          tenant_id: parent.tenant_id,
          kind: 'execution.completed',
          event_id: executionEventId,
          fact_id: deps.ids.uuid(),
          at: completedAt,
          parent_event_id: parent.event_id,
          request: run,
          decision: 'allow',
          reason: APPROVED_EXECUTION_REASON,
          result,
        },
      });
      if (!ok) throw new Error('execution claim changed under the executor');
    } catch (error) {
      await deps.executions.markUnknown(parent.tenant_id, parent.event_id).catch(() => undefined);
      throw Object.assign(
        new AppError(
          500,
          'INTERNAL_ERROR',
          'the tool ran but its result could not be recorded; the execution reads status unknown',
          {
            retryable: false,
            details: [{ path: 'execution_event_id', message: executionEventId }],
          },
        ),
        { cause: error },
      );
    }
    return { status: 200, body, headers: {} };
  }
}

async function explainMissingGrant(deps: ExecuteDeps, parent: StoredEvent, now: Date): Promise<void> {
  const approvalId = parent.approval_id;
  const approval = approvalId ? await deps.approvals.get(parent.tenant_id, approvalId) : undefined;
  if (!approval) return;
  const status = effectiveStatus(approval, now);
  if (status === 'denied') {
    throw new AppError(403, 'APPROVAL_DENIED', 'the approval request was denied', {
      details: [
        { path: 'deny_reason', message: approval.deny_reason ?? '' },
        ...(approval.decided_by ? [{ path: 'decided_by', message: approval.decided_by }] : []),
      ],
    });
  }
  if (status === 'expired') throw approvalExpired();
  if (status === 'pending') throw awaitingApproval(approval);
  if (status === 'revoked_by_policy') throw policyChanged(approval.revocation);
  if (status === 'withdrawn') throw approvalWithdrawn(approval);
}

/** 409 APPROVAL_WITHDRAWN: the agent withdrew the request; it never runs (not retryable). */
export const approvalWithdrawn = (approval: StoredApproval) =>
  new AppError(409, 'APPROVAL_WITHDRAWN', 'the approval request was withdrawn: it will not run', {
    retryable: false,
    details: [
      ...(approval.decided_by ? [{ path: 'withdrawn_by', message: approval.decided_by }] : []),
      ...(approval.decided_at ? [{ path: 'withdrawn_at', message: approval.decided_at }] : []),
    ],
  });

export const POLICY_CHANGED = 'POLICY_CHANGED';

/** 409 POLICY_CHANGED: the approval was revoked at execute; it never runs (not retryable). */
export function policyChanged(revocation: PolicyRevocation | undefined): AppError {
  const message = revocation?.reapproval_required
    ? 'the policy changed since this call was approved, and this tenant requires a new approval after a policy change: it will not run; submit it again (a new idempotency_key) to have it decided under the live policy'
    : 'the policy changed since this call was approved, and the live policy denies it: it will not run';
  return new AppError(409, POLICY_CHANGED, message, {
    retryable: false,
    details: revocation
      ? [
          { path: 'approved_under', message: revocation.approved_under },
          { path: 'policy_version', message: revocation.policy_version },
          { path: 'decision', message: revocation.decision },
          { path: 'reason', message: revocation.reason },
        ]
      : [],
  });
}

/**
 * The live policy's word on an approved call parked under another version, or undefined when the
 * versions are the same (nothing is evaluated). `revocation` is set when it must not run.
 */
function policyCheck(
  deps: ExecuteDeps,
  parent: StoredEvent,
  run: StoredEvent['request'],
  grant: StoredGrant,
  now: Date,
):
  | {
      approvedUnder: string;
      decision: PolicyDecision;
      risk: { claimed: number; floor: number; effective: number };
      revocation?: PolicyRevocation;
    }
  | undefined {
  // Grants issued before they recorded it: the event's own decision names the parking version.
  const approvedUnder = grant.policy_version ?? parent.policy_version;
  if (approvedUnder === deps.policy.version) return undefined;
  // The agent's own claim, raised to the live floor (the stored request holds the old effective score).
  const decided = parent.facts.find((f) => f.kind === 'toolcall.decided')?.record;
  const claim = (decided?.risk as { claimed?: unknown } | undefined)?.claimed;
  const claimed = typeof claim === 'number' ? claim : parent.request.risk_score;
  const { decision, risk } = evaluateCall(deps, run, claimed, now);
  const reapprove =
    decision.decision !== 'deny' && deps.policy.tenant(parent.tenant_id)?.reapprove_on_policy_change === true;
  const base = { approvedUnder, decision, risk };
  if (decision.decision !== 'deny' && !reapprove) return base;
  return {
    ...base,
    revocation: {
      at: now.toISOString(),
      approved_under: approvedUnder,
      policy_version: decision.policyVersion,
      decision: decision.decision,
      reason: decision.reason,
      ...(reapprove ? { reapproval_required: true } : {}),
    },
  };
}

/**
 * An operator records the outcome of a call whose tool may have run but whose result was never
 * recorded: an approved execution that crashed between claim and record (status unknown, or
 * running past every timeout), or an allowed call left `unknown` (its result write failed). It
 * never runs the tool; it writes what the operator found out, as the fact that was missing
 * (`execution.completed` / `toolcall.executed`), naming them. A replay of the call then answers
 * with this outcome.
 */
export async function resolveExecution(
  deps: Pick<ExecuteDeps, 'events' | 'executions' | 'clock' | 'ids' | 'config'> & {
    results: Pick<ToolCallStore, 'recordExecution'>;
  },
  input: {
    tenantId: string;
    eventId: string;
    status: 'success' | 'error';
    output?: Record<string, unknown>;
    note: string;
    operator: string;
  },
): Promise<string> {
  const parent = await deps.events.getEvent(input.tenantId, input.eventId);
  if (!parent) throw notFound('event not found');
  const result: ExecutionResult = {
    status: input.status,
    ...(input.output ? { output: input.output } : {}),
    ...(input.status === 'error' ? { error: { code: 'RESOLVED_BY_OPERATOR', message: input.note } } : {}),
    duration_ms: 0,
  };
  const now = deps.clock.now();
  const at = now.toISOString();
  const crashed = (since: string) =>
    now.getTime() - Date.parse(since) > deps.config.connectorTimeoutMs + 30_000;
  if (parent.decision === 'allow' && parent.parent_event_id === undefined) {
    if (parent.status === 'completed')
      throw new AppError(409, 'CONFLICT', 'this call already has a recorded outcome');
    if (parent.status !== 'unknown' && !(parent.status === 'executing' && crashed(parent.received_at)))
      throw new AppError(409, 'EXECUTION_IN_PROGRESS', 'the call may still be running');
    const body = JSON.stringify({
      event_id: parent.event_id,
      decision: parent.decision,
      reason: parent.reason,
      policy_version: parent.policy_version,
      result,
    });
    await deps.results.recordExecution({
      tenantId: parent.tenant_id,
      eventId: parent.event_id,
      result,
      response: body,
      fact: {
        v: 1,
        tenant_id: parent.tenant_id,
        kind: 'toolcall.executed',
        event_id: parent.event_id,
        fact_id: deps.ids.uuid(),
        at,
        result,
        resolved_by: input.operator,
        note: input.note,
      },
    });
    return body;
  }
  const execution = parent.execution;
  if (!execution) throw new AppError(409, 'CONFLICT', 'this event has no execution to resolve');
  if (execution.status === 'completed')
    throw new AppError(409, 'CONFLICT', 'this execution already has a recorded outcome');
  if (execution.status === 'running' && !crashed(execution.claimed_at))
    throw new AppError(409, 'EXECUTION_IN_PROGRESS', 'the execution may still be running');
  const body = JSON.stringify({
    event_id: execution.execution_event_id,
    parent_event_id: parent.event_id,
    decision: 'allow',
    reason: APPROVED_EXECUTION_REASON,
    result,
  });
  const ok = await deps.executions.finalize(
    {
      parent,
      executionEventId: execution.execution_event_id,
      result,
      response: body,
      completedAt: at,
      resolvedBy: input.operator,
      fact: {
        v: 1,
        tenant_id: parent.tenant_id,
        kind: 'execution.completed',
        event_id: execution.execution_event_id,
        fact_id: deps.ids.uuid(),
        at,
        parent_event_id: parent.event_id,
        request: parent.grant?.request ?? parent.request,
        decision: 'allow',
        reason: APPROVED_EXECUTION_REASON,
        result,
        resolved_by: input.operator,
        note: input.note,
      },
    },
    ['running', 'unknown'],
  );
  if (!ok) throw new AppError(409, 'CONFLICT', 'the execution changed while resolving it; look again');
  return body;
}

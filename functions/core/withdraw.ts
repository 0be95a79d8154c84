/**
 * Use case: the agent withdraws its own pending approval request (issue 21 deliverable 5; MCP
 * `tasks/cancel` maps to it). Primary course:
 *  1. Load the event in the caller's scope (another tenant's or agent's event is missing: 404).
 *  2. Only an approval-gated event has a request to withdraw (409 NOT_APPROVAL_GATED).
 *  3. ONE transaction turns the approval `withdrawn` (only while it is pending and unexpired) and
 *     writes the `approval.withdrawn` fact naming the caller. The decision's own condition
 *     (`status = pending`) then refuses every approve or deny, so no grant can exist and nothing
 *     can execute it; the stream announces `oc.approval.withdrawn`.
 *  4. A repeat answers the same body (the withdrawal is a state, not an action); any other end
 *     state answers as the decisions do: 410 expired, 409 APPROVAL_ALREADY_DECIDED.
 */
import { notFound, AppError } from '../shared/errors.js';
import { alreadyDecided, approvalExpired, effectiveStatus, type StoredApproval } from './approvals.js';
import type { FactRecord } from './evidence.js';
import type { Clock, IdGenerator, StoredEvent } from './ports.js';
import { callerRecord, inScope, type CallerScope } from './scope.js';
import type { HttpResult } from './submit.js';

export interface WithdrawDeps {
  events: { getEvent(tenantId: string, eventId: string): Promise<StoredEvent | undefined> };
  approvals: {
    get(tenantId: string, approvalId: string): Promise<StoredApproval | undefined>;
    withdraw(
      a: StoredApproval,
      w: { by: string; at: string; fact: FactRecord },
      now: Date,
    ): Promise<{ ok: true } | { ok: false; current: StoredApproval | undefined }>;
  };
  clock: Clock;
  ids: IdGenerator;
}

/** What withdraw answers (the contract's `Withdrawal`). */
export interface Withdrawal {
  event_id: string;
  approval_id: string;
  status: 'withdrawn';
  withdrawn_by: string;
  withdrawn_at: string;
}

/** Who withdrew, as the approval records it: the key, and the agent it is bound to. */
const withdrawerOf = (caller: CallerScope) =>
  caller.agentId ? `agent:${caller.agentId} (${caller.keyId})` : caller.keyId;

const answer = (w: Withdrawal, replayed: boolean): HttpResult => ({
  status: 200,
  body: JSON.stringify(w),
  headers: replayed ? { 'Idempotent-Replayed': 'true' } : {},
});

function withdrawalOf(a: StoredApproval): Withdrawal {
  return {
    event_id: a.record.event_id,
    approval_id: a.record.id,
    status: 'withdrawn',
    withdrawn_by: a.decided_by ?? '',
    withdrawn_at: a.decided_at ?? '',
  };
}

/** The answer for an approval that is no longer pending (or a withdrawal already recorded). */
function settled(a: StoredApproval, now: Date): HttpResult {
  const status = effectiveStatus(a, now);
  if (status === 'withdrawn') return answer(withdrawalOf(a), true);
  if (status === 'expired') throw approvalExpired();
  throw alreadyDecided(a, now);
}

export async function withdrawToolCall(
  deps: WithdrawDeps,
  input: { caller: CallerScope; eventId: string },
): Promise<HttpResult> {
  const { caller } = input;
  const event = await deps.events.getEvent(caller.tenantId, input.eventId);
  if (!event || event.parent_event_id !== undefined || !inScope(event, caller))
    throw notFound('event not found');
  if (event.decision !== 'approve' || !event.approval_id)
    throw new AppError(
      409,
      'NOT_APPROVAL_GATED',
      `this event was decided ${event.decision}; only a pending approval request can be withdrawn`,
    );
  const a = await deps.approvals.get(caller.tenantId, event.approval_id);
  if (!a) throw notFound('event not found');
  const now = deps.clock.now();
  if (a.status !== 'pending' || effectiveStatus(a, now) !== 'pending') return settled(a, now);

  const at = now.toISOString();
  const by = withdrawerOf(caller);
  const fact: FactRecord = {
    v: 1,
    tenant_id: a.record.tenant_id,
    kind: 'approval.withdrawn',
    event_id: a.record.event_id,
    fact_id: deps.ids.uuid(),
    at,
    approval_id: a.record.id,
    withdrawn_by: callerRecord(caller),
  };
  const written = await deps.approvals.withdraw(a, { by, at, fact }, now);
  // Lost the race to a decision, the expiry or another withdrawal: the state that won answers.
  if (!written.ok) return settled(written.current ?? a, now);
  return answer({ ...withdrawalOf(a), withdrawn_by: by, withdrawn_at: at }, false);
}

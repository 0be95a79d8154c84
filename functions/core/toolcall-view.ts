/** What `GET /v1/toolcalls/{id}` shows of a stored event (SPEC §3): no webhook URLs or secret names. */
import type { EventStatus, StoredEvent } from './ports.js';
import { approvalUrl } from './submit.js';

export function toolCallView(
  event: StoredEvent,
  options: { now: Date; publicBaseUrl: string; executionGraceMs: number },
): Record<string, unknown> {
  // An execution that outlived every timeout without a recorded result ran with an unknown outcome.
  const stale =
    event.status === 'executing' &&
    options.now.getTime() - Date.parse(event.received_at) > options.executionGraceMs;
  const status: EventStatus = stale ? 'unknown' : event.status;
  return {
    event_id: event.event_id,
    tenant_id: event.tenant_id,
    received_at: event.received_at,
    request: event.request,
    decision: event.decision,
    reason: event.reason,
    policy_version: event.policy_version,
    status,
    ...(event.result ? { result: event.result } : {}),
    ...(event.approval
      ? {
          approval: {
            id: event.approval.id,
            status: event.approval.status,
            expires_at: event.approval.expires_at,
            url: approvalUrl(options.publicBaseUrl, event.approval.id),
            ...(event.approval.decided_by ? { decided_by: event.approval.decided_by } : {}),
            ...(event.approval.decided_at ? { decided_at: event.approval.decided_at } : {}),
            ...(event.approval.deny_reason ? { deny_reason: event.approval.deny_reason } : {}),
          },
        }
      : {}),
    ...(event.parent_event_id ? { parent_event_id: event.parent_event_id } : {}),
    ...(event.execution
      ? {
          execution: {
            event_id: event.execution.execution_event_id,
            // A claim that outlived every timeout without a result crashed: its outcome is unknown.
            status:
              event.execution.status === 'running' &&
              options.now.getTime() - Date.parse(event.execution.claimed_at) > options.executionGraceMs
                ? 'unknown'
                : event.execution.status,
            ...(event.execution.result ? { result: event.execution.result } : {}),
            ...(event.execution.resolved_by ? { resolved_by: event.execution.resolved_by } : {}),
          },
        }
      : {}),
    evidence: event.facts.map((f) => ({
      fact_id: f.fact_id,
      kind: f.kind,
      status: f.seq === undefined ? 'pending' : 'sealed',
      // Once sealed, the record is shown exactly as hashed (with its seq), so anyone can recompute the hash.
      record: f.seq === undefined ? f.record : { ...f.record, seq: f.seq },
      ...(f.seq === undefined ? {} : { seq: f.seq, hash: f.hash, prev_hash: f.prev_hash }),
    })),
  };
}

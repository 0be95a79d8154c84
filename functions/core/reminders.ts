/**
 * Honest deadlines (issue 21 deliverable 5), pure: when a pending approval's reminder is due, and
 * an approver's extension of its deadline within the bound policy data sets.
 *
 * Reminders cost nothing idle: no scheduler entry per approval. Each approval whose tenant asks
 * for reminders gets one small item in a sparse partition, keyed by when it is due; the existing
 * expiry sweep reads the due ones with one Query a run and sends each with ONE conditional update
 * of the approval (`reminded_at` absent, still pending, the reminder time unchanged), so two
 * overlapping runs send it once. The outbox announces the update (`oc.approval.reminder`).
 *
 * An extension moves `expires_at` (and the reminder with it) by a conditional update on the
 * deadline the approver saw, records an `approval.extended` fact and is announced
 * (`oc.approval.extended`). Expiry stays honest: a request past its deadline reads `expired`,
 * never `denied`, and cannot be extended (it is over).
 */
import { AppError, conflict, validationError } from '../shared/errors.js';
import {
  alreadyDecided,
  approvalExpired,
  approvalNotFound,
  approvalView,
  approvalViewOf,
  authorizeApprover,
  effectiveStatus,
  requireListedApprover,
  viewMismatch,
  type ApprovalDeps,
  type ApprovalView,
  type Approver,
  type StoredApproval,
} from './approvals.js';
import type { FactRecord } from './evidence.js';
import type { TenantConfig } from './policy.js';
import type { Clock, IdGenerator } from './ports.js';

/** Longest life of a request, extensions included (W2: the tenant's TTL is capped at 7 days too). */
export const MAX_APPROVAL_LIFE_SEC = 7 * 86_400;

/** One extension, as the approval item keeps it (its list is the extension history). */
export interface Extension {
  by: string;
  at: string;
  from: string;
  to: string;
  comment?: string;
}

/**
 * When the reminder of a request created at `createdAt` and expiring at `expiresAt` is due, or
 * undefined: the tenant asks for none, or the request's whole life is shorter than the lead time
 * (a reminder at creation would only repeat the request).
 */
export function reminderAt(
  tenant: Pick<TenantConfig, 'reminder_before_sec'> | undefined,
  createdAt: string,
  expiresAt: string,
): string | undefined {
  const before = tenant?.reminder_before_sec;
  if (before === undefined) return undefined;
  const at = Date.parse(expiresAt) - before * 1000;
  return at > Date.parse(createdAt) ? new Date(at).toISOString() : undefined;
}

/** What the sweep found due: the reminder item's key parts. */
export interface DueReminder {
  tenantId: string;
  approvalId: string;
  remindAt: string;
}

export const extensionNotAllowed = () =>
  new AppError(
    403,
    'EXTENSION_NOT_ALLOWED',
    "this tenant's policy data allows no extensions (tenants.json `extensions`)",
  );

export interface ExtendInput {
  /** Seconds to add to the current deadline. */
  extend_sec: number;
  comment?: string;
  /** The view the approver was shown (as a decision): another one is a 409. */
  view_hash?: string;
}

export interface ExtensionOutcome {
  extension: Extension;
  /** The whole history with this one last (what the item keeps). */
  extensions: Extension[];
  /** The reminder of the new deadline, if one is due later than now. */
  remindAt?: string;
  fact: FactRecord;
}

/**
 * Checks that this approver may move this request's deadline now, by this much, and builds the
 * extension and its fact. The bound: at most `max_times` extensions, the deadline at most
 * `max_sec` past the one it was created with, and never past 7 days after creation.
 */
export function planExtension(
  a: StoredApproval,
  input: ExtendInput,
  approver: Approver,
  deps: { clock: Clock; ids: IdGenerator; tenant: TenantConfig | undefined },
): ExtensionOutcome {
  const now = deps.clock.now();
  if (effectiveStatus(a, now) === 'expired') throw approvalExpired();
  if (a.status !== 'pending') throw alreadyDecided(a, now);
  // The extender's id as every decision names it: the directory id where the tenant has one.
  const by = authorizeApprover(deps.tenant, approver, a.record);
  const view = approvalViewOf(a.record);
  if (input.view_hash !== undefined && input.view_hash !== view.hash) throw viewMismatch(view.hash);
  const bound = deps.tenant?.extensions;
  if (!bound) throw extensionNotAllowed();

  const history = a.extensions ?? [];
  if (history.length >= bound.max_times)
    throw validationError(
      `this request was already extended ${history.length} times, the most policy allows`,
      [{ path: '/extend_sec', message: `at most ${bound.max_times} extensions` }],
    );
  const from = a.record.expires_at;
  const original = history[0]?.from ?? from;
  const latest = Math.min(
    Date.parse(original) + bound.max_sec * 1000,
    Date.parse(a.record.created_at) + MAX_APPROVAL_LIFE_SEC * 1000,
  );
  const to = Date.parse(from) + input.extend_sec * 1000;
  if (to > latest)
    throw validationError('the new deadline is past what policy allows', [
      {
        path: '/extend_sec',
        message: `at most ${Math.max(0, Math.floor((latest - Date.parse(from)) / 1000))} (deadline at most ${new Date(latest).toISOString()})`,
      },
    ]);

  const at = now.toISOString();
  const extension: Extension = {
    by,
    at,
    from,
    to: new Date(to).toISOString(),
    ...(input.comment ? { comment: input.comment } : {}),
  };
  const remindAt = reminderAt(deps.tenant, a.record.created_at, extension.to);
  return {
    extension,
    extensions: [...history, extension],
    ...(remindAt && Date.parse(remindAt) > now.getTime() ? { remindAt } : {}),
    fact: {
      v: 1,
      tenant_id: a.record.tenant_id,
      kind: 'approval.extended',
      event_id: a.record.event_id,
      fact_id: deps.ids.uuid(),
      at,
      approval_id: a.record.id,
      approver: { id: by, sub: approver.sub, email: approver.email, via: approver.via },
      from,
      to: extension.to,
      ...(input.comment ? { comment: input.comment } : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Use cases: the extend route and the sweep's reminders.

export interface DeadlinesPort {
  extend(
    a: StoredApproval,
    x: ExtensionOutcome,
    now: Date,
  ): Promise<{ ok: true } | { ok: false; current: StoredApproval | undefined }>;
  dueReminders(now: Date, limit?: number): Promise<DueReminder[]>;
  remind(due: DueReminder, now: Date): Promise<boolean>;
}

export interface DeadlineDeps extends ApprovalDeps {
  deadlines: DeadlinesPort;
}

/** POST /v1/approvals/{id}/extend: the pending request's deadline moves, recorded and announced. */
export async function extendApproval(
  deps: DeadlineDeps,
  approver: Approver,
  approvalId: string,
  input: ExtendInput,
): Promise<ApprovalView> {
  // Checked before the read, as decisions are: the same 403 for every id.
  requireListedApprover(deps, approver);
  const a = await deps.approvals.get(approver.tenantId, approvalId);
  if (!a) throw approvalNotFound();
  const x = planExtension(a, input, approver, {
    clock: deps.clock,
    ids: deps.ids,
    tenant: deps.tenant(approver.tenantId),
  });
  const now = deps.clock.now();
  const written = await deps.deadlines.extend(a, x, now);
  if (!written.ok) {
    const current = written.current ?? a;
    if (effectiveStatus(current, now) === 'expired') throw approvalExpired();
    if (current.status !== 'pending') throw alreadyDecided(current, now);
    // Another extension moved the deadline first: decide again on what it now says.
    throw conflict('the deadline moved since it was read: reload the approval and extend again', undefined, [
      { path: 'expires_at', message: current.record.expires_at },
    ]);
  }
  return approvalView(
    {
      ...a,
      record: { ...a.record, expires_at: x.extension.to },
      extensions: x.extensions,
      ...(x.remindAt ? { remind_at: x.remindAt } : {}),
    },
    now,
  );
}

/**
 * The sweep's reminders: every reminder due by now, each sent by its own conditional write (so an
 * overlapping run sends none twice). One reminder that cannot be sent (a storage error on its
 * item) is counted and left due for the next run; it never holds the other tenants' reminders, nor
 * the expiry that runs after them. Returns how many this run sent, and which failed.
 */
export async function sendDueReminders(deps: {
  deadlines: DeadlinesPort;
  clock: Clock;
}): Promise<{ reminded: number; failed: { due: DueReminder; error: unknown }[] }> {
  const now = deps.clock.now();
  let reminded = 0;
  const failed: { due: DueReminder; error: unknown }[] = [];
  for (const due of await deps.deadlines.dueReminders(now)) {
    try {
      if (await deps.deadlines.remind(due, now)) reminded += 1;
    } catch (error) {
      failed.push({ due, error });
    }
  }
  return { reminded, failed };
}

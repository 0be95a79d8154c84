/**
 * Typed errors. Every failure the gateway answers is an `OpenClauseApiError` (status, code,
 * retryable, details, request id); the approval outcomes an agent must handle have their own
 * classes so that `instanceof` replaces string matching on codes.
 */

export interface ErrorDetail {
  path: string;
  message: string;
}

/** Anything the SDK throws on purpose (an aborted signal throws the signal's reason instead). */
export class OpenClauseError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The gateway answered an error (the SPEC error body). */
export class OpenClauseApiError extends OpenClauseError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly details: readonly ErrorDetail[] = [],
    readonly requestId?: string,
    /** From `Retry-After`, when the gateway sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(`${status} ${code}: ${message}`);
  }

  detail(path: string): string | undefined {
    return this.details.find((d) => d.path === path)?.message;
  }
}

/** A human denied the approval. `reason` is what they wrote ("" when nothing). */
export class ApprovalDeniedError extends OpenClauseError {
  constructor(
    readonly eventId: string,
    readonly reason: string,
    readonly decidedBy: string | undefined,
    options?: ErrorOptions,
  ) {
    super(`the approval of ${eventId} was denied${reason ? `: ${reason}` : ''}`, options);
  }
}

/** Nobody decided before the approval (or its grant) expired; submit a new call to ask again. */
export class ApprovalExpiredError extends OpenClauseError {
  constructor(
    readonly eventId: string,
    options?: ErrorOptions,
  ) {
    super(`the approval of ${eventId} expired`, options);
  }
}

/** The agent withdrew the request before anyone decided (409 `APPROVAL_WITHDRAWN`): it never runs. */
export class ApprovalWithdrawnError extends OpenClauseError {
  constructor(
    readonly eventId: string,
    readonly withdrawnBy: string | undefined,
    options?: ErrorOptions,
  ) {
    super(`the approval of ${eventId} was withdrawn${withdrawnBy ? ` by ${withdrawnBy}` : ''}`, options);
  }
}

/**
 * Approved, but the policy changed before the call ran and the live policy refused it (409
 * `POLICY_CHANGED`; the approval reads `revoked_by_policy`). It never runs: submit the call again
 * with a new idempotency key to have it decided under the live policy. `decision` is what the
 * live policy decided (`deny`, or any outcome when `reapprovalRequired`: the tenant asks for a new
 * approval after any policy change).
 */
export class ApprovalRevokedByPolicyError extends OpenClauseError {
  constructor(
    readonly eventId: string,
    readonly revocation: {
      approvedUnder: string | undefined;
      policyVersion: string | undefined;
      decision: string | undefined;
      reason: string | undefined;
    },
    options?: ErrorOptions,
  ) {
    super(
      `the approval of ${eventId} was revoked: the policy changed and the live policy ` +
        `${revocation.decision === 'deny' ? 'denies it' : 'requires a new approval'}` +
        `${revocation.reason ? ` (${revocation.reason})` : ''}`,
      options,
    );
  }
}

/** The event was decided `allow` or `deny`: there is nothing to wait for. */
export class NotApprovalGatedError extends OpenClauseError {
  constructor(
    readonly eventId: string,
    options?: ErrorOptions,
  ) {
    super(`${eventId} is not approval-gated (it was decided allow or deny)`, options);
  }
}

/**
 * An earlier execution started and was interrupted: the tool may have run. The gateway never
 * runs it again; an operator records the outcome (`oc executions resolve`).
 */
export class ExecutionOutcomeUnknownError extends OpenClauseError {
  constructor(
    readonly eventId: string,
    readonly executionEventId: string | undefined,
    options?: ErrorOptions,
  ) {
    super(`the execution of ${eventId} has an unknown outcome; it is never re-run`, options);
  }
}

/**
 * `waitForApprovalThenExecute` gave up after its `timeout`: the approval was still pending, or
 * the gateway kept failing (`lastFailure`, also the `cause`: a network error, a 5xx or a 429).
 */
export class ApprovalWaitTimeoutError extends OpenClauseError {
  constructor(
    readonly eventId: string,
    readonly timeoutMs: number,
    readonly lastFailure?: OpenClauseError,
  ) {
    super(
      lastFailure
        ? `gave up waiting for ${eventId} after ${timeoutMs} ms: the gateway kept failing (last: ${lastFailure.message})`
        : `${eventId} was still awaiting approval after ${timeoutMs} ms`,
      lastFailure ? { cause: lastFailure } : undefined,
    );
  }
}

/** The gateway could not be reached (after the retries), or answered something that is not the API. */
export class OpenClauseNetworkError extends OpenClauseError {}

/**
 * The OpenClause agent client: typed from api/openapi.yaml (`openapi-typescript` types, requests
 * through `openapi-fetch`), with the transport rules an agent should not have to write itself:
 *
 * - one idempotency key per logical call, reused by every retry of that call (so a retried
 *   submit never runs the tool twice);
 * - a `trace_id` in the body and a W3C `traceparent` header (a new span per attempt);
 * - 429, 5xx (unless the body says `retryable: false`) and network errors retried with jittered
 *   exponential backoff, honouring `Retry-After`; a 4xx is never retried;
 * - `waitForApprovalThenExecute`: polls execute with backoff until the approval is decided, and
 *   throws a typed error for every outcome that will never execute instead of polling forever;
 *   a gateway that is restarting (network errors, retryable 5xx, 429) is retried with jittered
 *   backoff until the wait's own timeout, never sleeping past it.
 */
import createFetchClient from 'openapi-fetch';
import {
  ApprovalDeniedError,
  ApprovalExpiredError,
  ApprovalRevokedByPolicyError,
  ApprovalWaitTimeoutError,
  ApprovalWithdrawnError,
  ExecutionOutcomeUnknownError,
  NotApprovalGatedError,
  OpenClauseApiError,
  OpenClauseError,
  OpenClauseNetworkError,
  type ErrorDetail,
} from './errors.js';
import type { components, paths } from './openapi.js';

type Schemas = components['schemas'];
export type ToolCallRequest = Schemas['ToolCallRequest'];
export type ToolCallResponse = Schemas['ToolCallResponse'];
export type ToolCallRecord = Schemas['ToolCallRecord'];
export type ExecutionResponse = Schemas['ExecutionResponse'];
export type Withdrawal = Schemas['Withdrawal'];
export type ExecutionResult = Schemas['ExecutionResult'];
export type ApprovalSummary = Schemas['ApprovalSummary'];
export type Decision = Schemas['Decision'];

/** A tool call as the agent writes it: the SDK fills `idempotency_key` and `trace_id` when absent. */
export type ToolCall = Omit<ToolCallRequest, 'idempotency_key' | 'trace_id'> & {
  idempotency_key?: string;
  trace_id?: string;
};

export interface RetryOptions {
  /** Attempts per request, the first included (default 4). */
  attempts?: number;
  /** First backoff ceiling in ms (default 250); doubles per attempt, full jitter. */
  baseDelayMs?: number;
  /** Largest wait between attempts, `Retry-After` included (default 20 000). */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** The gateway, e.g. `http://localhost:3000` or the API Gateway URL. */
  baseUrl: string;
  /** The agent's API key (sent as `X-API-Key`). */
  apiKey: string;
  retry?: RetryOptions;
  /** Per-attempt timeout in ms (default 15 000). */
  requestTimeoutMs?: number;
  /** Defaults to the global `fetch`. */
  fetch?: (request: Request) => Promise<Response>;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** A W3C `traceparent` to continue (its trace id is reused; each attempt is a new span). */
  traceparent?: string;
}

export interface PendingInfo {
  eventId: string;
  /** 1 for the first pending answer. */
  attempt: number;
  /** How long the SDK waits before the next poll. */
  nextPollMs: number;
  /**
   * A quorum approval's progress, as the gateway words it: "1 of 2 approvals; needs 1 more from
   * finance". Absent for an approval that needs one approver.
   */
  progress?: string;
}

export interface WaitOptions extends CallOptions {
  /** First wait between polls in ms (default 2 000); grows by 1.5x up to `maxPollInterval`. */
  pollInterval?: number;
  /** Largest wait between polls in ms (default 30 000). */
  maxPollInterval?: number;
  /**
   * Give up (ApprovalWaitTimeoutError) after this many ms (default 15 minutes). Transient failures
   * (network errors, retryable 5xx, 429) are retried with backoff until then; no request starts
   * and no sleep ends after it.
   */
  timeout?: number;
  /** Called on every "still pending" answer, e.g. to remind the user where to approve. */
  onPending?: (info: PendingInfo) => void;
}

const DEFAULTS = {
  attempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 20_000,
  requestTimeoutMs: 15_000,
  pollInterval: 2_000,
  maxPollInterval: 30_000,
  timeout: 15 * 60_000,
} as const;

/** The answer time given to a wait's attempt that starts at its deadline. */
const LAST_ATTEMPT_MS = 1_000;

const hex = (bytes: number) =>
  Array.from(globalThis.crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('');

const TRACE_ID = /^[0-9a-f]{32}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Seconds (or an HTTP date) from `Retry-After`, in ms. */
function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function isErrorBody(value: unknown): value is {
  code: string;
  message: string;
  retryable?: boolean;
  details?: ErrorDetail[];
  request_id?: string;
} {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

function apiError(response: Response, body: unknown): OpenClauseApiError {
  const after = retryAfterMs(response);
  if (isErrorBody(body)) {
    return new OpenClauseApiError(
      response.status,
      body.code,
      body.message,
      body.retryable ?? response.status >= 500,
      body.details ?? [],
      body.request_id,
      after,
    );
  }
  // Not the gateway's error body (a proxy's 502 page, a load balancer's 503).
  return new OpenClauseApiError(
    response.status,
    'HTTP_ERROR',
    `HTTP ${response.status}`,
    response.status === 429 || response.status >= 500,
    [],
    undefined,
    after,
  );
}

type Attempt<T> = (init: { signal: AbortSignal; headers: Record<string, string> }) => Promise<{
  data?: T;
  error?: unknown;
  response: Response;
}>;

export class OpenClauseClient {
  private readonly http;
  private readonly retry: Required<RetryOptions>;
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: ClientOptions) {
    if (!options.baseUrl) throw new OpenClauseError('baseUrl is required');
    if (!options.apiKey) throw new OpenClauseError('apiKey is required');
    this.http = createFetchClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      headers: { 'X-API-Key': options.apiKey },
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    this.retry = {
      attempts: Math.max(1, options.retry?.attempts ?? DEFAULTS.attempts),
      baseDelayMs: options.retry?.baseDelayMs ?? DEFAULTS.baseDelayMs,
      maxDelayMs: options.retry?.maxDelayMs ?? DEFAULTS.maxDelayMs,
    };
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
  }

  /**
   * Submits a tool call (`POST /v1/toolcalls`) and returns the decision: `allow` (with the
   * connector's `result`), `deny`, or `approve` (with `approval.url` for a human). The same
   * idempotency key is used for every retry; pass your own to make a call idempotent across
   * process restarts.
   */
  async submit(call: ToolCall, options: CallOptions = {}): Promise<ToolCallResponse> {
    const traceId = traceIdOf(call.trace_id, options.traceparent);
    const body: ToolCallRequest = {
      ...call,
      idempotency_key: call.idempotency_key ?? globalThis.crypto.randomUUID(),
      trace_id: call.trace_id ?? traceId,
    };
    return this.send((init) => this.http.POST('/v1/toolcalls', { body, ...init }), traceId, options.signal);
  }

  /** The stored event: request, decision, approval, execution, evidence (`GET /v1/toolcalls/{id}`). */
  async get(eventId: string, options: CallOptions = {}): Promise<ToolCallRecord> {
    return this.send(
      (init) =>
        this.http.GET('/v1/toolcalls/{event_id}', { params: { path: { event_id: eventId } }, ...init }),
      traceIdOf(undefined, options.traceparent),
      options.signal,
    );
  }

  /** The approval gating the event (`pending|approved|denied|expired`), or undefined if none. */
  async approval(eventId: string, options: CallOptions = {}): Promise<ApprovalSummary | undefined> {
    return (await this.get(eventId, options)).approval;
  }

  /**
   * Executes an approved call once (`POST /v1/toolcalls/{id}/execute`); a repeat answers the
   * same result. Throws `OpenClauseApiError` while pending (409 `AWAITING_APPROVAL`); use
   * `waitForApprovalThenExecute` to wait.
   */
  async execute(eventId: string, options: CallOptions = {}): Promise<ExecutionResponse> {
    return this.send(
      (init) =>
        this.http.POST('/v1/toolcalls/{event_id}/execute', {
          params: { path: { event_id: eventId } },
          ...init,
        }),
      traceIdOf(undefined, options.traceparent),
      options.signal,
    );
  }

  /**
   * Withdraws the pending approval request of a call (`POST /v1/toolcalls/{id}/withdraw`): nobody
   * can decide it and it never runs. A repeat answers the same withdrawal; a request already
   * decided throws `OpenClauseApiError` 409 `APPROVAL_ALREADY_DECIDED` (expired: 410).
   */
  async withdraw(eventId: string, options: CallOptions = {}): Promise<Withdrawal> {
    return this.send(
      (init) =>
        this.http.POST('/v1/toolcalls/{event_id}/withdraw', {
          params: { path: { event_id: eventId } },
          ...init,
        }),
      traceIdOf(undefined, options.traceparent),
      options.signal,
    );
  }

  /**
   * Waits for a human to decide, then executes and returns the execution (its `result` is the
   * tool's outcome). Throws `ApprovalDeniedError` (with the approver's reason),
   * `ApprovalExpiredError`, `ApprovalRevokedByPolicyError` (approved, then refused by a changed
   * policy), `ApprovalWithdrawnError`, `NotApprovalGatedError`, `ExecutionOutcomeUnknownError` or
   * `ApprovalWaitTimeoutError`; an aborted `signal` rejects with its reason.
   */
  async waitForApprovalThenExecute(eventId: string, options: WaitOptions = {}): Promise<ExecutionResponse> {
    const timeout = options.timeout ?? DEFAULTS.timeout;
    const maxPoll = options.maxPollInterval ?? DEFAULTS.maxPollInterval;
    const deadline = Date.now() + timeout;
    let interval = Math.max(1, options.pollInterval ?? DEFAULTS.pollInterval);
    // Consecutive transient failures (the backoff's exponent), and the latest, for the timeout error.
    let failures = 0;
    let lastFailure: OpenClauseError | undefined;
    for (let attempt = 1; ;) {
      let wait: number;
      try {
        // One attempt per iteration: this loop owns the retries, so that they go on until the
        // caller's timeout rather than stopping after the client's attempt count.
        return await this.executeOnce(eventId, options, deadline - Date.now());
      } catch (error) {
        if (isTransient(error)) {
          failures++;
          lastFailure = error;
          const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (failures - 1));
          const after = error instanceof OpenClauseApiError ? error.retryAfterMs : undefined;
          const left = deadline - Date.now();
          // Asked to come back after the deadline: coming back sooner would ignore the gateway,
          // and sleeping until the deadline would only delay the same answer.
          if (after !== undefined && after >= left)
            throw new ApprovalWaitTimeoutError(eventId, timeout, lastFailure);
          wait = Math.max(after ?? 0, Math.random() * ceiling);
        } else {
          if (!(error instanceof OpenClauseApiError)) throw error;
          switch (error.code) {
            case 'APPROVAL_DENIED':
              throw new ApprovalDeniedError(
                eventId,
                error.detail('deny_reason') ?? '',
                error.detail('decided_by'),
                {
                  cause: error,
                },
              );
            case 'APPROVAL_EXPIRED':
              throw new ApprovalExpiredError(eventId, { cause: error });
            case 'NOT_APPROVAL_GATED':
              throw new NotApprovalGatedError(eventId, { cause: error });
            case 'APPROVAL_WITHDRAWN':
              throw new ApprovalWithdrawnError(eventId, error.detail('withdrawn_by'), { cause: error });
            case 'POLICY_CHANGED':
              throw new ApprovalRevokedByPolicyError(
                eventId,
                {
                  approvedUnder: error.detail('approved_under'),
                  policyVersion: error.detail('policy_version'),
                  decision: error.detail('decision'),
                  reason: error.detail('reason'),
                },
                { cause: error },
              );
            case 'EXECUTION_OUTCOME_UNKNOWN':
              throw new ExecutionOutcomeUnknownError(eventId, error.detail('execution_event_id'), {
                cause: error,
              });
            case 'AWAITING_APPROVAL':
            case 'EXECUTION_IN_PROGRESS':
              break;
            default:
              throw error;
          }
          failures = 0;
          lastFailure = undefined;
          wait = Math.max(interval, error.retryAfterMs ?? 0);
          if (error.code === 'AWAITING_APPROVAL')
            options.onPending?.({
              eventId,
              attempt: attempt++,
              nextPollMs: Math.max(0, Math.min(wait, deadline - Date.now())),
              ...(error.detail('quorum') ? { progress: error.detail('quorum') } : {}),
            });
          interval = Math.min(interval * 1.5, maxPoll);
        }
        // The last attempt starts at the deadline at the latest; no sleep ends after it.
        const left = deadline - Date.now();
        if (left <= 0) throw new ApprovalWaitTimeoutError(eventId, timeout, lastFailure);
        await sleep(Math.min(wait, left), options.signal);
      }
    }
  }

  /**
   * `execute` with one attempt (the wait's retries are its own), answered within the time left, or
   * within a second for the attempt that starts at the deadline.
   */
  private executeOnce(eventId: string, options: CallOptions, leftMs: number): Promise<ExecutionResponse> {
    return this.send(
      (init) =>
        this.http.POST('/v1/toolcalls/{event_id}/execute', {
          params: { path: { event_id: eventId } },
          ...init,
        }),
      traceIdOf(undefined, options.traceparent),
      options.signal,
      { attempts: 1, requestTimeoutMs: Math.min(this.requestTimeoutMs, Math.max(LAST_ATTEMPT_MS, leftMs)) },
    );
  }

  /** One logical request: attempts with backoff; answers the parsed body or throws a typed error. */
  private async send<T>(
    attempt: Attempt<T>,
    traceId: string,
    signal: AbortSignal | undefined,
    limits: { attempts: number; requestTimeoutMs: number } = {
      attempts: this.retry.attempts,
      requestTimeoutMs: this.requestTimeoutMs,
    },
  ): Promise<T> {
    let last: OpenClauseError | undefined;
    for (let n = 0; n < limits.attempts; n++) {
      if (n > 0) {
        const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (n - 1));
        const after = last instanceof OpenClauseApiError ? (last.retryAfterMs ?? 0) : 0;
        // A server asking for longer than we are willing to wait gets its answer, not a hang.
        if (after > this.retry.maxDelayMs) throw last;
        await sleep(Math.max(after, Math.random() * ceiling), signal);
      }
      const timeout = AbortSignal.timeout(limits.requestTimeoutMs);
      const headers = { traceparent: `00-${traceId}-${hex(8)}-01` };
      let answer: Awaited<ReturnType<Attempt<T>>>;
      try {
        answer = await attempt({ signal: signal ? AbortSignal.any([signal, timeout]) : timeout, headers });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        last = new OpenClauseNetworkError(
          timeout.aborted
            ? `no answer within ${limits.requestTimeoutMs} ms`
            : `request failed: ${describe(error)}`,
          { cause: error },
        );
        continue;
      }
      const { response } = answer;
      if (response.ok && answer.data !== undefined) return answer.data;
      if (response.ok) throw new OpenClauseNetworkError(`HTTP ${response.status} without a JSON body`);
      const failure = apiError(response, answer.error);
      const transient = response.status === 429 || response.status >= 500;
      if (!transient || !failure.retryable) throw failure;
      last = failure;
    }
    throw last ?? new OpenClauseNetworkError('no attempt was made');
  }
}

/** A fetch failure with its cause's code (undici says "fetch failed", the cause ECONNREFUSED). */
function describe(error: unknown): string {
  const message = (error as Error | undefined)?.message ?? String(error);
  const code = (
    (error as { cause?: { code?: unknown } } | undefined)?.cause as { code?: unknown } | undefined
  )?.code;
  return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
}

/**
 * A failure worth another try: no answer (network error, per-attempt timeout, not the API), a
 * 5xx the gateway does not call final (`retryable: false`), or a 429. Any other 4xx is an answer.
 */
function isTransient(error: unknown): error is OpenClauseNetworkError | OpenClauseApiError {
  if (error instanceof OpenClauseNetworkError) return true;
  if (!(error instanceof OpenClauseApiError)) return false;
  return error.status === 429 || (error.status >= 500 && error.retryable);
}

/** The trace id for a call: the body's (if W3C-shaped), else the parent traceparent's, else new. */
function traceIdOf(traceId: string | undefined, traceparent: string | undefined): string {
  if (traceId && TRACE_ID.test(traceId)) return traceId;
  const parent = traceparent ? TRACEPARENT.exec(traceparent.trim()) : null;
  return parent?.[1] ?? hex(16);
}

export function createClient(options: ClientOptions): OpenClauseClient {
  return new OpenClauseClient(options);
}

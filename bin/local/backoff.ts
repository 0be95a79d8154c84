/**
 * How the local stack behaves while a dependency is down: retry with exponential backoff, log
 * the first failure, then at most one summary per interval, and one line on recovery. A dead
 * DynamoDB Local once made the stream poller retry with no pause (a core at 100%, thousands of
 * log lines a second). Pure: time comes from an injected clock.
 */

export interface Clock {
  /** Milliseconds since some fixed point (Date.now by default). */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** The message of whatever was thrown (connection errors can have an empty one, so fall back to the code). */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (error.message) return error.message;
    if (error instanceof AggregateError && error.errors.length > 0) return describeError(error.errors[0]);
    return code ?? error.name;
  }
  return String(error);
}

export interface BackoffOptions {
  /** The wait after the first failure. */
  initialMs: number;
  maxMs: number;
  /** @default 2 */
  factor?: number;
}

/** initialMs, then ×factor per consecutive failure, capped at maxMs; a success starts over. */
export class Backoff {
  private failures = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** Counts one failure; returns how long to wait before the next attempt. */
  fail(): number {
    const delay = Math.min(
      this.options.maxMs,
      this.options.initialMs * (this.options.factor ?? 2) ** this.failures,
    );
    this.failures += 1;
    return delay;
  }

  succeed(): void {
    this.failures = 0;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}

export interface FailureLogOptions {
  /** What is failing, as the start of each line ("stream poller"). */
  what: string;
  log: (line: string) => void;
  clock?: Clock;
  /** @default 5000 */
  summaryEveryMs?: number;
}

export type FailureStatus = { ok: true } | { ok: false; sinceMs: number; errors: number; message: string };

/**
 * Rate-limits the log of a repeating failure: its first occurrence, then
 * "still failing: N errors in the last Xs: <message>" at most once per interval, and
 * "recovered after N errors in Xs" when it stops.
 */
export class FailureLog {
  private failing?: {
    since: number;
    total: number;
    sinceSummary: number;
    lastSummary: number;
    message: string;
  };

  constructor(private readonly options: FailureLogOptions) {}

  private now(): number {
    return (this.options.clock ?? systemClock).now();
  }

  failure(error: unknown): void {
    const message = describeError(error);
    const now = this.now();
    if (!this.failing) {
      this.failing = { since: now, total: 1, sinceSummary: 0, lastSummary: now, message };
      this.options.log(`${this.options.what} failing: ${message}`);
      return;
    }
    const f = this.failing;
    f.total += 1;
    f.sinceSummary += 1;
    f.message = message;
    if (now - f.lastSummary >= (this.options.summaryEveryMs ?? 5000)) {
      this.options.log(
        `${this.options.what} still failing: ${count(f.sinceSummary, 'error')} in the last ${seconds(now - f.lastSummary)}: ${message}`,
      );
      f.sinceSummary = 0;
      f.lastSummary = now;
    }
  }

  success(): void {
    if (!this.failing) return;
    const { since, total } = this.failing;
    this.failing = undefined;
    this.options.log(
      `${this.options.what} recovered after ${count(total, 'error')} in ${seconds(this.now() - since)}`,
    );
  }

  status(): FailureStatus {
    if (!this.failing) return { ok: true };
    return {
      ok: false,
      sinceMs: this.failing.since,
      errors: this.failing.total,
      message: this.failing.message,
    };
  }
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

export interface RestartPolicyOptions {
  /** Restarts allowed within any `windowMs`; 0 gives up at the first death. */
  maxRestarts: number;
  /** Deaths older than this are forgotten (a process that stays up this long starts over). */
  windowMs: number;
  backoff: BackoffOptions;
  clock?: Clock;
}

export type RestartDecision =
  | { action: 'restart'; attempt: number; of: number; delayMs: number }
  | { action: 'give-up'; deaths: number; withinMs: number };

/**
 * When a supervised process dies: restart it after a growing delay, at most `maxRestarts` times
 * within a window; beyond that, give up (so that an outer supervisor restarts the whole stack).
 */
export class RestartPolicy {
  private deaths: number[] = [];
  private readonly backoff: Backoff;

  constructor(private readonly options: RestartPolicyOptions) {
    this.backoff = new Backoff(options.backoff);
  }

  /** Tells the policy the process died; says what to do. */
  died(): RestartDecision {
    const now = (this.options.clock ?? systemClock).now();
    this.deaths = this.deaths.filter((at) => now - at < this.options.windowMs);
    if (this.deaths.length === 0) this.backoff.succeed();
    this.deaths.push(now);
    if (this.deaths.length > this.options.maxRestarts)
      return { action: 'give-up', deaths: this.deaths.length, withinMs: now - (this.deaths[0] ?? now) };
    return {
      action: 'restart',
      attempt: this.deaths.length,
      of: this.options.maxRestarts,
      delayMs: this.backoff.fail(),
    };
  }
}

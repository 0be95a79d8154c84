/**
 * Sustained load (section 6 of bench/run.ts): the highest offered rate the stack holds, as a share
 * of what DynamoDB Local allows on this machine.
 *
 * A rate is held when its step (a fixed arrival rate for a fixed time, open loop) ends with zero
 * 5xx, zero drops (arrivals finding 256 requests in flight), zero transport errors, every accepted
 * call's decision sealed in its tenant's chain exactly once, and p99 within 5 × the same run's
 * unloaded allow p50. The rate is stepped by doubling until a step fails, then by bisection
 * between the last held and the first failed rate, within a fixed number of steps.
 *
 * The ceiling is calls per second: DynamoDB Local's PutItem/s at 32-way concurrency divided by the
 * DynamoDB requests one call of the mix costs with its sealing, counted over the steps. Both the
 * bound and the ceiling come from the same run, so the machine's load scales them alike.
 */
import { percentile } from './instrument.js';
import type { LoadResult } from './load.js';

/** p99 of a held step within this many times the run's unloaded allow p50. */
export const P99_FACTOR = 5;
/** The goal: held rate ≥ this share of the ceiling. */
export const SUSTAINED_GOAL = 0.5;

export interface StepOutcome {
  rate: number;
  held: boolean;
  sent: number;
  dropped: number;
  fiveXx: number;
  errors: number;
  lost: number;
  duplicated: number;
  p99Ms: number;
  /** DynamoDB requests (request path and sealing) per call sent in this step. */
  requestsPerCall: number;
  /** Why the step did not hold (empty when it held). */
  why: string[];
}

export function fiveXxOf(result: Pick<LoadResult, 'statuses'>): number {
  return Object.entries(result.statuses)
    .filter(([s]) => Number(s) >= 500)
    .reduce((a, [, n]) => a + n, 0);
}

/** Whether a step held, and why not. */
export function judgeStep(
  step: Omit<StepOutcome, 'held' | 'why'>,
  p99BoundMs: number,
): { held: boolean; why: string[] } {
  const why: string[] = [];
  if (step.sent === 0) why.push('nothing sent');
  if (step.fiveXx > 0) why.push(`${step.fiveXx} 5xx`);
  if (step.dropped > 0) why.push(`${step.dropped} dropped`);
  if (step.errors > 0) why.push(`${step.errors} transport errors`);
  if (step.lost > 0) why.push(`${step.lost} lost`);
  if (step.duplicated > 0) why.push(`${step.duplicated} duplicated`);
  if (!(step.p99Ms <= p99BoundMs)) why.push(`p99 ${step.p99Ms.toFixed(1)} ms > ${p99BoundMs.toFixed(1)} ms`);
  return { held: why.length === 0, why };
}

/**
 * The offered rates to try (each step that misses on p99 alone is tried twice): double from `start` while each holds (never past `maxRate()`, read
 * after each step since the ceiling is measured as the steps run), then bisect between the last
 * held and the first failed rate until they are within `resolution()` or `steps` are spent. If the
 * first rate fails, bisect between 0 and it. Returns every step and the highest rate held (0 if none).
 */
export async function searchHeldRate(options: {
  start: number;
  steps: number;
  maxRate: () => number;
  resolution: () => number;
  probe: (rate: number) => Promise<StepOutcome>;
}): Promise<{ steps: StepOutcome[]; held: number }> {
  const steps: StepOutcome[] = [];
  let lo = 0;
  let hi: number | undefined;
  let rate = Math.max(1, Math.round(options.start));
  while (steps.length < options.steps) {
    let outcome = await options.probe(rate);
    steps.push(outcome);
    // A step missed on p99 alone is tried once more: on a shared machine a burst of other work
    // stalls a few requests of one step (p99 of a 10 s step is its third-worst call); a rate that
    // cannot be held misses twice. A 5xx, drop, loss or duplicate is never retried.
    if (!outcome.held && outcome.why.every((w) => w.startsWith('p99')) && steps.length < options.steps) {
      outcome = await options.probe(rate);
      steps.push(outcome);
    }
    if (outcome.held) lo = Math.max(lo, rate);
    else hi = Math.min(hi ?? Infinity, rate);
    let next: number;
    if (hi === undefined) {
      const cap = Math.floor(options.maxRate());
      if (rate >= cap) break; // held at the cap: nothing higher is worth offering
      next = Math.min(rate * 2, cap);
    } else {
      if (hi - lo <= Math.max(1, options.resolution())) break;
      next = Math.round((lo + hi) / 2);
      if (next <= lo || next >= hi) break;
    }
    rate = next;
  }
  return { steps, held: lo };
}

/** One line per step for the figure's text. */
export function describeSteps(steps: readonly StepOutcome[]): string {
  return steps
    .map(
      (s) =>
        `${s.rate}/s: p99 ${s.p99Ms.toFixed(1)} ms, ${s.sent} sent, ${s.held ? 'held' : `not held (${s.why.join(', ')})`}`,
    )
    .join('; ');
}

export function p99Of(result: Pick<LoadResult, 'latenciesMs'>): number {
  return result.latenciesMs.length === 0 ? NaN : percentile(result.latenciesMs, 99);
}

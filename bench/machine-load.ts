/**
 * How loaded the machine was while the bench ran: the 1-minute load average, sampled every 5 s.
 * The bench is run on a 2-core machine shared with other work; an absolute figure taken at a load
 * of 15 says little about the code. So the run records the load beside its figures, writes
 * bench/results.json only when the load stayed at or under 1.0 (a quiet machine), and with
 * `--loaded` writes it anyway, saying so, with goals in absolute time judged by the run's ratios.
 */
import os from 'node:os';

export interface LoadSample {
  /** Seconds since the sampler started. */
  t: number;
  /** os.loadavg()[0]: the 1-minute load average. */
  load1: number;
}

export interface LoadSummary {
  n: number;
  min: number;
  mean: number;
  max: number;
}

/** The load a run may see and still be called quiet. */
export const QUIET_LOAD = 1.0;

export function summarizeLoad(samples: readonly LoadSample[]): LoadSummary {
  if (samples.length === 0) return { n: 0, min: NaN, mean: NaN, max: NaN };
  const loads = samples.map((s) => s.load1);
  const r = (x: number) => Number(x.toFixed(2));
  return {
    n: loads.length,
    min: r(Math.min(...loads)),
    mean: r(loads.reduce((a, b) => a + b, 0) / loads.length),
    max: r(Math.max(...loads)),
  };
}

export function describeLoad(s: LoadSummary): string {
  return s.n === 0 ? 'load not sampled' : `load ${s.min}/${s.mean}/${s.max} (min/mean/max of ${s.n})`;
}

/**
 * Whether this run may write bench/results.json: a quiet run always (every sample ≤ 1.0); a loaded
 * one only when `--loaded` says the writer knows (the file then records it); a partial run
 * (`--only`) never, since it would replace the whole table with a part of it.
 */
export function resultsDecision(options: {
  samples: readonly LoadSample[];
  loaded: boolean;
  partial: boolean;
}): { write: boolean; loaded: boolean; reason: string } {
  const s = summarizeLoad(options.samples);
  const quiet = s.n > 0 && s.max <= QUIET_LOAD;
  if (options.partial)
    return {
      write: false,
      loaded: !quiet,
      reason: 'a partial run (--only) does not replace bench/results.json',
    };
  if (quiet) return { write: true, loaded: false, reason: `quiet: ${describeLoad(s)}` };
  if (options.loaded)
    return { write: true, loaded: true, reason: `--loaded: ${describeLoad(s)}, goals judged by ratio` };
  return {
    write: false,
    loaded: true,
    reason: `the 1-minute load passed ${QUIET_LOAD} (${describeLoad(s)}): bench/results.json not written; run again on a quiet machine, or with --loaded`,
  };
}

/** Samples the 1-minute load every `intervalMs` until stopped; `since(i)` is a section's share. */
export function startLoadSampler(intervalMs = 5000, read: () => number = () => os.loadavg()[0] ?? 0) {
  const t0 = performance.now();
  const samples: LoadSample[] = [];
  const take = () =>
    samples.push({ t: Math.round((performance.now() - t0) / 1000), load1: Number(read().toFixed(2)) });
  take();
  const timer = setInterval(take, intervalMs);
  timer.unref();
  return {
    samples,
    /** The samples taken from index `from` on (take `samples.length` at a section's start). */
    since: (from: number) => summarizeLoad(samples.slice(from)),
    stop: () => {
      clearInterval(timer);
      take();
      return summarizeLoad(samples);
    },
  };
}

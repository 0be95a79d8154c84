/** The bench's sustained-load search and its machine-load rules (bench/sustained.ts, bench/machine-load.ts). */
import { resultsDecision, startLoadSampler, summarizeLoad } from '../../bench/machine-load.js';
import { judgeStep, searchHeldRate, type StepOutcome } from '../../bench/sustained.js';

const clean = {
  sent: 100,
  dropped: 0,
  fiveXx: 0,
  errors: 0,
  lost: 0,
  duplicated: 0,
  p99Ms: 10,
  requestsPerCall: 4,
};

/** A stack that holds every rate up to `limit` calls/s and no more. */
const stackHolding = (limit: number) => {
  const tried: number[] = [];
  const probe = async (rate: number): Promise<StepOutcome> => {
    tried.push(rate);
    const step = { ...clean, rate, p99Ms: rate <= limit ? 10 : 500 };
    return { ...step, ...judgeStep(step, 50) };
  };
  return { tried, probe };
};

describe('searchHeldRate', () => {
  test('doubles, then bisects to within the resolution: a stack holding 180/s reports ≥ 170/s', async () => {
    const { tried, probe } = stackHolding(180);
    const r = await searchHeldRate({ start: 25, steps: 10, maxRate: () => 400, resolution: () => 10, probe });
    expect(tried.slice(0, 6)).toEqual([25, 50, 100, 200, 200, 150]);
    expect(r.held).toBeGreaterThanOrEqual(170);
    expect(r.held).toBeLessThanOrEqual(180);
    expect(r.steps.length).toBeLessThanOrEqual(10);
  });

  test('a first rate that fails is bisected downwards; nothing held is 0', async () => {
    const low = stackHolding(12);
    const r = await searchHeldRate({
      start: 25,
      steps: 10,
      maxRate: () => 400,
      resolution: () => 2,
      probe: low.probe,
    });
    expect(low.tried.slice(0, 3)).toEqual([25, 25, 13]);
    expect(r.held).toBeGreaterThanOrEqual(10);
    expect(r.held).toBeLessThanOrEqual(12);
    const none = stackHolding(0);
    expect(
      (
        await searchHeldRate({
          start: 4,
          steps: 5,
          maxRate: () => 400,
          resolution: () => 1,
          probe: none.probe,
        })
      ).held,
    ).toBe(0);
  });

  test('never offers more than the cap, and stops once the cap holds', async () => {
    const { tried, probe } = stackHolding(1000);
    const r = await searchHeldRate({ start: 25, steps: 8, maxRate: () => 120, resolution: () => 5, probe });
    expect(tried).toEqual([25, 50, 100, 120]);
    expect(r.held).toBe(120);
  });

  test('a step missed on p99 alone is tried once more; a 5xx is not', async () => {
    let calls = 0;
    const stalledOnce = async (rate: number): Promise<StepOutcome> => {
      calls += 1;
      const step = { ...clean, rate, p99Ms: calls === 2 ? 400 : 10 };
      return { ...step, ...judgeStep(step, 50) };
    };
    const r = await searchHeldRate({
      start: 10,
      steps: 4,
      maxRate: () => 40,
      resolution: () => 1,
      probe: stalledOnce,
    });
    expect(r.steps.map((s) => [s.rate, s.held])).toEqual([
      [10, true],
      [20, false],
      [20, true],
      [40, true],
    ]);
    expect(r.held).toBe(40);
    const failing = async (rate: number): Promise<StepOutcome> => {
      const step = { ...clean, rate, fiveXx: rate > 10 ? 1 : 0 };
      return { ...step, ...judgeStep(step, 50) };
    };
    const f = await searchHeldRate({
      start: 10,
      steps: 3,
      maxRate: () => 40,
      resolution: () => 1,
      probe: failing,
    });
    expect(f.steps.map((s) => s.rate)).toEqual([10, 20, 15]);
  });
});

describe('judgeStep', () => {
  test('a step holds only with no 5xx, drop, error, lost or duplicated entry and p99 within the bound', () => {
    expect(judgeStep({ ...clean, rate: 10 }, 50)).toEqual({ held: true, why: [] });
    for (const bad of [
      { fiveXx: 1 },
      { dropped: 1 },
      { errors: 1 },
      { lost: 1 },
      { duplicated: 1 },
      { p99Ms: 50.1 },
      { p99Ms: NaN },
      { sent: 0 },
    ])
      expect(judgeStep({ ...clean, rate: 10, ...bad }, 50).held).toBe(false);
  });
});

describe('machine load', () => {
  const quiet = [0.2, 0.9, 1.0].map((load1, t) => ({ t: t * 5, load1 }));
  const loaded = [0.4, 1.3, 0.8].map((load1, t) => ({ t: t * 5, load1 }));

  test('min/mean/max of the 1-minute samples', () => {
    expect(summarizeLoad(loaded)).toEqual({ n: 3, min: 0.4, mean: 0.83, max: 1.3 });
  });

  test('results.json is written when every sample stayed ≤ 1.0, or with --loaded (marked loaded)', () => {
    expect(resultsDecision({ samples: quiet, loaded: false, partial: false })).toMatchObject({
      write: true,
      loaded: false,
    });
    expect(resultsDecision({ samples: loaded, loaded: false, partial: false })).toMatchObject({
      write: false,
      loaded: true,
    });
    expect(resultsDecision({ samples: loaded, loaded: true, partial: false })).toMatchObject({
      write: true,
      loaded: true,
    });
    expect(resultsDecision({ samples: [], loaded: false, partial: false }).write).toBe(false);
  });

  test('a partial run (--only) never replaces results.json', () => {
    expect(resultsDecision({ samples: quiet, loaded: true, partial: true }).write).toBe(false);
  });

  test('the sampler reads at start and at stop, and every interval between', async () => {
    let n = 0;
    const sampler = startLoadSampler(20, () => ++n);
    await new Promise((resolve) => setTimeout(resolve, 70));
    const s = sampler.stop();
    expect(s.n).toBeGreaterThanOrEqual(3);
    expect(s.min).toBe(1);
    expect(sampler.samples.map((x) => x.load1)).toEqual(Array.from({ length: s.n }, (_, i) => i + 1));
  });
});

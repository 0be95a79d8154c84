/**
 * Run by robustness.test.ts in a plain Node process: evaluate() optimized on the unlisted-action
 * path, then sent back through Cedar, many times. Prints the decisions seen.
 */
import { repoEngine, request } from './builders.js';

const engine = repoEngine();
const listed = request('slack.msg.post', { riskScore: 4, labels: { env: 'prod' } });
const unlisted = request('unknown.do.something', { riskScore: 2 });
const decisions = new Set<string>();
const phases = [
  [listed, 3_000],
  [unlisted, 40_000],
  [listed, 3_000],
  [unlisted, 40_000],
  [{ ...listed, riskScore: 8 }, 3_000],
] as const;

for (const [req, times] of phases) {
  for (let i = 0; i < times; i++) decisions.add(engine.evaluate({ ...req, now: new Date() }).decision);
}
process.stdout.write(`${[...decisions].sort().join(',')}\n`);

/**
 * Run by robustness.test.ts in a plain Node process: evaluate() gets optimized on the
 * unlisted-action path, then goes back through Cedar. Prints the decisions seen.
 */
import { repoEngine } from './builders.js';

const engine = repoEngine();
const base = {
  tenantId: 'tenant1',
  agentId: 'agent-1',
  resource: 'PROJ-1',
  riskFactors: ['external'],
  labels: { env: 'prod', team: 'a' },
  userId: 'u1',
  sessionId: 's1',
  now: new Date(),
};
const decisions = new Set<string>();
const phases: Array<['listed' | 'unlisted' | 'risky', number]> = [
  ['listed', 3_000],
  ['unlisted', 40_000],
  ['listed', 3_000],
  ['unlisted', 40_000],
  ['risky', 3_000],
];

for (const [kind, times] of phases) {
  for (let i = 0; i < times; i++) {
    const req =
      kind === 'unlisted'
        ? { ...base, tool: 'unknown', action: 'do.something', riskScore: 2 }
        : { ...base, tool: 'slack', action: 'msg.post', riskScore: kind === 'risky' ? 8 : 4 };
    decisions.add(engine.evaluate(req).decision);
  }
}
process.stdout.write(`${[...decisions].sort().join(',')}\n`);

/**
 * Replay evaluates each distinct policy input once (functions/core/replay.ts `memoized`): exact
 * only if every input that can change a decision is in the key, the time included when a policy
 * reads it.
 */
import { createPolicyEngine } from '../../functions/core/policy.js';
import { memoized } from '../../functions/core/replay.js';
import { bundleWith, repoEngine, request } from './builders.js';

const monday = new Date('2026-01-05T09:00:00Z');
const tuesday = new Date('2026-01-06T09:00:00Z');

describe('memoized policy evaluation', () => {
  it('reuses a decision across times when no policy reads the time', () => {
    const engine = memoized(repoEngine());

    expect(repoEngine().readsTime).toBe(false);
    expect(engine.evaluate(request('jira.issue.delete', { now: monday })).decision).toBe('approve');
    expect(engine.evaluate(request('jira.issue.delete', { now: tuesday })).decision).toBe('approve');
    expect(engine.evaluations).toBe(1);
  });

  it('keys on every input, and on the time when a policy reads it', () => {
    const timed = createPolicyEngine(
      bundleWith({
        extraPolicies: `
          @id("frozen-from-tuesday") @reason("changes are frozen")
          forbid (principal, action, resource) when { context.now >= datetime("2026-01-06T00:00:00Z") };`,
      }),
    );
    const engine = memoized(timed);

    expect(timed.readsTime).toBe(true);
    expect(engine.evaluate(request('slack.msg.post', { now: monday })).decision).toBe('allow');
    expect(engine.evaluate(request('slack.msg.post', { now: tuesday })).decision).toBe('deny');
    for (const change of [
      { riskScore: 6 },
      { tenantId: 'tenant2', riskScore: 4 },
      { labels: { env: 'prod' } },
      { riskFactors: ['x'] },
      { userId: 'u' },
      { sessionId: 's' },
      { agentId: 'other' },
      { resource: '#ops' },
    ])
      expect(engine.evaluate(request('slack.msg.post', { now: monday, ...change }))).toEqual(
        timed.evaluate(request('slack.msg.post', { now: monday, ...change })),
      );
    expect(engine.evaluations).toBe(10);
  });

  it('holds at most max inputs', () => {
    const engine = memoized(repoEngine(), 2);
    for (const riskScore of [1, 2, 3, 1]) engine.evaluate(request('slack.msg.post', { riskScore }));

    expect(engine.evaluations).toBe(4);
  });
});

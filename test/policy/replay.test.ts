/**
 * The pure half of `oc policy replay` (functions/core/replay.ts): a record it cannot process is
 * counted, never fatal; each distinct policy input is evaluated once (`memoized`), exact only if
 * every input that can change a decision is in the key: the tenant, agent and action, and every
 * context attribute the action's policies read (the time among them).
 */
import { createPolicyEngine } from '../../functions/core/policy.js';
import { decidedFixtureFact } from '../../bench/chain-fixture.js';
import { ACTION_SPECS } from '../../functions/connectors/registry.js';
import { memoized, ReplayDiff, replayFact } from '../../functions/core/replay.js';
import { buildRiskFloors } from '../../functions/core/risk.js';
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

  it('keys on every input the policies read, the time included', () => {
    const timed = createPolicyEngine(
      bundleWith({
        extraPolicies: `
          @id("frozen-from-tuesday") @reason("changes are frozen")
          forbid (principal, action, resource) when { context.now >= datetime("2026-01-06T00:00:00Z") };
          @id("reads-every-attribute") @reason("a test reads them all")
          forbid (principal, action, resource) when {
            context.resource_name == "never" || context.user_id == "never" ||
            context.session_id == "never" || context.risk_factors.contains("never") ||
            context.labels.hasTag("never")
          };`,
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

  it('shares a decision between requests that differ only in what no policy of the action reads', () => {
    const direct = repoEngine();
    const engine = memoized(direct);
    const calls = [
      request('jira.issue.delete', { resource: 'OPS-1' }),
      request('jira.issue.delete', { resource: 'OPS-2', userId: 'u', sessionId: 's' }),
      request('jira.issue.delete', { resource: 'OPS-3', labels: { env: 'prod' }, riskFactors: ['x'] }),
    ];
    for (const call of calls) expect(engine.evaluate(call)).toEqual(direct.evaluate(call));
    expect(engine.evaluations).toBe(1);
    // What the action's policies read still tells decisions apart: risk, agent, tenant.
    for (const change of [{ riskScore: 9 }, { agentId: 'other' }, { tenantId: 'tenant2' }]) {
      const call = request('jira.issue.delete', change);
      expect(engine.evaluate(call)).toEqual(direct.evaluate(call));
    }
    expect(engine.evaluations).toBe(4);
  });

  it('decides a malformed request without remembering it', () => {
    const direct = repoEngine();
    const engine = memoized(direct);
    const bad = request('slack.msg.post', { resource: 42 as unknown as string });
    expect(direct.decisionKey!(bad)).toBeUndefined();
    expect(engine.evaluate(bad)).toEqual(direct.evaluate(bad));
    expect(engine.evaluate(bad).decision).toBe('deny');
    expect(engine.evaluations).toBe(2);
  });

  it('holds at most max inputs', () => {
    const engine = memoized(repoEngine(), 2);
    for (const riskScore of [1, 2, 3, 1]) engine.evaluate(request('slack.msg.post', { riskScore }));

    expect(engine.evaluations).toBe(4);
  });
});

describe('a decided fact replay cannot process', () => {
  const deps = {
    policy: repoEngine(),
    riskFloors: buildRiskFloors(ACTION_SPECS),
    actions: new Map(ACTION_SPECS.map((spec) => [spec.name, spec])),
  };
  const good = decidedFixtureFact('tenant1', 1);

  it('is counted and listed, and the others are replayed', () => {
    // A request that throws when read stands for what no check above foresaw.
    const throwing = Object.defineProperty({ ...(good.request as object) }, 'tool', {
      enumerable: true,
      get() {
        throw new Error('unreadable');
      },
    });
    const diff = new ReplayDiff(() => 'security');
    const broken = [
      { ...good, event_id: 'e-no-request', request: undefined },
      { ...good, event_id: 'e-bad-decision', decision: 'maybe' },
      { ...good, event_id: 'e-bad-time', at: 'yesterday' },
      { ...good, event_id: 'e-throwing', request: throwing },
    ];
    for (const fact of [good, ...broken, decidedFixtureFact('tenant1', 2)]) diff.add(replayFact(deps, fact));
    const report = diff.report({ dir: 'd', version: 'v' }, 's');

    expect(report.decisions).toBe(2);
    expect(report.unreplayable.count).toBe(4);
    expect(report.unreplayable.examples[3]).toMatchObject({
      eventId: 'e-throwing',
      problem: 'cannot be decided again: unreadable',
    });
    expect({ ...report.unreplayable, count: 3, examples: report.unreplayable.examples.slice(0, 3) }).toEqual({
      count: 3,
      examples: [
        { tenantId: 'tenant1', eventId: 'e-no-request', problem: 'the fact has no request' },
        {
          tenantId: 'tenant1',
          eventId: 'e-bad-decision',
          problem: 'the fact\'s decision "maybe" is not allow, approve or deny',
        },
        { tenantId: 'tenant1', eventId: 'e-bad-time', problem: 'the fact has no valid time' },
      ],
    });
  });

  it("whose request today's contract refuses is a transition to rejected, not a crash", () => {
    const request = { ...(good.request as object), tool: 5, labels: 'x' };

    expect(replayFact(deps, { ...good, request })).toMatchObject({
      before: good.decision,
      after: 'rejected',
    });
  });
});

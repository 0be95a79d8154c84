/**
 * The original Rego policy's 17 test cases, replayed against the Cedar policies
 * in policy/. The cases live in test/fixtures/policy-cases.json.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { repoEngine } from './builders.js';

const PolicyCase = z.strictObject({
  id: z.number().int(),
  name: z.string(),
  input: z.strictObject({
    tenant_id: z.string(),
    agent_id: z.string(),
    tool: z.string(),
    action: z.string(),
    risk_score: z.number().int(),
  }),
  expect: z.strictObject({
    decision: z.enum(['allow', 'deny', 'approve']),
    reason: z.string().optional(),
    requirements: z.record(z.string(), z.string()).optional(),
    min_notify_routes: z.number().int().optional(),
  }),
});
const fixture = z
  .object({ cases: z.array(PolicyCase) })
  .parse(JSON.parse(readFileSync(new URL('../fixtures/policy-cases.json', import.meta.url), 'utf8')));

describe('the original policy test cases (main_test.rego)', () => {
  it('are all 17 present', () => {
    expect(fixture.cases.map((c) => c.id)).toEqual(Array.from({ length: 17 }, (_, i) => 71 + i));
  });

  it.each(fixture.cases.map((c) => [`${c.id} ${c.name}`, c] as const))('%s', (_, { input, expect: want }) => {
    const decision = repoEngine().evaluate({
      tenantId: input.tenant_id,
      agentId: input.agent_id,
      tool: input.tool,
      action: input.action,
      resource: '',
      riskScore: input.risk_score,
      riskFactors: [],
      labels: {},
      userId: '',
      sessionId: '',
      now: new Date(),
    });

    expect(decision.decision).toBe(want.decision);
    if (want.reason !== undefined) expect(decision.reason).toBe(want.reason);
    if (want.requirements !== undefined) expect(decision.requirements).toEqual(want.requirements);
    if (want.min_notify_routes !== undefined) {
      expect(decision.notify.length).toBeGreaterThanOrEqual(want.min_notify_routes);
    }
  });
});

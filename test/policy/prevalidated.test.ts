import { createPolicyEngine, type PolicyRequest } from '../../functions/core/policy.js';
import { defaultPolicyDir, loadPolicyBundle } from '../../functions/store/policy-files.js';

const request = (tool: string, action: string, riskScore: number, tenantId = 'tenant1'): PolicyRequest => ({
  tenantId,
  agentId: 'agent-1',
  tool,
  action,
  resource: '',
  riskScore,
  riskFactors: [],
  labels: {},
  userId: '',
  sessionId: '',
  now: new Date('2025-01-01T00:00:00Z'),
});

describe('an engine built without re-validation (the deployed Lambda, validated at synth)', () => {
  const bundle = loadPolicyBundle(defaultPolicyDir());
  const validated = createPolicyEngine(bundle);
  const prevalidated = createPolicyEngine(bundle, { validate: false });

  it.each([
    ['slack', 'msg.post', 4],
    ['slack', 'msg.post', 6],
    ['slack', 'msg.post', 8],
    ['jira', 'issue.delete', 3],
    ['jira', 'issue.list', 1],
    ['unknown', 'thing', 2],
  ])('decides %s.%s at risk %i exactly as the validated engine', (tool, action, risk) => {
    expect(prevalidated.evaluate(request(tool, action, risk))).toEqual(
      validated.evaluate(request(tool, action, risk)),
    );
  });

  it('still refuses a policy that does not parse', () => {
    expect(() => createPolicyEngine({ ...bundle, policies: 'permit (' }, { validate: false })).toThrow();
  });
});

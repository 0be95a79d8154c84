import { mkdtempSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  compilePolicy,
  createPolicyEngine,
  policyEngineFrom,
  type PolicyRequest,
} from '../../functions/core/policy.js';
import {
  COMPILED_POLICY_FILE,
  defaultPolicyDir,
  loadCompiledPolicy,
  loadPolicyBundle,
} from '../../functions/store/policy-files.js';

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

/** Request shapes covering allow, approve (by risk and by action) and deny. */
const SHAPES = [
  ['slack', 'msg.post', 4],
  ['slack', 'msg.post', 6],
  ['slack', 'msg.post', 8],
  ['jira', 'issue.delete', 3],
  ['jira', 'issue.list', 1],
  ['unknown', 'thing', 2],
] as const;

describe('an engine built without re-validation (the deployed Lambda, validated at synth)', () => {
  const bundle = loadPolicyBundle(defaultPolicyDir());
  const validated = createPolicyEngine(bundle);
  const prevalidated = createPolicyEngine(bundle, { validate: false });

  it.each(SHAPES)('decides %s.%s at risk %i exactly as the validated engine', (tool, action, risk) => {
    expect(prevalidated.evaluate(request(tool, action, risk))).toEqual(
      validated.evaluate(request(tool, action, risk)),
    );
  });

  it('still refuses a policy that does not parse', () => {
    expect(() => createPolicyEngine({ ...bundle, policies: 'permit (' }, { validate: false })).toThrow();
  });
});

describe('the synth-time compilation (compiled.json beside the policy files)', () => {
  const bundle = loadPolicyBundle(defaultPolicyDir());
  const source = createPolicyEngine(bundle);
  const compiled = JSON.parse(JSON.stringify(compilePolicy(bundle))) as ReturnType<typeof compilePolicy>;

  it.each(SHAPES)(
    'decides %s.%s at risk %i after a JSON round trip exactly as the source',
    (tool, action, risk) => {
      expect(policyEngineFrom(compiled).evaluate(request(tool, action, risk))).toEqual(
        source.evaluate(request(tool, action, risk)),
      );
    },
  );

  it('is used only when it was compiled from exactly these files', () => {
    const dir = mkdtempSync(path.join(process.env.OC_TEST_TMP ?? tmpdir(), 'oc-compiled-'));
    cpSync(defaultPolicyDir(), dir, { recursive: true });
    expect(loadCompiledPolicy(dir, bundle.version)).toBeUndefined(); // none written yet
    writeFileSync(path.join(dir, COMPILED_POLICY_FILE), JSON.stringify(compiled));
    expect(loadCompiledPolicy(dir, bundle.version)?.version).toBe(bundle.version);
    // the policy files changed after the compilation: their digest differs, the file is ignored
    writeFileSync(path.join(dir, 'policies.cedar'), `${bundle.policies}\n`);
    expect(loadCompiledPolicy(dir, loadPolicyBundle(dir).version)).toBeUndefined();
  });

  it('refuses an unknown format', () => {
    expect(() => policyEngineFrom({ ...compiled, format: 'v0' as never })).toThrow(/format/);
  });
});

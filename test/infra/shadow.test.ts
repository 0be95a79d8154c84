/**
 * Shadow mode's deployment (issue 24): a candidate folder is packaged, compiled at synth, into the
 * functions that decide and named to them by OC_POLICY_SHADOW_DIR; `policyShadow: false`
 * (`-c policyShadow=off`) leaves it out; an invalid candidate fails synth. Without a candidate the
 * bundles are as before: test/infra/bundles.test.ts checks the default synth (no candidate anywhere).
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { createPolicyEngine, policyEngineFrom } from '../../functions/core/policy.js';
import { ENV, POLICY_DECIDERS, ROUTES } from '../../functions/shared/constants.js';
import {
  COMPILED_POLICY_FILE,
  loadCompiledPolicy,
  loadPolicyBundle,
  POLICY_FILES,
} from '../../functions/store/policy-files.js';
import { compiledPolicyDirs, LAMBDA_SHADOW_POLICY_DIR, OcFunction, REPO_ROOT } from '../../lib/function.js';
import { request } from '../policy/builders.js';
import { assetDirOf, lambdaFor, synthesize } from './synth.js';

// The synth-time compilations are temporary files (bin/app.ts removes them when `cdk synth` exits).
afterAll(() => {
  for (const dir of compiledPolicyDirs()) rmSync(dir, { recursive: true, force: true });
});

const FLIP = path.join(REPO_ROOT, 'test', 'fixtures', 'shadow-flip');
const ROUTE_HANDLERS = [...new Set(ROUTES.map((r) => r.handler))];
const shadowEnv = (template: ReturnType<typeof synthesize>['appTemplate'], handler: string): unknown =>
  lambdaFor(template, handler).resource.Properties.Environment?.Variables?.[ENV.policyShadowDir];

describe('shadow mode in the app stack', () => {
  it('names the candidate to the deciding functions only', () => {
    const { appTemplate } = synthesize({ policyShadowDir: FLIP });
    expect(POLICY_DECIDERS).toEqual(['submit-toolcall', 'mcp']);
    for (const handler of ROUTE_HANDLERS)
      expect([handler, shadowEnv(appTemplate, handler)]).toEqual([
        handler,
        POLICY_DECIDERS.includes(handler) ? LAMBDA_SHADOW_POLICY_DIR : undefined,
      ]);
  });

  it('policyShadow false (-c policyShadow=off) leaves the candidate out', () => {
    const { appTemplate } = synthesize({ policyShadowDir: FLIP, policyShadow: false });
    for (const handler of ROUTE_HANDLERS) expect(shadowEnv(appTemplate, handler)).toBeUndefined();
  });

  it('the repository ships no candidate: a default deploy has no shadow mode', () => {
    expect(existsSync(path.join(REPO_ROOT, 'policy', 'shadow'))).toBe(false);
  });

  it('an invalid candidate fails synth, naming the file', () => {
    const bad = mkdtempSync(path.join(process.env.OC_TEST_TMP ?? os.tmpdir(), 'shadow-bad-'));
    cpSync(FLIP, bad, { recursive: true });
    writeFileSync(path.join(bad, POLICY_FILES.tenants), '{"tenant1": {}}');
    expect(() => synthesize({ policyShadowDir: bad })).toThrow(/tenants\.json/);
    expect(() => synthesize({ policyShadowDir: path.join(bad, 'missing') })).toThrow(/does not exist/);
  });
});

describe('a deciding function bundled with a candidate', () => {
  let withShadow: string;
  beforeAll(() => {
    const app = new App({
      outdir: mkdtempSync(path.join(process.env.OC_TEST_TMP ?? os.tmpdir(), 'cdk.out-')),
    });
    const stack = new Stack(app, 'ShadowBundle');
    const a = new OcFunction(stack, 'WithShadow', {
      handlerName: 'submit-toolcall',
      invocation: 'api',
      shadowPolicyDir: FLIP,
    });
    const assembly = app.synth();
    const template = JSON.parse(
      readFileSync(path.join(assembly.directory, 'ShadowBundle.template.json'), 'utf8'),
    ) as { Resources: Record<string, { Type: string; Properties: Record<string, any> }> };
    const s = { assemblyDir: assembly.directory } as Parameters<typeof assetDirOf>[0];
    const fnOf = (fn: OcFunction) =>
      template.Resources[stack.getLogicalId(fn.node.defaultChild as CfnElement)]!;
    withShadow = assetDirOf(s, 'ShadowBundle', fnOf(a));
  });

  it('carries the candidate as it is, beside the live folder, with its synth-time compilation', () => {
    const dir = path.join(withShadow, path.basename(LAMBDA_SHADOW_POLICY_DIR));
    expect(readdirSync(dir).sort()).toEqual([...Object.values(POLICY_FILES), COMPILED_POLICY_FILE].sort());
    for (const f of Object.values(POLICY_FILES))
      expect(readFileSync(path.join(dir, f))).toEqual(readFileSync(path.join(FLIP, f)));
    const bundle = loadPolicyBundle(dir);
    const compiled = loadCompiledPolicy(dir, bundle.version);
    expect(compiled?.version).toBe(bundle.version);
    const fromBuild = policyEngineFrom(compiled!);
    const fromSource = createPolicyEngine(bundle);
    for (const [toolAction, riskScore] of [
      ['slack.msg.post', 1],
      ['jira.issue.delete', 3],
      ['unknown.thing', 2],
    ] as const)
      expect(fromBuild.evaluate(request(toolAction, { riskScore }))).toEqual(
        fromSource.evaluate(request(toolAction, { riskScore })),
      );
    // The live folder packaged is the live policy only.
    expect(existsSync(path.join(withShadow, 'policy', 'shadow'))).toBe(false);
  });
});

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import path from 'node:path';
import {
  CONNECTORS,
  ENV,
  FUNCTION_URLS,
  ROUTES,
  lambdaOf,
  SCHEDULES,
  STACKS,
  STREAM_CONSUMERS,
} from '../../functions/shared/constants.js';
import { createPolicyEngine, policyEngineFrom } from '../../functions/core/policy.js';
import {
  COMPILED_POLICY_FILE,
  loadCompiledPolicy,
  loadPolicyBundle,
} from '../../functions/store/policy-files.js';
import { REPO_ROOT } from '../../lib/function.js';
import { request } from '../policy/builders.js';
import { assetDirOf, lambdaFor, synthesize, type Synthesized } from './synth.js';

let s: Synthesized;
beforeAll(() => {
  s = synthesize({}, undefined, { bundle: true });
});

const HANDLERS = [
  ...new Set(ROUTES.map((r) => lambdaOf(r.handler))),
  ...FUNCTION_URLS.map((f) => f.handler),
  ...CONNECTORS.map((c) => `connector-${c}`),
  ...STREAM_CONSUMERS.map((c) => c.handler),
  ...SCHEDULES.map((c) => c.handler),
];
const CEDAR = '@cedar-policy/cedar-wasm';
const assetOf = (handler: string) => assetDirOf(s, STACKS.app, lambdaFor(s.appTemplate, handler).resource);
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(path.join(dir, f)).isFile())
    .sort();

describe('Lambda bundles', () => {
  it('console carries the built console (page, script, style), which its handler serves', () => {
    const files = filesUnder(path.join(assetOf('console'), 'console'));
    expect(files).toEqual(expect.arrayContaining(['index.html', 'assets/app.js', 'assets/app.css']));
    expect(readFileSync(path.join(assetOf('console'), 'console', 'index.html'), 'utf8')).toContain(
      '/console/assets/app.js',
    );
  });

  // Lambda resolves a bare import from the asset folder (and its runtime's own packages, which
  // this code does not rely on): a static import of a package the asset does not carry fails
  // every cold start with ERR_MODULE_NOT_FOUND. (Lazy `import()` of an external is the way to
  // keep a package out of a bundle.) Found by bench/cold-start.ts on assets outside the repository.
  it.each(HANDLERS)('%s statically imports only Node built-ins and packages its asset carries', (handler) => {
    const dir = assetOf(handler);
    const code = readFileSync(path.join(dir, 'index.mjs'), 'utf8');
    const specifiers = [
      ...code.matchAll(/(?:^|[;}\n])\s*import\s*(?:[\w$*{},\s]+?\s*from\s*)?["']([^"']+)["']/g),
    ].map((m) => m[1]!);
    const missing = specifiers.filter((spec) => {
      if (spec.startsWith('node:') || isBuiltin(spec) || spec.startsWith('.')) return false;
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      return !existsSync(path.join(dir, 'node_modules', pkg, 'package.json'));
    });
    expect(missing).toEqual([]);
  });

  it.each(HANDLERS)('%s is one minified ESM file with a source map, without Docker', (handler) => {
    const dir = assetOf(handler);
    const code = readFileSync(path.join(dir, 'index.mjs'), 'utf8');
    expect(
      code.startsWith(
        "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
      ),
    ).toBe(true);
    expect(code).toMatch(/export\s*\{[^}]*\bas handler\b/);
    expect(code).toContain('//# sourceMappingURL=index.mjs.map');
    expect(existsSync(path.join(dir, 'index.mjs.map'))).toBe(true);
  });

  it.each(HANDLERS)(
    "%s takes its AWS credentials from the function's environment only (no profile, SSO or metadata chain)",
    (handler) => {
      const code = readFileSync(path.join(assetOf(handler), 'index.mjs'), 'utf8');
      // functions/shared/lambda-credentials.ts stands in for @aws-sdk/credential-provider-node.
      expect(code).not.toContain('defaultProvider::fromSSO');
      expect(code).not.toContain('defaultProvider::fromEnv');
      expect(code).toContain('AWS_SECRET_ACCESS_KEY');
    },
  );

  it.each(HANDLERS)('%s is at most 1 MB (Cedar counted apart)', (handler) => {
    const size = statSync(path.join(assetOf(handler), 'index.mjs')).size;
    // zod is imported as `import * as z from 'zod'` so that esbuild shakes its locales and JSON
    // Schema code (`import { z }` pulls the whole namespace object in: ~450 KB instead of ~100 KB).
    expect(size).toBeLessThanOrEqual(1_000_000);
  });

  it.each(HANDLERS)('%s carries the policy folder as it is in the repository', (handler) => {
    const policy = path.join(assetOf(handler), 'policy');
    const packaged = filesUnder(policy).filter((f) => f !== COMPILED_POLICY_FILE);
    expect(packaged).toEqual(filesUnder(path.join(REPO_ROOT, 'policy')));
    for (const f of packaged) {
      expect(readFileSync(path.join(policy, f))).toEqual(readFileSync(path.join(REPO_ROOT, 'policy', f)));
    }
  });

  it.each(HANDLERS)(
    '%s carries no shadow candidate and is named none: without policy/shadow/ nothing changes',
    (handler) => {
      expect(existsSync(path.join(assetOf(handler), 'policy-shadow'))).toBe(false);
      expect(
        lambdaFor(s.appTemplate, handler).resource.Properties.Environment?.Variables?.[ENV.policyShadowDir],
      ).toBeUndefined();
    },
  );

  it.each(HANDLERS)('%s carries the Cedar package exactly when its bundle imports it', (handler) => {
    const dir = assetOf(handler);
    const imports = readFileSync(path.join(dir, 'index.mjs'), 'utf8').includes(CEDAR);
    expect(existsSync(path.join(dir, 'node_modules', CEDAR, 'nodejs', 'cedar_wasm_bg.wasm'))).toBe(imports);
  });

  it.each(HANDLERS)(
    '%s carries the synth-time policy compilation exactly when it imports Cedar',
    (handler) => {
      const dir = assetOf(handler);
      const imports = readFileSync(path.join(dir, 'index.mjs'), 'utf8').includes(CEDAR);
      expect(existsSync(path.join(dir, 'policy', COMPILED_POLICY_FILE))).toBe(imports);
    },
  );

  // Execute re-checks an approval granted under another policy version (issue 24): it loads the
  // engine too, from the same compilation, whose version must be the packaged folder's digest.
  it.each(['submit-toolcall', 'execute-toolcall'])(
    "%s's compilation is of the packaged files, and the engine built from it decides as the source does",
    (handler) => {
      const policyDir = path.join(assetOf(handler), 'policy');
      const bundle = loadPolicyBundle(policyDir);
      const compiled = loadCompiledPolicy(policyDir, bundle.version);
      expect(compiled?.version).toBe(bundle.version);
      const fromBuild = policyEngineFrom(compiled!);
      const fromSource = createPolicyEngine(bundle);
      for (const [toolAction, riskScore] of [
        ['slack.msg.post', 2],
        ['slack.msg.post', 8],
        ['jira.issue.delete', 3],
        ['jira.issue.list', 1],
        ['unknown.thing', 2],
      ] as const) {
        const req = request(toolAction, { riskScore });
        expect(fromBuild.evaluate(req)).toEqual(fromSource.evaluate(req));
      }
    },
  );

  it.each(['submit-toolcall', 'execute-toolcall', 'mcp'])(
    '%s evaluates policy, so its bundle imports Cedar',
    (handler) => {
      expect(readFileSync(path.join(assetOf(handler), 'index.mjs'), 'utf8')).toContain(CEDAR);
    },
  );

  it('the Cedar copy in a bundle resolves and loads its wasm from the bundle folder', () => {
    const dir = assetOf('submit-toolcall');
    const requireFromBundle = createRequire(path.join(dir, 'index.mjs'));
    const resolved = requireFromBundle.resolve(`${CEDAR}/nodejs`);
    expect(resolved).toBe(path.join(dir, 'node_modules', CEDAR, 'nodejs', 'cedar_wasm.js'));
    const cedar = requireFromBundle(`${CEDAR}/nodejs`) as { getCedarVersion: () => string };
    expect(cedar.getCedarVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

/**
 * Shadow mode's cost (issue 24), with a candidate that decides every call otherwise than the live
 * policy (test/fixtures/shadow-flip: allow -> deny, deny -> approve, approve -> allow), so that
 * every call evaluates the candidate and writes its difference:
 *
 *  - latency: the same calls (allow, deny, approve in turn) on two local hosts of one DynamoDB
 *    Local, one with the candidate and one without, interleaved call by call so that both see the
 *    same machine; the figure is the p50 ratio. The sequencer is not run (the request path alone,
 *    as the governance-overhead figure), and each host's DynamoDB requests are counted: shadow
 *    mode must send exactly as many (its difference rides on the decision's one write).
 *  - cold start: the submit function bundled twice in a bare stack, with and without the
 *    candidate, each module-init measured as bench/cold-start.ts does for the app.
 *
 * Part of `npm run bench`; alone: `npx tsx bench/shadow.ts [calls] [cold-start runs]`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import type { LocalHost } from '../bin/local/host.js';
import { ENV } from '../functions/shared/constants.js';
import { OcFunction, REPO_ROOT } from '../lib/function.js';
import { measureColdStarts, type ColdStart } from './cold-start.js';
import { countingDocumentClient, percentile, totalRequests } from './instrument.js';

/** The candidate that flips every decision of the calls below. */
export const FLIP_CANDIDATE = path.join(REPO_ROOT, 'test', 'fixtures', 'shadow-flip');

const BODIES = [
  { tool: 'slack', action: 'msg.post', params: { channel: '#general', text: 'Hello' }, risk_score: 1 },
  { tool: 'unknown', action: 'thing', risk_score: 2 },
  { tool: 'jira', action: 'issue.delete', resource: 'OPS-1', params: {}, risk_score: 3 },
] as const;
const EXPECTED = ['allow', 'deny', 'approve'];

export interface ShadowLatency {
  count: number;
  plainP50: number;
  shadowP50: number;
  plainP95: number;
  shadowP95: number;
  /** DynamoDB requests per call, without and with shadow mode. */
  plainRequests: number;
  shadowRequests: number;
  /** Calls answered otherwise than the live policy decides, or not 200 (must be 0). */
  failures: number;
  /** Shadow differences found on the shadow host's event items (must equal its calls). */
  recorded: number;
  /** The added work alone: one candidate evaluation and its comparison, in process (µs, mean). */
  evaluationUs: number;
}

/** The candidate's evaluation as submit runs it, on the calls' requests, without I/O. */
async function evaluationMicros(iterations: number): Promise<number> {
  const { createPolicyEngine } = await import('../functions/core/policy.js');
  const { shadowEvaluate } = await import('../functions/core/shadow.js');
  const { defaultPolicyDir, loadPolicyBundle } = await import('../functions/store/policy-files.js');
  const live = createPolicyEngine(loadPolicyBundle(defaultPolicyDir()));
  const candidate = createPolicyEngine(loadPolicyBundle(FLIP_CANDIDATE));
  const requests = BODIES.map((b) => ({
    tenantId: 'tenant1',
    agentId: 'bench-shadow',
    tool: b.tool,
    action: b.action,
    resource: 'resource' in b ? b.resource : '',
    riskScore: b.risk_score,
    riskFactors: [],
    labels: {},
    userId: '',
    sessionId: '',
    now: new Date(),
  }));
  const decisions = requests.map((r) => live.evaluate(r));
  for (let i = 0; i < 1000; i++) shadowEvaluate(candidate, requests[i % 3]!, decisions[i % 3]!);
  const t = performance.now();
  for (let i = 0; i < iterations; i++) shadowEvaluate(candidate, requests[i % 3]!, decisions[i % 3]!);
  return ((performance.now() - t) * 1000) / iterations;
}

export async function measureShadowLatency(options: {
  dynamoEndpoint: string;
  count: number;
}): Promise<ShadowLatency> {
  const { startLocalHost } = await import('../bin/local/host.js');
  const { loadConfig } = await import('../functions/shared/config.js');
  const { ShadowDiffStore } = await import('../functions/store/shadow-diffs.js');
  const start = async (table: string, shadow: boolean) => {
    const counting = countingDocumentClient(options.dynamoEndpoint);
    const host = await startLocalHost({
      config: loadConfig({
        OC_TABLE_NAME: table,
        OC_DYNAMODB_ENDPOINT: options.dynamoEndpoint,
        OC_CONNECTORS_MODE: 'mock',
        OC_JWT_MODE: 'dev',
        OC_RATE_LIMIT_PER_SEC: '1000000',
        OC_RATE_LIMIT_BURST: '2000000',
        ...(shadow ? { OC_POLICY_SHADOW_DIR: FLIP_CANDIDATE } : { OC_POLICY_SHADOW: 'off' }),
      }),
      port: 0,
      consumers: false,
      overrides: { doc: counting.doc },
    });
    await host.state.apiKeys.put('sk-bench-shadow', { tenantId: 'tenant1' });
    return { host, counters: counting.counters };
  };
  const stamp = Date.now();
  const plain = await start(`oc-bench-shadow-off-${stamp}`, false);
  const shadowed = await start(`oc-bench-shadow-on-${stamp}`, true);
  let failures = 0;
  let seq = 0;
  const call = async (host: LocalHost, i: number): Promise<number> => {
    const t = performance.now();
    const r = await fetch(`${host.url}/v1/toolcalls`, {
      method: 'POST',
      headers: { 'X-API-Key': 'sk-bench-shadow', 'Content-Type': 'application/json' },
      body: JSON.stringify({
        agent_id: 'bench-shadow',
        idempotency_key: `shadow-${stamp}-${++seq}`,
        ...BODIES[i % BODIES.length],
      }),
    });
    const text = await r.text();
    const ms = performance.now() - t;
    if (r.status !== 200 || (JSON.parse(text) as { decision?: string }).decision !== EXPECTED[i % 3])
      failures += 1;
    return ms;
  };
  try {
    for (let i = 0; i < 30; i++) {
      await call(plain.host, i);
      await call(shadowed.host, i);
    }
    failures = 0;
    const before = [totalRequests(plain.counters), totalRequests(shadowed.counters)];
    const plainMs: number[] = [];
    const shadowMs: number[] = [];
    for (let i = 0; i < options.count; i++) {
      // Alternate which goes first, so neither always follows the other's write.
      if (i % 2 === 0) {
        plainMs.push(await call(plain.host, i));
        shadowMs.push(await call(shadowed.host, i));
      } else {
        shadowMs.push(await call(shadowed.host, i));
        plainMs.push(await call(plain.host, i));
      }
    }
    const requests = [
      totalRequests(plain.counters) - before[0]!,
      totalRequests(shadowed.counters) - before[1]!,
    ];
    let recorded = 0;
    const store = new ShadowDiffStore(shadowed.host.state.doc, shadowed.host.state.config.tableName);
    for await (const page of store.diffs('tenant1')) recorded += page.length;
    return {
      count: options.count,
      plainP50: percentile(plainMs, 50),
      shadowP50: percentile(shadowMs, 50),
      plainP95: percentile(plainMs, 95),
      shadowP95: percentile(shadowMs, 95),
      plainRequests: requests[0]! / options.count,
      shadowRequests: requests[1]! / options.count,
      failures,
      recorded: recorded - 30,
      evaluationUs: await evaluationMicros(20_000),
    };
  } finally {
    await plain.host.stop();
    await shadowed.host.stop();
  }
}

export interface ShadowColdStart {
  plain: ColdStart;
  shadow: ColdStart;
}

/** The submit function's module init with and without the candidate, bundled in a bare stack. */
export async function measureShadowColdStart(options: { runs: number }): Promise<ShadowColdStart> {
  // Under the repository's (ignored) cdk.out, as the app's assembly: a bundle resolves what it
  // leaves external (e.g. the Slack SDK, imported lazily) from the repository's node_modules.
  mkdirSync(path.join(REPO_ROOT, 'cdk.out'), { recursive: true });
  const outdir = mkdtempSync(path.join(REPO_ROOT, 'cdk.out', 'shadow-bench-'));
  try {
    const app = new App({ outdir });
    const stack = new Stack(app, 'OpenClauseShadowBench');
    // As deployed: connectors are Lambdas (an in-process registry would load the Slack SDK).
    const environment = {
      [ENV.connectorsMode]: 'live',
      [ENV.connectorFunctions]: JSON.stringify({ slack: 'oc-slack', jira: 'oc-jira' }),
    };
    new OcFunction(stack, 'Plain', { handlerName: 'submit-toolcall', invocation: 'api', environment });
    new OcFunction(stack, 'Shadow', {
      handlerName: 'submit-toolcall',
      invocation: 'api',
      environment,
      description: 'OpenClause submit-toolcall+shadow',
      shadowPolicyDir: FLIP_CANDIDATE,
    });
    app.synth();
    // One import of each per round, the two side by side, so a busy moment weighs on both alike.
    const plainMs: number[] = [];
    const shadowMs: number[] = [];
    let plain: ColdStart | undefined;
    let shadow: ColdStart | undefined;
    for (let i = 0; i < Math.max(1, options.runs); i++) {
      const results = await measureColdStarts({ cdkOut: outdir, runs: 1, stack: stack.stackName });
      plain = results.find((r) => r.fn === 'submit-toolcall');
      shadow = results.find((r) => r.fn === 'submit-toolcall+shadow');
      if (!plain || !shadow) throw new Error('the shadow cold-start stack lost a function');
      plainMs.push(plain.initMs.p50);
      shadowMs.push(shadow.initMs.p50);
    }
    const p50 = (xs: number[]) => percentile(xs, 50);
    plain = { ...plain!, initMs: { p50: p50(plainMs), max: Math.max(...plainMs) } };
    shadow = { ...shadow!, initMs: { p50: p50(shadowMs), max: Math.max(...shadowMs) } };
    return { plain, shadow };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Standalone: its own DynamoDB Local. */
async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 300);
  const runs = Number(process.argv[3] ?? 5);
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const { freePort, startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  try {
    const r = await measureShadowLatency({ dynamoEndpoint: dynamo.endpoint, count });
    console.log(
      `shadow mode, ${r.count} calls each (allow, deny, approve in turn, every one flipped by the candidate): ` +
        `without p50 ${r.plainP50.toFixed(1)} ms (p95 ${r.plainP95.toFixed(1)}), with p50 ${r.shadowP50.toFixed(1)} ms ` +
        `(p95 ${r.shadowP95.toFixed(1)}): ${(r.shadowP50 / r.plainP50).toFixed(3)}×; DynamoDB requests per call ` +
        `${r.plainRequests.toFixed(2)} without, ${r.shadowRequests.toFixed(2)} with; ${r.recorded} differences recorded; ${r.failures} failures; ` +
        `the candidate's evaluation alone ${r.evaluationUs.toFixed(1)} µs per call`,
    );
  } finally {
    await dynamo.stop();
  }
  const c = await measureShadowColdStart({ runs });
  console.log(
    `submit-toolcall cold start, ${runs} runs: init p50 ${c.plain.initMs.p50.toFixed(1)} ms without a candidate, ` +
      `${c.shadow.initMs.p50.toFixed(1)} ms with one (+${(c.shadow.initMs.p50 - c.plain.initMs.p50).toFixed(1)} ms); ` +
      `bundle ${c.plain.bundleBytes} / ${c.shadow.bundleBytes} bytes`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

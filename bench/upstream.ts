/**
 * Upstream MCP calls' cost (issue 25), beside a native mock-connector call:
 *
 *  - latency: allowed calls over POST /v1/toolcalls on one local host, alternating call by call
 *    between the native mock connector (slack msg.post) and the generic MCP-client connector
 *    calling a real upstream on loopback (test/support/mcp-upstreams.ts, the official SDK's
 *    stateless server: `initialize` on every call, as a 2025-era upstream needs). The upstream's
 *    own handler time (measured in the upstream server, from each request's arrival to its
 *    answer's end, summed over the call's requests) is subtracted per call; the figure is the p50
 *    ratio. Until the catalog's routing exists (issue 25 deliverables 1-3), the gateway's invoker
 *    is given the upstream route with a fixed resolver: the submitted call is the native one, and
 *    the invoker runs it as `up.echo` through the in-process registry (`withUpstreamConnector`),
 *    exactly where the catalog's route will send an upstream call.
 *  - cold start: the connector's Lambda bundled in a bare stack beside the template connector,
 *    each module-init measured as bench/cold-start.ts does for the app.
 *  - cost: what an upstream call adds to an allowed call: the connector Lambda's duration (the
 *    connector's measured time on loopback, which a remote upstream lengthens) instead of a
 *    native connector's, one catalog read; and what `-c upstreamVpc` adds to the idle cost.
 *
 * Part of `npm run bench`; alone: `npx tsx bench/upstream.ts [calls] [cold-start runs]`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import type { ConnectorInvoker, ConnectorRequest } from '../functions/connectors/types.js';
import { OcFunction, REPO_ROOT } from '../lib/function.js';
import { measureColdStarts, type ColdStart } from './cold-start.js';
import { PRICES, costPerMillion, type CallCounts, type PathCost } from './cost.js';
import { percentile } from './instrument.js';

export interface UpstreamLatency {
  count: number;
  nativeP50: number;
  /** The upstream call through the gateway, whole. */
  upstreamP50: number;
  /** The same less the upstream's own handler time, per call. */
  upstreamNetP50: number;
  upstreamHandlerP50: number;
  /** The connector alone (`ExecutionResult.duration_ms`), p50: what its Lambda would bill. */
  connectorP50: number;
  /** HTTP requests the connector sends the upstream per call. */
  requestsPerCall: number;
  failures: number;
}

const BODY = {
  tool: 'slack',
  action: 'msg.post',
  params: { channel: '#general', text: 'Hello' },
  risk_score: 1,
};

export async function measureUpstreamLatency(options: {
  dynamoEndpoint: string;
  count: number;
}): Promise<UpstreamLatency> {
  const { startLocalHost } = await import('../bin/local/host.js');
  const { loadConfig } = await import('../functions/shared/config.js');
  const { connectorRegistry } = await import('../functions/connectors/registry.js');
  const { upstreamRoute, withUpstreamConnector } =
    await import('../functions/connectors/upstream-registry.js');
  const { createLocalInvoker } = await import('../functions/store/connector-invoker.js');
  const { startSmallUpstream, fixedResolver, targetFor } = await import('../test/support/mcp-upstreams.js');

  const upstream = await startSmallUpstream();
  const native = connectorRegistry({ env: { OC_CONNECTORS_MODE: 'mock' } });
  const nativeInvoker = createLocalInvoker(native);
  const upstreamInvoker = createLocalInvoker(
    withUpstreamConnector(native, {
      resolve: fixedResolver([targetFor(upstream.url, 'echo', { tenantId: 'tenant1', server: 'up' })]),
      allowPrivate: true,
    }),
    upstreamRoute((tenant, tool) => tenant === 'tenant1' && tool === 'up'),
  );
  let mode: 'native' | 'upstream' = 'native';
  const connectorMs: number[] = [];
  const invoker: ConnectorInvoker = {
    async invoke(req: ConnectorRequest, opts) {
      if (mode === 'native') return nativeInvoker.invoke(req, opts);
      const text = typeof req.params.text === 'string' ? req.params.text : '';
      const result = await upstreamInvoker.invoke(
        { ...req, tool: 'up', action: 'echo', params: { text } },
        opts,
      );
      connectorMs.push(result.duration_ms);
      return result;
    },
  };
  const host = await startLocalHost({
    config: loadConfig({
      OC_TABLE_NAME: `oc-bench-upstream-${Date.now()}`,
      OC_DYNAMODB_ENDPOINT: options.dynamoEndpoint,
      OC_CONNECTORS_MODE: 'mock',
      OC_JWT_MODE: 'dev',
      OC_RATE_LIMIT_PER_SEC: '1000000',
      OC_RATE_LIMIT_BURST: '2000000',
      OC_POLICY_SHADOW: 'off',
    }),
    port: 0,
    consumers: false,
    overrides: { connectors: invoker },
  });
  await host.state.apiKeys.put('sk-bench-upstream', { tenantId: 'tenant1' });
  let seq = 0;
  let failures = 0;
  const stamp = Date.now();
  const call = async (which: 'native' | 'upstream') => {
    mode = which;
    const busy = upstream.busyMs;
    const t = performance.now();
    const r = await fetch(`${host.url}/v1/toolcalls`, {
      method: 'POST',
      headers: { 'X-API-Key': 'sk-bench-upstream', 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent_id: 'bench-upstream', idempotency_key: `up-${stamp}-${++seq}`, ...BODY }),
    });
    const text = await r.text();
    const ms = performance.now() - t;
    const answer = JSON.parse(text) as { decision?: string; result?: { status?: string } };
    if (r.status !== 200 || answer.decision !== 'allow' || answer.result?.status !== 'success') failures += 1;
    return { ms, handlerMs: upstream.busyMs - busy };
  };
  try {
    for (let i = 0; i < 30; i++) {
      await call('native');
      await call('upstream');
    }
    failures = 0;
    connectorMs.length = 0;
    const posts = upstream.headers.length;
    const nativeMs: number[] = [];
    const upstreamMs: number[] = [];
    const netMs: number[] = [];
    const handlerMs: number[] = [];
    for (let i = 0; i < options.count; i++) {
      const order = i % 2 === 0 ? (['native', 'upstream'] as const) : (['upstream', 'native'] as const);
      for (const which of order) {
        const r = await call(which);
        if (which === 'native') nativeMs.push(r.ms);
        else {
          upstreamMs.push(r.ms);
          handlerMs.push(r.handlerMs);
          netMs.push(r.ms - r.handlerMs);
        }
      }
    }
    return {
      count: options.count,
      nativeP50: percentile(nativeMs, 50),
      upstreamP50: percentile(upstreamMs, 50),
      upstreamNetP50: percentile(netMs, 50),
      upstreamHandlerP50: percentile(handlerMs, 50),
      connectorP50: percentile(connectorMs, 50),
      requestsPerCall: (upstream.headers.length - posts) / options.count,
      failures,
    };
  } finally {
    await host.stop();
    await upstream.close();
  }
}

/**
 * An upstream call's cost per million: an allowed call's `base` counts with the native
 * connector's invocation replaced by the upstream connector's (its measured duration) and one
 * catalog read (a strongly consistent GetItem under 4 KB: 1 RRU; the credential's secret is
 * cached by the warm instance, 5 minutes, so its API calls are left out).
 */
export function upstreamCostPerMillion(
  base: CallCounts,
  connector: { memoryMb: number; durationMs: number },
): PathCost {
  return costPerMillion({
    ...base,
    path: 'upstream',
    lambdaInvocations: [
      ...base.lambdaInvocations.filter((inv) => !inv.fn.startsWith('connector-')),
      { fn: 'connector-mcp-upstream', memoryMb: connector.memoryMb, durationMs: connector.durationMs },
    ],
    dynamo: { writeUnits: base.dynamo.writeUnits, readUnits: base.dynamo.readUnits + 1 },
  });
}

/** What `-c upstreamVpc` adds per month: the operator's route out of the subnets. */
export function upstreamVpcIdlePerMonth(azs: number): { nat: number; endpoints: number } {
  const nat = PRICES.other['AWS::EC2::NatGateway'] ?? 0;
  // Interface endpoints (Secrets Manager, SSM) instead of NAT, for private-only upstreams:
  // $0.01 per hour per AZ each (the DynamoDB gateway endpoint is free).
  return { nat: nat * azs, endpoints: 2 * 0.01 * 730 * azs };
}

export interface UpstreamColdStart {
  upstream: ColdStart;
  template: ColdStart;
}

/** The connector Lambdas' module init, bundled in a bare stack as deployed. */
export async function measureUpstreamColdStart(options: { runs: number }): Promise<UpstreamColdStart> {
  mkdirSync(path.join(REPO_ROOT, 'cdk.out'), { recursive: true });
  const outdir = mkdtempSync(path.join(REPO_ROOT, 'cdk.out', 'upstream-bench-'));
  try {
    const app = new App({ outdir });
    const stack = new Stack(app, 'OpenClauseUpstreamBench');
    new OcFunction(stack, 'Upstream', { handlerName: 'connector-mcp-upstream', invocation: 'lambda-sync' });
    new OcFunction(stack, 'Template', { handlerName: 'connector-template', invocation: 'lambda-sync' });
    app.synth();
    const upstreamMs: number[] = [];
    const templateMs: number[] = [];
    let upstream: ColdStart | undefined;
    let template: ColdStart | undefined;
    for (let i = 0; i < Math.max(1, options.runs); i++) {
      const results = await measureColdStarts({ cdkOut: outdir, runs: 1, stack: stack.stackName });
      upstream = results.find((r) => r.fn === 'connector-mcp-upstream');
      template = results.find((r) => r.fn === 'connector-template');
      if (!upstream || !template) throw new Error('the upstream cold-start stack lost a function');
      upstreamMs.push(upstream.initMs.p50);
      templateMs.push(template.initMs.p50);
    }
    return {
      upstream: { ...upstream!, initMs: { p50: percentile(upstreamMs, 50), max: Math.max(...upstreamMs) } },
      template: { ...template!, initMs: { p50: percentile(templateMs, 50), max: Math.max(...templateMs) } },
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Standalone: its own DynamoDB Local. */
async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 200);
  const runs = Number(process.argv[3] ?? 5);
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const { freePort, startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  let r: UpstreamLatency;
  try {
    r = await measureUpstreamLatency({ dynamoEndpoint: dynamo.endpoint, count });
  } finally {
    await dynamo.stop();
  }
  console.log(
    `upstream vs native, ${r.count} allowed calls each, interleaved: native p50 ${r.nativeP50.toFixed(1)} ms; ` +
      `upstream p50 ${r.upstreamP50.toFixed(1)} ms whole, upstream handler p50 ${r.upstreamHandlerP50.toFixed(1)} ms, ` +
      `less the handler p50 ${r.upstreamNetP50.toFixed(1)} ms: ${(r.upstreamNetP50 / r.nativeP50).toFixed(2)}× (goal ≤ 1.5); ` +
      `connector p50 ${r.connectorP50.toFixed(1)} ms; ${r.requestsPerCall.toFixed(2)} HTTP requests to the upstream per call; ${r.failures} failures`,
  );
  const c = await measureUpstreamColdStart({ runs });
  console.log(
    `cold start, ${runs} runs: connector-mcp-upstream ${c.upstream.bundleBytes} bytes, init p50 ${c.upstream.initMs.p50.toFixed(1)} ms; ` +
      `connector-template ${c.template.bundleBytes} bytes, init p50 ${c.template.initMs.p50.toFixed(1)} ms`,
  );
  const vpc = upstreamVpcIdlePerMonth(2);
  console.log(
    `idle: the function adds one alarm on its own errors ($0.10/month), no provisioned concurrency; with -c upstreamVpc in 2 AZs the operator's route out adds ` +
      `$${vpc.nat.toFixed(2)}/month with a NAT gateway per AZ, or $${vpc.endpoints.toFixed(2)}/month with Secrets Manager + SSM interface endpoints`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

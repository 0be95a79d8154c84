/**
 * Cold-start figures of the synthesized app: for every Lambda of the app stack, the size of its
 * bundle (`index.mjs`; Cedar's wasm counted apart) and the module-init time of that bundle in a
 * fresh Node process: `performance.now()` around `await import(<asset>/index.mjs)`, with the
 * function's own environment from the template and the variables Lambda sets, so that module-scope
 * init (`warmInLambda`: configuration, clients, Cedar and the policy) runs as it does in Lambda.
 *
 * No network: intrinsic values in the environment become dummies, credentials are dummies, the
 * connectors' cold-start secret read goes to a loopback stand-in, and the child process refuses any
 * other socket, DNS and fetch, so an init that would reach AWS fails the run.
 * It reads an existing cloud assembly (`npm run synth` first).
 *
 * First decision (issue 26): for the functions that decide a call as their first request (submit,
 * MCP), the same fresh process then answers one allowed call through the bundle's own `handler`,
 * as API Gateway would send it: the API key, the rate limit and the
 * decision in a real DynamoDB Local on loopback (a table of its own, the key seeded), the connector
 * a loopback Lambda `Invoke` stand-in. Init plus that answer is the latency the first caller of a
 * cold container sees, less the network; Cedar compiles the wasm code it runs lazily, so a good
 * part of a first decision is init that only the first call pays.
 *
 * Alone: `npx tsx bench/cold-start.ts [--cdk-out cdk.out] [--runs 10] [--only execute-toolcall,submit-toolcall]`
 * prints a markdown table (`--only`: just those functions); it starts its own DynamoDB Local for
 * the first decisions.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { STACKS } from '../functions/shared/constants.js';
import { ApiKeyStore } from '../functions/store/api-keys.js';
import { createDocumentClient } from '../functions/store/dynamo.js';
import { ensureTable } from '../functions/store/table.js';

export interface ColdStart {
  /** Handler name (`submit-toolcall`), from the function's description; else its logical id. */
  fn: string;
  logicalId: string;
  /** Size of `index.mjs`. */
  bundleBytes: number;
  /** Size of the `.wasm` files packaged beside the bundle (Cedar), counted apart. */
  wasmBytes: number;
  /** Time of `await import(index.mjs)` in a fresh process, over `runs` processes. */
  initMs: { p50: number; max: number };
  /**
   * Init plus the answer to one allowed call in the same fresh process (functions that decide a
   * call as their first request only; see FIRST_DECISIONS).
   */
  firstDecisionMs?: { p50: number; max: number };
}

/** The agent key each first-decision table holds (tenant1's). */
const FIRST_DECISION_KEY = 'sk-bench-cold-start';
const ALLOWED_ARGS = { channel: '#general', text: 'Hello' };

/**
 * The first request of a cold container that decides a call, by function: an allowed
 * `slack.msg.post` of tenant1 (the governance-overhead figure's call), REST or MCP 2026-07-28.
 * `expect` must appear in the 200 answer. Execute is not here: it decides nothing unless the
 * approval it runs was granted under another policy version, and its first request needs one.
 */
const FIRST_DECISIONS: Record<
  string,
  (run: number) => {
    method: string;
    path: string;
    headers: Record<string, string>;
    body: unknown;
    expect: string;
  }
> = {
  'submit-toolcall': (run) => ({
    method: 'POST',
    path: '/v1/toolcalls',
    headers: { 'content-type': 'application/json', 'x-api-key': FIRST_DECISION_KEY },
    body: {
      agent_id: 'agent-1',
      tool: 'slack',
      action: 'msg.post',
      params: ALLOWED_ARGS,
      risk_score: 1,
      idempotency_key: `cold-${Date.now()}-${run}`,
    },
    expect: '"decision":"allow"',
  }),
  mcp: (run) => ({
    method: 'POST',
    path: '/mcp',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'x-api-key': FIRST_DECISION_KEY,
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'slack_msg_post',
      'mcp-param-channel': ALLOWED_ARGS.channel,
    },
    body: {
      jsonrpc: '2.0',
      // Each run a new request id: a new governed call (its idempotency key is derived from it).
      id: Date.now() * 100 + run,
      method: 'tools/call',
      params: {
        name: 'slack_msg_post',
        arguments: ALLOWED_ARGS,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    },
    expect: '"structuredContent"',
  }),
};

/** An API Gateway HTTP API (payload 2.0) event for a first-decision request. */
function httpEvent(req: ReturnType<(typeof FIRST_DECISIONS)[string]>): unknown {
  const now = new Date();
  const body = JSON.stringify(req.body);
  return {
    version: '2.0',
    routeKey: `${req.method} ${req.path}`,
    rawPath: req.path,
    rawQueryString: '',
    headers: { host: 'bench.execute-api.us-east-1.amazonaws.com', ...req.headers },
    body: Buffer.from(body).toString('base64'),
    isBase64Encoded: true,
    requestContext: {
      accountId: '123456789012',
      apiId: 'bench',
      domainName: 'bench.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'bench',
      http: {
        method: req.method,
        path: req.path,
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'bench',
      },
      requestId: `bench-${now.getTime()}`,
      routeKey: `${req.method} ${req.path}`,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
  };
}

type Intrinsic = string | number | boolean | null | { [k: string]: unknown } | Intrinsic[];
interface LambdaResource {
  Type: string;
  Properties: {
    Code?: { S3Key?: unknown };
    Handler?: string;
    Description?: string;
    MemorySize?: number;
    Environment?: { Variables?: Record<string, Intrinsic> };
  };
}

/** Where Lambda unpacks the code; template values under it are rewritten to the asset folder. */
const TASK_ROOT = '/var/task';
const MARK = '@@cold-start ';

export async function measureColdStarts(opts: {
  cdkOut: string;
  runs: number;
  /** Only these functions (handler names); default every bundled one. */
  only?: readonly string[];
  /** Another stack of the assembly (bench/shadow.ts: its bare stack of deciding functions). */
  stack?: string;
  /**
   * A DynamoDB Local (loopback) for the first decisions of the deciding functions; without it,
   * init only.
   */
  dynamoEndpoint?: string;
}): Promise<ColdStart[]> {
  const all = lambdasOf(opts.cdkOut, opts.stack);
  const lambdas = opts.only ? all.filter((fn) => opts.only!.includes(fn.name)) : all;
  const missing = (opts.only ?? []).filter((name) => !all.some((fn) => fn.name === name));
  if (missing.length > 0) throw new Error(`no bundled function named ${missing.join(', ')}`);
  const stubs = await startAwsStandIn();
  const results: ColdStart[] = [];
  try {
    for (const fn of lambdas) {
      const decides = opts.dynamoEndpoint && FIRST_DECISIONS[fn.name] ? FIRST_DECISIONS[fn.name] : undefined;
      const table = decides ? await firstDecisionTable(opts.dynamoEndpoint!, fn.name) : undefined;
      const samples: number[] = [];
      const firsts: number[] = [];
      for (let i = 0; i < Math.max(1, opts.runs); i++) {
        const once = await importOnce(
          fn,
          stubs.url,
          decides && table ? { table, endpoint: opts.dynamoEndpoint!, request: decides(i) } : undefined,
        );
        samples.push(once.ms);
        if (once.decisionMs !== undefined) firsts.push(once.ms + once.decisionMs);
      }
      results.push({
        fn: fn.name,
        logicalId: fn.logicalId,
        bundleBytes: statSync(fn.bundle).size,
        wasmBytes: filesUnder(fn.dir)
          .filter((f) => f.endsWith('.wasm'))
          .reduce((sum, f) => sum + statSync(f).size, 0),
        initMs: { p50: nearestRank(samples, 50), max: Math.max(...samples) },
        ...(firsts.length
          ? { firstDecisionMs: { p50: nearestRank(firsts, 50), max: Math.max(...firsts) } }
          : {}),
      });
    }
  } finally {
    await stubs.close();
  }
  return results;
}

/** A table of its own for a function's first decisions, with tenant1's agent key in it. */
async function firstDecisionTable(endpoint: string, fn: string): Promise<string> {
  const table = `oc-cold-start-${fn}`;
  const client = new DynamoDBClient({ endpoint });
  const doc = createDocumentClient({ endpoint });
  try {
    await ensureTable(client, table);
    await new ApiKeyStore(doc, table).put(FIRST_DECISION_KEY, { tenantId: 'tenant1' });
    // A fresh DynamoDB Local (its JVM) answers its first requests slowly: not the function's time.
    for (let i = 0; i < 50; i++)
      await doc.send(new PutCommand({ TableName: table, Item: { pk: 'bench#warm', sk: String(i % 5) } }));
  } finally {
    doc.destroy();
    client.destroy();
  }
  return table;
}

interface Lambda {
  logicalId: string;
  name: string;
  dir: string;
  bundle: string;
  env: Record<string, string>;
}

/** The app stack's functions that have a bundle, with the environment a cold start would see. */
function lambdasOf(cdkOut: string, stack: string = STACKS.app): Lambda[] {
  const templateFile = path.join(cdkOut, `${stack}.template.json`);
  const assetsFile = path.join(cdkOut, `${stack}.assets.json`);
  if (!existsSync(templateFile) || !existsSync(assetsFile)) {
    throw new Error(`no synthesized ${stack} in ${cdkOut}: run \`npm run synth\` first`);
  }
  const template = JSON.parse(readFileSync(templateFile, 'utf8')) as {
    Resources: Record<string, LambdaResource>;
  };
  const assets = JSON.parse(readFileSync(assetsFile, 'utf8')) as {
    files: Record<string, { source: { path: string } }>;
  };
  const lambdas: Lambda[] = [];
  for (const [logicalId, r] of Object.entries(template.Resources)) {
    if (r.Type !== 'AWS::Lambda::Function' || typeof r.Properties.Code?.S3Key !== 'string') continue;
    const source = assets.files[r.Properties.Code.S3Key.replace(/\.zip$/, '')]?.source.path;
    if (!source) continue;
    const dir = path.resolve(cdkOut, source);
    const bundle = path.join(dir, 'index.mjs');
    if (!existsSync(bundle)) continue;
    const name = /^OpenClause (\S+)$/.exec(r.Properties.Description ?? '')?.[1] ?? logicalId;
    const declared = Object.fromEntries(
      Object.entries(r.Properties.Environment?.Variables ?? {}).map(([k, v]) => [
        k,
        resolve(v).split(TASK_ROOT).join(dir),
      ]),
    );
    lambdas.push({
      logicalId,
      name,
      dir,
      bundle,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        // What the Lambda runtime sets (dummy credentials: nothing may reach AWS during init).
        AWS_REGION: 'us-east-1',
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_LAMBDA_FUNCTION_NAME: name,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(r.Properties.MemorySize ?? 128),
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${name}`,
        AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
        AWS_ACCESS_KEY_ID: 'bench',
        AWS_SECRET_ACCESS_KEY: 'bench',
        AWS_SESSION_TOKEN: 'bench',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_XRAY_DAEMON_ADDRESS: '127.0.0.1:2000',
        LAMBDA_TASK_ROOT: dir,
        _HANDLER: r.Properties.Handler ?? 'index.handler',
        TZ: ':UTC',
        ...declared,
      },
    });
  }
  if (lambdas.length === 0) throw new Error(`no bundled Lambda in ${templateFile}`);
  return lambdas;
}

const PSEUDO_PARAMETERS: Record<string, string> = {
  'AWS::Region': 'us-east-1',
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::AccountId': '123456789012',
  'AWS::Partition': 'aws',
  'AWS::StackName': 'OpenClauseApp',
};

/** A template value with CloudFormation intrinsics replaced by dummies of the right shape. */
function resolve(v: Intrinsic): string {
  if (v === null) return '';
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return v.map(resolve).join(',');
  const [fn, arg] = Object.entries(v)[0] ?? [];
  switch (fn) {
    case 'Ref':
      // Pseudo parameters as real ones look (an issuer URL built from them must parse); resources by id.
      return PSEUDO_PARAMETERS[String(arg)] ?? `bench-${String(arg)}`;
    case 'Fn::GetAtt': {
      // Attributes used as values here are URLs (an API endpoint) or names; a URL serves both.
      const [id, attr] = Array.isArray(arg) ? arg : String(arg).split('.');
      return `https://${String(id).toLowerCase()}-${String(attr).toLowerCase()}.bench.invalid`;
    }
    case 'Fn::ImportValue':
      return 'bench-imported';
    case 'Fn::Join': {
      const [sep, parts] = arg as [string, Intrinsic[]];
      return parts.map(resolve).join(sep);
    }
    case 'Fn::Sub':
      return String(Array.isArray(arg) ? arg[0] : arg).replace(
        /\$\{([^}]+)\}/g,
        (_m, name: string) => `bench-${name}`,
      );
    default:
      return JSON.stringify(v);
  }
}

/**
 * Runs in the fresh process: refuses the network, times the import, prints one marked line.
 * (The stubs are installed before the clock starts; the bundle's own imports are all timed.)
 */
const CHILD = `
import net from 'node:net';
import dgram from 'node:dgram';
import dns from 'node:dns';
const refuse = (what) => function () { throw new Error('cold-start bench: network access during init (' + what + ')'); };
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  // net.createConnection passes its normalized [options, callback] array as the first argument.
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const host = typeof first === 'object' && first !== null ? first.host : args[1];
  if (host !== '127.0.0.1') refuse('socket connect to ' + (host ?? 'localhost'))();
  return connect.apply(this, args);
};
dgram.Socket.prototype.send = refuse('udp send');
dns.lookup = refuse('dns lookup');
const realFetch = globalThis.fetch;
globalThis.fetch = function (input, init) {
  // Loopback only (the stand-ins): an SSM credential is read with a signed fetch, not an SDK client.
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  if (url.hostname !== '127.0.0.1') refuse('fetch to ' + url.hostname)();
  return realFetch(input, init);
};
const t0 = performance.now();
const bundle = await import(process.env.OC_BENCH_BUNDLE_URL);
const ms = performance.now() - t0;
let decisionMs;
let answer;
if (process.env.OC_BENCH_EVENT) {
  const name = process.env.AWS_LAMBDA_FUNCTION_NAME;
  const context = {
    functionName: name, functionVersion: '$LATEST', memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:' + name, awsRequestId: 'bench-cold-start',
    logGroupName: '/aws/lambda/' + name, logStreamName: 'bench', callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 10000,
  };
  const t1 = performance.now();
  answer = await bundle.handler(JSON.parse(process.env.OC_BENCH_EVENT), context);
  decisionMs = performance.now() - t1;
}
process.stdout.write('\\n${MARK}' + JSON.stringify({ ms, decisionMs, answer }) + '\\n', () => process.exit(0));
`;

/**
 * A loopback stand-in for SSM, Secrets Manager and Lambda: connector Lambdas read their credentials
 * at cold start (a missing secret fails the init), so GetParameter and GetSecretValue answer a secret holding every
 * connector's keys (`SECRET_KEYS` in functions/connectors/config.ts); a first decision's connector
 * `Invoke` answers a success. Its latency is loopback, not AWS's.
 */
const BENCH_SECRET = JSON.stringify({
  bot_token: 'xoxb-bench',
  base_url: 'https://bench.atlassian.net',
  email: 'bench@example.com',
  api_token: 'bench',
});

async function startAwsStandIn(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.method === 'POST' && /^\/2015-03-31\/functions\/[^/]+\/invocations$/.test(req.url ?? '')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ status: 'success', output: { ok: true, channel: '#general' } }));
        return;
      }
      const target = req.headers['x-amz-target'];
      const { SecretId, Name } = (body ? JSON.parse(body) : {}) as { SecretId?: string; Name?: string };
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      // Credentials are SSM SecureString parameters by default (issue 26), read with GetParameter.
      if (target === 'AmazonSSM.GetParameter' && Name) {
        res.end(
          JSON.stringify({
            Parameter: {
              Name,
              Type: 'SecureString',
              Value: BENCH_SECRET,
              Version: 1,
              ARN: `arn:aws:ssm:us-east-1:000000000000:parameter${Name}`,
            },
          }),
        );
        return;
      }
      if (target !== 'secretsmanager.GetSecretValue' || !SecretId) {
        res.statusCode = 400;
        res.end(
          JSON.stringify({ __type: 'InvalidRequestException', message: `unsupported ${String(target)}` }),
        );
        return;
      }
      res.end(
        JSON.stringify({
          ARN: `arn:aws:secretsmanager:us-east-1:000000000000:secret:${SecretId}`,
          Name: SecretId,
          SecretString: BENCH_SECRET,
          VersionId: 'bench',
          VersionStages: ['AWSCURRENT'],
          CreatedDate: Date.now() / 1000,
        }),
      );
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

function importOnce(
  fn: Lambda,
  standInUrl: string,
  first?: { table: string; endpoint: string; request: ReturnType<(typeof FIRST_DECISIONS)[string]> },
): Promise<{ ms: number; decisionMs?: number }> {
  return new Promise((resolvePromise, reject) => {
    const profile = process.env.OC_BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.OC_BENCH_CPU_PROF}`]
      : [];
    const child = spawn(process.execPath, [...profile, '--input-type=module', '-e', CHILD], {
      cwd: fn.dir,
      env: {
        ...fn.env,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: standInUrl,
        AWS_ENDPOINT_URL_SSM: standInUrl,
        AWS_ENDPOINT_URL_LAMBDA: standInUrl,
        OC_BENCH_BUNDLE_URL: pathToFileURL(fn.bundle).href,
        ...(first
          ? {
              OC_TABLE_NAME: first.table,
              OC_DYNAMODB_ENDPOINT: first.endpoint,
              OC_BENCH_EVENT: JSON.stringify(httpEvent(first.request)),
            }
          : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      if (code !== 0 || !line) {
        reject(new Error(`${fn.name}: init failed (exit ${code}): ${(err || out).trim().slice(-2000)}`));
        return;
      }
      const got = JSON.parse(line.slice(MARK.length)) as {
        ms: number;
        decisionMs?: number;
        answer?: { statusCode?: number; body?: string };
      };
      if (
        first &&
        (got.answer?.statusCode !== 200 || !String(got.answer?.body).includes(first.request.expect))
      ) {
        reject(
          new Error(`${fn.name}: the first decision answered ${JSON.stringify(got.answer).slice(0, 2000)}`),
        );
        return;
      }
      resolvePromise({ ms: got.ms, ...(got.decisionMs !== undefined ? { decisionMs: got.decisionMs } : {}) });
    });
  });
}

/** Nearest-rank percentile (the upper middle for an even count). */
function nearestRank(xs: readonly number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile());
}

/** The markdown table printed when run alone. */
export function coldStartTable(results: readonly ColdStart[], runs: number): string {
  const r1 = (x: number) => x.toFixed(1);
  return [
    `Cold start: module init in a fresh Node ${process.version} process, ${runs} runs per function (goal: bundle ≤ 1 MB, Cedar wasm apart; init ≤ 300 ms); first decision: init plus one allowed call answered by the same process (report).`,
    '',
    '| function | bundle (bytes) | wasm (bytes) | init p50 (ms) | init max (ms) | first decision p50 (ms) | first decision max (ms) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(
      (c) =>
        `| ${c.fn} | ${c.bundleBytes.toLocaleString('en-US')} | ${c.wasmBytes ? c.wasmBytes.toLocaleString('en-US') : '–'} | ${r1(c.initMs.p50)} | ${r1(c.initMs.max)} | ${c.firstDecisionMs ? r1(c.firstDecisionMs.p50) : '–'} | ${c.firstDecisionMs ? r1(c.firstDecisionMs.max) : '–'} |`,
    ),
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      'cdk-out': { type: 'string', default: 'cdk.out' },
      runs: { type: 'string', default: '10' },
      only: { type: 'string' },
    },
  });
  const runs = Number(values.runs);
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const { freePort, startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  try {
    const results = await measureColdStarts({
      cdkOut: path.resolve(values['cdk-out'] ?? 'cdk.out'),
      runs,
      dynamoEndpoint: dynamo.endpoint,
      ...(values.only ? { only: values.only.split(',').map((s) => s.trim()) } : {}),
    });
    console.log(coldStartTable(results, runs));
  } finally {
    await dynamo.stop();
  }
}

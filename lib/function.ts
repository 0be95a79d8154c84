import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { ISecurityGroup, ISubnet, IVpc } from 'aws-cdk-lib/aws-ec2';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { compilePolicy } from '../functions/core/policy.js';
import { ENV, OBSERVABILITY, TABLE } from '../functions/shared/constants.js';
import {
  COMPILED_POLICY_FILE,
  loadPolicyBundle,
  SHADOW_POLICY_SUBDIR,
} from '../functions/store/policy-files.js';

/** The repository root: bundling reads `functions/` and `policy/` from here. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The newest Node.js runtime aws-cdk-lib offers (cdk-nag's AwsSolutions-L1 / Serverless
 * LambdaLatestVersion insist on it). An infra test fails when aws-cdk-lib learns a newer one.
 */
export const NODE_RUNTIME = Runtime.NODEJS_24_X;
/** esbuild target matching NODE_RUNTIME. */
const ESBUILD_TARGET = 'node24';

/** Where a function's bundle carries the repository's `policy/` folder. */
export const LAMBDA_POLICY_DIR = '/var/task/policy';
/**
 * Where a deciding function's bundle carries shadow mode's candidate (`policy/shadow/` in the
 * repository): beside the live folder, not in it, so the live folder packaged is the live policy only.
 */
export const LAMBDA_SHADOW_POLICY_DIR = '/var/task/policy-shadow';
const SHADOW_BUNDLE_DIR = path.basename(LAMBDA_SHADOW_POLICY_DIR);

/** The Cedar package is loaded from its own folder at run time (it reads its .wasm with fs). */
const CEDAR_PACKAGE = '@cedar-policy/cedar-wasm';
const SLACK_SDK_PACKAGE = '@slack/web-api';

/** The X-Ray tracer and its SDK, left out of bundles built without tracing. */
const TRACER_PACKAGES = ['@aws-lambda-powertools/tracer', 'aws-xray-sdk-core'];

/**
 * The MCP server SDK's runtime shims: its Node default validates JSON Schema with Ajv (150 KB),
 * its Workers one with @cfworker/json-schema (20 KB). The gateway validates no JSON Schema through
 * the SDK (it uses no form elicitation; tool arguments are checked with the connectors' zod
 * schemas), so bundles take the small one; `functions/shared/mcp-shims.ts` says why.
 */
const MCP_SHIMS_ALIAS = `--alias:@modelcontextprotocol/server/_shims=${path.join(REPO_ROOT, 'functions', 'shared', 'mcp-shims.ts')}`;
/** The same for the MCP client package (the upstream connector): 546 KB -> 392 KB without Ajv. */
const MCP_CLIENT_SHIMS_ALIAS = `--alias:@modelcontextprotocol/client/_shims=${path.join(REPO_ROOT, 'functions', 'shared', 'mcp-client-shims.ts')}`;

/**
 * The AWS SDK's default credential chain, reduced in Lambda bundles to its environment link (the
 * one Lambda uses): `functions/shared/lambda-credentials.ts` says why (≈ 118 KB of the mcp bundle).
 */
const CREDENTIALS_ALIAS = `--alias:@aws-sdk/credential-provider-node=${path.join(REPO_ROOT, 'functions', 'shared', 'lambda-credentials.ts')}`;

/** Context key the app stack sets from its `tracing` prop; every OcFunction in it reads it. */
export const TRACING_CONTEXT = 'openclause:tracing';
/** Context key the app stack sets from its `sourceMaps` prop. */
export const SOURCE_MAPS_CONTEXT = 'openclause:sourceMaps';

/** How a function reaches the table: read-only (Get/Query/Scan) or read-write (+ Put/Update/Delete/Transact). */
export type TableAccess = 'read' | 'readwrite';

/** Who calls the function, for the record of why the legacy async DLQ (DeadLetterConfig) is not used. */
export type Invocation = 'api' | 'lambda-sync' | 'event-source-mapping' | 'schedule' | 'function-url';

const SYNC_INVOKERS: Record<Exclude<Invocation, 'schedule'>, string> = {
  api: 'API Gateway (HTTP API integration, synchronous)',
  'lambda-sync': 'other Lambdas with InvocationType RequestResponse (synchronous)',
  'event-source-mapping':
    'a Lambda event source mapping (synchronous; failures go to the mapping on-failure destination)',
  'function-url': 'its Lambda Function URL (synchronous HTTP)',
};

/** Why `Serverless-LambdaDLQ` does not apply to a function invoked this way. */
const noDlqReason = (handlerName: string, invocation: Invocation): string =>
  invocation === 'schedule'
    ? `${handlerName} is invoked asynchronously by an EventBridge schedule; its failed runs go to the on-failure destination of its asynchronous invoke config (which records the error and supersedes DeadLetterConfig).`
    : `${handlerName} is invoked only by ${SYNC_INVOKERS[invocation]}; a DLQ applies to asynchronous invocations only.`;

export interface OcFunctionProps {
  /** Module name under `functions/handlers/` (without `.ts`); it must export `handler`. */
  readonly handlerName: string;
  /** How the function is invoked; it documents why the legacy async DLQ does not apply. */
  readonly invocation: Invocation;
  /**
   * Memory size in MB (CPU scales with it).
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Maximum run time.
   * @default Duration.seconds(10)
   */
  readonly timeout?: Duration;
  /**
   * Retention of the function's own log group.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Extra environment variables (names from `ENV`).
   * @default - only the common ones (policy dir, Powertools, source maps)
   */
  readonly environment?: Record<string, string>;
  /**
   * Human description, shown in the console.
   * @default - `OpenClause <handlerName>`
   */
  readonly description?: string;
  /**
   * Folders copied into the bundle (`from` an absolute path, `to` relative to the bundle root),
   * e.g. the web console's built files.
   * @default - none besides `policy/`
   */
  readonly assets?: readonly { from: string; to: string }[];
  /**
   * Runs the function in a VPC (the upstream MCP connector with `-c upstreamVpc=...`).
   * @default - not in a VPC
   */
  readonly vpc?: { vpc: IVpc; subnets: ISubnet[]; securityGroups: ISecurityGroup[] };
  /**
   * Shadow mode (issue 24): a candidate policy folder to carry beside the live one, compiled at
   * synth like it, and named to the function by `ENV.policyShadowDir`. Only for functions that decide.
   * @default - no candidate
   */
  readonly shadowPolicyDir?: string;
}

/**
 * The one Lambda function construct: ESM bundle built by the local esbuild (never Docker) from
 * `functions/handlers/<name>.ts`, newest Node.js runtime, arm64, X-Ray, its own log group with
 * retention, Powertools settings, and the `policy/` folder (plus the Cedar wasm package when the
 * bundle imports it) copied into the asset.
 */
export class OcFunction extends NodejsFunction {
  readonly handlerName: string;
  /** The function's own role: no managed policies, logs only to its own log group. */
  declare readonly role: Role;

  constructor(scope: Construct, id: string, props: OcFunctionProps) {
    assertLocalEsbuild();
    const tracing = scope.node.tryGetContext(TRACING_CONTEXT) === true;
    const sourceMaps = scope.node.tryGetContext(SOURCE_MAPS_CONTEXT) === true;
    const entry = path.join(REPO_ROOT, 'functions', 'handlers', `${props.handlerName}.ts`);
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
    });
    // Our own role instead of AWSLambdaBasicExecutionRole (logs:* on every log group).
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `OpenClause ${props.handlerName}`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      entry,
      handler: 'handler',
      description: props.description ?? `OpenClause ${props.handlerName}`,
      projectRoot: REPO_ROOT,
      depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
      runtime: NODE_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(10),
      ...(props.vpc
        ? {
            vpc: props.vpc.vpc,
            vpcSubnets: { subnets: props.vpc.subnets },
            securityGroups: props.vpc.securityGroups,
          }
        : {}),
      tracing: tracing ? Tracing.ACTIVE : Tracing.DISABLED,
      logGroup,
      role,
      environment: {
        [ENV.policyDir]: LAMBDA_POLICY_DIR,
        [ENV.policyValidatedAtBuild]: 'true',
        ...(props.shadowPolicyDir ? { [ENV.policyShadowDir]: LAMBDA_SHADOW_POLICY_DIR } : {}),
        POWERTOOLS_SERVICE_NAME: OBSERVABILITY.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: OBSERVABILITY.metricsNamespace,
        POWERTOOLS_TRACE_ENABLED: String(tracing),
        // Node reads the bundle's source map at load: ≈ 25 ms of every cold start (measured).
        ...(sourceMaps ? { NODE_OPTIONS: '--enable-source-maps' } : {}),
        ...props.environment,
      },
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: ESBUILD_TARGET,
        mainFields: ['module', 'main'],
        // CommonJS dependencies call require(); an ESM bundle has none unless we make one.
        banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
        minify: true,
        logLevel: LogLevel.WARNING,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        sourcesContent: false,
        // The AWS SDK v3 is bundled (pinned by our lockfile); Cedar is not: it loads its wasm from disk.
        // Bundles stay ≤ 1 MB (test/infra/bundles.test.ts) with the SDK in; marking `@aws-sdk/*` external
        // (the runtime ships it) would save ~400 KB more but run whatever SDK version the runtime has.
        // `@slack/web-api` (with axios) only in the Slack connector's bundle: the gateway's handlers
        // import it lazily, only to run live Slack in process (a local stack), never in AWS.
        // The X-Ray tracer only where tracing is on: `shared/tracing.ts` imports it dynamically, and
        // only when POWERTOOLS_TRACE_ENABLED is true (about 100 KB of every bundle otherwise).
        externalModules: [
          CEDAR_PACKAGE,
          ...(props.handlerName === 'connector-slack' ? [] : [SLACK_SDK_PACKAGE]),
          ...(tracing ? [] : TRACER_PACKAGES),
        ],
        esbuildArgs: { [MCP_SHIMS_ALIAS]: true, [MCP_CLIENT_SHIMS_ALIAS]: true, [CREDENTIALS_ALIAS]: true },
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir, outputDir) => [
            ...assetExtrasCommands(outputDir, props.shadowPolicyDir),
            ...(props.assets ?? []).map((a) => `cp -R "${a.from}" "${path.join(outputDir, a.to)}"`),
          ],
        },
      },
    });
    this.handlerName = props.handlerName;

    if (!tracing)
      Validations.of(this).acknowledge({
        id: 'Serverless-LambdaTracing',
        reason:
          'X-Ray is opt-in (-c tracing=true): it adds about $0.25 per million invocations of each function on a path; structured logs, EMF metrics, alarms and the dashboard are always on.',
      });
    if (tracing)
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'Active tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which have no resource-level permissions.',
      });

    Validations.of(this).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: noDlqReason(props.handlerName, props.invocation),
    });
  }

  /**
   * Gives the function the table's name (`ENV.tableName`) and the least access it needs, on the
   * table and its one GSI only (no Scan, no other index, no stream): `read` (Get/BatchGet/Query/
   * ConditionCheck) or `readwrite` (+ Put/Update/Delete/BatchWrite, which TransactWriteItems
   * needs per item). The KMS key may be used only through DynamoDB.
   */
  bindTable(table: ITable, access: TableAccess): this {
    this.addEnvironment(ENV.tableName, table.tableName);
    this.addToRolePolicy(
      new PolicyStatement({
        actions: access === 'readwrite' ? [...TABLE_READ, ...TABLE_WRITE] : TABLE_READ,
        resources: [table.tableArn, `${table.tableArn}/index/${TABLE.gsi1.name}`],
      }),
    );
    if (table.encryptionKey) {
      this.addToRolePolicy(
        new PolicyStatement({
          actions: access === 'readwrite' ? [...KEY_READ, ...KEY_WRITE] : KEY_READ,
          resources: [table.encryptionKey.keyArn],
          conditions: {
            StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(this).region}.amazonaws.com` },
          },
        }),
      );
    }
    return this;
  }
}

const TABLE_READ = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:ConditionCheckItem',
  'dynamodb:DescribeTable',
];
const TABLE_WRITE = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
];
const KEY_READ = ['kms:Decrypt', 'kms:DescribeKey'];
// What DynamoDB's documentation asks for a customer-managed key (kms:ReEncrypt*, kms:GenerateDataKey*), spelled out.
const KEY_WRITE = [
  'kms:Encrypt',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
];

/**
 * Shell steps run after esbuild, in the asset folder: every bundle carries `policy/` (without a
 * candidate in `policy/shadow/`: only the functions given one carry it, as `policy-shadow/`); a
 * bundle that imports Cedar also carries the package's Node.js build (package.json files, glue,
 * wasm) under node_modules, where Node resolves the external import `@cedar-policy/cedar-wasm/nodejs`,
 * and the synth-time compilation of each policy folder it carries.
 */
function assetExtrasCommands(outputDir: string, shadowPolicyDir: string | undefined): string[] {
  const q = (p: string) => `"${p}"`;
  const cedarDir = cedarPackageDir();
  const target = path.join(outputDir, 'node_modules', ...CEDAR_PACKAGE.split('/'));
  const bundle = path.join(outputDir, 'index.mjs');
  const shadowOut = path.join(outputDir, SHADOW_BUNDLE_DIR);
  return [
    `cp -R ${q(path.join(REPO_ROOT, 'policy'))} ${q(path.join(outputDir, 'policy'))}`,
    `rm -rf ${q(path.join(outputDir, 'policy', SHADOW_POLICY_SUBDIR))}`,
    ...(shadowPolicyDir ? [`cp -R ${q(shadowPolicyDir)} ${q(shadowOut)}`] : []),
    [
      `if grep -q ${q(CEDAR_PACKAGE)} ${q(bundle)}; then`,
      `mkdir -p ${q(path.join(target, 'nodejs'))} &&`,
      `cp ${q(path.join(cedarDir, 'package.json'))} ${q(target)} &&`,
      `cp ${['package.json', 'cedar_wasm.js', 'cedar_wasm_bg.wasm'].map((f) => q(path.join(cedarDir, 'nodejs', f))).join(' ')} ${q(path.join(target, 'nodejs'))} &&`,
      ...(shadowPolicyDir
        ? [`cp ${q(compiledPolicyFile(shadowPolicyDir))} ${q(path.join(shadowOut, COMPILED_POLICY_FILE))} &&`]
        : []),
      // The policy folder compiled here, at synth: the cold start skips parsing it.
      `cp ${q(compiledPolicyFile())} ${q(path.join(outputDir, 'policy', COMPILED_POLICY_FILE))};`,
      'fi',
    ].join(' '),
  ];
}

const compiledPolicyPaths = new Map<string, string>();

/** The temporary folders of the compilations made so far (`bin/app.ts` removes them at exit). */
export const compiledPolicyDirs = (): string[] =>
  [...compiledPolicyPaths.values()].map((f) => path.dirname(f));

/**
 * A policy folder (default: the repository's), validated and compiled once per synth, as a
 * temporary file (an invalid policy throws: `bin/app.ts` calls this first, so it fails `cdk synth`;
 * a shadow candidate is compiled when the app stack takes it, so an invalid candidate fails it too).
 */
export function compiledPolicyFile(dir: string = path.join(REPO_ROOT, 'policy')): string {
  let file = compiledPolicyPaths.get(dir);
  if (!file) {
    const compiled = compilePolicy(loadPolicyBundle(dir));
    const tmp = mkdtempSync(path.join(tmpdir(), 'openclause-policy-'));
    file = path.join(tmp, COMPILED_POLICY_FILE);
    writeFileSync(file, JSON.stringify(compiled));
    compiledPolicyPaths.set(dir, file);
  }
  return file;
}

/** The installed Cedar package folder (found through Node's resolution, so hoisting does not matter). */
function cedarPackageDir(): string {
  const require = createRequire(import.meta.url);
  // .../@cedar-policy/cedar-wasm/nodejs/cedar_wasm.js -> .../@cedar-policy/cedar-wasm
  return path.dirname(path.dirname(require.resolve(`${CEDAR_PACKAGE}/nodejs`)));
}

/** NodejsFunction silently falls back to Docker without a local esbuild; we never want that. */
function assertLocalEsbuild(): void {
  if (!existsSync(path.join(REPO_ROOT, 'node_modules', 'esbuild', 'package.json'))) {
    throw new Error(
      'esbuild must be installed locally (devDependency): Lambda bundles are never built in Docker',
    );
  }
}

/** `submit-toolcall` -> `SubmitToolcall`: construct ids derived from handler names. */
export const constructIdFor = (name: string): string =>
  name.replace(/(^|[-_])([a-z0-9])/g, (_m, _sep: string, c: string) => c.toUpperCase());

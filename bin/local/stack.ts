/**
 * `npm start`: the embedded local stack (SPEC §10), supervised. This Node process is the
 * supervisor: it checks every port before it starts anything, runs fauxqs and s3rver in process
 * and DynamoDB Local as a child (Java under a shell guardian), restarts DynamoDB Local when it dies
 * (a few times, with backoff; beyond that it exits 1 so that an outer supervisor restarts the
 * stack), and stops everything it started on SIGINT, SIGTERM, SIGHUP or when its parent (npm)
 * goes away: requests in flight finish, the stream poller stops, Java stops last.
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig, type Config } from '../../functions/shared/config.js';
import { DEV_WEBHOOK, ENV } from '../../functions/shared/constants.js';
import { loadNotifyConfig } from '../../functions/shared/notify-config.js';
import { ApiKeyStore } from '../../functions/store/api-keys.js';
import { signDevToken } from '../../functions/store/approver-tokens.js';
import { PolicyLoadError, type TenantsFile } from '../../functions/core/policy-data.js';
import { defaultPolicyDir, loadTenants, shadowPolicyDir } from '../../functions/store/policy-files.js';
import { RestartPolicy, describeError } from './backoff.js';
import {
  S3RVER_CREDENTIALS,
  portAnswers,
  portInUse,
  startDynamoDbLocal,
  startS3,
  startSqs,
  type ChildEmulator,
  type Emulator,
} from './emulators.js';
import { FileCheckpointSigner } from '../../functions/store/checkpoint-signer.js';
import {
  localArchiver,
  localS3Client,
  publicKeyFile,
  signingKeyFile,
  tlogPolicyFile,
  witnessKeyFile,
} from './archive.js';
import { ensureWitnessTable, LOCAL_WITNESS_TABLE, startLocalWitness, type LocalWitness } from './witness.js';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { rawEd25519, verifierKey } from '../../functions/core/signed-note.js';
import { s3ArchiveObjects } from '../../functions/store/archiver.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { LogProofs } from '../../functions/store/log-proofs.js';
import { HttpWitnesses, witnessStep } from '../../functions/store/witness-client.js';
import { startLocalHost, type LocalHost } from './host.js';
import { s3Part, sqsPart } from './readiness.js';
import { readStackState, removeStackState, writeStackState } from './state-file.js';

export function parseApiKeys(spec: string): { tenantId: string; key: string }[] {
  return spec
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.includes(':'))
    .map((item) => {
      const at = item.indexOf(':');
      return { tenantId: item.slice(0, at).trim(), key: item.slice(at + 1).trim() };
    })
    .filter((k) => k.tenantId && k.key);
}

/** One dev approver token (tenant1's first approver, 12 h) for the banner; only in `dev` JWT mode. */
async function devApproverToken(config: Config): Promise<string> {
  if (config.jwtMode !== 'dev') return `(approver tokens: ${config.jwtMode} mode)`;
  const dir = config.policyDir ?? defaultPolicyDir();
  const tenant1 = loadTenants(dir).tenant1;
  // The first listed email, or the first in tenant1's approver directory (issue 21).
  const email =
    tenant1?.approvers.emails[0] ?? Object.values(tenant1?.directory ?? {}).find((e) => e.email)?.email;
  if (!email) return '(no approver for tenant1 in policy/tenants.json)';
  const token = await signDevToken({
    tenantId: 'tenant1',
    email,
    ttlSec: 12 * 3600,
    secret: config.devJwtSecret,
    tenantClaim: config.jwtTenantClaim,
  });
  return `tenant1 ${email} (12 h; \`npx oc dev-token\` for others):\n               Authorization: Bearer ${token}`;
}

/**
 * The banner's webhook lines: the webhook routes the loaded policy names, tenant by tenant (or
 * that there are none), with the listener hint for a route to this machine's demo port.
 */
export function webhookBanner(tenants: TenantsFile): string {
  const lines: string[] = [];
  for (const [tenantId, tenant] of Object.entries(tenants))
    for (const route of tenant.notify) {
      if (route.kind !== 'webhook') continue;
      const url = new URL(route.url);
      const local = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
      const port = url.port || (url.protocol === 'https:' ? '443' : '80');
      const hint = local
        ? `: watch with npx oc webhooks listen${port === String(DEV_WEBHOOK.port) ? '' : ` --port ${port}`}`
        : '';
      lines.push(`${tenantId} notifies ${route.url}${hint}`);
    }
  if (lines.length === 0) return 'none (no tenant in the policy names a webhook route)';
  return lines.join('\n               ');
}

/** The banner's shadow-mode line, only when a candidate is evaluated (OC_POLICY_SHADOW=off hides it). */
function shadowBanner(config: Config): string {
  const dir = shadowPolicyDir(config);
  return dir
    ? `\n  Shadow       candidate policy ${dir} evaluated beside the live one, never enforced: npx oc policy shadow-report`
    : '';
}

/** A start that cannot go on, said in one line (exit code 1). */
export class StartError extends Error {}

/**
 * The policy folder's data, checked before anything starts: a tenant the gateway would refuse
 * (e.g. Slack approvers without their workspace's `team_id`) is one line, not a stack trace.
 */
function checkPolicy(env: NodeJS.ProcessEnv): void {
  try {
    loadTenants(env[ENV.policyDir] || defaultPolicyDir());
  } catch (error) {
    if (error instanceof PolicyLoadError) throw new StartError(error.message);
    throw error;
  }
}

/** The variable that moves each part, and its default port. */
export const PORT_VARIABLES = {
  PORT: 3000,
  OC_DYNAMODB_PORT: 8000,
  OC_AWS_PORT: 4566,
  OC_S3_PORT: 4569,
} as const;
export type PortVariable = keyof typeof PORT_VARIABLES;

/** Each part's port from the environment: whole numbers 1-65535, no two the same. */
export function readPorts(env: NodeJS.ProcessEnv): Record<PortVariable, number> {
  const ports = {} as Record<PortVariable, number>;
  for (const [name, fallback] of Object.entries(PORT_VARIABLES) as [PortVariable, number][]) {
    const raw = env[name]?.trim() || String(fallback);
    const port = Number(raw);
    if (!/^\d+$/.test(raw) || port < 1 || port > 65535)
      throw new StartError(`${name} must be a port number from 1 to 65535, not "${env[name]}"`);
    const clash = (Object.keys(ports) as PortVariable[]).find((other) => ports[other] === port);
    if (clash) throw new StartError(`${clash} and ${name} are both ${port}: give each part its own port`);
    ports[name] = port;
  }
  return ports;
}

/** Fails on the first port something already listens on, naming the variable that moves it. */
export async function checkPortsFree(ports: Record<PortVariable, number>): Promise<void> {
  for (const [name, port] of Object.entries(ports) as [PortVariable, number][]) {
    if (await portInUse(port))
      throw new StartError(
        `port ${port} (${name}) is already in use: stop what listens there, or set ${name} to a free port`,
      );
  }
}

/** OC_DYNAMODB_MAX_RESTARTS: how often DynamoDB Local may die within a minute and be restarted. */
function readMaxRestarts(env: NodeJS.ProcessEnv): number {
  const raw = env.OC_DYNAMODB_MAX_RESTARTS?.trim() || '5';
  if (!/^\d+$/.test(raw))
    throw new StartError(
      `OC_DYNAMODB_MAX_RESTARTS must be a whole number, not "${env.OC_DYNAMODB_MAX_RESTARTS}"`,
    );
  return Number(raw);
}

/** OC_ARCHIVE_INTERVAL_SEC: seconds between evidence archive runs (default 60). */
function readArchiveInterval(env: NodeJS.ProcessEnv): number {
  const raw = env[ENV.archiveIntervalSec]?.trim() || '60';
  if (!/^\d+$/.test(raw) || Number(raw) < 1)
    throw new StartError(
      `${ENV.archiveIntervalSec} must be a whole number of seconds (1 or more), not "${raw}"`,
    );
  return Number(raw);
}

/** OC_WITNESS_PORT: the local witness's port (default: a free one; the archiver is told it). */
function readWitnessPort(env: NodeJS.ProcessEnv): number {
  const raw = env.OC_WITNESS_PORT?.trim() || '0';
  if (!/^\d+$/.test(raw) || Number(raw) > 65535)
    throw new StartError(`OC_WITNESS_PORT must be a port number from 1 to 65535, not "${raw}"`);
  return Number(raw);
}

/** Everything stops within this long after a signal; what is left then is killed. */
const STOP_DEADLINE_MS = 8000;
const RESTART_WINDOW_MS = 60_000;

export async function startLocalStack(env: NodeJS.ProcessEnv): Promise<void> {
  const log = (line: string) => console.error(line);
  const inMemory = env.OC_IN_MEMORY === 'true';
  const dataDir = path.resolve(env.OC_DATA_DIR ?? '.oc-data');
  let ports: Record<PortVariable, number>;
  let maxRestarts: number;
  try {
    ports = readPorts(env);
    maxRestarts = readMaxRestarts(env);
    readArchiveInterval(env);
    readWitnessPort(env);
    checkPolicy(env);
    const other = readStackState(dataDir);
    if (other.kind === 'found')
      throw new StartError(
        `another stack (pid ${other.state.pid}, ${other.state.url}) already uses ${dataDir}: stop it, or set OC_DATA_DIR to another folder`,
      );
    await checkPortsFree(ports);
  } catch (error) {
    if (!(error instanceof StartError)) throw error;
    log(`[oc] cannot start: ${error.message}`);
    process.exit(1);
  }
  const { PORT: port, OC_DYNAMODB_PORT: dynamoPort, OC_AWS_PORT: sqsPort, OC_S3_PORT: s3Port } = ports;
  const apiKeys = parseApiKeys(env.OC_API_KEYS ?? 'tenant1:sk-test-key-1,tenant2:sk-test-key-2');
  const bucket = env.OC_EVIDENCE_BUCKET ?? 'oc-evidence';
  // In memory, s3rver still needs a folder: one that starts empty and goes at stop, so that the
  // archive is as fresh as the table (a leftover archive overlaps the new chain: `oc verify` fails).
  const s3Dir = inMemory ? path.join(dataDir, 's3-tmp') : path.join(dataDir, 's3');
  const clearInMemoryS3 = () => {
    if (inMemory) rmSync(s3Dir, { recursive: true, force: true });
  };

  // The SDK needs a region and some credentials; the emulators accept any.
  env.AWS_REGION ??= 'us-east-1';
  env.AWS_ACCESS_KEY_ID ??= 'local';
  env.AWS_SECRET_ACCESS_KEY ??= 'local';
  env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  // Node 20 runs the local stack; the lock file pins SDK versions that support it (Lambda runs newer Node).
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  env.POWERTOOLS_TRACE_ENABLED ??= 'false';

  // What runs now, so that a signal at any moment stops exactly that.
  const started: Emulator[] = [];
  let dynamo: ChildEmulator | undefined;
  let host: LocalHost | undefined;
  let witness: LocalWitness | undefined;
  let witnessDynamo: DynamoDBClient | undefined;
  let stopping = false;
  /** Stops what runs, then exits; `why` is the one line the log gets about it. */
  const stop = async (why: string | undefined, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    if (why) log(`[oc] ${why}`);
    setTimeout(() => {
      log(`[oc] still stopping after ${STOP_DEADLINE_MS / 1000} s: killing what is left`);
      dynamo?.kill();
      process.exit(exitCode || 1);
    }, STOP_DEADLINE_MS).unref();
    await host?.stop().catch((error: unknown) => log(`[oc] host stop: ${describeError(error)}`));
    await witness?.close().catch(() => undefined);
    witnessDynamo?.destroy();
    await Promise.allSettled([dynamo?.stop(), ...started.map((e) => e.stop())]);
    clearInMemoryS3();
    removeStackState(dataDir);
    process.exit(exitCode);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(signal, () => void stop(`${signal}: stopping`, 0));
  // npm forwards SIGTERM and SIGINT to us, but not SIGHUP, and a SIGKILLed npm forwards nothing:
  // once our parent is gone (we are re-parented), stop too.
  const parent = process.ppid;
  if (parent > 1)
    setInterval(() => {
      if (process.ppid !== parent) void stop(`parent process ${parent} exited: stopping`, 0);
    }, 500).unref();

  const startDynamo = () =>
    startDynamoDbLocal({ port: dynamoPort, dataDir: inMemory ? undefined : path.join(dataDir, 'dynamodb') });

  try {
    clearInMemoryS3();
    const [dynamoStarted, sqs, s3] = await Promise.all([
      startDynamo().then((e) => (dynamo = e)),
      startSqs(sqsPort).then((e) => (started.push(e), e)),
      startS3(s3Port, s3Dir).then((e) => (started.push(e), e)),
    ]);
    const config = loadConfig({
      ...env,
      [ENV.dynamodbEndpoint]: dynamoStarted.endpoint,
      [ENV.connectorsMode]: env[ENV.connectorsMode] ?? 'mock',
      [ENV.jwtMode]: env[ENV.jwtMode] ?? 'dev',
      [ENV.publicBaseUrl]: env[ENV.publicBaseUrl] ?? `http://localhost:${port}`,
      // MCP session ids and requestStates are signed with a key ring generated here on first use.
      [ENV.mcpStateKeyFile]: env[ENV.mcpStateKeyFile] ?? path.join(dataDir, 'mcp-state-keys.json'),
    });
    // The checkpoint signing key: created on the first start, its public key beside it for auditors.
    const signer = FileCheckpointSigner.open(signingKeyFile(dataDir));
    const publicKeyPem = await signer.publicKeyPem();
    // One witness (C2SP tlog-witness) on its own port, key and table: the archiver submits each new
    // log checkpoint to it, and the tlog-policy beside the keys names the log and it (docs/auditors.md).
    witnessDynamo = new DynamoDBClient({ endpoint: dynamoStarted.endpoint });
    witness = await startLocalWitness({
      port: readWitnessPort(env),
      doc: createDocumentClient({ endpoint: dynamoStarted.endpoint }),
      client: witnessDynamo,
      keyFile: witnessKeyFile(dataDir),
      logs: [{ name: 'local', key: rawEd25519(publicKeyPem) }],
    });
    const logVkey = verifierKey('local', rawEd25519(publicKeyPem));
    writeFileSync(
      tlogPolicyFile(dataDir),
      `# The local log (every tenant's origin local/t/<tenant>) and its witness: oc verify --tlog-policy\nlog ${logVkey}\nwitness local-witness ${witness.vkey} ${witness.url}\nquorum local-witness\n`,
    );
    const archiveObjects = s3ArchiveObjects(localS3Client(s3.endpoint), bucket);
    const witnessing = witnessStep(new HttpWitnesses([witness.config]), archiveObjects);
    writeFileSync(publicKeyFile(dataDir), publicKeyPem);
    if (signer.created)
      log(
        `[oc] new evidence signing key ${signingKeyFile(dataDir)}; its public key (also in ${publicKeyFile(dataDir)}):\n${publicKeyPem.trim()}`,
      );
    host = await startLocalHost({
      config,
      port,
      // GET /v1/toolcalls/{event_id}/proof reads the log from s3rver; 409s say when the archiver runs next.
      overrides: {
        proofs: { proofs: new LogProofs(archiveObjects), retryAfterSec: readArchiveInterval(env) },
      },
      notifications: {
        sqsEndpoint: sqs.endpoint,
        // Locally the demo tenant's webhook goes to http://localhost:8090 (`oc webhooks listen`).
        config: loadNotifyConfig({
          ...env,
          [ENV.allowPrivateWebhooks]: env[ENV.allowPrivateWebhooks] ?? 'true',
          [ENV.webhookSecrets]: env[ENV.webhookSecrets] ?? `${DEV_WEBHOOK.secretRef}=${DEV_WEBHOOK.secret}`,
        }),
      },
      scheduleIntervalSec: Number(env[ENV.sweepIntervalSec] ?? 60),
      parts: [sqsPart(sqs.endpoint), s3Part(s3.endpoint, bucket)],
      log,
      archive: {
        intervalSec: readArchiveInterval(env),
        archiver: (state) =>
          localArchiver({
            doc: state.doc,
            table: config.tableName,
            s3: localS3Client(s3.endpoint),
            bucket,
            keyFile: signingKeyFile(dataDir),
            witness: witnessing,
          }).archiver,
      },
      // The demo keys and the evidence bucket exist before the port opens: a client that waits
      // for /readyz can use them. Run again when the table had to be re-created.
      beforeReady: async (state) => {
        if (witnessDynamo) await ensureWitnessTable(witnessDynamo, LOCAL_WITNESS_TABLE);
        const keys = new ApiKeyStore(state.doc, config.tableName);
        for (const { tenantId, key } of apiKeys) await keys.put(key, { tenantId }, 'seeded from OC_API_KEYS');
        const s3Client = new S3Client({
          endpoint: s3.endpoint,
          forcePathStyle: true,
          credentials: S3RVER_CREDENTIALS,
        });
        await s3Client
          .send(new CreateBucketCommand({ Bucket: bucket }))
          .catch((error: Error) => {
            if (error.name !== 'BucketAlreadyOwnedByYou' && error.name !== 'BucketAlreadyExists') throw error;
          })
          .finally(() => s3Client.destroy());
      },
    });
    if (stopping) return;

    writeStackState({
      version: 1,
      pid: process.pid,
      started_at: new Date().toISOString(),
      url: `http://localhost:${port}`,
      port,
      dynamodb_endpoint: dynamoStarted.endpoint,
      sqs_endpoint: sqs.endpoint,
      s3_endpoint: s3.endpoint,
      table_name: config.tableName,
      evidence_bucket: bucket,
      in_memory: inMemory,
      data_dir: dataDir,
    });
    const firstKey = apiKeys[0]?.key ?? '<key>';
    const approverToken = await devApproverToken(config);
    console.log(`
OpenClause gateway is up (connectors: ${config.connectorsMode}${inMemory ? ', in memory' : `, data in ${dataDir}`})

  API          http://localhost:${port}        (GET /readyz answers 200 when every part is up)
  Console      http://localhost:${port}/console  (sign in as alice@acme.example; approval.url opens it)
  MCP          http://localhost:${port}/mcp  (Streamable HTTP; header X-API-Key: an agent key below)
  Slack        POST http://localhost:${port}/slack/interactions  (signing secret: SLACK_SIGNING_SECRET)
  API keys     ${apiKeys.map((k) => `${k.tenantId}: ${k.key}`).join('   ')}
  Approver     ${approverToken}
  DynamoDB     ${dynamoStarted.endpoint}   table ${config.tableName}
  SQS          ${sqs.endpoint}
  S3           ${s3.endpoint}   (path-style)
  Evidence     archived every ${readArchiveInterval(env)} s to s3://${bucket}/evidence/<tenant>/, checkpoints signed with ${signingKeyFile(dataDir)}
               npx oc verify --bucket ${bucket} --tenant tenant1 --public-key ${publicKeyFile(dataDir)}
  Witness      ${witness.url}  (${witness.vkey}); log vkey ${logVkey}
               npx oc proof <event_id> --tenant tenant1 --out proofs   then   npx oc verify --proof proofs/<file> --tlog-policy ${tlogPolicyFile(dataDir)}
  Webhooks     ${webhookBanner(loadTenants(config.policyDir ?? defaultPolicyDir()))}${shadowBanner(config)}

Try it:
  curl -s -X POST http://localhost:${port}/v1/toolcalls \\
    -H 'X-API-Key: ${firstKey}' -H 'Content-Type: application/json' \\
    -d '{"agent_id":"agent-1","tool":"slack","action":"msg.post","params":{"channel":"#general","text":"Hello"},"risk_score":3,"idempotency_key":"demo-001"}'

Ctrl-C stops everything.
`);
  } catch (error) {
    log(`[oc] failed to start: ${(error as Error).message}`);
    await stop(undefined, 1);
    return;
  }

  if (!dynamo || !host) return;
  // DynamoDB Local is the one part that can die on its own (Java, another process): restart it.
  const policy = new RestartPolicy({
    maxRestarts,
    windowMs: RESTART_WINDOW_MS,
    backoff: { initialMs: 1000, maxMs: 15_000 },
  });
  for (let ended = await dynamo.exited; !stopping;) {
    const decision = policy.died();
    if (decision.action === 'give-up') {
      const times =
        decision.deaths === 1
          ? 'once'
          : `${decision.deaths} times in ${Math.round(decision.withinMs / 1000)} s`;
      await stop(
        `DynamoDB Local ${ended}; it died ${times}, more than OC_DYNAMODB_MAX_RESTARTS=${maxRestarts} allows per minute: giving up (exit 1)`,
        1,
      );
      return;
    }
    log(
      `[oc] DynamoDB Local ${ended}: requests fail until it is back; restarting it in ${decision.delayMs / 1000} s (attempt ${decision.attempt} of ${decision.of})`,
    );
    await new Promise((resolve) => setTimeout(resolve, decision.delayMs));
    if (stopping) return;
    if (await portAnswers(dynamoPort)) {
      // Someone else brought it back on our port: use theirs while it answers.
      log(`[oc] port ${dynamoPort} answers again (DynamoDB Local started by someone else?): using it`);
      while (!stopping && (await portAnswers(dynamoPort)))
        await new Promise((resolve) => setTimeout(resolve, 1000));
      ended = `on port ${dynamoPort} stopped answering`;
      continue;
    }
    try {
      dynamo = await startDynamo();
    } catch (error) {
      ended = `did not start again (${describeError(error).split('\n')[0]})`;
      continue;
    }
    if (stopping) return;
    log(`[oc] DynamoDB Local is back on port ${dynamoPort}`);
    if (inMemory)
      log(
        '[oc] WARNING: DynamoDB Local runs in memory (OC_IN_MEMORY=true): everything stored before it died is LOST; the table is re-created and the demo keys re-seeded',
      );
    // The host re-creates a missing table as soon as a readiness check sees it missing.
    void host.readiness();
    ended = await dynamo.exited;
  }
}

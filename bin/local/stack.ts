/** `npm start`: the embedded local stack (SPEC §10). Everything it starts, it stops on Ctrl-C / SIGTERM. */
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig, type Config } from '../../functions/shared/config.js';
import { ENV } from '../../functions/shared/constants.js';
import { ApiKeyStore } from '../../functions/store/api-keys.js';
import { signDevToken } from '../../functions/store/approver-tokens.js';
import { defaultPolicyDir, loadTenants } from '../../functions/store/policy-files.js';
import { startDynamoDbLocal, startS3, startSqs, type Emulator } from './emulators.js';
import { startLocalHost } from './host.js';

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
  const email = loadTenants(dir).tenant1?.approvers.emails[0];
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

export async function startLocalStack(env: NodeJS.ProcessEnv): Promise<void> {
  const port = Number(env.PORT ?? 3000);
  const inMemory = env.OC_IN_MEMORY === 'true';
  const dataDir = path.resolve(env.OC_DATA_DIR ?? '.oc-data');
  const dynamoPort = Number(env.OC_DYNAMODB_PORT ?? 8000);
  const sqsPort = Number(env.OC_AWS_PORT ?? 4566);
  const s3Port = Number(env.OC_S3_PORT ?? 4569);
  const apiKeys = parseApiKeys(env.OC_API_KEYS ?? 'tenant1:sk-test-key-1,tenant2:sk-test-key-2');

  // The SDK needs a region and some credentials; the emulators accept any.
  env.AWS_REGION ??= 'us-east-1';
  env.AWS_ACCESS_KEY_ID ??= 'local';
  env.AWS_SECRET_ACCESS_KEY ??= 'local';
  env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  // Node 20 runs the local stack; the lock file pins SDK versions that support it (Lambda runs newer Node).
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  env.POWERTOOLS_TRACE_ENABLED ??= 'false';

  const started: Emulator[] = [];
  const stopAll = async () => {
    await Promise.allSettled(started.reverse().map((e) => e.stop()));
  };
  try {
    const [dynamo, sqs, s3] = await Promise.all([
      startDynamoDbLocal({
        port: dynamoPort,
        dataDir: inMemory ? undefined : path.join(dataDir, 'dynamodb'),
      }).then((e) => (started.push(e), e)),
      startSqs(sqsPort).then((e) => (started.push(e), e)),
      startS3(s3Port, inMemory ? path.join(dataDir, 's3-tmp') : path.join(dataDir, 's3')).then(
        (e) => (started.push(e), e),
      ),
    ]);
    const config = loadConfig({
      ...env,
      [ENV.dynamodbEndpoint]: dynamo.endpoint,
      [ENV.connectorsMode]: env[ENV.connectorsMode] ?? 'mock',
      [ENV.jwtMode]: env[ENV.jwtMode] ?? 'dev',
      [ENV.publicBaseUrl]: env[ENV.publicBaseUrl] ?? `http://localhost:${port}`,
    });
    const host = await startLocalHost({
      config,
      port,
      scheduleIntervalSec: Number(env[ENV.sweepIntervalSec] ?? 60),
      // The demo keys and the evidence bucket exist before the port opens: a client that waits
      // for /readyz can use them.
      beforeReady: async (state) => {
        const keys = new ApiKeyStore(state.doc, config.tableName);
        for (const { tenantId, key } of apiKeys) await keys.put(key, { tenantId }, 'seeded from OC_API_KEYS');
        const s3Client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true });
        await s3Client
          .send(new CreateBucketCommand({ Bucket: env.OC_EVIDENCE_BUCKET ?? 'oc-evidence' }))
          .catch(() => undefined);
        s3Client.destroy();
      },
    });

    const firstKey = apiKeys[0]?.key ?? '<key>';
    const approverToken = await devApproverToken(config);
    console.log(`
OpenClause gateway is up (connectors: ${config.connectorsMode}${inMemory ? ', in memory' : `, data in ${dataDir}`})

  API          http://localhost:${port}        (GET /readyz answers 200 when every part is up)
  API keys     ${apiKeys.map((k) => `${k.tenantId}: ${k.key}`).join('   ')}
  Approver     ${approverToken}
  DynamoDB     ${dynamo.endpoint}   table ${config.tableName}
  SQS          ${sqs.endpoint}
  S3           ${s3.endpoint}   (path-style)

Try it:
  curl -s -X POST http://localhost:${port}/v1/toolcalls \\
    -H 'X-API-Key: ${firstKey}' -H 'Content-Type: application/json' \\
    -d '{"agent_id":"agent-1","tool":"slack","action":"msg.post","params":{"channel":"#general","text":"Hello"},"risk_score":3,"idempotency_key":"demo-001"}'

Ctrl-C stops everything.
`);
    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`\n[oc] ${signal}: stopping`);
      await host.stop();
      await stopAll();
      process.exit(0);
    };
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
  } catch (error) {
    console.error('[oc] failed to start:', (error as Error).message);
    await stopAll();
    process.exit(1);
  }
}

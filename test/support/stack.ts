/**
 * A local stack per test file: its own table in the shared DynamoDB Local, the same host and
 * stream poller as `npm start`, seeded keys for two tenants. Its `request`/`post`/`get` are a
 * gateway client: every response is checked against api/openapi.yaml (gateway-client.ts).
 */
import { randomUUID } from 'node:crypto';
import { startLocalHost, type LocalHost } from '../../bin/local/host.js';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { StateOverrides } from '../../functions/handlers/app-state.js';
import type { NotifyOverrides } from '../../functions/handlers/notifications-state.js';
import { loadConfig, type Config } from '../../functions/shared/config.js';
import { loadNotifyConfig } from '../../functions/shared/notify-config.js';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { gatewayClient, KEYS, type GatewayClient } from './gateway-client.js';

export { gatewayClient, KEYS, type RequestOptions, type TestResponse } from './gateway-client.js';

export interface TestStack extends LocalHost, GatewayClient {
  config: Config;
}

export function dynamoEndpoint(): string {
  const endpoint = process.env.OC_TEST_DYNAMODB_ENDPOINT;
  if (!endpoint)
    throw new Error('OC_TEST_DYNAMODB_ENDPOINT is not set: run tests through jest (global setup)');
  return endpoint;
}

export function testConfig(extra: Record<string, string> = {}): Config {
  return loadConfig({
    OC_TABLE_NAME: `t-${randomUUID()}`,
    OC_DYNAMODB_ENDPOINT: dynamoEndpoint(),
    OC_CONNECTORS_MODE: 'mock',
    OC_JWT_MODE: 'dev',
    OC_PUBLIC_BASE_URL: 'http://localhost:3000',
    OC_RATE_LIMIT_PER_SEC: '100000',
    OC_RATE_LIMIT_BURST: '200000',
    ...extra,
  });
}

/** Notifications on the shared fauxqs: settings as env (OC_WEBHOOK_SECRETS, ...) and overrides. */
export interface TestNotifications {
  env?: Record<string, string>;
  overrides?: NotifyOverrides;
  workers?: number;
}

export async function startTestStack(
  options: {
    env?: Record<string, string>;
    overrides?: StateOverrides;
    consumers?: boolean;
    notifications?: TestNotifications;
    /** A table to reuse (a restarted stack); default a fresh one. */
    tableName?: string;
    /** The host's own log lines ("[oc] ..."); default stderr. */
    log?: (line: string) => void;
    /** A fixed port (a stack whose public base URL must be its own address); default any free one. */
    port?: number;
  } = {},
): Promise<TestStack> {
  const config = testConfig({
    ...options.env,
    ...(options.tableName ? { OC_TABLE_NAME: options.tableName } : {}),
  });
  const sqsEndpoint = process.env.OC_TEST_SQS_ENDPOINT;
  if (options.notifications && !sqsEndpoint)
    throw new Error('OC_TEST_SQS_ENDPOINT is not set: run tests through jest');
  const host = await startLocalHost({
    config,
    port: options.port ?? 0,
    overrides: options.overrides,
    consumers: options.consumers,
    ...(options.log ? { log: options.log } : {}),
    ...(options.notifications && sqsEndpoint
      ? {
          notifications: {
            sqsEndpoint,
            config: loadNotifyConfig({ OC_ALLOW_PRIVATE_WEBHOOKS: 'true', ...options.notifications.env }),
            overrides: options.notifications.overrides,
            workers: options.notifications.workers,
          },
        }
      : {}),
  });
  await host.state.apiKeys.put(KEYS.tenant1, { tenantId: 'tenant1' });
  await host.state.apiKeys.put(KEYS.tenant2, { tenantId: 'tenant2' });
  return { ...host, config, ...gatewayClient(host.url) };
}

let counter = 0;
/** A valid request body; override any field. */
export function toolCall(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  counter += 1;
  return {
    agent_id: 'agent-1',
    tool: 'slack',
    action: 'msg.post',
    params: { channel: '#general', text: 'Hello' },
    risk_score: 3,
    idempotency_key: `key-${Date.now()}-${counter}-${Math.random().toString(36).slice(2)}`,
    ...overrides,
  };
}

/**
 * A copy of the policy folder whose tenants notify the given routes (everything else as shipped),
 * under OC_TEST_TMP; pass it as OC_POLICY_DIR.
 */
export function policyDirWithRoutes(routes: Record<string, unknown[]>): string {
  const base = process.env.OC_TEST_TMP;
  if (!base) throw new Error('OC_TEST_TMP is not set: run tests through jest');
  const dir = mkdtempSync(path.join(base, 'policy-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  const file = path.join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { notify: unknown[] }>;
  for (const [tenant, list] of Object.entries(routes)) if (tenants[tenant]) tenants[tenant].notify = list;
  writeFileSync(file, JSON.stringify(tenants, null, 2));
  return dir;
}

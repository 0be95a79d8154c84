/**
 * A bench script run on its own (`npx tsx bench/<name>.ts`): its own DynamoDB Local on a free
 * port and a local host (mock connectors, dev approver tokens, no rate limit to speak of), with one
 * agent key of tenant1. Stopped when `run` returns or throws.
 */
import type { LocalHost } from '../bin/local/host.js';

export async function withStandaloneStack(
  table: string,
  key: string,
  run: (host: LocalHost) => Promise<void>,
): Promise<void> {
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const { freePort, startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const { startLocalHost } = await import('../bin/local/host.js');
  const { loadConfig } = await import('../functions/shared/config.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  const host = await startLocalHost({
    config: loadConfig({
      OC_TABLE_NAME: table,
      OC_DYNAMODB_ENDPOINT: dynamo.endpoint,
      OC_CONNECTORS_MODE: 'mock',
      OC_JWT_MODE: 'dev',
      OC_RATE_LIMIT_PER_SEC: '1000000',
      OC_RATE_LIMIT_BURST: '2000000',
    }),
    port: 0,
  });
  try {
    await host.state.apiKeys.put(key, { tenantId: 'tenant1' });
    await run(host);
  } finally {
    await host.stop();
    await dynamo.stop();
  }
}

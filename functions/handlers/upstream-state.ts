/**
 * The upstream catalog's resolver as the generic MCP-client connector uses it (issue 25): the
 * tenant's registration and pinned listing from the table, the credential from Secrets Manager or
 * SSM in AWS (and from local variables or files only on the local stack), and the pre-call drift
 * check of a listing older than its `ttlMs` (which records a drift, so the function writes).
 */
import { readFileSync } from 'node:fs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ACTION_SPECS } from '../connectors/registry.js';
import { GATEWAY_TOOLS, mcpToolName } from '../core/mcp.js';
import type { UpstreamResolver } from '../core/upstream-types.js';
import { ssmCall } from '../store/mcp-state-keys.js';
import { readSecretString } from '../store/secrets.js';
import { createUpstreamResolver } from '../store/upstream-catalog.js';
import { UpstreamStore, type CredentialReaders } from '../store/upstreams.js';

/** Every MCP tool name the gateway serves natively: an upstream listing may not take one. */
export const NATIVE_MCP_NAMES: ReadonlySet<string> = new Set([
  ...ACTION_SPECS.map((spec) => mcpToolName(spec.name)),
  ...GATEWAY_TOOLS.map((tool) => tool.name),
]);

export function catalogResolver(
  doc: DynamoDBDocumentClient,
  tableName: string,
  options: { local: boolean },
): UpstreamResolver {
  const aws = {
    region: () => doc.config.region(),
    credentials: () => doc.config.credentials(),
  };
  const readers: CredentialReaders = {
    secret: readSecretString,
    parameter: async (name) => {
      const out = (await ssmCall(aws, 'GetParameter', { Name: name, WithDecryption: true })) as {
        Parameter?: { Value?: string };
      };
      return out.Parameter?.Value ?? '';
    },
    ...(options.local ? { env: process.env, file: (path: string) => readFileSync(path, 'utf8') } : {}),
  };
  return createUpstreamResolver({
    store: new UpstreamStore(doc, tableName),
    readers,
    nativeMcpNames: NATIVE_MCP_NAMES,
    now: () => new Date(),
  });
}

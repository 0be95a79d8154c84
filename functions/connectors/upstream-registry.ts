/**
 * The in-process registry for upstream MCP calls (local stack, tests, bench): the native
 * registry plus the generic MCP-client connector under `UPSTREAM_CONNECTOR`, as its Lambda
 * (`handlers/connector-mcp-upstream.ts`) runs it, and the route that sends an upstream call
 * there. Apart from `registry.ts` because the deciding functions import that one for its specs
 * and must not bundle the MCP client.
 */
import { UPSTREAM_CONNECTOR, type UpstreamResolver } from '../core/upstream-types.js';
import { createMcpUpstreamConnector, type McpUpstreamOptions } from './mcp-upstream.js';
import { serveConnector } from './sdk.js';
import type { ConnectorRegistry, ConnectorRequest } from './types.js';

export function withUpstreamConnector(
  registry: ConnectorRegistry,
  options: McpUpstreamOptions,
): ConnectorRegistry {
  return Object.freeze({
    ...registry,
    [UPSTREAM_CONNECTOR]: serveConnector(createMcpUpstreamConnector(options)),
  });
}

/**
 * A route for `createLocalInvoker` / `createLambdaInvoker`: a request whose `tool` names one of
 * the tenant's upstream servers goes to `UPSTREAM_CONNECTOR`, any other to its own connector.
 * `isUpstream` is the catalog's answer (a native connector's name is never an upstream's).
 */
export function upstreamRoute(
  isUpstream: (tenantId: string, tool: string) => boolean,
): (req: ConnectorRequest) => string {
  return (req) => (isUpstream(req.tenant_id, req.tool) ? UPSTREAM_CONNECTOR : req.tool);
}

export type { UpstreamResolver };

/** The connector invoker for the handlers that run tools (submit, execute): in process locally, Lambda in AWS. */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { CONNECTOR_DEFINITIONS, connectorRegistry } from '../connectors/registry.js';
import type { ConnectorInvoker } from '../connectors/types.js';
import { UPSTREAM_CONNECTOR } from '../core/upstream-types.js';
import { ENV } from '../shared/constants.js';
import { createLambdaInvoker, createLocalInvoker } from '../store/connector-invoker.js';
import type { AppState } from './app-state.js';

const built = new WeakMap<AppState, ConnectorInvoker>();

export function connectorsFor(state: AppState): ConnectorInvoker {
  const cached = built.get(state);
  if (cached) return cached;
  const invoker = routeUpstream(makeInvoker(state));
  built.set(state, invoker);
  return invoker;
}

function makeInvoker(state: AppState): ConnectorInvoker {
  const { config, overrides } = state;
  if (overrides.connectors) return overrides.connectors;
  if (config.connectorsMode === 'mock' || Object.keys(config.connectorFunctions).length === 0) {
    return createLocalInvoker(
      connectorRegistry({ env: { ...process.env, [ENV.connectorsMode]: config.connectorsMode } }),
    );
  }
  // One attempt: an SDK retry could run a connector's side effect twice.
  return createLambdaInvoker(new LambdaClient({ maxAttempts: 1 }), config.connectorFunctions);
}

const NATIVE_TOOLS: ReadonlySet<string> = new Set(Object.keys(CONNECTOR_DEFINITIONS));

/**
 * A call whose tool is no native connector's is an upstream MCP server's (issue 25): it runs on
 * the generic `mcp-upstream` connector, with `tool` = the server and `action` = its tool's name,
 * so the connector resolves its target by (tenant, server, tool). Submit and execute only get
 * such a call this far when the tenant's catalog has it and policy allowed or an approver approved it.
 */
function routeUpstream(invoker: ConnectorInvoker): ConnectorInvoker {
  return {
    invoke: (req, options) =>
      invoker.invoke(
        req,
        NATIVE_TOOLS.has(req.tool) || options.connector
          ? options
          : { ...options, connector: UPSTREAM_CONNECTOR },
      ),
  };
}

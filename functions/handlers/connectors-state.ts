/** The connector invoker for the handlers that run tools (submit, execute): in process locally, Lambda in AWS. */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { connectorRegistry } from '../connectors/registry.js';
import type { ConnectorInvoker } from '../connectors/types.js';
import { ENV } from '../shared/constants.js';
import { createLambdaInvoker, createLocalInvoker } from '../store/connector-invoker.js';
import type { AppState } from './app-state.js';

const built = new WeakMap<AppState, ConnectorInvoker>();

export function connectorsFor(state: AppState): ConnectorInvoker {
  const cached = built.get(state);
  if (cached) return cached;
  const invoker = makeInvoker(state);
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

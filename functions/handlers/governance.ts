/**
 * The deciding and executing half of the composition root: the Cedar policy engine and the
 * connector invoker, built once per container for the handlers that need them.
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { createPolicyEngine } from '../core/policy.js';
import type { ExecuteDeps } from '../core/execute.js';
import type { SubmitDeps } from '../core/submit.js';
import { connectorRegistry } from '../connectors/registry.js';
import type { ConnectorInvoker } from '../connectors/types.js';
import { ENV } from '../shared/constants.js';
import { metrics } from '../shared/powertools.js';
import { createLambdaInvoker, createLocalInvoker } from '../store/connector-invoker.js';
import { defaultPolicyDir, loadPolicyBundle } from '../store/policy-files.js';
import type { AppState } from './app-state.js';

const built = new WeakMap<AppState, SubmitDeps>();

function connectorsFor(state: AppState): ConnectorInvoker {
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

export function submitDeps(state: AppState): SubmitDeps {
  let deps = built.get(state);
  if (!deps) {
    const { config } = state;
    deps = {
      store: state.toolcalls,
      policy:
        state.overrides.policy ??
        createPolicyEngine(loadPolicyBundle(config.policyDir ?? defaultPolicyDir())),
      connectors: connectorsFor(state),
      rateLimiter: state.rateLimiter,
      clock: state.clock,
      ids: state.ids,
      config: {
        publicBaseUrl: config.publicBaseUrl,
        connectorTimeoutMs: config.connectorTimeoutMs,
        inFlightWaitMs: Math.min(config.connectorTimeoutMs + 1000, 5000),
      },
      onDecision: (decision) => metrics.addMetric(`decision_${decision.decision}`, MetricUnit.Count, 1),
    };
    built.set(state, deps);
  }
  return deps;
}

const builtExecute = new WeakMap<AppState, ExecuteDeps>();

export function executeDeps(state: AppState): ExecuteDeps {
  let deps = builtExecute.get(state);
  if (!deps) {
    deps = {
      events: state.toolcalls,
      approvals: state.approvals,
      executions: state.executions,
      connectors: connectorsFor(state),
      clock: state.clock,
      ids: state.ids,
      config: {
        connectorTimeoutMs: state.config.connectorTimeoutMs,
        inFlightWaitMs: Math.min(state.config.connectorTimeoutMs + 1000, 5000),
      },
    };
    builtExecute.set(state, deps);
  }
  return deps;
}

/**
 * What the execute handler uses: stores, connectors, clock, and the live policy (execute re-checks
 * an approval granted under another policy version; the same version evaluates nothing).
 */
import type { ExecuteDeps } from '../core/execute.js';
import type { AppState } from './app-state.js';
import { connectorsFor } from './connectors-state.js';
import { policyDeps } from './governance.js';

const builtExecute = new WeakMap<AppState, ExecuteDeps>();

export function executeDeps(state: AppState): ExecuteDeps {
  let deps = builtExecute.get(state);
  if (!deps) {
    deps = {
      events: state.toolcalls,
      approvals: state.approvals,
      executions: state.executions,
      ...policyDeps(state),
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

/** What `oc executions resolve` records with: execute's stores, and the allow path's result writer. */
export const resolveDeps = (state: AppState) => ({ ...executeDeps(state), results: state.toolcalls });

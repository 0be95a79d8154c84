/**
 * The deciding half of the composition root: the Cedar policy engine, the risk floors (and the
 * connectors), built once per container for the handlers that decide (submit, MCP) and execute
 * (which re-checks an approval granted under another policy version).
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { ACTION_SPECS } from '../connectors/registry.js';
import {
  createPolicyEngine,
  policyEngineFrom,
  type PolicyBundle,
  type PolicyEngine,
} from '../core/policy.js';
import { buildRiskFloors } from '../core/risk.js';
import type { EvaluationDeps } from '../core/evaluate.js';
import type { SubmitDeps } from '../core/submit.js';
import { metrics } from '../shared/powertools.js';
import { defaultPolicyDir, loadCompiledPolicy, loadPolicyBundle } from '../store/policy-files.js';
import type { AppState } from './app-state.js';
import { connectorsFor } from './connectors-state.js';

const built = new WeakMap<AppState, SubmitDeps>();
const builtPolicy = new WeakMap<AppState, EvaluationDeps>();

/**
 * The deployed Lambda's policy folder was validated and compiled by `cdk synth`: it loads the
 * compilation (if it matches the files exactly) instead of parsing. Elsewhere: parse and validate.
 */
function loadEngine(bundle: PolicyBundle, dir: string, validatedAtBuild: boolean): PolicyEngine {
  const compiled = validatedAtBuild ? loadCompiledPolicy(dir, bundle.version) : undefined;
  return compiled ? policyEngineFrom(compiled) : createPolicyEngine(bundle, { validate: !validatedAtBuild });
}

/** The live policy and its risk floors, loaded once per container (shared by submit and execute). */
export function policyDeps(state: AppState): EvaluationDeps {
  let deps = builtPolicy.get(state);
  if (!deps) {
    const { config } = state;
    const dir = config.policyDir ?? defaultPolicyDir();
    const bundle = loadPolicyBundle(dir);
    deps = {
      policy: state.overrides.policy ?? loadEngine(bundle, dir, config.policyValidatedAtBuild),
      // Connector floors, overridden by the policy folder's: one in-memory map for every decision.
      riskFloors: buildRiskFloors(ACTION_SPECS, bundle.actions.risk_floors),
    };
    builtPolicy.set(state, deps);
  }
  return deps;
}

export function submitDeps(state: AppState): SubmitDeps {
  let deps = built.get(state);
  if (!deps) {
    const { config } = state;
    deps = {
      store: state.toolcalls,
      ...policyDeps(state),
      actions: new Map(ACTION_SPECS.map((spec) => [spec.name, spec])),
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

/**
 * The deciding half of the composition root: the Cedar policy engine, the risk floors (and the
 * connectors), built once per container for the handlers that decide (submit, MCP) and execute
 * (which re-checks an approval granted under another policy version); and shadow mode's candidate
 * engine for the deciding handlers when a candidate folder is deployed (issue 24).
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { ACTION_SPECS, CONNECTOR_DEFINITIONS } from '../connectors/registry.js';
import { UpstreamStore } from '../store/upstreams.js';
import { upstreamActions } from '../store/upstream-actions.js';
import {
  createPolicyEngine,
  policyEngineFrom,
  type PolicyBundle,
  type PolicyEngine,
} from '../core/policy.js';
import { buildRiskFloors } from '../core/risk.js';
import type { EvaluationDeps } from '../core/evaluate.js';
import { unloadableCandidate, type ShadowOutcome } from '../core/shadow.js';
import type { SubmitDeps } from '../core/submit.js';
import type { Config } from '../shared/config.js';
import { SHADOW_METRICS } from '../shared/constants.js';
import { logger, metrics } from '../shared/powertools.js';
import {
  defaultPolicyDir,
  loadCompiledPolicy,
  loadPolicyBundle,
  shadowPolicyDir,
} from '../store/policy-files.js';
import type { AppState } from './app-state.js';
import { connectorsFor } from './connectors-state.js';

const built = new WeakMap<AppState, SubmitDeps>();
const builtPolicy = new WeakMap<AppState, EvaluationDeps>();
const bundles = new WeakMap<AppState, PolicyBundle>();

/**
 * The live policy folder, read, checked and hashed once per container: the engine, submit's
 * upstream classification and the MCP tool list all take it from here (each reading it anew was
 * 2 to 3 reads of the folder at every deciding cold start: ≈ 12 ms each in a profile, issue 26).
 */
export function livePolicyBundle(state: AppState): PolicyBundle {
  let bundle = bundles.get(state);
  if (!bundle) {
    bundle = loadPolicyBundle(state.config.policyDir ?? defaultPolicyDir());
    bundles.set(state, bundle);
  }
  return bundle;
}

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
    const bundle = livePolicyBundle(state);
    deps = {
      policy: state.overrides.policy ?? loadEngine(bundle, dir, config.policyValidatedAtBuild),
      // Connector floors, overridden by the policy folder's: one in-memory map for every decision.
      riskFloors: buildRiskFloors(ACTION_SPECS, bundle.actions.risk_floors),
    };
    builtPolicy.set(state, deps);
  }
  return deps;
}

/**
 * Shadow mode's candidate, if one is deployed. A candidate that cannot be loaded never stops the
 * gateway: it is logged here, and every decision counts a shadow error until it is fixed.
 */
function loadShadow(config: Config): PolicyEngine | undefined {
  const dir = shadowPolicyDir(config);
  if (!dir) return undefined;
  try {
    return loadEngine(loadPolicyBundle(dir), dir, config.policyValidatedAtBuild);
  } catch (error) {
    logger.error('shadow policy could not be loaded; shadow mode counts every decision as an error', {
      dir,
      error: error as Error,
    });
    return unloadableCandidate(error);
  }
}

/** Shadow outcomes as EMF metrics (no alarm: an idle gateway pays nothing) and a log line per error. */
function reportShadow(outcome: Exclude<ShadowOutcome, { kind: 'same' }>, tenantId: string): void {
  if (outcome.kind === 'error') {
    metrics.addMetric(SHADOW_METRICS.errors, MetricUnit.Count, 1);
    logger.warn('shadow policy evaluation failed; the live decision stands', {
      tenant_id: tenantId,
      error: outcome.error as Error,
    });
    return;
  }
  // Its own EMF line: the transition is a dimension of this metric only, not of the handler's others.
  const single = metrics.singleMetric();
  single.addDimension(SHADOW_METRICS.transitionDimension, outcome.transition);
  single.addMetric(SHADOW_METRICS.diff, MetricUnit.Count, 1);
}

export function submitDeps(state: AppState): SubmitDeps {
  let deps = built.get(state);
  if (!deps) {
    const { config } = state;
    deps = {
      store: state.toolcalls,
      standingGrants: state.grants,
      ...policyDeps(state),
      actions: new Map(ACTION_SPECS.map((spec) => [spec.name, spec])),
      connectors: connectorsFor(state),
      upstream: upstreamActions({
        store: new UpstreamStore(state.doc, config.tableName),
        actions: livePolicyBundle(state).actions,
        nativeTools: new Set(Object.keys(CONNECTOR_DEFINITIONS)),
        timeoutMs: config.connectorTimeoutMs,
      }),
      rateLimiter: state.rateLimiter,
      clock: state.clock,
      ids: state.ids,
      config: {
        publicBaseUrl: config.publicBaseUrl,
        connectorTimeoutMs: config.connectorTimeoutMs,
        inFlightWaitMs: Math.min(config.connectorTimeoutMs + 1000, 5000),
      },
      onDecision: (decision) => metrics.addMetric(`decision_${decision.decision}`, MetricUnit.Count, 1),
      shadow: state.overrides.shadowPolicy ?? loadShadow(config),
      onShadow: reportShadow,
    };
    built.set(state, deps);
  }
  return deps;
}

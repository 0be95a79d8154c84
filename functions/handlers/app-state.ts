/**
 * The composition root: every side-effecting dependency the handlers use, built once per Lambda
 * container (module scope) from validated configuration. Tests and the local host build their
 * own with `createAppState`.
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createPolicyEngine, type PolicyEngine } from '../core/policy.js';
import type { Clock, IdGenerator } from '../core/ports.js';
import type { SubmitDeps } from '../core/submit.js';
import type { ConnectorInvoker } from '../connectors/types.js';
import { loadConfig, type Config } from '../shared/config.js';
import { ENV } from '../shared/constants.js';
import { metrics } from '../shared/powertools.js';
import { ApiKeyStore } from '../store/api-keys.js';
import { ChainStore } from '../store/chain.js';
import { createLambdaInvoker, createLocalInvoker } from '../store/connector-invoker.js';
import { createDocumentClient } from '../store/dynamo.js';
import { defaultPolicyDir, loadPolicyBundle } from '../store/policy-files.js';
import { DynamoRateLimiter } from '../store/rate-limiter.js';
import { DynamoToolCallStore } from '../store/toolcalls.js';
import { connectorRegistry } from '../connectors/registry.js';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { randomUUID } from 'node:crypto';

export interface AppState {
  config: Config;
  doc: DynamoDBDocumentClient;
  policy: PolicyEngine;
  apiKeys: ApiKeyStore;
  toolcalls: DynamoToolCallStore;
  chain: ChainStore;
  connectors: ConnectorInvoker;
  clock: Clock;
  ids: IdGenerator;
  submitDeps: SubmitDeps;
}

export interface StateOverrides {
  doc?: DynamoDBDocumentClient;
  connectors?: ConnectorInvoker;
  clock?: Clock;
  policy?: PolicyEngine;
}

export const systemClock: Clock = { now: () => new Date() };
export const uuidIds: IdGenerator = { uuid: () => randomUUID() };

/** Built on first use: a handler that never evaluates policy or runs a connector never loads them. */
function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  let made = false;
  return () => {
    if (!made) {
      value = make();
      made = true;
    }
    return value as T;
  };
}

export function createAppState(config: Config, overrides: StateOverrides = {}): AppState {
  const doc =
    overrides.doc ??
    createDocumentClient(config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {});
  const clock = overrides.clock ?? systemClock;
  const policy = lazy(
    () => overrides.policy ?? createPolicyEngine(loadPolicyBundle(config.policyDir ?? defaultPolicyDir())),
  );
  const connectors = lazy(
    () =>
      overrides.connectors ??
      (config.connectorsMode === 'mock' || Object.keys(config.connectorFunctions).length === 0
        ? createLocalInvoker(
            connectorRegistry({ env: { ...process.env, [ENV.connectorsMode]: config.connectorsMode } }),
          )
        : // One attempt: an SDK retry could run a connector's side effect twice.
          createLambdaInvoker(new LambdaClient({ maxAttempts: 1 }), config.connectorFunctions)),
  );
  const toolcalls = new DynamoToolCallStore(doc, config.tableName);
  const rateLimiter = new DynamoRateLimiter(
    doc,
    config.tableName,
    { perSecond: config.rateLimitPerSec, burst: config.rateLimitBurst },
    clock,
  );
  const submitDeps = lazy((): SubmitDeps => ({
    store: toolcalls,
    policy: policy(),
    connectors: connectors(),
    rateLimiter,
    clock,
    ids: uuidIds,
    config: {
      publicBaseUrl: config.publicBaseUrl,
      connectorTimeoutMs: config.connectorTimeoutMs,
      inFlightWaitMs: Math.min(config.connectorTimeoutMs + 1000, 5000),
    },
    onDecision: (decision) => {
      metrics.addMetric(`decision_${decision.decision}`, MetricUnit.Count, 1);
    },
  }));
  return {
    config,
    doc,
    get policy() {
      return policy();
    },
    apiKeys: new ApiKeyStore(doc, config.tableName),
    toolcalls,
    chain: new ChainStore(doc, config.tableName),
    get connectors() {
      return connectors();
    },
    clock,
    ids: uuidIds,
    get submitDeps() {
      return submitDeps();
    },
  };
}

let state: AppState | undefined;

/** The container's state, built on first use from the environment. */
export function appState(): AppState {
  state ??= createAppState(loadConfig());
  return state;
}

/**
 * In Lambda, build at cold start what this handler uses, so that bad configuration fails the
 * init, not a request (and the init phase, not the first request, pays for loading it).
 */
export function warmInLambda(use: (state: AppState) => unknown = () => undefined): void {
  if (process.env.AWS_LAMBDA_FUNCTION_NAME) use(appState());
}

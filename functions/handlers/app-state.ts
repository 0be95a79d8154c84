/**
 * The composition root: every side-effecting dependency the handlers use, built once per Lambda
 * container (module scope) from validated configuration. Tests and the local host build their
 * own with `createAppState`.
 */
import { randomUUID } from 'node:crypto';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { PolicyEngine } from '../core/policy.js';
import type { Clock, IdGenerator } from '../core/ports.js';
import type { ConnectorInvoker } from '../connectors/types.js';
import { loadConfig, type Config } from '../shared/config.js';
import { ApiKeyStore } from '../store/api-keys.js';
import { ApprovalStore } from '../store/approvals.js';
import { StandingGrantStore } from '../store/grants.js';
import { createApproverVerifier, type ApproverVerifier } from '../store/approver-tokens.js';
import { ExecutionStore } from '../store/executions.js';
import { ParkedRecordStore } from '../store/parked-records.js';
import { createDocumentClient } from '../store/dynamo.js';
import { DynamoRateLimiter } from '../store/rate-limiter.js';
import { DynamoToolCallStore } from '../store/toolcalls.js';
import type { ProofSource } from './get-toolcall-proof.js';

/**
 * What every handler shares. The policy engine (Cedar's wasm) and the connectors are not here:
 * `governance.ts` builds them for the handlers that decide and execute, so that the approval routes,
 * the reads and the sequencer neither bundle nor load them.
 */
export interface AppState {
  config: Config;
  doc: DynamoDBDocumentClient;
  apiKeys: ApiKeyStore;
  toolcalls: DynamoToolCallStore;
  /** Records the outbox, the delivery worker and the archiver could not process (release-parked retries them). */
  parked: ParkedRecordStore;
  approvals: ApprovalStore;
  /** Standing grants (issue 21 deliverable 6). */
  grants: StandingGrantStore;
  executions: ExecutionStore;
  /** Verifies approver JWTs (built on first use: only the approver routes need it). */
  readonly approverTokens: ApproverVerifier;
  rateLimiter: DynamoRateLimiter;
  clock: Clock;
  ids: IdGenerator;
  overrides: StateOverrides;
}

export interface StateOverrides {
  doc?: DynamoDBDocumentClient;
  connectors?: ConnectorInvoker;
  clock?: Clock;
  policy?: PolicyEngine;
  /** Shadow mode's candidate engine, instead of the one loaded from its folder (injected faults). */
  shadowPolicy?: PolicyEngine;
  /** Ids (fact ids, approval ids): fixed ones make two runs' records comparable byte for byte. */
  ids?: IdGenerator;
  /** How long MCP `tasks/result` waits for a terminal state (default 20 s; tests shorten it). */
  mcpTaskResultWaitMs?: number;
  /**
   * Where `GET /v1/toolcalls/{event_id}/proof` reads the archive (the local host and tests: s3rver);
   * null: no archive. Default: the bucket CDK names.
   */
  proofs?: ProofSource | null;
}

export const systemClock: Clock = { now: () => new Date() };
export const uuidIds: IdGenerator = { uuid: () => randomUUID() };

export function createAppState(config: Config, overrides: StateOverrides = {}): AppState {
  const doc =
    overrides.doc ??
    createDocumentClient(config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {});
  const clock = overrides.clock ?? systemClock;
  let approverTokens: ApproverVerifier | undefined;
  return {
    config,
    doc,
    // The state clock: key expiry and the lookup cache move with it (tests move it).
    apiKeys: new ApiKeyStore(doc, config.tableName, undefined, undefined, () => clock.now()),
    toolcalls: new DynamoToolCallStore(doc, config.tableName),
    parked: new ParkedRecordStore(doc, config.tableName),
    approvals: new ApprovalStore(doc, config.tableName),
    grants: new StandingGrantStore(doc, config.tableName),
    executions: new ExecutionStore(doc, config.tableName),
    get approverTokens() {
      return (approverTokens ??= createApproverVerifier(config));
    },
    rateLimiter: new DynamoRateLimiter(
      doc,
      config.tableName,
      { perSecond: config.rateLimitPerSec, burst: config.rateLimitBurst },
      clock,
    ),
    clock,
    ids: overrides.ids ?? uuidIds,
    overrides,
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

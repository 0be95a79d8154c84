/**
 * Connector invokers: how the executor runs a connector and turns whatever happens into an
 * `ExecutionResult`. Both never throw.
 *
 * - `createLocalInvoker(registry)`: in process (local stack, tests).
 * - `createLambdaInvoker(client, functionNames)`: Lambda `Invoke` (RequestResponse) on the
 *   connector function for `req.tool`.
 *
 * The agent sees only fixed messages (`connector failed`, `connector did not answer within N ms`);
 * function errors, SDK errors and malformed payloads go to the log (W29). Statuses other than
 * success/error/timeout are refused (W32); a connector answers `timeout` when its action passed
 * its own deadline. A `timeout` means the outcome is unknown: the connector may
 * still finish its side effect after we stop waiting.
 */
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import * as z from 'zod';
import {
  CONNECTOR_ERROR_CODE,
  ConnectorResponseSchema,
  type Connector,
  type ConnectorInvoker,
  type ConnectorRegistry,
  type ConnectorRequest,
  type ExecutionResult,
} from '../connectors/types.js';
import { toSealableJson } from '../core/evidence.js';
import { ENV } from '../shared/constants.js';
import { logger } from '../shared/powertools.js';

/** Used when a caller passes a timeout that is not a positive number. */
export const DEFAULT_CONNECTOR_TIMEOUT_MS = 30_000;

type Outcome = Omit<ExecutionResult, 'duration_ms'>;

const TIMED_OUT = Symbol('timed out');

const noConnector = (tool: string): Outcome => ({
  status: 'error',
  error: { code: CONNECTOR_ERROR_CODE.noConnector, message: `no connector registered for tool "${tool}"` },
});

const connectorFailed = (): Outcome => ({
  status: 'error',
  error: { code: CONNECTOR_ERROR_CODE.connectorError, message: 'connector failed' },
});

const timedOut = (timeoutMs: number): Outcome => ({
  status: 'timeout',
  error: {
    code: CONNECTOR_ERROR_CODE.connectorTimeout,
    message: `connector did not answer within ${timeoutMs} ms`,
  },
});

const logFields = (req: ConnectorRequest) => ({
  tool: req.tool,
  action: req.action,
  event_id: req.event_id,
  tenant_id: req.tenant_id,
});

function effectiveTimeout(timeoutMs: number): number {
  return Number.isFinite(timeoutMs) && timeoutMs > 0 ? Math.ceil(timeoutMs) : DEFAULT_CONNECTOR_TIMEOUT_MS;
}

/** Resolves to the work's value, or `TIMED_OUT` (and aborts `controller`) after `ms`. */
async function raceTimeout<T>(
  work: Promise<T>,
  ms: number,
  controller: AbortController,
): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve(TIMED_OUT);
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Validates a connector's answer; anything unexpected is a connector failure. */
function toOutcome(req: ConnectorRequest, answer: unknown): Outcome {
  const parsed = ConnectorResponseSchema.safeParse(answer);
  if (!parsed.success) {
    logger.error('connector returned a malformed response', {
      ...logFields(req),
      issues: z.prettifyError(parsed.error).slice(0, 1000),
    });
    return connectorFailed();
  }
  // Recorded as evidence: made sealable (a tool's answer is never refused after it ran).
  const response = toSealableJson(parsed.data) as typeof parsed.data;
  if (response.status === 'success') {
    return response.output === undefined
      ? { status: 'success' }
      : { status: 'success', output: response.output };
  }
  if (response.status === 'timeout') {
    return { status: 'timeout', error: { code: response.error.code, message: response.error.message } };
  }
  return {
    status: 'error',
    ...(response.output === undefined ? {} : { output: response.output }),
    error: { code: response.error.code, message: response.error.message },
  };
}

class FunctionError extends Error {
  constructor(
    readonly functionError: string,
    readonly payload: string,
  ) {
    super(`connector function error: ${functionError}`);
    this.name = 'FunctionError';
  }
}

/**
 * Shared frame: look up the target, time the call, race it against the deadline, and map every
 * failure. `call` returns the connector's raw answer (unvalidated) or throws.
 */
function createInvoker<T>(
  lookup: (tool: string) => T | undefined,
  call: (target: T, req: ConnectorRequest, signal: AbortSignal) => Promise<unknown>,
  route: ConnectorRoute = byTool,
): ConnectorInvoker {
  return {
    async invoke(req, options) {
      const started = performance.now();
      const finish = (outcome: Outcome): ExecutionResult => ({
        ...outcome,
        duration_ms: Math.max(0, Math.round(performance.now() - started)),
      });
      const tool = options?.connector ?? (typeof req?.tool === 'string' ? route(req) : '');
      const target = lookup(tool);
      if (target === undefined) return finish(noConnector(tool));

      const timeoutMs = effectiveTimeout(options?.timeoutMs);
      const controller = new AbortController();
      try {
        // new Promise(...) also captures a synchronous throw from `call`.
        const work = new Promise<unknown>((resolve) => resolve(call(target, req, controller.signal)));
        const answer = await raceTimeout(work, timeoutMs, controller);
        if (answer === TIMED_OUT) {
          logger.warn('connector timed out', { ...logFields(req), timeout_ms: timeoutMs });
          return finish(timedOut(timeoutMs));
        }
        return finish(toOutcome(req, answer));
      } catch (error) {
        const extra =
          error instanceof FunctionError
            ? { function_error: error.functionError, payload: error.payload }
            : {};
        logger.error('connector invocation failed', { ...logFields(req), ...extra, error: error as Error });
        return finish(connectorFailed());
      }
    },
  };
}

/**
 * Which connector runs a request: its `tool` for the native connectors. An upstream MCP call
 * (issue 25) keeps the server's name in `tool` and is routed to `UPSTREAM_CONNECTOR` by the
 * route the gateway gives (the catalog knows which tools are upstream servers).
 */
export type ConnectorRoute = (req: ConnectorRequest) => string;

const byTool: ConnectorRoute = (req) => req.tool;

/** Runs connectors in process. Registry keys are matched exactly (own properties only). */
export function createLocalInvoker(registry: ConnectorRegistry, route?: ConnectorRoute): ConnectorInvoker {
  return createInvoker<Connector>(
    (tool) => (Object.hasOwn(registry, tool) ? registry[tool] : undefined),
    (connector, req) => connector(req),
    route,
  );
}

/**
 * Invokes the connector Lambda for `req.tool` (function name or ARN from `functionNames`).
 * Give it a `LambdaClient` whose retries cannot re-run a side effect, e.g. `maxAttempts: 1`
 * (throttles are then a `connector failed` error the agent may retry).
 */
export function createLambdaInvoker(
  client: LambdaClient,
  functionNames: Record<string, string>,
  route?: ConnectorRoute,
): ConnectorInvoker {
  const names = { ...functionNames };
  const decoder = new TextDecoder();
  return createInvoker<string>(
    (tool) => (Object.hasOwn(names, tool) && names[tool] ? names[tool] : undefined),
    async (functionName, req, abortSignal) => {
      const reply = await client.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'RequestResponse',
          Payload: new TextEncoder().encode(JSON.stringify(req)),
        }),
        { abortSignal },
      );
      const payload = reply.Payload ? decoder.decode(reply.Payload) : '';
      if (reply.FunctionError) {
        // The payload holds errorType/errorMessage/stack: log it, never return it.
        throw new FunctionError(reply.FunctionError, payload.slice(0, 2000));
      }
      if (reply.StatusCode !== undefined && reply.StatusCode !== 200) {
        throw new Error(`unexpected Lambda status ${reply.StatusCode}`);
      }
      try {
        return JSON.parse(payload) as unknown;
      } catch {
        throw new Error('connector payload is not JSON');
      }
    },
    route,
  );
}

/** `OC_CONNECTOR_FUNCTIONS`: a JSON object `{"<tool>": "<function name or ARN>"}`, set by CDK. */
export const ConnectorFunctionNames = z.record(z.string().min(1), z.string().min(1));

export function loadConnectorFunctionNames(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string> {
  const raw = env[ENV.connectorFunctions];
  if (raw === undefined || raw.trim() === '') {
    throw new Error(`${ENV.connectorFunctions} is required (JSON object of tool -> function name)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error(`${ENV.connectorFunctions} must be a JSON object of tool -> function name`);
  }
  const parsed = ConnectorFunctionNames.safeParse(json);
  if (!parsed.success) {
    throw new Error(`${ENV.connectorFunctions} must be a JSON object of tool -> function name`);
  }
  return parsed.data;
}

/**
 * Connector SDK: declare a tool's actions once, get the connector, its Lambda handler and the
 * static facts the gateway needs (which actions exist, each one's risk floor and timeout).
 *
 *   export const demo = defineConnector({
 *     tool: 'demo',
 *     actions: {
 *       'thing.get': { input, output, timeoutMs: 5_000, risk: 0, run: async (params, ctx) => ({...}) },
 *     },
 *   });
 *   export const handler = demo.lambdaHandler();
 *
 * An optional `client(options)` builds what the actions share (an API client, a mock) once per
 * instance; `run` receives it as `ctx.client`. Adding an action is adding an entry to `actions`.
 *
 * The connector never throws. It
 * 1. dispatches on `tool.action` (unknown -> `UNSUPPORTED_ACTION`),
 * 2. validates `params` with the action's input schema (`INVALID_PARAMS`, the message names the fields),
 * 3. runs the action with an abort signal that fires at the action's deadline (-> status `timeout`,
 *    `CONNECTOR_TIMEOUT`; the outcome is unknown, W32),
 * 4. validates the output with the action's output schema (`CONNECTOR_ERROR`: a connector that
 *    answers something else is broken, and what it answered is not passed on),
 * 5. maps failures: an `UpstreamError` becomes `UPSTREAM_ERROR` with its short public message;
 *    anything else `CONNECTOR_ERROR` with a fixed message. Thrown messages, upstream bodies, URLs
 *    and credentials never reach the response, and a thrown message never reaches the log either
 *    (it may quote a token): only the error's name and stack frames are logged (W29),
 * 6. logs one line per call with the correlation ids (event, tenant, agent, tool, action).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import * as z from 'zod';
import { logger } from '../shared/powertools.js';
import {
  CONNECTOR_ERROR_CODE,
  ConnectorRequestSchema,
  type Connector,
  type ConnectorRequest,
  type ConnectorResponse,
} from './types.js';

export type ConnectorOutput = Record<string, unknown>;

/** Risk is 0..10, as the agent's `risk_score`. */
export const RiskFloor = z.number().int().min(0).max(10);

export interface ActionContext<C = undefined> {
  readonly request: ConnectorRequest;
  /** Aborts at the action's deadline: pass it to every upstream call. */
  readonly signal: AbortSignal;
  /** What the definition's `client(options)` built for this instance. */
  readonly client: C;
  /** A credential by name (see `SecretResolver`); throws a message naming it, never its value. */
  secret(name: string): Promise<string>;
  /** The Powertools logger with this call's correlation ids. */
  readonly logger: Pick<typeof logger, 'debug' | 'info' | 'warn' | 'error'>;
}

export interface ActionDefinition<I extends z.ZodType, C> {
  /** Validates (and may transform) the request's `params`. */
  input: I;
  /** Validates what `run` returns; a mismatch is a connector failure. */
  output: z.ZodType<ConnectorOutput>;
  /** The action's deadline: `ctx.signal` aborts and the call answers `timeout`. */
  timeoutMs: number;
  /**
   * The server-side risk floor (0..10, W4): the gateway raises the agent's `risk_score` to at
   * least this before policy decides. `policy/actions.json` `risk_floors` may override it.
   */
  risk: number;
  /**
   * Called by the gateway itself (the notification worker posting approval messages), never by
   * agents: left out of `specs`, so policy data neither classifies it nor can ever allow it.
   */
  internal?: true;
  run: (params: z.output<I>, ctx: ActionContext<C>) => Promise<ConnectorOutput>;
}

export interface ConnectorDefinition<A extends Record<string, z.ZodType>, O, C> {
  /** The tool name agents send (`tool` in the request). */
  tool: string;
  /** Builds the per-instance client passed to every `run` as `ctx.client`. */
  client?: (options: O) => C;
  actions: { [K in keyof A]: ActionDefinition<A[K], C> };
}

/** What the gateway knows about one action without building the connector. */
export interface ActionSpec {
  /** `tool.action`, as policy names it. */
  readonly name: string;
  readonly action: string;
  readonly risk: number;
  readonly timeoutMs: number;
  /** What the action accepts as `params` and what it returns (the MCP tools' JSON Schemas). */
  readonly input: z.ZodType;
  readonly output: z.ZodType;
}

/** A connector that also says which actions it supports (so policy and capability can be reconciled, W11). */
export type DefinedConnector = Connector & {
  readonly tool: string;
  /** `tool.action` names. */
  readonly actions: readonly string[];
};

/** Resolves a connector credential by name. */
export type SecretResolver = (name: string) => Promise<string>;

export interface RuntimeOptions {
  /** Defaults to `secretsFromEnvironment(tool)`. */
  secrets?: SecretResolver;
}

export interface Connectors<O> {
  readonly tool: string;
  readonly specs: readonly ActionSpec[];
  /** Builds the in-process connector (what the local invoker and tests call). */
  create(options: O, runtime?: RuntimeOptions): DefinedConnector;
  /** The Lambda entry point: payload validated, Powertools context injected. */
  lambdaHandler(options: O, runtime?: RuntimeOptions): middy.MiddyfiedHandler<unknown, ConnectorResponse>;
}

/**
 * Thrown by an action when the upstream service fails. `message` is what the agent sees and must
 * be short and safe (e.g. `slack: channel_not_found`); `detail` goes to the log only.
 */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

/**
 * Thrown by an action whose params pass the schema but not a check that needs the request (e.g.
 * a default taken from `resource`): answers `INVALID_PARAMS` with this message.
 */
export class InvalidParamsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidParamsError';
  }
}

/** A named credential is not configured or not readable. The message never holds a value. */
export class ConnectorSecretError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConnectorSecretError';
  }
}

const errorResponse = (code: string, message: string): ConnectorResponse => ({
  status: 'error',
  error: { code, message },
});

const article = (type: string) => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);

/** Per-parse error map: short messages that read well after the field name. */
const paramsErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${article(issue.expected === 'record' ? 'object' : issue.expected)}`;
    case 'too_small':
      if (issue.origin === 'string') {
        return Number(issue.minimum) <= 1
          ? 'must not be empty'
          : `must have at least ${issue.minimum} characters`;
      }
      return undefined;
    case 'too_big':
      return issue.origin === 'string' ? `must have at most ${issue.maximum} characters` : undefined;
    default:
      return undefined;
  }
};

function describeIssues(prefix: string, error: z.ZodError): string {
  const problems = error.issues.slice(0, 5).map((issue) => {
    const field = issue.path.length > 0 ? issue.path.join('.') : prefix;
    return `${field} ${issue.message}`;
  });
  return problems.join('; ');
}

/** `invalid params: channel is required; text must be a string` */
export function describeParamsError(error: z.ZodError): string {
  return `invalid params: ${describeIssues('params', error)}`;
}

/** Stack frames without the first line, which repeats the (possibly secret-bearing) message. */
function stackFrames(error: unknown): string | undefined {
  if (!(error instanceof Error) || typeof error.stack !== 'string') return undefined;
  return error.stack
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .slice(0, 10)
    .join('\n');
}

const upperSnake = (value: string) => value.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase();

/** `OC_<TOOL>_SECRET_ARN`: the variable naming a connector's own secret (set by CDK). */
export const secretArnVariable = (tool: string) => `OC_${upperSnake(tool)}_SECRET_ARN`;

/**
 * The default resolver: with `OC_<TOOL>_SECRET_ARN` set (AWS), `name` is a key of that secret's
 * JSON object (read through the cached Secrets Manager reader); otherwise (local runs) it is the
 * variable `<TOOL>_<NAME>` (`secret('api_token')` of tool `template` reads `TEMPLATE_API_TOKEN`).
 */
export function secretsFromEnvironment(
  tool: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  readSecret?: (secretId: string) => Promise<string>,
): SecretResolver {
  return async (name) => {
    const arn = env[secretArnVariable(tool)]?.trim();
    if (!arn) {
      const variable = `${upperSnake(tool)}_${upperSnake(name)}`;
      const value = env[variable]?.trim();
      if (!value) throw new ConnectorSecretError(`${tool} connector: ${variable} is not set`);
      return value;
    }
    // Imported here so that what only reads specs (the gateway) does not bundle the reader.
    const read = readSecret ?? (await import('../store/secrets.js')).readSecretString;
    let json: unknown;
    try {
      json = JSON.parse(await read(arn));
    } catch (error) {
      if (error instanceof SyntaxError) {
        throw new ConnectorSecretError(`${tool} connector: secret ${arn} is not valid JSON`);
      }
      throw new ConnectorSecretError(`${tool} connector: ${(error as Error).message}`, { cause: error });
    }
    const value =
      typeof json === 'object' && json !== null ? (json as Record<string, unknown>)[name] : undefined;
    if (typeof value !== 'string' || value.trim() === '') {
      throw new ConnectorSecretError(`${tool} connector: secret ${arn} has no string "${name}"`);
    }
    return value.trim();
  };
}

const TIMED_OUT = Symbol('timed out');

/** Resolves to the work's value or `TIMED_OUT` (aborting `controller`) after `ms`. */
async function withDeadline<T>(
  work: () => Promise<T>,
  ms: number,
  controller: AbortController,
): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new Error('deadline'));
      resolve(TIMED_OUT);
    }, ms);
  });
  try {
    return await Promise.race([new Promise<T>((resolve) => resolve(work())), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function checkDefinition<C>(tool: string, actions: Record<string, ActionDefinition<z.ZodType, C>>) {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(tool)) throw new Error(`connector tool "${tool}" must be a-z0-9_-`);
  for (const [name, action] of Object.entries(actions)) {
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) throw new Error(`${tool}: action "${name}" must be a-z0-9._-`);
    if (!RiskFloor.safeParse(action.risk).success) throw new Error(`${tool}.${name}: risk must be 0..10`);
    if (!Number.isInteger(action.timeoutMs) || action.timeoutMs <= 0) {
      throw new Error(`${tool}.${name}: timeoutMs must be a positive integer`);
    }
  }
}

export function defineConnector<A extends Record<string, z.ZodType>, O = void, C = undefined>(
  definition: ConnectorDefinition<A, O, C>,
): Connectors<O> {
  const { tool } = definition;
  const actions = definition.actions as Record<string, ActionDefinition<z.ZodType, C>>;
  checkDefinition(tool, actions);
  const specs: readonly ActionSpec[] = Object.freeze(
    Object.entries(actions)
      .filter(([, def]) => !def.internal)
      .map(([action, def]) =>
        Object.freeze({
          name: `${tool}.${action}`,
          action,
          risk: def.risk,
          timeoutMs: def.timeoutMs,
          input: def.input,
          output: def.output,
        }),
      ),
  );

  const create = (options: O, runtime: RuntimeOptions = {}): DefinedConnector => {
    const client = definition.client ? definition.client(options) : (undefined as C);
    const secret = runtime.secrets ?? secretsFromEnvironment(tool);

    const connector: Connector = async (request) => {
      const started = performance.now();
      const fields = {
        tool: request.tool,
        action: request.action,
        event_id: request.event_id,
        tenant_id: request.tenant_id,
        agent_id: request.agent_id,
      };
      const finish = (
        response: ConnectorResponse,
        extra: Record<string, unknown> = {},
      ): ConnectorResponse => {
        const log = {
          ...fields,
          status: response.status,
          code: response.error?.code,
          duration_ms: Math.round(performance.now() - started),
          ...extra,
        };
        if (response.status === 'success') logger.info('connector action completed', log);
        else logger.warn('connector action failed', log);
        return response;
      };

      const action =
        request.tool === tool && Object.hasOwn(actions, request.action) ? actions[request.action] : undefined;
      if (!action) {
        return finish(
          errorResponse(
            CONNECTOR_ERROR_CODE.unsupportedAction,
            `unsupported action: ${request.tool}.${request.action}`,
          ),
        );
      }

      const params = action.input.safeParse(request.params, { error: paramsErrorMap });
      if (!params.success) {
        return finish(errorResponse(CONNECTOR_ERROR_CODE.invalidParams, describeParamsError(params.error)));
      }

      const controller = new AbortController();
      let child: typeof logger | undefined;
      try {
        const output = await withDeadline(
          () =>
            action.run(params.data, {
              request,
              signal: controller.signal,
              client,
              secret,
              get logger() {
                return (child ??= logger.createChild({ persistentKeys: fields }));
              },
            }),
          action.timeoutMs,
          controller,
        );
        if (output === TIMED_OUT) {
          return finish({
            status: 'timeout',
            error: {
              code: CONNECTOR_ERROR_CODE.connectorTimeout,
              message: `${tool}.${request.action} did not finish within ${action.timeoutMs} ms`,
            },
          });
        }
        const checked = action.output.safeParse(output);
        if (checked.success && (output === null || typeof output !== 'object' || Array.isArray(output))) {
          return finish(errorResponse(CONNECTOR_ERROR_CODE.connectorError, `${tool}: connector failed`), {
            reason: 'output is not an object',
          });
        }
        if (!checked.success) {
          return finish(errorResponse(CONNECTOR_ERROR_CODE.connectorError, `${tool}: connector failed`), {
            reason: 'output failed its schema',
            // Paths and codes only: the values are the upstream's data.
            issues: checked.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.code}`),
          });
        }
        // The action's own object (the schema only checks): key order is part of the mock contract.
        return finish({ status: 'success', output });
      } catch (error) {
        if (error instanceof UpstreamError) {
          return finish(errorResponse(CONNECTOR_ERROR_CODE.upstreamError, error.message), error.detail);
        }
        if (error instanceof InvalidParamsError) {
          return finish(errorResponse(CONNECTOR_ERROR_CODE.invalidParams, error.message));
        }
        return finish(errorResponse(CONNECTOR_ERROR_CODE.connectorError, `${tool}: connector failed`), {
          error_name: error instanceof Error ? error.name : typeof error,
          error_stack: stackFrames(error),
        });
      }
    };

    return Object.assign(connector, { tool, actions: Object.freeze(specs.map((spec) => spec.name)) });
  };

  return Object.freeze({
    tool,
    specs,
    create,
    lambdaHandler: (options: O, runtime?: RuntimeOptions) =>
      middy(serveConnector(create(options, runtime))).use(injectLambdaContext(logger, { resetKeys: true })),
  });
}

/**
 * The edge of a connector Lambda: validates an untrusted payload as a `ConnectorRequest`
 * (invalid -> `INVALID_REQUEST`) before handing it to the connector. Also what the local
 * in-process invoker calls, so both paths behave the same.
 */
export function serveConnector(connector: Connector): (event: unknown) => Promise<ConnectorResponse> {
  return async (event) => {
    const parsed = ConnectorRequestSchema.safeParse(event, { error: paramsErrorMap });
    if (!parsed.success) {
      logger.warn('connector request rejected', { issues: parsed.error.issues.length });
      return errorResponse(
        CONNECTOR_ERROR_CODE.invalidRequest,
        `invalid request: ${describeIssues('request', parsed.error)}`,
      );
    }
    return connector(parsed.data);
  };
}

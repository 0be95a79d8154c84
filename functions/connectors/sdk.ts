/**
 * Connector SDK: declare a tool's actions once, get the connector and the static facts the
 * gateway needs (which actions exist, each one's risk floor and timeout). The Lambda entry point
 * is `lambdaHandler` in `./lambda.ts`, apart: the deciding functions read the definitions for
 * their specs and must not bundle the Lambda edge or the Secrets Manager reader.
 *
 *   export const demo = defineConnector({
 *     tool: 'demo',
 *     actions: {
 *       'thing.get': { input, target: 'id', output, timeoutMs: 5_000, risk: 0, run: async (params, ctx) => ({...}) },
 *     },
 *   });
 *   export const handler = lambdaHandler(demo, {}); // functions/connectors/lambda.ts
 *
 * `input` is a `z.strictObject` (a param the action does not declare is refused, never ignored),
 * and `target` names the param that says which object the action acts on (`null` for an action on
 * no single object, such as a list). The gateway derives the request's `resource` from it before
 * policy runs (`ActionSpec.normalize`), so what policy judges, what the approver sees and what the
 * connector acts on are one value. `canonicalTarget` maps the target's aliases to one form, or
 * refuses them (a rule on `PROD-*` must not be sidestepped by another name for the same object).
 *
 * An optional `client(options)` builds what the actions share (an API client, a mock) once per
 * instance; `run` receives it as `ctx.client`. Adding an action is adding an entry to `actions`.
 *
 * The connector never throws. It
 * 1. dispatches on `tool.action` (unknown -> `UNSUPPORTED_ACTION`),
 * 2. normalizes the target and validates `params` exactly as the gateway did at submit
 *    (`normalizeRequest`: `INVALID_PARAMS`, the message names the fields): a request the gateway
 *    recorded before targets were derived still runs on the object its approver saw, or not at all.
 *    Every check on params belongs in `input` (refinements included) or `canonicalTarget`: both
 *    run at submit, so a call that cannot run is refused before anyone is asked to approve it,
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

/** A target in its canonical form, or why the value given is not one. */
export type TargetCheck = { ok: true; value: string } | { ok: false; message: string };

export interface ActionDefinition<I extends z.ZodType, C> {
  /**
   * Validates (and may transform) the request's `params`: a `z.strictObject`, so that a param the
   * action does not know is refused at submit instead of recorded, approved and ignored.
   */
  input: I;
  /**
   * Required: the param (a required string of `input`) naming the object the action acts on
   * (Jira `issue`, Slack `channel`), or `null` for an action on no single object (`*.list`).
   * The gateway derives the request's `resource` from it: an absent target param is taken from
   * `resource`, a `resource` that names another object is refused (422), and an action with no
   * target takes no `resource`.
   */
  target: (keyof z.input<I> & string) | null;
  /**
   * The target's canonical form: the same object under another name (a numeric id and a key, a
   * name and an id) would let a policy rule on one name be sidestepped with the other. Return
   * the canonical value (it must pass `input` too), or refuse what cannot be resolved without a
   * call upstream. Pure and synchronous: it runs before policy, for every call.
   */
  canonicalTarget?: (value: string) => TargetCheck;
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
  /** The param naming the object the action acts on, or `null` (see `ActionDefinition.target`). */
  readonly target: string | null;
  /**
   * The request as the gateway records, judges and runs it: the target param filled from
   * `resource` when absent, made canonical, `resource` derived from it, and every param checked
   * with the action's whole input schema. Pure; a refusal names the fields (`params.issue`).
   */
  normalize(request: TargetedRequest): NormalizedRequest;
}

/** The two fields of a tool call that name what it acts on. */
export interface TargetedRequest {
  params: Record<string, unknown>;
  resource: string;
}

export type NormalizedRequest =
  | { ok: true; params: Record<string, unknown>; resource: string }
  | { ok: false; message: string; details: { path: string; message: string }[] };

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
  /** Builds the connector (what the local invoker, tests and `lambdaHandler` call). */
  create(options: O, runtime?: RuntimeOptions): DefinedConnector;
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

const quoted = (value: unknown) => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
};

type Refusal = Extract<NormalizedRequest, { ok: false }>;

const refusal = (details: Refusal['details'], message?: string): Refusal => ({
  ok: false,
  message: message ?? `${details[0]!.path} ${details[0]!.message}`,
  details,
});

/** Zod's issues as details with the request's own paths (`params.issue`); unknown keys one each. */
function paramDetails(name: string, input: z.ZodType, error: z.ZodError): Refusal['details'] {
  const declared = input instanceof z.ZodObject ? Object.keys(input.shape as object) : [];
  return error.issues.slice(0, 20).flatMap((issue) => {
    const path = ['params', ...issue.path.map(String)].join('.');
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((key) => ({
        path: `${path}.${key}`,
        message: `is an unknown param: ${name} takes ${declared.join(', ') || 'none'}`,
      }));
    return [{ path, message: issue.message }];
  });
}

/**
 * The one normalization of a request's target (the gateway's at submit, the connector's before
 * it runs): see `ActionSpec.normalize`. `value` is what the input schema made of the params.
 */
export function normalizeRequest<C>(
  name: string,
  action: Pick<ActionDefinition<z.ZodType, C>, 'input' | 'target' | 'canonicalTarget' | 'internal'>,
  request: TargetedRequest,
): (NormalizedRequest & { ok: true; value: unknown }) | Refusal {
  const { target } = action;
  const { resource } = request;
  let params = request.params;
  if (target === null) {
    // The gateway's own calls (internal) carry the approval's resource for the log only.
    if (resource !== '' && !action.internal)
      return refusal([
        {
          path: 'resource',
          message: `must be empty: ${name} acts on no single object (its params say what it reads)`,
        },
      ]);
  } else {
    const given = params[target];
    if (given === undefined && resource !== '') params = { ...params, [target]: resource };
    else if (given !== undefined && resource !== '' && given !== resource)
      return refusal(
        [
          {
            path: 'resource',
            message: `${quoted(resource)} names another object than params.${target}; ${name} acts on params.${target}: send the target once, or the same value in both`,
          },
          { path: `params.${target}`, message: `${quoted(given)} differs from resource ${quoted(resource)}` },
        ],
        `resource and params.${target} name different objects`,
      );
  }
  let parsed = action.input.safeParse(params, { error: paramsErrorMap });
  if (!parsed.success) return refusal(paramDetails(name, action.input, parsed.error));
  if (target === null) return { ok: true, params, resource: '', value: parsed.data };
  const given = params[target];
  // defineConnector checked that the target is a required string: the schema passed, so it is one.
  if (typeof given !== 'string') throw new Error(`${name}: target param ${target} is not a string`);
  let value = given;
  if (action.canonicalTarget) {
    const canonical = action.canonicalTarget(value);
    if (!canonical.ok) return refusal([{ path: `params.${target}`, message: canonical.message }]);
    if (canonical.value !== value) {
      value = canonical.value;
      params = { ...params, [target]: value };
      parsed = action.input.safeParse(params, { error: paramsErrorMap });
      if (!parsed.success) return refusal(paramDetails(name, action.input, parsed.error));
    }
  }
  return { ok: true, params, resource: value, value: parsed.data };
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
    // The reader comes from the Lambda entry point (lambda.ts): what only reads specs (the
    // gateway's deciding functions) does not bundle the Secrets Manager client.
    const read = readSecret;
    if (!read) {
      throw new ConnectorSecretError(
        `${tool} connector: ${secretArnVariable(tool)} is set but no secret reader was given (serve it through lambdaHandler)`,
      );
    }
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

/** A declared target must be a required string param of a strict input schema. */
function checkTarget<C>(name: string, action: ActionDefinition<z.ZodType, C>) {
  const { target, input } = action;
  if (target !== null && typeof target !== 'string')
    throw new Error(
      `${name}: declare target: the param naming the object the action acts on, or null for none`,
    );
  if (action.canonicalTarget !== undefined && typeof action.canonicalTarget !== 'function')
    throw new Error(`${name}: canonicalTarget must be a function`);
  if (target === null) {
    if (action.canonicalTarget) throw new Error(`${name}: canonicalTarget without a target`);
    if (action.internal) return;
  }
  // Agent-facing actions refuse unknown params: an ignored key is a param the approver reads
  // and the connector never acts on.
  const strict =
    input instanceof z.ZodObject &&
    (input._zod.def.catchall as z.ZodType | undefined)?._zod.def.type === 'never';
  if (!strict) throw new Error(`${name}: input must be a z.strictObject (unknown params are refused)`);
  if (target === null) return;
  const json = z.toJSONSchema(input, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, { type?: unknown }>;
    required?: string[];
  };
  if (json.properties?.[target]?.type !== 'string' || !json.required?.includes(target))
    throw new Error(`${name}: target "${target}" must be a required string param of input`);
}

function checkDefinition<C>(tool: string, actions: Record<string, ActionDefinition<z.ZodType, C>>) {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(tool)) throw new Error(`connector tool "${tool}" must be a-z0-9_-`);
  for (const [name, action] of Object.entries(actions)) {
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) throw new Error(`${tool}: action "${name}" must be a-z0-9._-`);
    checkTarget(`${tool}.${name}`, action);
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
          target: def.target,
          normalize: (request: TargetedRequest): NormalizedRequest => {
            const normalized = normalizeRequest(`${tool}.${action}`, def, request);
            if (!normalized.ok) return normalized;
            return { ok: true, params: normalized.params, resource: normalized.resource };
          },
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

      const normalized = normalizeRequest(`${tool}.${request.action}`, action, request);
      if (!normalized.ok) {
        const problems = normalized.details
          .slice(0, 5)
          .map((d) => `${d.path.replace(/^params\./, '')} ${d.message}`);
        return finish(
          errorResponse(CONNECTOR_ERROR_CODE.invalidParams, `invalid params: ${problems.join('; ')}`),
        );
      }
      // The action sees the request it acts on: the target filled and canonical, as recorded.
      const acting: ConnectorRequest = {
        ...request,
        params: normalized.params,
        resource: normalized.resource,
      };

      const controller = new AbortController();
      let child: typeof logger | undefined;
      try {
        const output = await withDeadline(
          () =>
            action.run(normalized.value as z.output<typeof action.input>, {
              request: acting,
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

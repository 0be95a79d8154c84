/**
 * Connector SDK: declare a tool's actions with zod param schemas, get back a `Connector`.
 *
 * The returned function never throws. It
 * 1. dispatches on `tool.action` (unknown -> `UNSUPPORTED_ACTION`),
 * 2. validates `params` (invalid -> `INVALID_PARAMS`, the message names the fields),
 * 3. runs the action; an `UpstreamError` becomes `UPSTREAM_ERROR` with its short public message,
 *    anything else becomes `CONNECTOR_ERROR` (W29: upstream bodies, URLs, tokens and stack
 *    traces go to the log only, never into the response),
 * 4. logs one line per call with the correlation ids.
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

export interface ActionContext {
  readonly request: ConnectorRequest;
}

export interface ActionDefinition<S extends z.ZodType> {
  params: S;
  run: (params: z.output<S>, ctx: ActionContext) => Promise<ConnectorOutput>;
}

export interface ConnectorDefinition<A extends Record<string, z.ZodType>> {
  tool: string;
  actions: { [K in keyof A]: ActionDefinition<A[K]> };
}

/** A connector that also says which actions it supports (so policy and capability can be reconciled, W11). */
export type DefinedConnector = Connector & { readonly tool: string; readonly actions: readonly string[] };

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

export function defineConnector<A extends Record<string, z.ZodType>>(
  definition: ConnectorDefinition<A>,
): DefinedConnector {
  const { tool, actions } = definition;
  const actionNames = Object.keys(actions);

  const connector: Connector = async (request) => {
    const started = performance.now();
    const fields = {
      tool: request.tool,
      action: request.action,
      event_id: request.event_id,
      tenant_id: request.tenant_id,
    };
    const finish = (response: ConnectorResponse, extra: Record<string, unknown> = {}): ConnectorResponse => {
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
      request.tool === tool && Object.hasOwn(actions, request.action)
        ? (actions[request.action as keyof A] as ActionDefinition<z.ZodType>)
        : undefined;
    if (!action) {
      return finish(
        errorResponse(
          CONNECTOR_ERROR_CODE.unsupportedAction,
          `unsupported action: ${request.tool}.${request.action}`,
        ),
      );
    }

    const params = action.params.safeParse(request.params, { error: paramsErrorMap });
    if (!params.success) {
      return finish(errorResponse(CONNECTOR_ERROR_CODE.invalidParams, describeParamsError(params.error)));
    }

    try {
      const output = await action.run(params.data, { request });
      if (output === null || typeof output !== 'object' || Array.isArray(output)) {
        return finish(errorResponse(CONNECTOR_ERROR_CODE.connectorError, `${tool}: connector failed`), {
          reason: 'action returned a non-object output',
        });
      }
      return finish({ status: 'success', output });
    } catch (error) {
      if (error instanceof UpstreamError) {
        return finish(errorResponse(CONNECTOR_ERROR_CODE.upstreamError, error.message), error.detail);
      }
      logger.error('connector action crashed', { ...fields, error: error as Error });
      return finish(errorResponse(CONNECTOR_ERROR_CODE.connectorError, `${tool}: connector failed`));
    }
  };

  return Object.assign(connector, {
    tool,
    actions: Object.freeze(actionNames.map((name) => `${tool}.${name}`)),
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

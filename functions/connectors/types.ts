/**
 * The connector contract: what the executor sends to a connector, what a connector answers, and
 * what the executor records. The zod schemas guard both edges (the connector Lambda's payload and
 * the executor's reading of the connector's answer); the interfaces are the exact contract.
 */
import * as z from 'zod';

export interface ConnectorRequest {
  event_id: string;
  tenant_id: string;
  agent_id: string;
  tool: string;
  action: string;
  params: Record<string, unknown>;
  resource: string;
}

export interface ConnectorResponse {
  /** `timeout`: the action passed its own deadline; its side effect may or may not have happened. */
  status: 'success' | 'error' | 'timeout';
  output?: Record<string, unknown>;
  error?: { code: string; message: string };
}

export interface ExecutionResult {
  status: 'success' | 'error' | 'timeout';
  output?: Record<string, unknown>;
  error?: { code: string; message: string };
  duration_ms: number;
}

export interface ConnectorInvoker {
  /**
   * `connector`: the connector to run when it is not `req.tool`'s own (an upstream MCP server's
   * call runs on the generic `mcp-upstream` connector with `tool` = the server, issue 25).
   */
  invoke(req: ConnectorRequest, options: { timeoutMs: number; connector?: string }): Promise<ExecutionResult>;
}

/** One connector, callable in process: never throws for business or upstream failures. */
export type Connector = (req: ConnectorRequest) => Promise<ConnectorResponse>;

/** Connectors by tool name (exact match, as in the original's registry). */
export type ConnectorRegistry = Readonly<Record<string, Connector>>;

/** Error codes a connector or the invoker can put in `error.code`. */
export const CONNECTOR_ERROR_CODE = {
  invalidRequest: 'INVALID_REQUEST',
  invalidParams: 'INVALID_PARAMS',
  unsupportedAction: 'UNSUPPORTED_ACTION',
  upstreamError: 'UPSTREAM_ERROR',
  noConnector: 'NO_CONNECTOR',
  connectorTimeout: 'CONNECTOR_TIMEOUT',
  connectorError: 'CONNECTOR_ERROR',
} as const;

const id = z.string().min(1).max(256);

/** The payload a connector Lambda accepts. Unknown top-level fields are ignored (forward compatible). */
export const ConnectorRequestSchema = z.object({
  event_id: id,
  tenant_id: id,
  agent_id: id,
  tool: z.string().min(1).max(64),
  action: z.string().min(1).max(64),
  params: z.record(z.string(), z.unknown()),
  resource: z.string().max(2048),
});

const ConnectorErrorSchema = z.object({
  code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/),
  message: z.string().max(1024),
});

/**
 * What the executor accepts back from a connector. Anything else (another status, an error
 * status without an error, a non-object output) is a connector failure, never passed through (W32).
 */
export const ConnectorResponseSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('success'), output: z.record(z.string(), z.unknown()).optional() }),
  z.object({
    status: z.literal('error'),
    output: z.record(z.string(), z.unknown()).optional(),
    error: ConnectorErrorSchema,
  }),
  z.object({ status: z.literal('timeout'), error: ConnectorErrorSchema }),
]);

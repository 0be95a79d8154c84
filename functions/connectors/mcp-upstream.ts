/**
 * The generic MCP-client connector (issue 25): runs one allowed or approved call to a tool of an
 * upstream MCP server a tenant registered. The gateway routes it here (`UPSTREAM_CONNECTOR`) with
 * `tool` = the server's name and `action` = the MCP tool's name; `resolve` (the catalog's
 * `UpstreamResolver`) gives the tenant's URL, credentials and the tool's pinned schemas.
 *
 * The official client (`@modelcontextprotocol/client` 2.x: the line of the gateway's own server
 * package, one `@modelcontextprotocol/core` for both), one client per call:
 * - it declares no client capabilities; an upstream's elicitation or sampling request (2025 era:
 *   a server-to-client request) is answered "method not found" by the client, and an
 *   `input_required` result (2026 era) is not fulfilled (`autoFulfill: false`): the call fails
 *   with a fixed message. No human is asked anything outside the gateway's own approvals.
 * - version negotiation `auto`: a 2026-07-28 server is probed with `server/discover`, a 2025-era
 *   one gets its `initialize` handshake on every call (a stateless upstream needs it). The verdict
 *   (legacy, or modern with its discover result) is kept per tenant and upstream URL for
 *   `ERA_TTL_MS` in the warm instance, so the probe is not paid on every call; a failed connect
 *   forgets it.
 * - every connection goes through `createPinnedFetch` (the gateway's single outbound address
 *   rule: resolved once, every address checked, the connection pinned to the checked one); no
 *   redirect is followed (the client is told to leave redirects to the fetch, which never
 *   follows one).
 *
 * The params are checked against the pinned input schema before anything is sent (as the gateway
 * checked them at submit: `INVALID_PARAMS`, nothing sent).
 *
 * Outcomes follow the connector SDK's rules (`sdk.ts`): never throws; one log line per call with
 * the correlation ids; fixed public messages, never the upstream's error text, URL or
 * credentials. Before the `tools/call` request is sent every failure is an `error` (the tool did
 * not run). After it: a JSON-RPC error or a malformed result is an `error` (the upstream
 * answered); the deadline, or a connection lost before the answer, is a `timeout` (the outcome
 * is unknown: the tool may have run). The result is checked against the pinned output schema
 * when there is one, and recorded as a bounded copy plus the whole result's SHA-256
 * (`core/upstream-output.ts`).
 */
import {
  Client,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  StreamableHTTPClientTransport,
  type PriorDiscovery,
} from '@modelcontextprotocol/client';
import { CfWorkerJsonSchemaValidator } from '@modelcontextprotocol/client/validators/cf-worker';
import * as z from 'zod';
import { boundUpstreamResult, UPSTREAM_OUTPUT_MAX_BYTES } from '../core/upstream-output.js';
import { UPSTREAM_CONNECTOR, type UpstreamResolver, type UpstreamTarget } from '../core/upstream-types.js';
import { logger } from '../shared/powertools.js';
import { AddressRefused, AddressUnreachable, type Resolve } from '../store/outbound-address.js';
import { createPinnedFetch, ResponseTooLarge } from '../store/pinned-fetch.js';
import {
  CONNECTOR_ERROR_CODE,
  type Connector,
  type ConnectorRequest,
  type ConnectorResponse,
} from './types.js';

/** Under the connector Lambda's 10 s timeout, so the connector answers before Lambda kills it. */
export const UPSTREAM_TIMEOUT_MS = 9_000;
/** The most of one HTTP answer read from an upstream (the bounded copy is far smaller). */
export const UPSTREAM_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export interface McpUpstreamOptions {
  resolve: UpstreamResolver;
  /**
   * http and non-public addresses allowed: `-c upstreamVpc=...` deployments (private upstreams)
   * and local runs and tests. Off, an upstream must be https on a public address.
   */
  allowPrivate?: boolean;
  timeoutMs?: number;
  maxOutputBytes?: number;
  maxResponseBytes?: number;
  /** DNS (tests answer a name with a chosen address). */
  dnsResolve?: Resolve;
}

const CLIENT_INFO = { name: 'openclause-gateway', version: '1' };

/** How long a warm instance trusts an upstream's protocol era (as drift's default listing TTL). */
export const ERA_TTL_MS = 5 * 60_000;

/** What an MCP `tools/call` result must look like to be recorded (the rest is the upstream's business). */
const CallToolResultShape = z.looseObject({
  content: z.array(z.looseObject({ type: z.string() })).default([]),
  structuredContent: z.record(z.string(), z.unknown()).optional(),
  isError: z.boolean().optional(),
});

const errorResponse = (code: string, message: string): ConnectorResponse => ({
  status: 'error',
  error: { code, message },
});

class OutputSchemaMismatch extends Error {
  override readonly name = 'OutputSchemaMismatch';
}

/** One JSON Schema validator for every call: the interpreting one the MCP bundle already ships. */
const validator = new CfWorkerJsonSchemaValidator();

function checkOutput(target: UpstreamTarget, structured: Record<string, unknown> | undefined): void {
  const schema = target.tool.outputSchema;
  if (schema === undefined) return;
  if (structured === undefined) throw new OutputSchemaMismatch('no structuredContent');
  const verdict = validator.getValidator(schema as Parameters<typeof validator.getValidator>[0])(structured);
  if (!verdict.valid) throw new OutputSchemaMismatch('structuredContent does not match the output schema');
}

export function createMcpUpstreamConnector(options: McpUpstreamOptions): Connector {
  const timeoutMs = options.timeoutMs ?? UPSTREAM_TIMEOUT_MS;
  const maxOutputBytes = options.maxOutputBytes ?? UPSTREAM_OUTPUT_MAX_BYTES;
  const maxResponseBytes = options.maxResponseBytes ?? UPSTREAM_MAX_RESPONSE_BYTES;
  // Per tenant and URL: a discover result is reused only within the context it was obtained in.
  const eras = new Map<string, { prior: PriorDiscovery; at: number }>();

  return async (request: ConnectorRequest): Promise<ConnectorResponse> => {
    const started = performance.now();
    const fields = {
      tool: request.tool,
      action: request.action,
      event_id: request.event_id,
      tenant_id: request.tenant_id,
      agent_id: request.agent_id,
      connector: UPSTREAM_CONNECTOR,
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
    const name = `${request.tool}.${request.action}`;

    let target: UpstreamTarget | null;
    try {
      target = await options.resolve(request.tenant_id, request.tool, request.action);
    } catch (error) {
      // Storage or secret failure: fail closed, nothing was sent.
      return finish(
        errorResponse(CONNECTOR_ERROR_CODE.connectorError, `${UPSTREAM_CONNECTOR}: connector failed`),
        {
          reason: 'resolver failed',
          error_name: error instanceof Error ? error.name : typeof error,
        },
      );
    }
    if (!target)
      return finish(
        errorResponse(
          CONNECTOR_ERROR_CODE.unsupportedAction,
          `unsupported action: ${name} is not an enabled upstream tool`,
        ),
      );
    // The wall: a resolver answering another tenant's (or another tool's) target is a bug, not a call.
    if (
      target.tenantId !== request.tenant_id ||
      target.server !== request.tool ||
      target.tool.name !== request.action
    )
      return finish(
        errorResponse(CONNECTOR_ERROR_CODE.connectorError, `${UPSTREAM_CONNECTOR}: connector failed`),
        {
          reason: 'resolver answered another target',
        },
      );

    // The params as the gateway checked them at submit, against the same pinned schema: a call
    // recorded under another listing runs on what its approver saw, or not at all.
    let inputValid: boolean;
    try {
      inputValid = validator.getValidator(
        target.tool.inputSchema as Parameters<typeof validator.getValidator>[0],
      )(request.params).valid;
    } catch (error) {
      return finish(
        errorResponse(CONNECTOR_ERROR_CODE.connectorError, `${UPSTREAM_CONNECTOR}: connector failed`),
        {
          reason: 'input schema unusable',
          error_name: error instanceof Error ? error.name : typeof error,
        },
      );
    }
    if (!inputValid)
      return finish(
        errorResponse(
          CONNECTOR_ERROR_CODE.invalidParams,
          `invalid params: ${name} params do not match the tool's input schema`,
        ),
      );

    const controller = new AbortController();
    const pinned = createPinnedFetch({
      allowPrivate: options.allowPrivate ?? false,
      subject: 'upstream',
      dnsTimeoutMs: timeoutMs,
      maxResponseBytes,
      resolve: options.dnsResolve,
      signal: controller.signal,
    });
    const transport = new StreamableHTTPClientTransport(new URL(target.url), {
      fetch: pinned.fetch,
      // Redirects left to the fetch, which never follows one: a 3xx fails the call.
      redirectPolicy: 'follow',
      requestInit: { headers: target.headers },
      // One call, one answer: no reconnection to a stream the call no longer waits for.
      reconnectionOptions: {
        maxRetries: 0,
        initialReconnectionDelay: 1,
        maxReconnectionDelay: 1,
        reconnectionDelayGrowFactor: 1,
      },
    });
    const client = new Client(CLIENT_INFO, {
      capabilities: {},
      jsonSchemaValidator: validator,
      inputRequired: { autoFulfill: false },
      versionNegotiation: { mode: 'auto' },
    });
    let sent = false;
    const eraKey = JSON.stringify([target.tenantId, target.url]);
    const known = eras.get(eraKey);
    const prior = known && Date.now() - known.at < ERA_TTL_MS ? known.prior : undefined;

    const work = async () => {
      try {
        await client.connect(transport, { signal: controller.signal, timeout: timeoutMs, prior });
      } catch (error) {
        eras.delete(eraKey);
        throw error;
      }
      if (!prior) {
        const discover = client.getDiscoverResult();
        eras.set(eraKey, {
          prior:
            client.getProtocolEra() === 'modern' && discover
              ? { kind: 'modern', discover }
              : { kind: 'legacy' },
          at: Date.now(),
        });
      }
      sent = true;
      const raw: unknown = await client.callTool(
        { name: target.tool.name, arguments: request.params },
        { signal: controller.signal, timeout: timeoutMs },
      );
      return raw;
    };

    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new Error('deadline'));
        resolve(TIMED_OUT);
      }, timeoutMs);
    });
    try {
      const raw = await Promise.race([work(), deadline]);
      if (raw === TIMED_OUT) {
        return sent
          ? finish({
              status: 'timeout',
              error: {
                code: CONNECTOR_ERROR_CODE.connectorTimeout,
                message: `${name} did not finish within ${timeoutMs} ms`,
              },
            })
          : finish(
              errorResponse(
                CONNECTOR_ERROR_CODE.upstreamError,
                `${request.tool}: no connection within ${timeoutMs} ms (the tool was not called)`,
              ),
            );
      }
      const parsed = CallToolResultShape.safeParse(raw);
      if (!parsed.success)
        return finish(errorResponse(CONNECTOR_ERROR_CODE.upstreamError, `${name}: malformed result`), {
          reason: 'result failed the CallToolResult shape',
          issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.code}`),
        });
      const output = boundUpstreamResult(parsed.data, maxOutputBytes);
      if (parsed.data.isError === true)
        // The tool ran and said it failed: its (bounded) answer is recorded and returned with the error.
        return {
          ...finish(errorResponse(CONNECTOR_ERROR_CODE.upstreamError, `${name}: the tool reported an error`)),
          output,
        };
      checkOutput(target, parsed.data.structuredContent);
      return finish(
        { status: 'success', output },
        { result_bytes: output.result_bytes, truncated: output.truncated },
      );
    } catch (error) {
      return finish(...classify(error, name, request.tool, sent, maxResponseBytes));
    } finally {
      clearTimeout(timer);
      if (!controller.signal.aborted) await closeQuietly(transport, client);
      controller.abort(new Error('call finished'));
      pinned.close();
    }
  };
}

const TIMED_OUT = Symbol('timed out');

/** Ends the session politely (a stateful upstream keeps it otherwise); never fails the call. */
async function closeQuietly(transport: StreamableHTTPClientTransport, client: Client): Promise<void> {
  try {
    if (transport.sessionId) await transport.terminateSession();
  } catch {
    // The upstream expires sessions itself.
  }
  await client.close().catch(() => undefined);
}

type Classified = [ConnectorResponse, Record<string, unknown>];

/** Every failure as an outcome with a fixed public message; the log gets names and codes only. */
function classify(error: unknown, name: string, server: string, sent: boolean, maxBytes: number): Classified {
  const logged = {
    error_name: error instanceof Error ? error.name : typeof error,
    sdk_code: error instanceof SdkError ? error.code : undefined,
    rpc_code: error instanceof ProtocolError ? error.code : undefined,
    sent,
  };
  const upstream = (message: string): Classified => [
    errorResponse(CONNECTOR_ERROR_CODE.upstreamError, message),
    logged,
  ];
  if (error instanceof AddressRefused || findCause(error, AddressRefused))
    // The message names the rule broken (scheme, non-public address), never the URL.
    return upstream(`${server}: ${(findCause(error, AddressRefused) ?? (error as Error)).message}`);
  if (error instanceof OutputSchemaMismatch)
    return upstream(`${name}: result does not match the tool's output schema`);
  if (findCause(error, ResponseTooLarge)) return upstream(`${name}: answer larger than ${maxBytes} bytes`);
  if (error instanceof ProtocolError) return upstream(`${name}: upstream error ${error.code}`);
  if (error instanceof SdkError && error.code === SdkErrorCode.UnsupportedResultType)
    return upstream(`${name}: the upstream asked for input, which the gateway declines`);
  if (error instanceof SdkError && error.code === SdkErrorCode.InvalidResult)
    return upstream(`${name}: malformed result`);
  if (!sent) {
    if (findCause(error, AddressUnreachable)) return upstream(`${server}: cannot resolve the upstream host`);
    return upstream(`${server}: upstream unreachable (the tool was not called)`);
  }
  if (error instanceof SdkError && error.code === SdkErrorCode.ClientHttpUnexpectedContent)
    return upstream(`${name}: malformed result`);
  if (error instanceof SdkError && /^CLIENT_HTTP_/.test(error.code))
    return upstream(`${name}: upstream HTTP error`);
  // The request went out and no answer came back: the tool may have run.
  return [
    {
      status: 'timeout',
      error: {
        code: CONNECTOR_ERROR_CODE.upstreamError,
        message: `${name}: connection lost after the call was sent; its outcome is unknown`,
      },
    },
    logged,
  ];
}

function findCause<T extends Error>(
  error: unknown,
  type: abstract new (...args: never[]) => T,
): T | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof type) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

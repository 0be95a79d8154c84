/**
 * POST /mcp: the gateway as an MCP server (Streamable HTTP, stateless), with the official SDK's
 * `createMcpHandler`: 2026-07-28 requests (per-request envelope, no sessions) and 2025-era ones
 * (initialize, then stateless requests) from one server definition, negotiated per request.
 *
 * The edge is the REST API's: the agent API key (401 with `WWW-Authenticate`), the Origin check
 * the transport spec asks for, the body limits, the tenant's rate limit. `tools/call` of a governed
 * tool runs `submitToolCall`, the core of `POST /v1/toolcalls`, and `oc_execute_approved` runs
 * `executeApproved`, the core of `/execute`: same validation, floors, idempotency, policy and
 * evidence. Nothing the client sends can approve: an approval-gated call answers "pending" with the
 * console link (and, where the client supports it, a URL elicitation pointing its human there).
 */
import { randomBytes } from 'node:crypto';
import {
  createMcpHandler,
  inputRequired,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  type CallToolRequest,
  type McpRequestContext,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { ACTION_SPECS } from '../connectors/registry.js';
import { executeApproved } from '../core/execute.js';
import {
  buildCatalog,
  clientLabel,
  derivedIdempotencyKey,
  EventIdArguments,
  EXECUTE_TOOL,
  executeOutcome,
  GATEWAY_TOOLS,
  mcpToolName,
  refusedCall,
  splitArguments,
  STATUS_TOOL,
  submitOutcome,
  type PendingApproval,
  type ToolResult,
} from '../core/mcp.js';
import { buildRiskFloors } from '../core/risk.js';
import { approvalUrl, submitToolCall, type SubmitInput } from '../core/submit.js';
import { LIMITS } from '../shared/constants.js';
import { AppError, payloadTooLarge, rateLimited, unsupportedMediaType } from '../shared/errors.js';
import {
  bodyBytes,
  header,
  httpRoute,
  requireTenant,
  type HttpEvent,
  type HttpResult,
} from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { logger } from '../shared/powertools.js';
import { defaultPolicyDir, loadPolicyBundle } from '../store/policy-files.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { authenticated } from './authentication.js';
import { executeDeps } from './execution-state.js';
import { submitDeps } from './governance.js';

export const MCP_SERVER_INFO = { name: 'openclause-gateway', version: '0.1.0' } as const;

const INSTRUCTIONS =
  'Every tool call is governed by the OpenClause gateway: policy allows it (it runs), denies it ' +
  `(an error with the reason) or parks it for a human approver (the result says pending and names the ` +
  `console page). Approval is never yours to give: after a human approves, call ${EXECUTE_TOOL} with ` +
  `the event_id, once. Pass idempotency_key to make a call safe to repeat; without one, re-sending the ` +
  'same JSON-RPC request (same id, same arguments) replays its first answer instead of running again.';

const CLIENT_INFO_KEY = 'io.modelcontextprotocol/clientInfo';
const CLIENT_CAPABILITIES_KEY = 'io.modelcontextprotocol/clientCapabilities';
const PROTOCOL_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';

/** Who is calling, from the API key (authentication runs before the SDK sees the request). */
interface Caller {
  tenantId: string;
  agentId?: string;
}

/**
 * What a 2025-era client said at `initialize`, carried by the client itself: the session id this
 * server hands out is that information (base64url JSON) plus 96 random bits, so the server stays
 * stateless and each session's request ids are told apart (see `derivedIdempotencyKey`).
 */
interface LegacySession {
  id: string;
  name: string;
  version: string;
  urlElicitation: boolean;
}

export function legacySessionId(init: { clientInfo?: unknown; capabilities?: unknown }): string {
  const info = clientLabel(init.clientInfo);
  const caps = (init.capabilities ?? {}) as { elicitation?: { url?: unknown } };
  const claims = { n: info.name, v: info.version, u: caps.elicitation?.url !== undefined ? 1 : 0 };
  return `${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${randomBytes(12).toString('base64url')}`;
}

function legacySession(header: string | null): LegacySession | undefined {
  const match = header && /^([A-Za-z0-9_-]{1,1024})\.([A-Za-z0-9_-]{16})$/.exec(header);
  if (!match) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(match[1]!, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    const info = clientLabel({ name: claims.n, version: claims.v });
    return { id: header, ...info, urlElicitation: claims.u === 1 };
  } catch {
    return undefined;
  }
}

interface McpDeps {
  state: AppState;
  actions: ReturnType<typeof loadPolicyBundle>['actions'];
  floors: ReturnType<typeof buildRiskFloors>;
  /** The actions whose connector this deployment runs (in AWS: the connector Lambdas it has). */
  listed: typeof ACTION_SPECS;
}

const built = new WeakMap<AppState, McpDeps>();
function mcpDeps(state: AppState): McpDeps {
  let deps = built.get(state);
  if (!deps) {
    const bundle = loadPolicyBundle(state.config.policyDir ?? defaultPolicyDir());
    const deployed = Object.keys(state.config.connectorFunctions);
    const live = state.config.connectorsMode === 'live' && deployed.length > 0;
    deps = {
      state,
      actions: bundle.actions,
      floors: buildRiskFloors(ACTION_SPECS, bundle.actions.risk_floors),
      // An optional connector not deployed (`-c templateConnector=true` not given) is not offered.
      listed: ACTION_SPECS.filter((spec) => !live || deployed.includes(spec.name.split('.')[0]!)),
    };
    built.set(state, deps);
  }
  return deps;
}

const SPECS_BY_TOOL = new Map(ACTION_SPECS.map((spec) => [mcpToolName(spec.name), spec]));

/** The per-request view of the call: caller, era, client. */
interface CallContext {
  caller: Caller;
  era: 'legacy' | 'modern';
  session?: LegacySession;
  client: { name: string; version: string; protocol_version: string };
  urlElicitation: boolean;
}

function callContext(
  ctx: ServerContext,
  era: 'legacy' | 'modern',
  caller: Caller,
  request?: Request,
): CallContext {
  if (era === 'modern') {
    const envelope = (ctx.mcpReq.envelope ?? {}) as Record<string, unknown>;
    const caps = (envelope[CLIENT_CAPABILITIES_KEY] ?? {}) as { elicitation?: { url?: unknown } };
    const info = clientLabel(envelope[CLIENT_INFO_KEY]);
    const version = envelope[PROTOCOL_VERSION_KEY];
    return {
      caller,
      era,
      client: { ...info, protocol_version: typeof version === 'string' ? version.slice(0, 32) : 'unknown' },
      urlElicitation: caps.elicitation?.url !== undefined,
    };
  }
  const session = legacySession(request?.headers.get('mcp-session-id') ?? null);
  const version = request?.headers.get('mcp-protocol-version') ?? '2025-03-26';
  return {
    caller,
    era,
    ...(session ? { session } : {}),
    client: {
      name: session?.name ?? 'unknown',
      version: session?.version ?? 'unknown',
      protocol_version: /^[0-9A-Za-z-]{1,32}$/.test(version) ? version : 'unknown',
    },
    urlElicitation: session?.urlElicitation ?? false,
  };
}

function agentOf(call: CallContext): string {
  if (call.caller.agentId) return call.caller.agentId;
  const name = call.client.name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .slice(0, 100);
  return name && name !== 'unknown' ? `mcp-${name}` : 'mcp-client';
}

const internal = (error: unknown, message = 'internal error: nothing is known to have run; retry'): never => {
  logger.error('mcp tool call failed', { error: error as Error });
  throw new ProtocolError(ProtocolErrorCode.InternalError, message);
};

/** A core error: a 4xx is the model's to read (a tool error); a 5xx fails closed (JSON-RPC error). */
function fromCoreError(error: unknown): ToolResult {
  if (error instanceof AppError && error.status < 500) return refusedCall(error);
  if (error instanceof AppError) return internal(error, error.message);
  return internal(error);
}

async function callGovernedTool(
  deps: McpDeps,
  call: CallContext,
  request: CallToolRequest,
  ctx: ServerContext,
): Promise<ToolResult | ReturnType<typeof inputRequired>> {
  const { name } = request.params;
  const spec = SPECS_BY_TOOL.get(name);
  if (!spec) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${name}`);

  // A 2026-07-28 retry of a call parked for approval: its state names the event (this tenant's only).
  const resumed = call.era === 'modern' ? ctx.mcpReq.requestState<string>() : undefined;
  if (typeof resumed === 'string') return resumeApproval(deps, call, resumed, name);

  const split = splitArguments(spec, request.params.arguments ?? {});
  if (!split.ok)
    return { isError: true, content: [{ type: 'text', text: `${split.message}. Nothing ran.` }] };
  const action = spec.action;
  const body = {
    agent_id: agentOf(call),
    tool: spec.name.slice(0, spec.name.length - action.length - 1),
    action,
    params: split.params,
    idempotency_key:
      split.idempotencyKey ??
      derivedIdempotencyKey({
        requestId: ctx.mcpReq.id,
        tool: name,
        args: request.params.arguments ?? {},
        session: call.session?.id,
        now: deps.state.clock.now(),
      }),
    ...(call.session ? { session_id: `mcp-${call.session.id.slice(-16)}` } : {}),
  };
  const input: SubmitInput = {
    tenantId: call.caller.tenantId,
    body,
    channel: { channel: 'mcp', client: call.client },
  };
  let response;
  try {
    response = await submitToolCall(submitDeps(deps.state), input);
  } catch (error) {
    return fromCoreError(error);
  }
  const outcome = submitOutcome(response, name);
  if (outcome.pending) return askForApproval(call, ctx, outcome.pending, outcome.result);
  return outcome.result;
}

const approvalMessage = (p: PendingApproval) =>
  `An OpenClause approver must decide this call (${p.reason}) before ${p.expiresAt}. Open the console to review it.`;

/**
 * Pending: the result says so. A client that supports URL elicitation is also asked to show its
 * human the console page: a 2026-07-28 `input_required` result (the client retries when its human
 * is done; the retry only reads the decision), or on a 2025 connection an `elicitation/create` in
 * URL mode sent before the result. Whatever the client answers, only an approver decides.
 */
function askForApproval(
  call: CallContext,
  ctx: ServerContext,
  pending: PendingApproval,
  result: ToolResult,
): ToolResult | ReturnType<typeof inputRequired> {
  if (!call.urlElicitation) return result;
  if (call.era === 'modern') {
    return inputRequired({
      inputRequests: {
        approval: inputRequired.elicitUrl({ message: approvalMessage(pending), url: pending.url }),
      },
      requestState: pending.eventId,
    });
  }
  // Stateless: the client's answer reaches another instance, and nothing waits for it.
  ctx.mcpReq
    .send(
      {
        method: 'elicitation/create',
        params: {
          mode: 'url',
          message: approvalMessage(pending),
          url: pending.url,
          elicitationId: pending.approvalId,
        },
      },
      { timeout: 1 },
    )
    .catch(() => undefined);
  return result;
}

async function resumeApproval(
  deps: McpDeps,
  call: CallContext,
  eventId: string,
  toolName: string,
): Promise<ToolResult | ReturnType<typeof inputRequired>> {
  const parsed = EventIdArguments.safeParse({ event_id: eventId });
  if (!parsed.success) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'invalid requestState');
  const result = await runApproved(deps, call.caller, eventId);
  if (result.structuredContent?.status !== 'pending') return result;
  const view = await deps.state.toolcalls.getEvent(call.caller.tenantId, eventId);
  const approval = view?.approval;
  if (!approval || !call.urlElicitation) return result;
  const pending: PendingApproval = {
    eventId,
    approvalId: approval.id,
    url: approvalUrl(deps.state.config.publicBaseUrl, approval.id),
    expiresAt: approval.expires_at,
    reason: view.reason,
  };
  logger.debug('mcp call still pending', { eventId, tool: toolName });
  return inputRequired({
    inputRequests: {
      approval: inputRequired.elicitUrl({ message: approvalMessage(pending), url: pending.url }),
    },
    requestState: eventId,
  });
}

async function runApproved(deps: McpDeps, caller: Caller, eventId: string): Promise<ToolResult> {
  try {
    const response = await executeApproved(executeDeps(deps.state), { tenantId: caller.tenantId, eventId });
    return executeOutcome(eventId, { response });
  } catch (error) {
    if (error instanceof AppError && error.status < 500) return executeOutcome(eventId, { error });
    return fromCoreError(error);
  }
}

async function approvalStatus(deps: McpDeps, caller: Caller, eventId: string): Promise<ToolResult> {
  const { state } = deps;
  let stored;
  try {
    stored = await state.toolcalls.getEvent(caller.tenantId, eventId);
  } catch (error) {
    return internal(error);
  }
  const answer = (status: string, message: string, extra: Record<string, unknown> = {}): ToolResult => ({
    content: [{ type: 'text', text: message }],
    structuredContent: { status, event_id: eventId, ...extra },
  });
  if (!stored || stored.parent_event_id !== undefined)
    return { ...answer('not_found', `No governed call ${eventId} for this tenant.`), isError: true };
  if (stored.decision !== 'approve')
    return answer(
      stored.decision === 'deny' ? 'denied' : 'executed',
      `Decided ${stored.decision} by policy: ${stored.reason}.`,
      {
        reason: stored.reason,
      },
    );
  if (stored.execution)
    return answer(
      stored.execution.status === 'completed' ? 'executed' : 'unknown',
      `Approved and ${stored.execution.status === 'completed' ? 'executed' : `execution ${stored.execution.status}`}.`,
      { execution_event_id: stored.execution.execution_event_id },
    );
  const approval = stored.approval;
  const expired =
    approval?.status === 'pending' && Date.parse(approval.expires_at) <= state.clock.now().getTime();
  const status = expired ? 'expired' : (approval?.status ?? 'pending');
  const url = approval ? approvalUrl(state.config.publicBaseUrl, approval.id) : '';
  const messages: Record<string, string> = {
    pending: `Pending: waiting for an approver at ${url}.`,
    approved: `Approved${approval?.decided_by ? ` by ${approval.decided_by}` : ''}: call ${EXECUTE_TOOL} to run it (once).`,
    denied: `Denied${approval?.decided_by ? ` by ${approval.decided_by}` : ''}: ${approval?.deny_reason || 'no reason given'}.`,
    expired: 'Expired before anyone decided.',
  };
  return answer(status, messages[status] ?? status, {
    ...(approval ? { approval: { id: approval.id, url, expires_at: approval.expires_at } } : {}),
    ...(status === 'denied' ? { reason: approval?.deny_reason ?? '' } : {}),
  });
}

async function callTool(
  deps: McpDeps,
  call: CallContext,
  request: CallToolRequest,
  ctx: ServerContext,
): Promise<ToolResult | ReturnType<typeof inputRequired>> {
  const { name } = request.params;
  if (name !== STATUS_TOOL && name !== EXECUTE_TOOL) return callGovernedTool(deps, call, request, ctx);
  const args = EventIdArguments.safeParse(request.params.arguments ?? {});
  if (!args.success) {
    const issue = args.error.issues[0];
    return {
      isError: true,
      content: [
        {
          type: 'text',
          text: `invalid arguments for ${name}: ${issue?.path.join('.') || 'arguments'} ${issue?.message}`,
        },
      ],
    };
  }
  return name === STATUS_TOOL
    ? approvalStatus(deps, call.caller, args.data.event_id)
    : runApproved(deps, call.caller, args.data.event_id);
}

/** One server per request (the SDK's stateless idiom): its tools are the caller's tenant's. */
function serverFor(deps: McpDeps) {
  return (ctx: McpRequestContext): Server => {
    const caller = ctx.authInfo?.extra as unknown as Caller;
    const server = new Server(MCP_SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
    server.setRequestHandler('tools/list', async (_request, c) => {
      const call = callContext(c, ctx.era, caller, ctx.requestInfo);
      const catalog = buildCatalog({
        specs: deps.listed,
        actions: deps.actions,
        floors: deps.floors,
        policy: submitDeps(deps.state).policy,
        tenantId: caller.tenantId,
        agentId: agentOf(call),
        now: deps.state.clock.now(),
      });
      return { tools: [...catalog.map((entry) => entry.tool), ...GATEWAY_TOOLS] };
    });
    server.setRequestHandler('tools/call', async (request, c) =>
      callTool(deps, callContext(c, ctx.era, caller, ctx.requestInfo), request, c),
    );
    return server;
  };
}

const handlers = new WeakMap<AppState, ReturnType<typeof createMcpHandler>>();
function mcpHandlerFor(state: AppState) {
  let handler = handlers.get(state);
  if (!handler) {
    handler = createMcpHandler(serverFor(mcpDeps(state)), {
      legacy: 'stateless',
      responseMode: 'auto',
      maxRequestBodySize: LIMITS.maxBodyBytes,
      onerror: (error) => logger.info('mcp request refused', { error: error.message }),
    });
    handlers.set(state, handler);
  }
  return handler;
}

const AUTH_CHALLENGE = 'Bearer realm="openclause-mcp"';

/** Origin (DNS rebinding, transport spec): absent (not a browser) or the gateway's own. */
function originAllowed(origin: string | undefined, publicBaseUrl: string): boolean {
  if (origin === undefined) return true;
  try {
    return new URL(origin).origin === new URL(publicBaseUrl).origin;
  } catch {
    return false;
  }
}

/**
 * What the edge needs of a single JSON-RPC message before the SDK reads it: whether it is a
 * governed `tools/call` (it takes its rate-limit token in the submit core, as on REST) and the
 * `initialize` params (a 2025 client's session id is made of them).
 */
function peek(bytes: Buffer): {
  governed: boolean;
  initialize?: { clientInfo?: unknown; capabilities?: unknown };
} {
  let message: { method?: unknown; params?: { name?: unknown } & Record<string, unknown> };
  try {
    message = JSON.parse(bytes.toString('utf8')) as typeof message;
  } catch {
    return { governed: false };
  }
  if (typeof message !== 'object' || message === null) return { governed: false };
  const governed =
    message.method === 'tools/call' &&
    typeof message.params?.name === 'string' &&
    SPECS_BY_TOOL.has(message.params.name);
  return {
    governed,
    ...(message.method === 'initialize'
      ? { initialize: (message.params ?? {}) as Record<string, unknown> }
      : {}),
  };
}

export const mcpRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent): Promise<HttpResult> => {
      let caller: Caller;
      try {
        caller = requireTenant(event);
      } catch (error) {
        if (error instanceof AppError && error.status === 401) {
          throw new AppError(401, error.code, error.message, {
            headers: {
              'WWW-Authenticate':
                error.message === 'missing API key'
                  ? AUTH_CHALLENGE
                  : `${AUTH_CHALLENGE}, error="invalid_token"`,
            },
          });
        }
        throw error;
      }
      const state = getState();
      const method = event.requestContext.http.method;
      if (method !== 'POST') {
        throw new AppError(
          405,
          'METHOD_NOT_ALLOWED',
          'this MCP endpoint is stateless: POST only (no SSE stream)',
          {
            headers: { Allow: 'POST' },
          },
        );
      }
      if (!originAllowed(header(event, 'origin'), state.config.publicBaseUrl))
        throw new AppError(403, 'FORBIDDEN', 'Origin not allowed', {
          details: [{ path: 'origin', message: 'send no Origin, or the gateway’s own' }],
        });
      const contentType = header(event, 'content-type') ?? '';
      if (!/^application\/json\s*(;|$)/i.test(contentType)) throw unsupportedMediaType('application/json');
      const bytes = bodyBytes(event);
      if (bytes.length > LIMITS.maxBodyBytes) throw payloadTooLarge(LIMITS.maxBodyBytes);
      const message = peek(bytes);
      if (!message.governed) {
        const token = await state.rateLimiter.take(caller.tenantId);
        if (!token.allowed) throw rateLimited(token.retryAfterSec);
      }

      const headers = new Headers();
      for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers.set(k, v);
      const host = header(event, 'host') ?? event.requestContext.domainName ?? 'localhost';
      const request = new Request(`https://${host}${event.rawPath ?? '/mcp'}`, {
        method: 'POST',
        headers,
        body: new Uint8Array(bytes),
      });
      const response = await mcpHandlerFor(state).fetch(request, {
        authInfo: { token: 'api-key', clientId: caller.tenantId, scopes: [], extra: { ...caller } },
      });
      const out: Record<string, string> = {};
      response.headers.forEach((value, key) => {
        if (key !== 'content-type') out[key] = value;
      });
      const init = response.status === 200 ? message.initialize : undefined;
      if (init) out['mcp-session-id'] = legacySessionId(init);
      return {
        status: response.status,
        body: await response.text(),
        headers: out,
        contentType: response.headers.get('content-type') ?? 'application/json',
      };
    }),
  );

warmInLambda((state) => [submitDeps(state), executeDeps(state), mcpDeps(state)]);
export const handler = lambda(mcpRoute(appState));

/**
 * POST /mcp: the gateway as an MCP server (`adapters/mcp-server.ts`, the official SDK). This is the
 * edge, the REST API's: the agent API key (401 with `WWW-Authenticate`), POST only, the Origin
 * check the transport spec asks for, the body rules (media type, charset, size, UTF-8), the tenant's
 * rate limit: one token per JSON-RPC message (a governed `tools/call` takes its own in the adapter,
 * before its arguments are read, so that a refusal is a tool error). Governance is `submitToolCall` and
 * `executeApproved`, the cores of `POST /v1/toolcalls` and `/execute`, passed in as ports.
 */
import { paramHeadersOf } from '../core/mcp.js';
import {
  HEADER_MISMATCH,
  originAllowed,
  paramHeaderMismatch,
  peekMessage,
  type Caller,
} from '../core/mcp-protocol.js';
import { AppError, unsupportedMediaType } from '../shared/errors.js';
import { bodyBytes, header, httpRoute, readJsonText, requireTenant, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { agentOAuthOf } from './agent-oauth-state.js';
import { authenticated } from './authentication.js';
import { executeDeps } from './execution-state.js';
import { submitDeps } from './governance.js';
import { governedSpec, isGovernedTool, mcpServerOf } from './mcp-state.js';
import { spendRateLimit } from './rate-limit.js';

const AUTH_CHALLENGE = 'Bearer realm="openclause-mcp"';
export const PROTECTED_RESOURCE_METADATA_ROUTE = 'GET /.well-known/oauth-protected-resource/mcp';

/**
 * The caller, or 401 with the challenge MCP clients read (RFC 6750): with OAuth configured it
 * points at the RFC 9728 metadata (`resource_metadata`), where a client finds the issuer; a valid
 * token without the scope is 403 `insufficient_scope` naming it (RFC 6750 §3.1).
 */
function mcpCaller(event: HttpEvent, state: AppState): Caller {
  const oauth = agentOAuthOf(state);
  const challenge = (params: string[]) =>
    [
      AUTH_CHALLENGE,
      ...(oauth.verifier.enabled ? [`resource_metadata="${oauth.metadataUrl}"`] : []),
      ...params,
    ].join(', ');
  if (event.requestContext.authorizer?.lambda?.authError === 'insufficient_scope')
    throw new AppError(403, 'FORBIDDEN', `the access token lacks the scope ${oauth.scope}`, {
      headers: { 'WWW-Authenticate': challenge(['error="insufficient_scope"', `scope="${oauth.scope}"`]) },
    });
  try {
    // Signed MCP state and derived idempotency keys are bound to the key (or OAuth client) by its id.
    return requireTenant(event);
  } catch (error) {
    if (!(error instanceof AppError) || error.status !== 401) throw error;
    const header = challenge(error.message === 'missing API key' ? [] : ['error="invalid_token"']);
    throw new AppError(401, error.code, error.message, { headers: { 'WWW-Authenticate': header } });
  }
}

/** RFC 9728 §3: the resource, its issuers, the scope and how a token is sent; 404 without OAuth. */
function protectedResourceMetadata(state: AppState) {
  const oauth = agentOAuthOf(state);
  if (!oauth.verifier.enabled) throw new AppError(404, 'NOT_FOUND', 'OAuth is not enabled on /mcp');
  return {
    status: 200,
    body: JSON.stringify({
      resource: oauth.resource,
      authorization_servers: oauth.verifier.issuers,
      scopes_supported: [oauth.scope],
      bearer_methods_supported: ['header'],
      resource_name: 'OpenClause MCP',
    }),
    headers: { 'Cache-Control': 'public, max-age=300' },
  };
}

export const mcpRoute = (getState: () => AppState) => {
  const mcp = mcpMessage(getState);
  return httpRoute(async (event) =>
    event.routeKey === PROTECTED_RESOURCE_METADATA_ROUTE ? protectedResourceMetadata(getState()) : mcp(event),
  );
};

const mcpMessage = (getState: () => AppState) =>
  authenticated(getState, async (event) => {
    const state = getState();
    const caller = mcpCaller(event, state);
    if (event.requestContext.http.method !== 'POST')
      throw new AppError(
        405,
        'METHOD_NOT_ALLOWED',
        'this MCP endpoint is stateless: POST only (no SSE stream)',
        {
          headers: { Allow: 'POST' },
        },
      );
    if (!originAllowed(header(event, 'origin'), state.config.publicBaseUrl))
      throw new AppError(403, 'FORBIDDEN', 'Origin not allowed', {
        details: [{ path: 'origin', message: 'send no Origin, or the gateway’s own' }],
      });
    // The Streamable HTTP transport posts `application/json`; its charset, size and UTF-8 are
    // the REST routes' rules (415, 413, 400), so the record never holds U+FFFD for a byte sent.
    const contentType = header(event, 'content-type');
    if (!/^application\/json\s*(;|$)/i.test(contentType ?? ''))
      throw unsupportedMediaType('application/json');
    const bytes = bodyBytes(event);
    const message = peekMessage(readJsonText(contentType, bytes), isGovernedTool);
    // SEP-2243 (2026-07-28): a mirrored argument's `Mcp-Param-*` header must say what the body
    // says (the SDK checks `Mcp-Method` and `Mcp-Name`; this server's tools are its own). Refused
    // before anything is read further: no token, no record.
    const call = message.modernCall;
    const spec = call && governedSpec(call.name);
    const mismatch =
      spec &&
      paramHeaderMismatch(paramHeadersOf(spec), call.args, (h) => header(event, h.toLowerCase()) ?? null);
    if (mismatch)
      return {
        status: 400,
        contentType: 'application/json',
        headers: {},
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: typeof call.id === 'string' || typeof call.id === 'number' ? call.id : null,
          error: {
            code: HEADER_MISMATCH,
            message: `Bad Request: the request headers and body disagree: ${mismatch.message}`,
            data: { mismatch: { header: mismatch.header } },
          },
        }),
      };
    // One token per message (all or none, `handlers/rate-limit.ts`); a governed call's own is the adapter's.
    await spendRateLimit(state, caller.tenantId, message.messages - message.governed);

    const headers = new Headers();
    for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers.set(k, v);
    const host = header(event, 'host') ?? event.requestContext.domainName ?? 'localhost';
    // A body parsed here goes to the SDK parsed (`parsedBody`), so the Request carries none: its
    // body stream, built and never read, was a third of the MCP path's own CPU in a profile.
    const request = new Request(`https://${host}${event.rawPath ?? '/mcp'}`, {
      method: 'POST',
      headers,
      ...(message.parsed === undefined ? { body: new Uint8Array(bytes) } : {}),
    });
    return mcpServerOf(state).answer(request, caller, message.initialize, message.parsed);
  });

warmInLambda((state) => [submitDeps(state), executeDeps(state), mcpServerOf(state)]);
export const handler = lambda(mcpRoute(appState));

/**
 * Authentication, the first step of every API route, in the route's own Lambda. It finds the
 * route by `routeKey` in ROUTES: on an `api_key` route it resolves `X-API-Key` or
 * `Authorization: Bearer <key>` to a tenant (and agent); on a `jwt` route it verifies
 * `Authorization: Bearer <jwt>` as a human approver's token. A credential of the other kind is
 * refused. The outcome goes in the request context, where `requireTenant` / `requireApprover`
 * answer 401 with the SPEC §1 body when no identity is present.
 *
 * Not an API Gateway Lambda authorizer: an HTTP API cannot shape a denying authorizer's response
 * (SPEC §1 requires our error body), so such an authorizer must let every request through, and
 * without identity sources API Gateway cannot cache its answers either. It would cost one more
 * Lambda invocation and one more hop on every request and decide nothing.
 */
import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { ROUTES, type RouteAuth } from '../shared/constants.js';
import type { AuthContext, HttpEvent, HttpResult } from '../shared/http.js';
import { logger } from '../shared/powertools.js';
import { createHash } from 'node:crypto';
import { hashApiKey, keyIdOf } from '../store/api-keys.js';
import { InvalidApproverToken, MAX_APPROVER_TOKEN_LENGTH } from '../store/approver-tokens.js';
import { agentOAuthOf } from './agent-oauth-state.js';
import type { AppState } from './app-state.js';

/** The identity (or the reason there is none) that a route's handler reads. */
type AuthResult = { context: AuthContext };

const ROUTE_AUTH: ReadonlyMap<string, RouteAuth> = new Map(
  ROUTES.map((r) => [`${r.method} ${r.path}`, r.auth] as const),
);

/** How a route authenticates, from the HTTP API `routeKey` ("POST /v1/approvals/{approval_id}/approve"). */
export function routeAuthOf(routeKey: string | undefined): RouteAuth | undefined {
  return routeKey === undefined ? undefined : ROUTE_AUTH.get(routeKey);
}

function lowerHeaders(headers: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

function bearer(lower: Record<string, string | undefined>): string | undefined {
  return /^bearer\s+(\S+)\s*$/i.exec(lower['authorization'] ?? '')?.[1];
}

export function presentedKey(headers: Record<string, string | undefined> = {}): string | undefined {
  const lower = lowerHeaders(headers);
  const apiKey = lower['x-api-key']?.trim();
  if (apiKey) return apiKey;
  return bearer(lower);
}

const allow = (context: AuthContext): AuthResult => ({ context });

/** A bearer credential shaped as a JWT (and no X-API-Key): an approver's, on a route taking either. */
function looksLikeJwt(headers: Record<string, string | undefined> = {}): boolean {
  const lower = lowerHeaders(headers);
  if (lower['x-api-key']?.trim()) return false;
  return /^[^.\s]+\.[^.\s]+\.[^.\s]*$/.test(bearer(lower) ?? '');
}

async function authorizeAgent(state: AppState, headers: APIGatewayRequestAuthorizerEventV2['headers']) {
  const key = presentedKey(headers);
  if (!key || key.length > 512) return allow({ authError: key ? 'invalid' : 'missing' });
  try {
    const identity = await state.apiKeys.resolve(key);
    if (!identity) return allow({ authError: 'invalid' });
    return allow({
      authKind: 'api_key',
      tenantId: identity.tenantId,
      // Once, here: REST and MCP name the same key in what they record.
      keyId: keyIdOf(hashApiKey(key)),
      ...(identity.agentId ? { agentId: identity.agentId } : {}),
    });
  } catch (error) {
    logger.error('key lookup failed', { error: error as Error });
    return allow({ authError: 'unavailable' });
  }
}

async function authorizeApprover(state: AppState, headers: APIGatewayRequestAuthorizerEventV2['headers']) {
  const lower = lowerHeaders(headers);
  const token = bearer(lower);
  if (!token) {
    // An agent's X-API-Key (or anything else) is not an approver credential.
    return allow({
      authError: lower['x-api-key']?.trim() || lower['authorization']?.trim() ? 'invalid' : 'missing',
    });
  }
  if (token.length > MAX_APPROVER_TOKEN_LENGTH) return allow({ authError: 'invalid' });
  try {
    const identity = await state.approverTokens.verify(token);
    return allow({
      authKind: 'jwt',
      tenantId: identity.tenantId,
      approverSub: identity.sub,
      approverEmail: identity.email,
      approverIssuer: identity.issuer,
    });
  } catch (error) {
    if (error instanceof InvalidApproverToken && error.kind === 'invalid') {
      logger.info('approver token rejected', { reason: error.reason });
      return allow({ authError: 'invalid' });
    }
    logger.error('approver token verification failed', { error: error as Error });
    return allow({ authError: 'unavailable' });
  }
}

/**
 * The id an OAuth client is recorded under where an API key's id goes (`oauth_` + 16 hex of its
 * issuer and client id): MCP state and derived idempotency keys are bound to it, and it outlives
 * any one token.
 */
export const oauthKeyIdOf = (issuer: string, clientId: string): string =>
  `oauth_${createHash('sha256').update(`${issuer}\n${clientId}`, 'utf8').digest('hex').slice(0, 16)}`;

/**
 * An agent's OAuth access token (RFC 9068) on `/mcp`: verified against the configured issuers,
 * then the tenant and agent are the ones policy data lists for its (`iss`, `client_id`); a valid
 * token of a client no tenant lists is as invalid as a forged one.
 */
async function authorizeOAuthAgent(state: AppState, token: string): Promise<AuthResult> {
  const oauth = agentOAuthOf(state);
  if (!oauth.verifier.enabled) return allow({ authError: 'invalid' });
  try {
    const identity = await oauth.verifier.verify(token);
    const principal = oauth.principalOf(identity.issuer, identity.clientId);
    if (!principal) {
      logger.info('agent token of an unlisted client', {
        issuer: identity.issuer,
        clientId: identity.clientId,
      });
      return allow({ authError: 'invalid' });
    }
    if (!identity.scopes.has(oauth.scope)) return allow({ authError: 'insufficient_scope' });
    return allow({
      authKind: 'oauth',
      tenantId: principal.tenantId,
      keyId: oauthKeyIdOf(identity.issuer, identity.clientId),
      ...(principal.agentId ? { agentId: principal.agentId } : {}),
    });
  } catch (error) {
    if (error instanceof InvalidApproverToken && error.kind === 'invalid') {
      logger.info('agent token rejected', { reason: error.reason });
      return allow({ authError: 'invalid' });
    }
    logger.error('agent token verification failed', { error: error as Error });
    return allow({ authError: 'unavailable' });
  }
}

export const authenticate =
  (getState: () => AppState) =>
  async (event: Pick<APIGatewayRequestAuthorizerEventV2, 'routeKey' | 'headers'>): Promise<AuthResult> => {
    const auth = routeAuthOf(event.routeKey);
    if (auth === 'api_key') return authorizeAgent(getState(), event.headers);
    if (auth === 'jwt') return authorizeApprover(getState(), event.headers);
    if (auth === 'api_key_or_jwt')
      // A JWT is three dot-separated parts; an API key has no dot (`sk-oc-<base64url>`).
      return looksLikeJwt(event.headers)
        ? authorizeApprover(getState(), event.headers)
        : authorizeAgent(getState(), event.headers);
    if (auth === 'api_key_or_oauth')
      // Same split: an API key has no dot, an access token is a JWT.
      return looksLikeJwt(event.headers)
        ? authorizeOAuthAgent(getState(), bearer(lowerHeaders(event.headers))!)
        : authorizeAgent(getState(), event.headers);
    // Public routes do not authenticate; anything else is a route this code does not know.
    logger.warn('authentication asked for an unknown or public route', { routeKey: event.routeKey });
    return allow({ authError: 'invalid' });
  };

/** A route that authenticates its caller first (whatever the request context claimed). */
export function authenticated(
  getState: () => AppState,
  route: (event: HttpEvent) => Promise<HttpResult>,
): (event: HttpEvent) => Promise<HttpResult> {
  const auth = authenticate(getState);
  return async (event) => {
    const { context } = await auth({ routeKey: event.routeKey, headers: event.headers });
    const result = await route({
      ...event,
      requestContext: { ...event.requestContext, authorizer: { lambda: context } },
    });
    // Only an answered request counts as a use (a refused one writes nothing); at most a write a minute.
    if (context.authKind === 'api_key' && result.status < 400) {
      await getState().apiKeys.recordUse(presentedKey(event.headers)!);
    }
    return result;
  };
}

/** HTTP edges shared by every API handler: the caller's identity, body parsing, responses. */
import type {
  APIGatewayProxyEventV2WithLambdaAuthorizer,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';
import type { ApproverIdentity } from '../store/approver-tokens.js';
import { LIMITS } from './constants.js';
import { badRequest, payloadTooLarge, toErrorResponse, unauthorized, validationError } from './errors.js';
import { logger } from './powertools.js';

/** What authentication (`handlers/authentication.ts`) puts in the request context. */
export interface AuthContext {
  /** Which credential established the identity: an agent's API key or an approver's JWT. */
  authKind?: 'api_key' | 'jwt';
  tenantId?: string;
  agentId?: string;
  /** Approver routes only: the verified JWT's `sub` and `email`. */
  approverSub?: string;
  approverEmail?: string;
  /** Why no identity: 'missing' | 'invalid' | 'unavailable'. */
  authError?: string;
}

export type HttpEvent = APIGatewayProxyEventV2WithLambdaAuthorizer<AuthContext>;
export type HttpResponse = APIGatewayProxyStructuredResultV2;

export interface HttpResult {
  status: number;
  body: string;
  headers?: Record<string, string>;
  contentType?: string;
}

/**
 * The identity travels where an API Gateway Lambda authorizer would put it (the event type has
 * the slot); `authenticated` writes it there, over anything the incoming event held.
 */
const authContext = (event: HttpEvent): AuthContext => event.requestContext.authorizer?.lambda ?? {};

/** An agent route's caller: the tenant (and agent) of a valid API key. An approver JWT is 401. */
export function requireTenant(event: HttpEvent): { tenantId: string; agentId?: string } {
  const auth = authContext(event);
  if (auth.authKind === 'jwt') throw unauthorized('invalid API key');
  if (auth.tenantId) return { tenantId: auth.tenantId, ...(auth.agentId ? { agentId: auth.agentId } : {}) };
  if (auth.authError === 'unavailable') throw new Error('authentication could not reach the key store');
  throw unauthorized(auth.authError === 'invalid' ? 'invalid API key' : 'missing API key');
}

/** An approver route's caller: the verified JWT's identity. An agent API key is 401. */
export function requireApprover(event: HttpEvent): ApproverIdentity {
  const auth = authContext(event);
  if (auth.authKind === 'jwt' && auth.tenantId && auth.approverSub && auth.approverEmail)
    return { sub: auth.approverSub, email: auth.approverEmail, tenantId: auth.tenantId };
  if (auth.authError === 'unavailable')
    throw new Error("authentication could not reach the approver token issuer's keys");
  throw unauthorized(auth.authError === 'missing' ? 'missing approver token' : 'invalid approver token');
}

/** The JSON body, capped at 1 MiB: 413 beyond, 400 for anything that is not JSON. */
export function parseJsonBody(event: HttpEvent): unknown {
  const raw = event.body ?? '';
  const bytes = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (bytes.length > LIMITS.maxBodyBytes) throw payloadTooLarge(LIMITS.maxBodyBytes);
  if (bytes.length === 0) throw badRequest('request body is required');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw badRequest('request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('invalid JSON body');
  }
}

export function jsonResponse(result: HttpResult, requestId: string): HttpResponse {
  return {
    statusCode: result.status,
    headers: {
      'Content-Type': result.contentType ?? 'application/json',
      'X-Request-Id': requestId,
      ...result.headers,
    },
    body: result.body,
  };
}

/** Runs an API route: every thrown error becomes the SPEC §1 error body; unknown ones a bare 500. */
export function httpRoute(
  route: (event: HttpEvent) => Promise<HttpResult>,
): (event: HttpEvent) => Promise<HttpResponse> {
  return async (event) => {
    const requestId = event.requestContext?.requestId ?? 'unknown';
    try {
      return jsonResponse(await route(event), requestId);
    } catch (error) {
      const mapped = toErrorResponse(error, requestId);
      if (mapped.status >= 500) logger.error('request failed', { error: error as Error, requestId });
      return jsonResponse(
        { status: mapped.status, body: JSON.stringify(mapped.body), headers: mapped.headers },
        requestId,
      );
    }
  };
}

/**
 * An optional small JSON body checked against a strict schema: empty means `{}`; malformed JSON
 * is 400, a wrong shape 422 with details, over the cap 413.
 */
export function parseOptionalJsonBody<T>(
  event: HttpEvent,
  schema: {
    safeParse(
      v: unknown,
    ):
      | { success: true; data: T }
      | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
  },
): T {
  const raw = event.body ?? '';
  const empty = event.isBase64Encoded ? Buffer.from(raw, 'base64').length === 0 : raw.trim().length === 0;
  const value = empty ? {} : parseJsonBody(event);
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw validationError(
    'invalid request body',
    parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  );
}

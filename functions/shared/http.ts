/** HTTP edges shared by every API handler: the caller's identity, body parsing, responses. */
import type {
  APIGatewayProxyEventV2WithLambdaAuthorizer,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';
import type { ApproverIdentity } from '../store/approver-tokens.js';
import { LIMITS } from './constants.js';
import type * as z from 'zod';
import {
  badRequest,
  payloadTooLarge,
  toErrorResponse,
  unauthorized,
  unsupportedMediaType,
  validationError,
  jsonPointer,
} from './errors.js';
import { jsonProblem } from './input-rules.js';
import { logger } from './powertools.js';

/** What authentication (`handlers/authentication.ts`) puts in the request context. */
export interface AuthContext {
  /**
   * Which credential established the identity: an agent's API key, an agent's OAuth access token
   * (`/mcp`), or an approver's JWT.
   */
  authKind?: 'api_key' | 'oauth' | 'jwt';
  tenantId?: string;
  /** API key routes: the agent the key is bound to (absent: the whole tenant) and the key's id. */
  agentId?: string;
  keyId?: string;
  /** Approver routes only: the verified JWT's `sub`, `iss` and email ('' when none is verified). */
  approverSub?: string;
  approverEmail?: string;
  approverIssuer?: string;
  /** Why no identity: 'missing' | 'invalid' | 'unavailable' | 'insufficient_scope' (OAuth). */
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

/**
 * An agent route's caller: the tenant, the key's id (and bound agent) of a valid API key; what
 * the cores scope reads and executions by (core/scope.ts). An approver JWT is 401.
 */
export function requireTenant(event: HttpEvent): { tenantId: string; keyId: string; agentId?: string } {
  const auth = authContext(event);
  if (auth.authKind === 'jwt') throw unauthorized('invalid API key');
  if (auth.tenantId && auth.keyId)
    return {
      tenantId: auth.tenantId,
      keyId: auth.keyId,
      ...(auth.agentId ? { agentId: auth.agentId } : {}),
    };
  if (auth.authError === 'unavailable') throw new Error('authentication could not reach the key store');
  throw unauthorized(auth.authError === 'invalid' ? 'invalid API key' : 'missing API key');
}

/**
 * A read an agent or an approver may make (`api_key_or_jwt` routes): an approver reads its whole
 * tenant; an agent key its tenant, or only its agent's events when bound (core/scope.ts).
 */
export function requireReader(event: HttpEvent): { tenantId: string; agentId?: string } {
  if (authContext(event).authKind === 'jwt') return { tenantId: requireApprover(event).tenantId };
  const { tenantId, agentId } = requireTenant(event);
  return { tenantId, ...(agentId ? { agentId } : {}) };
}

/** An approver route's caller: the verified JWT's identity. An agent API key is 401. */
export function requireApprover(event: HttpEvent): ApproverIdentity {
  const auth = authContext(event);
  if (
    auth.authKind === 'jwt' &&
    auth.tenantId &&
    auth.approverSub &&
    auth.approverIssuer &&
    auth.approverEmail !== undefined
  )
    return {
      sub: auth.approverSub,
      email: auth.approverEmail,
      tenantId: auth.tenantId,
      issuer: auth.approverIssuer,
    };
  if (auth.authError === 'unavailable')
    throw new Error("authentication could not reach the approver token issuer's keys");
  throw unauthorized(auth.authError === 'missing' ? 'missing approver token' : 'invalid approver token');
}

/**
 * On every API answer, success and error alike: answers name tenants' calls and approvals, so no
 * shared cache or browser history may keep one, and none may be read as another type than the one
 * it declares. (A handler may replace `Cache-Control`: the console's settings are `no-cache`.)
 */
export const API_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

export function jsonResponse(result: HttpResult, requestId: string): HttpResponse {
  return {
    statusCode: result.status,
    headers: {
      'Content-Type': result.contentType ?? 'application/json',
      'X-Request-Id': requestId,
      ...API_HEADERS,
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

/** What a route accepts, besides its credential: each part a strict schema built from the shared rules. */
export interface RouteInput {
  path?: z.ZodType;
  query?: z.ZodType;
  /**
   * `parsedBy: 'core'`: the use case validates the body itself with `schema` (so that its messages
   * are the contract's); the edge still enforces the media type, size, UTF-8 and JSON rules.
   */
  body?: { schema: z.ZodType; required: boolean; parsedBy?: 'edge' | 'core' };
}

export interface ParsedRequest<I extends RouteInput> {
  path: I['path'] extends z.ZodType ? z.output<I['path']> : undefined;
  query: I['query'] extends z.ZodType ? z.output<I['query']> : undefined;
  body: I['body'] extends { parsedBy: 'core' }
    ? unknown
    : I['body'] extends { schema: infer S extends z.ZodType }
      ? z.output<S>
      : undefined;
}

/**
 * Zod's issues as details: `path` is the JSON Pointer of the refused field within its part of the
 * request (the body; the path or query parameters as an object), `""` for the part as a whole.
 */
const details = (issues: readonly { path: PropertyKey[]; message: string }[]) =>
  issues.slice(0, 20).map((i) => ({ path: jsonPointer(i.path), message: i.message }));
/** The refused parameter's name, for a message a human reads. */
const named = (issues: readonly { path: PropertyKey[] }[], fallback: string) =>
  issues[0]?.path.map(String).join('.') || fallback;

/** `application/json` or a `+json` type, in UTF-8 (the only charset JSON has, RFC 8259 §8.1). */
function isJsonMediaType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const [type = '', ...params] = contentType.split(';').map((p) => p.trim().toLowerCase());
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) return false;
  return params.every((p) => !p.startsWith('charset=') || /^charset="?utf-8"?$/.test(p));
}

/** A request header by its lowercase name, however the caller cased it. */
export function header(event: HttpEvent, name: string): string | undefined {
  const headers = event.headers ?? {};
  return headers[name] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
}

/**
 * The text of a JSON body: media type and charset (415), size (413), UTF-8 (400: never decoded
 * leniently, which would record U+FFFD for what the client sent). The REST routes (through
 * `readJsonBody`) and `/mcp` (whose JSON is the MCP SDK's to parse) read their bodies here.
 */
export function readJsonText(contentType: string | undefined, bytes: Buffer): string {
  if (!isJsonMediaType(contentType)) throw unsupportedMediaType('application/json');
  if (bytes.length > LIMITS.maxBodyBytes) throw payloadTooLarge(LIMITS.maxBodyBytes);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw badRequest('request body is not valid UTF-8');
  }
}

/**
 * The raw JSON value of a non-empty body: `readJsonText`'s rules, then JSON (400) and the JSON
 * rules (422). Every JSON body a REST route reads goes through here (via `parseRequest`).
 */
export function readJsonBody(contentType: string | undefined, bytes: Buffer): unknown {
  const text = readJsonText(contentType, bytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('invalid JSON body');
  }
  const problem = jsonProblem(value);
  if (problem)
    throw validationError(`invalid request body: ${problem.pointer || 'the body'} ${problem.message}`, [
      { path: problem.pointer, message: problem.message },
    ]);
  return value;
}

/** The request body's bytes, as API Gateway passed them (base64 for binary media types). */
export function bodyBytes(event: HttpEvent): Buffer {
  const raw = event.body ?? '';
  return event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
}

/**
 * The one way a route reads its request: path parameters and query (400 on a bad one), then the
 * body (415 / 413 / 400 / 422), each checked against the route's strict schema before anything
 * reads storage. Routes declare their inputs in `handlers/inputs.ts`.
 */
export function parseRequest<I extends RouteInput>(event: HttpEvent, input: I): ParsedRequest<I> {
  let path: unknown;
  if (input.path) {
    const parsed = input.path.safeParse(event.pathParameters ?? {});
    if (!parsed.success) {
      const { issues } = parsed.error;
      throw badRequest(
        `invalid ${named(issues, 'path parameter')}: ${issues[0]?.message ?? 'malformed'}`,
        details(issues),
      );
    }
    path = parsed.data;
  }
  let query: unknown;
  if (input.query) {
    const parsed = input.query.safeParse(event.queryStringParameters ?? {});
    if (!parsed.success) throw badRequest('invalid query parameters', details(parsed.error.issues));
    query = parsed.data;
  }
  let body: unknown;
  if (input.body) {
    const bytes = bodyBytes(event);
    if (bytes.length === 0 && input.body.required) throw badRequest('request body is required');
    const value = bytes.length === 0 ? {} : readJsonBody(header(event, 'content-type'), bytes);
    if (input.body.parsedBy === 'core') body = value;
    else {
      const parsed = input.body.schema.safeParse(value);
      if (!parsed.success) throw validationError('invalid request body', details(parsed.error.issues));
      body = parsed.data;
    }
  }
  return { path, query, body } as ParsedRequest<I>;
}

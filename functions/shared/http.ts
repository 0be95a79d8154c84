/** HTTP edges shared by every API handler: identity from the authorizer, body parsing, responses. */
import type {
  APIGatewayProxyEventV2WithLambdaAuthorizer,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';
import { LIMITS } from './constants.js';
import { badRequest, payloadTooLarge, toErrorResponse, unauthorized } from './errors.js';
import { logger } from './powertools.js';

/** What the Lambda authorizer puts in the request context. */
export interface AuthContext {
  tenantId?: string;
  agentId?: string;
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

export function requireTenant(event: HttpEvent): { tenantId: string; agentId?: string } {
  const auth = event.requestContext.authorizer?.lambda ?? {};
  if (auth.tenantId) return { tenantId: auth.tenantId, ...(auth.agentId ? { agentId: auth.agentId } : {}) };
  if (auth.authError === 'unavailable') throw new Error('authorizer could not reach the key store');
  throw unauthorized(auth.authError === 'invalid' ? 'invalid API key' : 'missing API key');
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

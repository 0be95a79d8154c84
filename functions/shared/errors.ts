/**
 * Typed errors and the one mapping from an error to the SPEC §1 error body.
 * Unknown errors become a generic 500; their detail goes to the log only.
 */

export interface ErrorDetail {
  path: string;
  message: string;
}

export interface ErrorBody {
  code: string;
  message: string;
  retryable: boolean;
  details?: ErrorDetail[];
  request_id: string;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly options: { retryable?: boolean; details?: ErrorDetail[]; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = code;
  }
}

export const badRequest = (message: string, details?: ErrorDetail[]) =>
  new AppError(400, 'BAD_REQUEST', message, { details });
export const unauthorized = (message: string) => new AppError(401, 'UNAUTHORIZED', message);
export const tenantMismatch = () =>
  new AppError(403, 'TENANT_MISMATCH', 'tenant_id does not match the API key tenant', {
    details: [{ path: '/tenant_id', message: 'must equal the tenant of the API key or be omitted' }],
  });
export const notFound = (message: string) => new AppError(404, 'NOT_FOUND', message);
export const conflict = (message: string, retryAfterSec?: number, details?: ErrorDetail[]) =>
  new AppError(409, 'CONFLICT', message, {
    retryable: retryAfterSec !== undefined,
    details,
    headers: retryAfterSec !== undefined ? { 'Retry-After': String(retryAfterSec) } : undefined,
  });
export const payloadTooLarge = (limit: number) =>
  new AppError(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${limit} bytes`);
export const unsupportedMediaType = (expected: string) =>
  new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', `request body must be ${expected}`, {
    details: [{ path: 'content-type', message: `send Content-Type: ${expected}` }],
  });
/** RFC 6901: `/a/b~1c` for the path [a, b/c] (`~` as `~0`, `/` as `~1`); the whole document is "". */
export function jsonPointer(path: readonly PropertyKey[]): string {
  return path.map((p) => '/' + String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('');
}

/**
 * A validation detail's path as the contract has it, a JSON Pointer: one already (`""`, `/…`) is
 * kept; a dotted path (a connector's own validation says `params.issue`) is split at its dots.
 * Paths built here from zod's segments are exact; a dotted one is exact unless a key holds a dot.
 */
export const asPointer = (path: string): string =>
  path === '' || path.startsWith('/') ? path : jsonPointer(path.split('.'));

/** 422: every detail names the refused field by its JSON Pointer into the request body. */
export const validationError = (message: string, details: ErrorDetail[]) =>
  new AppError(422, 'VALIDATION_ERROR', message, {
    details: details.map((d) => ({ ...d, path: asPointer(d.path) })),
  });
export const idempotencyKeyReused = () =>
  new AppError(
    422,
    'IDEMPOTENCY_KEY_REUSED',
    'idempotency_key was already used with a different request body',
    { details: [{ path: '/idempotency_key', message: 'use a new key for a different request' }] },
  );
export const rateLimited = (retryAfterSec: number) =>
  new AppError(429, 'RATE_LIMITED', 'too many requests', {
    retryable: true,
    headers: { 'Retry-After': String(retryAfterSec) },
  });
export const internalError = (message = 'internal error') =>
  new AppError(500, 'INTERNAL_ERROR', message, { retryable: true });

/** Storage is unavailable or failed: fail closed with a retryable 5xx. */
export class StorageError extends Error {
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}

export function toErrorResponse(
  error: unknown,
  requestId: string,
): { status: number; body: ErrorBody; headers: Record<string, string> } {
  if (error instanceof AppError) {
    const body: ErrorBody = {
      code: error.code,
      message: error.message,
      retryable: error.options.retryable ?? false,
      ...(error.options.details?.length ? { details: error.options.details } : {}),
      request_id: requestId,
    };
    return { status: error.status, body, headers: error.options.headers ?? {} };
  }
  return {
    status: 500,
    body: { code: 'INTERNAL_ERROR', message: 'internal error', retryable: true, request_id: requestId },
    headers: {},
  };
}

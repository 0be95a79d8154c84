/**
 * The ToolCallRequest contract (SPEC §3, reference §3): strict parsing, normalization and limits.
 * Unlike the original, unknown fields, wrong types, non-object params, blank ids and lone
 * surrogates are rejected, and every string is bounded.
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { LIMITS } from '../shared/constants.js';
import type { ErrorDetail } from '../shared/errors.js';

export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** A string that is well-formed UTF-16 (no lone surrogates) and at most `max` characters. */
const text = (max: number) =>
  z
    .string()
    .max(max, `must be at most ${max} characters`)
    .refine((s) => s.isWellFormed(), 'must not contain lone surrogates');

const nonBlank = (max: number) => text(max).refine((s) => s.trim().length > 0, 'must not be blank');

const name = (field: string) =>
  z
    .string()
    .max(256, 'must be at most 256 characters')
    .transform((s) => s.trim().toLowerCase())
    .pipe(
      z
        .string()
        .min(1, `${field} required`)
        .regex(NAME_PATTERN, 'invalid characters (allowed: a-z0-9._-, first alphanumeric, max 64)'),
    );

/** JSON values as JSON.parse produces them, checked for what canonical JSON and storage cannot hold. */
function jsonProblem(value: unknown, depth = 0): string | undefined {
  if (depth > 32) return 'nested deeper than 32 levels';
  if (typeof value === 'string') return value.isWellFormed() ? undefined : 'contains a lone surrogate';
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'contains a non-finite number';
  if (value === null || typeof value === 'boolean') return undefined;
  if (Array.isArray(value)) {
    for (const v of value) {
      const p = jsonProblem(v, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (!k.isWellFormed()) return 'has a key with a lone surrogate';
      const p = jsonProblem(v, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  return 'is not JSON';
}

const params = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  const problem = jsonProblem(value);
  if (problem) {
    ctx.addIssue({ code: 'custom', message: problem });
    return;
  }
  const size = utf8Bytes(JSON.stringify(value));
  if (size > LIMITS.maxParamsBytes) {
    ctx.addIssue({ code: 'custom', message: `exceeds ${LIMITS.maxParamsBytes} bytes` });
  }
});

export const ToolCallRequestBody = z.strictObject({
  tenant_id: nonBlank(128).optional(),
  agent_id: nonBlank(128),
  tool: name('tool'),
  action: name('action'),
  params: params.default({}),
  resource: text(LIMITS.maxResourceBytes)
    .refine((s) => utf8Bytes(s) <= LIMITS.maxResourceBytes, `exceeds ${LIMITS.maxResourceBytes} bytes`)
    .default(''),
  risk_score: z.number().int('must be an integer').min(0, 'must be 0–10').max(10, 'must be 0–10').default(0),
  risk_factors: z.array(text(128)).max(32, 'at most 32 entries').default([]),
  user_id: text(256).default(''),
  session_id: text(256).default(''),
  labels: z
    .record(text(128), text(256))
    .refine((l) => Object.keys(l).length <= LIMITS.maxLabels, `exceeds ${LIMITS.maxLabels} entries`)
    .default({}),
  trace_id: text(256).default(''),
  idempotency_key: nonBlank(LIMITS.maxIdempotencyKeyBytes).refine(
    (s) => utf8Bytes(s) <= LIMITS.maxIdempotencyKeyBytes,
    `exceeds ${LIMITS.maxIdempotencyKeyBytes} bytes`,
  ),
  requested_at: z.iso
    .datetime({ offset: true, message: 'must be an RFC 3339 timestamp with a zone' })
    .optional(),
  schema_version: z.literal('1.0', 'unsupported version, expected "1.0"').default('1.0'),
});
export type ToolCallRequestBody = z.infer<typeof ToolCallRequestBody>;

/** The request as stored and evaluated: tenant bound to the key, defaults applied. */
export interface ToolCallRequest extends Omit<ToolCallRequestBody, 'tenant_id' | 'requested_at'> {
  tenant_id: string;
  requested_at: string;
}

const EXPECTED_NAMES: Record<string, string> = { record: 'object', int: 'integer', nan: 'number' };

export type ParseResult = { ok: true; body: ToolCallRequestBody } | { ok: false; details: ErrorDetail[] };

export function parseToolCallBody(input: unknown): ParseResult {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, details: [{ path: '', message: 'body must be a JSON object' }] };
  }
  const parsed = ToolCallRequestBody.safeParse(input);
  if (parsed.success) return { ok: true, body: parsed.data };
  return {
    ok: false,
    details: parsed.error.issues.slice(0, 20).map((issue) => ({
      path: issue.path.map(String).join('.') || (issue.code === 'unrecognized_keys' ? '' : ''),
      message:
        issue.code === 'unrecognized_keys'
          ? `unknown field(s): ${issue.keys.join(', ')}`
          : issue.code === 'invalid_type'
            ? `expected ${EXPECTED_NAMES[issue.expected] ?? issue.expected}`
            : issue.message,
    })),
  };
}

export function toolAction(r: { tool: string; action: string }): string {
  return `${r.tool}.${r.action}`;
}

export function bindRequest(body: ToolCallRequestBody, tenantId: string, now: Date): ToolCallRequest {
  const { tenant_id: _ignored, requested_at, ...rest } = body;
  return { ...rest, tenant_id: tenantId, requested_at: requested_at ?? now.toISOString() };
}

/**
 * The event id of a tenant's idempotency key: a UUIDv8 (RFC 9562, custom) from the first 128
 * bits of SHA-256 of `["oc-event/v1", tenant, key]` as JSON. The key names its event, so the event item itself is the idempotency claim:
 * one conditional write, no separate idempotency record, and a key is never reused for another
 * event (the idempotency window is the event's lifetime, beyond SPEC's "24 h at least").
 */
export function eventIdFor(tenantId: string, idempotencyKey: string): string {
  // JSON framing: no two (tenant, key) pairs share an input, whatever characters they hold.
  const digest = createHash('sha256')
    .update(JSON.stringify(['oc-event/v1', tenantId, idempotencyKey]))
    .digest();
  digest[6] = (digest[6]! & 0x0f) | 0x80; // version 8
  digest[8] = (digest[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const hex = digest.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

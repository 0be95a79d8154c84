/**
 * The ToolCallRequest contract (SPEC §3, reference §3): strict parsing, normalization and limits.
 * Unlike the original, unknown fields, wrong types, non-object params, blank ids, lone
 * surrogates, invisible characters in ids and inexact integers are rejected, and every string is
 * bounded (the shared rules of `shared/input-rules.ts`).
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { LIMITS } from '../shared/constants.js';
import { jsonPointer, type ErrorDetail } from '../shared/errors.js';
import { NAME_PATTERN, rules } from '../shared/input-rules.js';

export { NAME_PATTERN };

export const ToolCallRequestBody = z.strictObject({
  tenant_id: rules.tenantId().optional(),
  agent_id: rules.id(128),
  tool: rules.name('tool'),
  action: rules.name('action'),
  params: rules.jsonObject(LIMITS.maxParamsBytes, 32).default({}),
  resource: rules.line(LIMITS.maxResourceBytes, LIMITS.maxResourceBytes).default(''),
  risk_score: z.number().int('must be an integer').min(0, 'must be 0–10').max(10, 'must be 0–10').default(0),
  risk_factors: z.array(rules.id(128)).max(32, 'at most 32 entries').default([]),
  // The requester: separation of duties compares it with approvers, so nothing invisible in it.
  user_id: rules.id(256, { blank: true }).default(''),
  session_id: rules.id(256, { blank: true }).default(''),
  labels: z
    .record(rules.id(128), rules.line(256))
    .refine((l) => Object.keys(l).length <= LIMITS.maxLabels, `exceeds ${LIMITS.maxLabels} entries`)
    .default({}),
  trace_id: rules.id(256, { blank: true }).default(''),
  idempotency_key: rules.id(LIMITS.maxIdempotencyKeyBytes, { maxBytes: LIMITS.maxIdempotencyKeyBytes }),
  requested_at: rules.timestamp().optional(),
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
      path: jsonPointer(issue.path),
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

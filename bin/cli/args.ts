/**
 * Argument parsers for commander options: a bad value is a usage error (exit 2) raised while
 * parsing, before any command touches storage.
 */
import { InvalidArgumentError } from 'commander';
import { ENV, MAX_APPROVER_TOKEN_LIFETIME_SEC } from '../../functions/shared/constants.js';
import { UsageError } from './errors.js';
import { rules, TENANT_ID_PATTERN, UUID_PATTERN } from '../../functions/shared/input-rules.js';
export function tenantId(value: string): string {
  if (!TENANT_ID_PATTERN.test(value))
    throw new InvalidArgumentError(
      "A tenant id is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
    );
  return value;
}

export function eventId(value: string): string {
  if (!UUID_PATTERN.test(value))
    throw new InvalidArgumentError('An event id is a lowercase UUID, as in the POST /v1/toolcalls answer.');
  return value;
}

/** Where a parked record lives: a tenant id, or `_` for a record whose tenant could not be read. */
export function parkingTenant(value: string): string {
  if (value === '_') return value;
  return tenantId(value);
}

/** A parked record's id as `oc parked list` shows it: an id by the shared rule (nothing invisible). */
export function recordId(value: string): string {
  const parsed = rules.id(512).safeParse(value);
  if (!parsed.success) throw new InvalidArgumentError(`A record id ${parsed.error.issues[0]?.message}.`);
  return parsed.data;
}

export function nonBlank(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('It must not be blank.');
  return value;
}

export function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('It must be a JSON object, e.g. \'{"ok":true}\' (not valid JSON).');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new InvalidArgumentError('It must be a JSON object, e.g. \'{"ok":true}\'.');
  return parsed as Record<string, unknown>;
}

function integer(value: string, min: number, max: number, what: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`It must be ${what}.`);
  return n;
}

export const nonNegativeInt = (value: string): number =>
  integer(value, 0, Number.MAX_SAFE_INTEGER, 'a whole number ≥ 0');
export const positiveInt = (value: string): number =>
  integer(value, 1, Number.MAX_SAFE_INTEGER, 'a whole number ≥ 1');
export const tokenLifetimeSec = (value: string): number =>
  integer(
    value,
    1,
    MAX_APPROVER_TOKEN_LIFETIME_SEC,
    `a whole number of seconds from 1 to ${MAX_APPROVER_TOKEN_LIFETIME_SEC}`,
  );
export const port = (value: string): number => integer(value, 1, 65_535, 'a port number (1-65535)');

/** As the request schema has it: agent_id is 1-128 characters, not blank. */
export function agentId(value: string): string {
  if (value.trim() === '' || value.length > 128)
    throw new InvalidArgumentError('An agent id is 1-128 characters, not blank.');
  return value;
}

/** The connector timeout decides when a running execution counts as crashed; as the stack reads it. */
export function connectorTimeoutMs(env: NodeJS.ProcessEnv): number {
  const raw = env[ENV.connectorTimeoutMs];
  if (raw === undefined || raw === '') return 10_000;
  try {
    return positiveInt(raw);
  } catch {
    throw new UsageError(
      `${ENV.connectorTimeoutMs}=${raw} is not a whole number of milliseconds; fix or unset it.`,
    );
  }
}

/** A duration such as `90s`, `15m`, `12h` or `30d`, in milliseconds (1 s to 10 years). */
export function duration(value: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(value.trim());
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  const ms = match ? Number(match[1]) * unit[match[2] as keyof typeof unit] : NaN;
  if (!Number.isSafeInteger(ms) || ms < 1_000 || ms > 3650 * 86_400_000)
    throw new InvalidArgumentError('It must be a duration such as 90s, 15m, 12h or 30d.');
  return ms;
}

/** `oc keys` names a key by its key_id (`key_` + 16 hex digits, as `oc keys list` prints it). */
export function apiKeyId(value: string): string {
  if (!/^key_[0-9a-f]{16}$/.test(value))
    throw new InvalidArgumentError(
      'A key id is key_ followed by 16 hex digits, as `oc keys list` prints it.',
    );
  return value;
}

/**
 * A point in time by the shared rule (an RFC 3339 timestamp with its zone), as the UTC text
 * `Date#toISOString` writes: what the records' times are and how their listings sort.
 */
export function isoTime(value: string): string {
  const parsed = rules.timestamp().safeParse(value);
  if (!parsed.success)
    throw new InvalidArgumentError(
      `It ${parsed.error.issues[0]?.message ?? 'is invalid'} (ISO 8601), e.g. 2026-12-01T09:00:00Z.`,
    );
  return new Date(parsed.data).toISOString();
}

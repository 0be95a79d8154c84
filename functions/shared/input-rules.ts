/**
 * One input discipline for every edge. Every string that reaches storage, a record or a log
 * (bodies, query strings, path parameters, headers, JWT claims, CLI arguments) is parsed with one
 * of these rules, and every JSON body passes `jsonProblem`: a value the evidence chain cannot
 * canonicalize (RFC 8785: no lone surrogates, finite numbers) or that JSON cannot carry exactly
 * (integers beyond 2^53, I-JSON RFC 7493 §2.2) is refused at the edge, never stored.
 *
 * `test/unit/input-rules.test.ts` walks every route's schemas (ROUTE_INPUTS) and fails if a string
 * anywhere in them was not built here: a new edge inherits the rules by construction.
 */
import * as z from 'zod';
import { jsonPointer } from './errors.js';

/**
 * What no name or id may hold: controls (Cc), format characters (Cf: zero-width characters, bidi
 * marks, embeddings, overrides and isolates, the BOM, the soft hyphen), line and paragraph
 * separators, and default-ignorable code points (Hangul fillers, variation selectors). They are
 * invisible, or make two different ids look the same to a human.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;
const INVISIBLE_ALL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu;
/**
 * What free text (a comment, a reason) may not hold: controls other than tab and line breaks, and
 * the bidi embedding, override and isolate controls, which reorder what a reader sees ("Trojan
 * Source"). Right-to-left text itself needs none of them.
 */
// eslint-disable-next-line no-control-regex
const TEXT_FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;
/** A single line of display text (a resource, a label value): free text without line breaks. */
// eslint-disable-next-line no-control-regex
const LINE_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/** Tenant ids are part of every key and every log line: a closed alphabet. */
export const TENANT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Tool and action names (SPEC §3), after trimming and lower-casing. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/**
 * The one rule for an id the API accepts (path ids, MCP `event_id`): a lowercase canonical UUID of
 * any version, exactly `api/openapi.yaml`'s EventId and ApprovalId pattern (a contract test
 * compares them). An id the gateway could never have issued (the nil UUID, a v1) names nothing:
 * 404, as the contract promises, not 400.
 */
export const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The ids the gateway issues: UUIDv4 (random) or UUIDv8 (event ids derived from an idempotency key), lowercase. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[48][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * The 66 Unicode noncharacters: U+FDD0–U+FDEF and the last two code points of every plane
 * (U+nFFFE, U+nFFFF). They are for a program's internal use, never for interchange: SQS refuses
 * U+FFFE and U+FFFF in a message, so one of them in a record once held the notification outbox of
 * every tenant. Refused at every edge, in keys and values alike.
 */
const NONCHARACTER = new RegExp(
  `[\\u{FDD0}-\\u{FDEF}${Array.from({ length: 17 }, (_, plane) => {
    const base = (plane * 0x10000 + 0xfffe).toString(16).toUpperCase();
    const last = (plane * 0x10000 + 0xffff).toString(16).toUpperCase();
    return `\\u{${base}}\\u{${last}}`;
  }).join('')}]`,
  'u',
);

/** The first noncharacter in `value`, as `U+XXXX`, or undefined. */
export function noncharacterIn(value: string): string | undefined {
  const found = NONCHARACTER.exec(value);
  return found ? `U+${found[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}` : undefined;
}

/** Schemas built by the rules below; the route walk asserts every string leaf is one of them. */
const built = new WeakSet<object>();
function rule<T extends z.ZodType>(schema: T): T {
  built.add(schema);
  return schema;
}

/** Was this schema built by one of the shared string rules? */
export function isSharedRule(schema: unknown): boolean {
  return typeof schema === 'object' && schema !== null && built.has(schema);
}

/** Well-formed UTF-16 (no lone surrogate) and at most `max` characters and `maxBytes` UTF-8 bytes. */
const bounded = (max: number, maxBytes?: number) => {
  let s = z
    .string()
    .max(max, `must be at most ${max} characters`)
    .refine((v) => v.isWellFormed(), 'must not contain lone surrogates')
    .refine((v) => noncharacterIn(v) === undefined, 'must not contain Unicode noncharacters');
  if (maxBytes !== undefined)
    s = s.refine((v) => utf8Bytes(v) <= maxBytes, `must be at most ${maxBytes} bytes`);
  return s;
};

export const rules = {
  /** Free text: a comment, a deny reason. Tabs and line breaks allowed; no other controls. */
  text: (max: number) =>
    rule(
      bounded(max).refine(
        (v) => !TEXT_FORBIDDEN.test(v),
        'must not contain control or bidi override characters',
      ),
    ),

  /** One line of display text: a resource, a label value. */
  line: (max: number, maxBytes?: number) =>
    rule(
      bounded(max, maxBytes).refine(
        (v) => !LINE_FORBIDDEN.test(v),
        'must not contain line breaks, control or bidi override characters',
      ),
    ),

  /**
   * A name or id compared by people and by code (agent, user, session, trace ids, keys): nothing
   * invisible. `blank` allows the empty string (an optional id given as "").
   */
  id: (max: number, options: { maxBytes?: number; blank?: boolean } = {}) =>
    rule(
      bounded(max, options.maxBytes)
        .refine((v) => !INVISIBLE.test(v), 'must not contain control or invisible characters')
        .refine((v) => options.blank === true || v.trim().length > 0, 'must not be blank'),
    ),

  /** A tenant id: `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`. */
  tenantId: () =>
    rule(
      z
        .string()
        .regex(TENANT_ID_PATTERN, 'must be 1-64 characters of A-Z a-z 0-9 . _ -, starting alphanumeric'),
    ),

  /** A tool or action name: trimmed, lower-cased, then `^[a-z0-9][a-z0-9._-]{0,63}$`. */
  name: (field: string) =>
    rule(
      z
        .string()
        .max(256, 'must be at most 256 characters')
        .transform((s) => s.trim().toLowerCase())
        .pipe(
          z
            .string()
            .min(1, `${field} required`)
            .regex(NAME_PATTERN, 'invalid characters (allowed: a-z0-9._-, first alphanumeric, max 64)'),
        ),
    ),

  /** An id the API accepts: a lowercase canonical UUID (ID_PATTERN); an unknown one is the caller's 404. */
  uuid: () => rule(z.string().regex(ID_PATTERN, 'must be a lowercase canonical UUID')),

  /** A SHA-256 as 64 lowercase hex digits (an approval view's hash). */
  sha256Hex: () => rule(z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 as 64 lowercase hex digits')),

  /** An RFC 3339 timestamp with a zone. */
  timestamp: () =>
    rule(z.iso.datetime({ offset: true, message: 'must be an RFC 3339 timestamp with a zone' })),

  /** Any JSON object the chain can canonicalize exactly (`jsonProblem`), at most `maxBytes` serialized. */
  jsonObject: (maxBytes: number, maxDepth: number) =>
    rule(
      z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
        const problem = jsonProblem(value, maxDepth);
        if (problem) {
          ctx.addIssue({
            code: 'custom',
            message: problem.message,
            path: problem.path ? problem.path.split('.') : [],
          });
          return;
        }
        if (utf8Bytes(JSON.stringify(value)) > maxBytes)
          ctx.addIssue({ code: 'custom', message: `exceeds ${maxBytes} bytes` });
      }),
    ),

  /** An opaque listing cursor: base64url, as a previous page's `next_cursor` gave it. */
  cursor: () =>
    rule(
      z
        .string()
        .min(1)
        .max(2048, 'must be at most 2048 characters')
        .regex(/^[A-Za-z0-9_-]+$/, 'use next_cursor from a previous page'),
    ),
};

/**
 * What JSON parsing may produce that the evidence chain cannot hold or JSON cannot carry exactly:
 * a lone surrogate in a string or a key, a Unicode noncharacter (no queue or peer is bound to carry
 * one), a non-finite number, an integer beyond 2^53 (already rounded by the parser: refused rather
 * than recorded wrong), nesting beyond `maxDepth`. Returns the first problem with its path (dotted,
 * as zod's are) and its RFC 6901 JSON pointer (exact whatever the keys hold), or undefined.
 */
export function jsonProblem(
  value: unknown,
  maxDepth = 64,
  path: string[] = [],
): { path: string; pointer: string; message: string } | undefined {
  const at = (message: string) => ({ path: path.join('.'), pointer: jsonPointer(path), message });
  if (path.length > maxDepth) return at(`nested deeper than ${maxDepth} levels`);
  switch (typeof value) {
    case 'string': {
      if (!value.isWellFormed()) return at('contains a lone surrogate');
      const nonchar = noncharacterIn(value);
      return nonchar ? at(`contains the Unicode noncharacter ${nonchar}`) : undefined;
    }
    case 'number':
      if (!Number.isFinite(value)) return at('contains a non-finite number');
      if (Number.isInteger(value) && !Number.isSafeInteger(value))
        return at('integer beyond 2^53 cannot be represented exactly; send it as a string');
      return undefined;
    case 'boolean':
      return undefined;
    case 'object': {
      if (value === null) return undefined;
      const entries = Array.isArray(value)
        ? value.map((v, i) => [String(i), v] as const)
        : Object.entries(value as Record<string, unknown>);
      for (const [k, v] of entries) {
        if (!k.isWellFormed()) return at('has a key with a lone surrogate');
        const nonchar = noncharacterIn(k);
        if (nonchar) return at(`has a key with the Unicode noncharacter ${nonchar}`);
        const problem = jsonProblem(v, maxDepth, [...path, k]);
        if (problem) return problem;
      }
      return undefined;
    }
    default:
      return at('is not JSON');
  }
}

/** The one JSON Pointer encoding (shared/errors.ts), for the callers that found it here. */
export { jsonPointer };

/**
 * An identity as separation of duties compares it: NFKC (fullwidth and compatibility forms fold
 * to their plain form), invisible characters removed, case-folded, trimmed. Two identities that a
 * human reads as the same compare equal.
 */
export function normalizeIdentity(value: string): string {
  return value.normalize('NFKC').replace(INVISIBLE_ALL, '').toLowerCase().normalize('NFKC').trim();
}

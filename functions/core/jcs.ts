/**
 * RFC 8785 (JCS) canonical JSON of a parsed JSON value, fast: the same text as the `canonicalize`
 * package (what the chain hashes, functions/core/evidence.ts), built in one pass. The verifier and
 * `oc policy replay` canonicalize every record of an archive; the package checks every string
 * character by character for lone surrogates and tracks a set of objects against cycles, which
 * together cost more than the SHA-256 of the result.
 *
 * Only what JSON.parse can produce takes the fast path (plain objects, arrays, strings, finite
 * numbers, booleans, null). Anything else (undefined, toJSON, a class instance, a cycle, a
 * non-finite number) is handed to the package itself, so the result, and every error, is the
 * package's.
 */
import canonicalize from 'canonicalize';

/** Any UTF-16 surrogate: only a string that has one needs the exact check. */
const SURROGATE = /[\uD800-\uDFFF]/;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Not on the fast path: the package decides (and throws what it throws). */
class Unusual extends Error {}

/** What JSON.stringify escapes (", \\, controls) or must be checked (surrogates). */
// eslint-disable-next-line no-control-regex -- the controls are exactly what JSON escapes
const SPECIAL = /["\\\u0000-\u001F\uD800-\uDFFF]/;

function str(s: string): string {
  // Nothing to escape: JSON.stringify would only add the quotes.
  if (!SPECIAL.test(s)) return `"${s}"`;
  if (SURROGATE.test(s) && LONE_SURROGATE.test(s)) throw new Error('Lone surrogate is not allowed');
  return JSON.stringify(s);
}

/** Deep enough for any record; deeper values go to the package (its recursion, its limits). */
const MAX_DEPTH = 256;

function value(v: unknown, depth: number): string {
  switch (typeof v) {
    case 'string':
      return str(v);
    case 'number':
      if (!Number.isFinite(v)) throw new Unusual();
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (v === null) return 'null';
      if (depth >= MAX_DEPTH) throw new Unusual();
      if (Array.isArray(v)) {
        if (Object.getPrototypeOf(v) !== Array.prototype) throw new Unusual();
        let out = '[';
        for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + value(v[i], depth + 1);
        return `${out}]`;
      }
      if (Object.getPrototypeOf(v) !== Object.prototype) throw new Unusual();
      const o = v as Record<string, unknown>;
      if (typeof o.toJSON === 'function') throw new Unusual();
      const keys = Object.keys(o);
      // Parsed from canonical text (an archive's bundles), the keys are already in order.
      for (let i = 1; i < keys.length; i++)
        if (keys[i - 1]! > keys[i]!) {
          keys.sort();
          break;
        }
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        out += `${i === 0 ? '' : ','}${str(key)}:${value(o[key], depth + 1)}`;
      }
      return `${out}}`;
    }
    default:
      throw new Unusual();
  }
}

/**
 * The canonical JSON text of `v` (RFC 8785), exactly as `canonicalize(v)` gives it; throws as it
 * throws (lone surrogates, NaN, Infinity, cycles). Undefined where the package gives undefined.
 */
export function canonicalJson(v: unknown): string | undefined {
  try {
    return value(v, 0);
  } catch (error) {
    if (error instanceof Unusual) return canonicalize(v);
    throw error;
  }
}

/** `canonicalJson`, for a value that must have a canonical form (as evidence.ts's `canon`). */
export function canonicalText(v: unknown): string {
  const out = canonicalJson(v);
  if (out === undefined) throw new Error('value has no canonical JSON form');
  return out;
}

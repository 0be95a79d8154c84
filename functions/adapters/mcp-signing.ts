/**
 * Signed MCP state: the 2026-07-28 `requestState` and the 2025 `Mcp-Session-Id` both go through
 * the official SDK's request-state codec (`createRequestStateCodec`: HMAC-SHA256 over the payload
 * and an expiry, with a domain-separated HMAC tag of a binding string), so the client holds what
 * the server said and can neither forge, alter, nor move it to another caller or call.
 *
 * The codec takes one key; the gateway adds a key id in front (`<kid>.v1.<body>.<mac>`) so keys
 * can rotate: state is minted with the current key and verified with whichever key its id names,
 * the current or one of the previous ones still listed. A key id outside the list verifies
 * nothing. The binding string is the caller's own (tenant, API key, agent, and for a requestState
 * the tool and the digest of its arguments): the codec stores only its HMAC tag, never the string.
 */
import { createRequestStateCodec } from '@modelcontextprotocol/server';
import type { McpKeyRing } from '../core/mcp-protocol.js';

export const KID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** Why a state did not verify; never the payload or the binding. */
export type VerifyFailure = 'malformed' | 'unknown_key' | 'mac' | 'expired' | 'bind';

export type Verified<T> = { ok: true; payload: T } | { ok: false; reason: VerifyFailure };

export interface McpSigner {
  mint<T>(payload: T, binding: string, ttlSeconds: number): Promise<string>;
  verify<T>(state: string, binding: string): Promise<Verified<T>>;
}

const REASONS: readonly string[] = ['malformed', 'mac', 'expired', 'bind'];

/** How many verified states one signer remembers (a full memory starts over). */
const REMEMBERED = 1000;

/** The `exp` (seconds) of a state the codec just verified: `<kid>.v1.<body>.<mac>`, body base64url JSON. */
function expiryOf(state: string): number {
  const parts = state.split('.');
  const envelope = JSON.parse(Buffer.from(parts[2] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
  return typeof envelope.exp === 'number' ? envelope.exp : 0;
}

export function mcpSigner(ring: McpKeyRing): McpSigner {
  const keys = new Map([ring.current, ...ring.previous].map((k) => [k.kid, k.secret]));
  // The codec binds through a callback of the SDK's context; the gateway passes its binding
  // string in its place, so one codec per (key, binding) is made for each call (an HMAC key
  // import: microseconds).
  const codec = (secret: Uint8Array, binding: string, ttlSeconds = 1) =>
    createRequestStateCodec<unknown>({ key: secret, ttlSeconds, bind: () => binding });
  // A 2025 client sends the same session id with every request: each verification is three Web
  // Crypto jobs (key import, MAC, binding tag), ≈ 1 ms of every MCP call (issue 26). A state this
  // signer verified for this very binding is remembered until its own expiry: the exact bytes and
  // binding, so nothing unverified, nothing of another caller and nothing expired is ever served;
  // a new key ring is a new signer (and an empty memory).
  const verified = new Map<string, { payload: string; exp: number }>();
  return {
    async mint(payload, binding, ttlSeconds) {
      const wire = await codec(ring.current.secret, binding, ttlSeconds).mint(payload, {} as never);
      return `${ring.current.kid}.${wire}`;
    },
    async verify<T>(state: string, binding: string): Promise<Verified<T>> {
      const dot = state.indexOf('.');
      const kid = dot > 0 ? state.slice(0, dot) : '';
      if (!KID_PATTERN.test(kid)) return { ok: false, reason: 'malformed' };
      const secret = keys.get(kid);
      if (!secret) return { ok: false, reason: 'unknown_key' };
      const remembered = `${binding}\n${state}`;
      const known = verified.get(remembered);
      if (known && known.exp >= Math.floor(Date.now() / 1000))
        return { ok: true, payload: JSON.parse(known.payload) as T };
      try {
        const payload = await codec(secret, binding).verify(state.slice(dot + 1), {} as never);
        if (verified.size >= REMEMBERED) verified.clear();
        verified.set(remembered, { payload: JSON.stringify(payload), exp: expiryOf(state) });
        return { ok: true, payload: payload as T };
      } catch (error) {
        const reason =
          error instanceof Error && REASONS.includes(error.message) ? error.message : 'malformed';
        return { ok: false, reason: reason as VerifyFailure };
      }
    },
  };
}

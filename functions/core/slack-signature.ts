/**
 * Slack request signatures, v0 (SPEC §9, reference §11.3): `v0=` + hex HMAC-SHA256 of
 * `v0:<timestamp>:<raw body>` with the app's signing secret, the timestamp within five minutes of
 * now in either direction (edges included). A replayed signature is the store's to refuse.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SLACK } from '../shared/constants.js';

export type SignatureCheck =
  | { ok: true }
  | { ok: false; reason: 'missing headers' | 'bad timestamp' | 'stale timestamp' | 'bad signature' };

export function slackSignature(secret: string, timestamp: string, body: Buffer | string): string {
  const mac = createHmac('sha256', secret);
  mac.update(`v0:${timestamp}:`);
  mac.update(body);
  return `v0=${mac.digest('hex')}`;
}

export function verifySlackSignature(input: {
  secret: string;
  timestamp: string | undefined;
  signature: string | undefined;
  body: Buffer;
  now: Date;
}): SignatureCheck {
  const { secret, timestamp, signature } = input;
  if (!secret || !timestamp || !signature) return { ok: false, reason: 'missing headers' };
  // Base-10 integer seconds, as Slack sends them (a sign is allowed, as in the original).
  if (!/^[+-]?\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'bad timestamp' };
  const skew = Math.abs(Math.floor(input.now.getTime() / 1000) - Number(timestamp));
  if (skew > SLACK.signatureWindowSec) return { ok: false, reason: 'stale timestamp' };
  const expected = Buffer.from(slackSignature(secret, timestamp, input.body), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'bad signature' };
  return { ok: true };
}

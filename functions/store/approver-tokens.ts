/**
 * Human approver identity (SPEC §4, reference W5): a JWT presented as `Authorization: Bearer`.
 * `dev`: HS256 with a shared secret (local stack only); `oidc`: an issuer's asymmetric keys from
 * its JWKS (Cognito, Okta, Entra ID, ...); `none`: every token is refused.
 * Always: an algorithm allowlist, issuer, audience, `exp` and `iat` required, a small clock
 * tolerance (an `iat` in the future is refused), a maximum lifetime, `sub`, `email` and the tenant
 * claim checked with the shared string rules, and a cap on token size.
 *
 * In `oidc` mode an email is an identity only when the issuer says it verified it
 * (`email_verified: true`): many IdPs let users set their own email (a writable Cognito `email`),
 * so an unverified one is dropped (the identity's `email` is empty) and such a user can approve
 * only when the tenant lists their (issuer, `sub`) pair. The `email` claim is then optional.
 */
import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import type * as z from 'zod';
import { defaultJwksUrl, type Config } from '../shared/config.js';
import { DEV_JWT, MAX_APPROVER_TOKEN_LIFETIME_SEC } from '../shared/constants.js';
import { rules } from '../shared/input-rules.js';

export interface ApproverIdentity {
  sub: string;
  /** A verified email, or '' when the token carries none (oidc: absent or `email_verified` not true). */
  email: string;
  tenantId: string;
  /** The token's `iss`: with `sub`, the identity a tenant's `approvers.subjects` can list. */
  issuer: string;
}

export interface ApproverVerifier {
  /** The verified identity; throws `InvalidApproverToken` on any failure. */
  verify(token: string): Promise<ApproverIdentity>;
}

export type ApproverTokenConfig = Pick<
  Config,
  'jwtMode' | 'devJwtSecret' | 'jwtIssuer' | 'jwtAudience' | 'jwtJwksUrl' | 'jwtTenantClaim'
>;

/** Longest token accepted (characters; a JWT is ASCII). Real IdP tokens are 1-3 KiB. */
export const MAX_APPROVER_TOKEN_LENGTH = 8 * 1024;
/** Clock skew tolerated on `exp`, `nbf` and `iat`. */
export const APPROVER_CLOCK_TOLERANCE_SEC = 30;
/** The claims, with the shared string rules: nothing invisible in an identity, a well-formed tenant. */
const CLAIM_RULES = {
  sub: rules.id(512),
  email: rules.id(512),
  tenant: rules.tenantId(),
};
/** Asymmetric algorithms only in `oidc` mode: no HS256 (a public key used as an HMAC secret). */
export const OIDC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
const DEV_ALGORITHMS = ['HS256'] as const;

/**
 * Why a token was not accepted. `kind` is `unavailable` when the issuer's keys could not be
 * fetched (the token may be fine: a retryable server error), `invalid` otherwise.
 */
export class InvalidApproverToken extends Error {
  constructor(
    readonly reason: string,
    readonly kind: 'invalid' | 'unavailable' = 'invalid',
    options?: { cause?: unknown },
  ) {
    super(`approver token rejected: ${reason}`, options);
    this.name = 'InvalidApproverToken';
  }
}

export function createApproverVerifier(config: ApproverTokenConfig): ApproverVerifier {
  const tenantClaim = config.jwtTenantClaim || 'tenant_id';
  switch (config.jwtMode) {
    case 'none':
      return {
        async verify() {
          throw new InvalidApproverToken('approver tokens are not enabled (no issuer configured)');
        },
      };
    case 'dev': {
      const secret = new TextEncoder().encode(config.devJwtSecret || DEV_JWT.defaultSecret);
      return jwtVerifier(secret, {
        algorithms: [...DEV_ALGORITHMS],
        issuer: DEV_JWT.issuer,
        audience: DEV_JWT.audience,
        tenantClaim,
        remote: false,
        // Local tokens are minted by `oc dev-token` with the operator's chosen email.
        emailMustBeVerified: false,
      });
    }
    case 'oidc': {
      const { jwtIssuer: issuer, jwtAudience: audience } = config;
      if (!issuer || !audience) throw new Error('oidc approver tokens need an issuer and an audience');
      const jwks = createRemoteJWKSet(new URL(config.jwtJwksUrl ?? defaultJwksUrl(issuer)), {
        timeoutDuration: 3_000, // an approver route must answer well within API Gateway's limits
        cooldownDuration: 30_000, // an unknown `kid` refetches at most this often
        cacheMaxAge: 10 * 60_000, // keys are refetched after this even if every `kid` is known
      });
      return jwtVerifier(jwks, {
        algorithms: [...OIDC_ALGORITHMS],
        issuer,
        audience,
        tenantClaim,
        remote: true,
        emailMustBeVerified: true,
      });
    }
    default:
      throw new Error(`unknown approver token mode: ${String((config as { jwtMode: unknown }).jwtMode)}`);
  }
}

function jwtVerifier(
  key: Uint8Array | JWTVerifyGetKey,
  opts: {
    algorithms: string[];
    issuer: string;
    audience: string;
    tenantClaim: string;
    remote: boolean;
    emailMustBeVerified: boolean;
  },
): ApproverVerifier {
  const verifyOptions: JWTVerifyOptions = {
    algorithms: opts.algorithms,
    issuer: opts.issuer,
    audience: opts.audience,
    clockTolerance: APPROVER_CLOCK_TOLERANCE_SEC,
    // With a maximum age jose also refuses an `iat` in the future (beyond the tolerance).
    maxTokenAge: MAX_APPROVER_TOKEN_LIFETIME_SEC,
    requiredClaims: ['exp', 'iat', 'sub', ...(opts.emailMustBeVerified ? [] : ['email']), opts.tenantClaim],
  };
  return {
    async verify(token: string): Promise<ApproverIdentity> {
      if (typeof token !== 'string' || token.length === 0) throw new InvalidApproverToken('empty token');
      if (token.length > MAX_APPROVER_TOKEN_LENGTH) throw new InvalidApproverToken('token too large');
      let payload: JWTPayload;
      try {
        payload =
          typeof key === 'function'
            ? (await jwtVerify(token, key, verifyOptions)).payload
            : (await jwtVerify(token, key, verifyOptions)).payload;
      } catch (error) {
        throw toInvalid(error, opts.remote);
      }
      const lifetime = Number(payload.exp) - Number(payload.iat);
      if (!(lifetime <= MAX_APPROVER_TOKEN_LIFETIME_SEC))
        throw new InvalidApproverToken(`lifetime exceeds ${MAX_APPROVER_TOKEN_LIFETIME_SEC} s`);
      const email = payload.email === undefined ? '' : claim(payload, 'email', CLAIM_RULES.email);
      return {
        sub: claim(payload, 'sub', CLAIM_RULES.sub),
        // Only the boolean `true`: a string "false" (or "true") or a missing claim is not a verification.
        email: !opts.emailMustBeVerified || payload.email_verified === true ? email : '',
        tenantId: claim(payload, opts.tenantClaim, CLAIM_RULES.tenant),
        issuer: String(payload.iss),
      };
    },
  };
}

function claim(payload: JWTPayload, name: string, rule: z.ZodType<string>): string {
  const parsed = rule.safeParse(payload[name]);
  if (!parsed.success)
    throw new InvalidApproverToken(`claim ${name}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

export function toInvalid(error: unknown, remote: boolean): InvalidApproverToken {
  if (error instanceof InvalidApproverToken) return error;
  const invalid = (reason: string) => new InvalidApproverToken(reason, 'invalid', { cause: error });
  if (error instanceof joseErrors.JWTExpired) return invalid('expired');
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return invalid('not yet valid');
    if (error.claim === 'iat') return invalid('issued in the future');
    if (error.claim === 'iss') return invalid('wrong issuer');
    if (error.claim === 'aud') return invalid('wrong audience');
    return invalid(error.reason === 'missing' ? `missing claim ${error.claim}` : `bad claim ${error.claim}`);
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return invalid('algorithm not allowed');
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return invalid('bad signature');
  if (error instanceof joseErrors.JWKSNoMatchingKey) return invalid('unknown signing key');
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid)
    return invalid('malformed token');
  if (error instanceof joseErrors.JOSENotSupported) return invalid('unsupported token');
  // The issuer's key set could not be fetched or parsed (timeout, network, non-200, bad JSON, bad
  // key): not the caller's fault (a retryable 5xx), and never a reason to accept.
  if (
    remote &&
    (error instanceof joseErrors.JWKSTimeout ||
      error instanceof joseErrors.JWKSInvalid ||
      error instanceof joseErrors.JWKInvalid ||
      !(error instanceof joseErrors.JOSEError) ||
      error.code === joseErrors.JOSEError.code)
  )
    return new InvalidApproverToken('issuer keys unavailable', 'unavailable', { cause: error });
  return invalid('invalid token');
}

/** A local approver token (mode `dev`): HS256, `iss` oc-local, `aud` oc-approvals. */
export async function signDevToken(input: {
  tenantId: string;
  email: string;
  sub?: string;
  ttlSec?: number;
  secret?: string;
  tenantClaim?: string;
}): Promise<string> {
  const ttlSec = input.ttlSec ?? 3600;
  if (!Number.isInteger(ttlSec) || ttlSec <= 0 || ttlSec > MAX_APPROVER_TOKEN_LIFETIME_SEC)
    throw new Error(`ttlSec must be a whole number of seconds from 1 to ${MAX_APPROVER_TOKEN_LIFETIME_SEC}`);
  if (!input.tenantId || !input.email) throw new Error('tenantId and email are required');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email: input.email, [input.tenantClaim ?? 'tenant_id']: input.tenantId })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(input.sub ?? input.email)
    .setIssuer(DEV_JWT.issuer)
    .setAudience(DEV_JWT.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSec)
    .sign(new TextEncoder().encode(input.secret ?? DEV_JWT.defaultSecret));
}

/**
 * OAuth access tokens of agents on `/mcp` (RFC 9068 JWT profile): `typ: at+jwt`, signed with an
 * asymmetric key of one of the configured issuers (its JWKS), `aud` exactly the canonical `/mcp`
 * URI (RFC 8707: a token minted for another resource is refused, so no token meant for us can be
 * replayed elsewhere and none meant elsewhere is taken here), `exp`, `iat`, `client_id` required,
 * the lifetime capped. The outcome is the token's issuer, client and scopes: which tenant and
 * agent that client is, policy data says (`core/policy-data.ts`), never a claim.
 */
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../shared/config.js';
import { rules } from '../shared/input-rules.js';
import {
  InvalidApproverToken,
  MAX_APPROVER_TOKEN_LENGTH,
  OIDC_ALGORITHMS,
  toInvalid,
} from './approver-tokens.js';

export interface AgentTokenIdentity {
  issuer: string;
  clientId: string;
  scopes: ReadonlySet<string>;
}

export interface AgentTokenVerifier {
  /** Whether any issuer is configured (none: `/mcp` takes API keys only and serves no metadata). */
  readonly enabled: boolean;
  readonly issuers: readonly string[];
  /** The verified token; throws `InvalidApproverToken` (kind `invalid` or `unavailable`). */
  verify(token: string): Promise<AgentTokenIdentity>;
}

/** Longest an agent's access token may live: an hour (a client-credentials token is cheap to renew). */
export const MAX_AGENT_TOKEN_LIFETIME_SEC = 3_600;
const CLOCK_TOLERANCE_SEC = 30;
const CLIENT_ID = rules.id(512);

/** The canonical URI of the MCP endpoint (RFC 8707 §2, RFC 9728 `resource`): no trailing slash. */
export const mcpResourceUri = (publicBaseUrl: string): string => `${publicBaseUrl.replace(/\/+$/, '')}/mcp`;

export function createAgentTokenVerifier(
  config: Pick<Config, 'mcpOAuthIssuers' | 'publicBaseUrl'>,
): AgentTokenVerifier {
  const resource = mcpResourceUri(config.publicBaseUrl);
  const keySets = new Map<string, JWTVerifyGetKey>(
    config.mcpOAuthIssuers.map(({ issuer, jwksUrl }) => [
      issuer,
      createRemoteJWKSet(new URL(jwksUrl), {
        timeoutDuration: 3_000,
        cooldownDuration: 30_000,
        cacheMaxAge: 10 * 60_000,
      }),
    ]),
  );
  return {
    enabled: keySets.size > 0,
    issuers: [...keySets.keys()],
    async verify(token) {
      if (token.length > MAX_APPROVER_TOKEN_LENGTH) throw new InvalidApproverToken('token too large');
      // The unverified `iss` only picks which issuer's keys to try; jwtVerify then requires it.
      let claimed: unknown;
      try {
        claimed = decodeJwt(token).iss;
      } catch {
        throw new InvalidApproverToken('malformed token');
      }
      const keys = typeof claimed === 'string' ? keySets.get(claimed) : undefined;
      if (!keys) throw new InvalidApproverToken('issuer not configured');
      let payload;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          algorithms: [...OIDC_ALGORITHMS],
          issuer: claimed as string,
          audience: resource,
          // RFC 9068 §4: a resource server refuses an access token without this type (an ID token is not one).
          typ: 'at+jwt',
          clockTolerance: CLOCK_TOLERANCE_SEC,
          maxTokenAge: MAX_AGENT_TOKEN_LIFETIME_SEC,
          requiredClaims: ['exp', 'iat', 'client_id'],
        }));
      } catch (error) {
        if (error instanceof Error && /"typ"/.test(error.message))
          throw new InvalidApproverToken('not an access token (typ)');
        throw toInvalid(error, true);
      }
      // RFC 8707: `aud` exactly the resource. jose accepts an array containing it; a token for
      // several audiences could be replayed by any of them, so only the one is taken.
      const aud = payload.aud;
      if (Array.isArray(aud) ? aud.length !== 1 || aud[0] !== resource : aud !== resource)
        throw new InvalidApproverToken('wrong audience');
      if (!(Number(payload.exp) - Number(payload.iat) <= MAX_AGENT_TOKEN_LIFETIME_SEC))
        throw new InvalidApproverToken(`lifetime exceeds ${MAX_AGENT_TOKEN_LIFETIME_SEC} s`);
      const clientId = CLIENT_ID.safeParse(payload.client_id);
      if (!clientId.success) throw new InvalidApproverToken('claim client_id: invalid');
      const scope = typeof payload.scope === 'string' ? payload.scope : '';
      return {
        issuer: claimed as string,
        clientId: clientId.data,
        scopes: new Set(scope.split(' ').filter(Boolean)),
      };
    },
  };
}

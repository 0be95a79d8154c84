/**
 * OAuth access tokens of agents on `/mcp` (RFC 9068 JWT profile): `typ: at+jwt`, signed with an
 * asymmetric key of one of the configured issuers (its JWKS), `aud` exactly the canonical `/mcp`
 * URI (RFC 8707: a token minted for another resource is refused, so no token meant for us can be
 * replayed elsewhere and none meant elsewhere is taken here), `exp`, `iat`, `client_id` required,
 * the lifetime capped. The outcome is the token's issuer, client and scopes: which tenant and
 * agent that client is, policy data says (`core/policy-data.ts`), never a claim.
 *
 * The Cognito profile, for issuers listed as Amazon Cognito user pools only (never inferred from a
 * token or a host name): a user pool's client-credentials access token has no `typ` header and no
 * `aud` (Cognito binds resource indicators to `aud` only in user sign-in grants), so it could not
 * pass the checks above. What it carries instead, and what this profile requires: `token_use:
 * access` (an ID token says `id`), `sub` equal to `client_id` (a machine's own token, not a user's),
 * and the audience bound by the resource server: at least one scope named `<canonical /mcp
 * URI>/<scope>` (Cognito names a resource server's scopes `<identifier>/<name>`, and only that
 * pool's resource server with exactly our URI as its identifier can grant them). An `aud`, when
 * present, must still be exactly the resource, and a `typ`, when present, `at+jwt`. Signature,
 * algorithms, issuer, lifetime and size are checked as for every issuer.
 */
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../shared/config.js';
import { rules } from '../shared/input-rules.js';
import {
  InvalidApproverToken,
  MAX_APPROVER_TOKEN_LENGTH,
  OIDC_ALGORITHMS,
  toInvalid,
} from './approver-tokens.js';

/** How an issuer's tokens are checked: RFC 9068, or the Cognito profile above. */
export type AgentTokenProfile = 'rfc9068' | 'cognito';

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
  config: Pick<Config, 'mcpOAuthIssuers' | 'publicBaseUrl'> & Partial<Pick<Config, 'mcpOAuthCognitoIssuers'>>,
): AgentTokenVerifier {
  const resource = mcpResourceUri(config.publicBaseUrl);
  const keySetOf = (jwksUrl: string) =>
    createRemoteJWKSet(new URL(jwksUrl), {
      timeoutDuration: 3_000,
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
    });
  const keySets = new Map<string, { keys: JWTVerifyGetKey; profile: AgentTokenProfile }>([
    ...config.mcpOAuthIssuers.map(
      ({ issuer, jwksUrl }) => [issuer, { keys: keySetOf(jwksUrl), profile: 'rfc9068' as const }] as const,
    ),
    ...(config.mcpOAuthCognitoIssuers ?? []).map(
      ({ issuer, jwksUrl }) => [issuer, { keys: keySetOf(jwksUrl), profile: 'cognito' as const }] as const,
    ),
  ]);
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
      const entry = typeof claimed === 'string' ? keySets.get(claimed) : undefined;
      if (!entry) throw new InvalidApproverToken('issuer not configured');
      const payload =
        entry.profile === 'cognito'
          ? await verifyCognito(token, entry.keys, claimed as string, resource)
          : await verifyRfc9068(token, entry.keys, claimed as string, resource);
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

/** RFC 8707: `aud` exactly the resource; an array must be that one entry (see the file comment). */
function assertAudience(aud: unknown, resource: string): void {
  if (Array.isArray(aud) ? aud.length !== 1 || aud[0] !== resource : aud !== resource)
    throw new InvalidApproverToken('wrong audience');
}

async function verifyRfc9068(
  token: string,
  keys: JWTVerifyGetKey,
  issuer: string,
  resource: string,
): Promise<JWTPayload> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keys, {
      algorithms: [...OIDC_ALGORITHMS],
      issuer,
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
  // jose accepts an array containing the resource; a token for several audiences could be
  // replayed by any of them, so only the one is taken.
  assertAudience(payload.aud, resource);
  return payload;
}

/** The Cognito profile (file comment): for issuers configured as Cognito user pools only. */
async function verifyCognito(
  token: string,
  keys: JWTVerifyGetKey,
  issuer: string,
  resource: string,
): Promise<JWTPayload> {
  let payload: JWTPayload;
  let typ: string | undefined;
  try {
    ({
      payload,
      protectedHeader: { typ },
    } = await jwtVerify(token, keys, {
      algorithms: [...OIDC_ALGORITHMS],
      issuer,
      clockTolerance: CLOCK_TOLERANCE_SEC,
      maxTokenAge: MAX_AGENT_TOKEN_LIFETIME_SEC,
      requiredClaims: ['exp', 'iat', 'client_id', 'sub', 'token_use'],
    }));
  } catch (error) {
    throw toInvalid(error, true);
  }
  // Cognito sets no `typ`; one that declares itself something else (`JWT`, an ID token's) is not ours.
  if (typ !== undefined && typ.toLowerCase() !== 'at+jwt' && typ.toLowerCase() !== 'application/at+jwt')
    throw new InvalidApproverToken('not an access token (typ)');
  if (payload.token_use !== 'access') throw new InvalidApproverToken('not an access token (token_use)');
  // A client-credentials token is the client's own; a user's access token names the user in `sub`.
  if (payload.sub !== payload.client_id)
    throw new InvalidApproverToken('not a client-credentials token (sub is not client_id)');
  if (payload.aud !== undefined) assertAudience(payload.aud, resource);
  else {
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
    if (!scopes.some((s) => s.startsWith(`${resource}/`) && s.length > resource.length + 1))
      throw new InvalidApproverToken('wrong audience (no scope of the /mcp resource server)');
  }
  return payload;
}

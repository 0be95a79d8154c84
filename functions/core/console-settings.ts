/** What the console is told about sign-in, and the Content-Security-Policy it runs under. Pure. */
import type { Config } from '../shared/config.js';

export interface ConsoleSettings {
  /** `dev`: the local host's dev sign-in; `oidc`: the provider, code + PKCE; `none`: no sign-in. */
  auth: 'dev' | 'oidc' | 'none';
  oidc?: { authority: string; client_id: string; scope: string; tenant_claim: string };
}

type ConsoleConfig = Pick<
  Config,
  'jwtMode' | 'jwtIssuer' | 'jwtAudience' | 'jwtTenantClaim' | 'consoleClientId' | 'consoleScope'
> & { consoleConnectOrigins: string[] };

export function consoleSettings(config: ConsoleConfig): ConsoleSettings {
  if (config.jwtMode === 'dev') return { auth: 'dev' };
  if (config.jwtMode === 'oidc' && config.jwtIssuer && (config.consoleClientId ?? config.jwtAudience))
    return {
      auth: 'oidc',
      oidc: {
        authority: config.jwtIssuer,
        client_id: config.consoleClientId ?? config.jwtAudience ?? '',
        scope: config.consoleScope,
        tenant_claim: config.jwtTenantClaim,
      },
    };
  return { auth: 'none' };
}

/**
 * Scripts and styles from the console's own files only: no inline script or style, no eval, no
 * plugins, no framing, nothing loaded from elsewhere. The page may call its own origin (the API)
 * and, for OIDC sign-in, the issuer (discovery, token endpoint) and the origins named in
 * `consoleConnectOrigins` (e.g. Cognito's hosted-UI domain, where its token endpoint lives).
 */
export function contentSecurityPolicy(config: ConsoleConfig): string {
  const connect = ["'self'"];
  if (config.jwtMode === 'oidc' && config.jwtIssuer) connect.push(new URL(config.jwtIssuer).origin);
  if (config.jwtMode === 'oidc') connect.push(...config.consoleConnectOrigins);
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src ${[...new Set(connect)].join(' ')}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

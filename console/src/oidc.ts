/**
 * OIDC sign-in (authorization code + PKCE) with oidc-client-ts, loaded only in deployments that
 * use it. The approver routes verify the ID token (its `aud` is the client id, and it carries
 * `email` and the tenant claim, which an access token from Cognito does not).
 */
import { UserManager, WebStorageStateStore } from 'oidc-client-ts';
import type { ConsoleConfig, Session } from './session.js';

function manager(config: ConsoleConfig): UserManager {
  if (!config.oidc) throw new Error('sign-in is not configured');
  return new UserManager({
    authority: config.oidc.authority,
    client_id: config.oidc.client_id,
    scope: config.oidc.scope,
    redirect_uri: `${location.origin}/console/callback`,
    response_type: 'code',
    // The user object (tokens) is not kept by the library: the session module keeps the one token.
    userStore: new WebStorageStateStore({ store: window.sessionStorage }),
    stateStore: new WebStorageStateStore({ store: window.sessionStorage }),
    automaticSilentRenew: false,
    loadUserInfo: false,
  });
}

export async function signIn(config: ConsoleConfig, returnTo: string): Promise<void> {
  await manager(config).signinRedirect({ state: { returnTo } });
}

export async function complete(config: ConsoleConfig): Promise<{ session: Session; returnTo: string }> {
  const m = manager(config);
  const user = await m.signinRedirectCallback();
  await m.removeUser();
  const profile = user.profile as Record<string, unknown>;
  if (!user.id_token) throw new Error('the identity provider returned no ID token');
  const state = user.state as { returnTo?: string } | undefined;
  return {
    session: {
      token: user.id_token,
      email: String(profile.email ?? ''),
      tenantId: String(profile[config.oidc?.tenant_claim ?? 'tenant_id'] ?? ''),
      expiresAt: (user.expires_at ?? Math.floor(Date.now() / 1000) + 3600) * 1000,
    },
    returnTo: state?.returnTo ?? '/console',
  };
}

/**
 * OAuth for agents on `/mcp`, per app state: the token verifier (the configured issuers' JWKS) and
 * the (`iss`, `client_id`) -> tenant and agent index from the policy folder's tenants file. Built on
 * first use, so API-key-only deployments load neither.
 */
import { oauthPrincipals, type OAuthPrincipal } from '../core/policy-data.js';
import { createAgentTokenVerifier, mcpResourceUri, type AgentTokenVerifier } from '../store/agent-tokens.js';
import { defaultPolicyDir, loadTenants } from '../store/policy-files.js';
import type { AppState } from './app-state.js';

export interface AgentOAuth {
  verifier: AgentTokenVerifier;
  /** The canonical `/mcp` URI: the `aud` a token must carry and the metadata's `resource`. */
  resource: string;
  /** Where RFC 9728 metadata is served for it (`/.well-known/oauth-protected-resource` + the resource's path). */
  metadataUrl: string;
  scope: string;
  principalOf(issuer: string, clientId: string): OAuthPrincipal | undefined;
}

const cache = new WeakMap<AppState, AgentOAuth>();

export function agentOAuthOf(state: AppState): AgentOAuth {
  let oauth = cache.get(state);
  if (!oauth) {
    const { config } = state;
    let principalOf: AgentOAuth['principalOf'] | undefined;
    const base = config.publicBaseUrl.replace(/\/+$/, '');
    oauth = {
      verifier: createAgentTokenVerifier(config),
      resource: mcpResourceUri(config.publicBaseUrl),
      metadataUrl: `${base}/.well-known/oauth-protected-resource/mcp`,
      scope: config.mcpOAuthScope,
      principalOf: (issuer, clientId) =>
        (principalOf ??= oauthPrincipals(loadTenants(config.policyDir ?? defaultPolicyDir())))(
          issuer,
          clientId,
        ),
    };
    cache.set(state, oauth);
  }
  return oauth;
}

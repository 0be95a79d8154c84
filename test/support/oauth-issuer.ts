/**
 * An OAuth 2.1 authorization server on loopback for agents' access tokens, built from the
 * maintained `oidc-provider` (not a hand-rolled minter): the client-credentials grant, resource
 * indicators (RFC 8707: the token's `aud` is the `resource` the client asked for) and RFC 9068
 * JWT access tokens (`typ: at+jwt`), signed ES256 with keys published at
 * `/.well-known/jwks.json` (where Cognito publishes them, the gateway's default).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';

export interface OAuthClient {
  clientId: string;
  clientSecret: string;
}

export interface OAuthIssuer {
  issuer: string;
  /**
   * A token straight from the token endpoint (what a client-credentials provider does, with the
   * form chosen by the test: a wrong `resource`, a missing scope...).
   */
  token(credentials: OAuthClient, form: Record<string, string>): Promise<Response>;
  /** A fetch for an MCP client: requests to `gateway` go through it, the issuer's straight. */
  routed(gatewayUrl: string, gateway: (request: Request) => Promise<Response>): typeof fetch;
  close(): Promise<void>;
}

export async function startOAuthIssuer(options: {
  clients: OAuthClient[];
  /** The resources a token may be asked for (their `aud`); any other is `invalid_target`. */
  resources: string[];
  /** The scopes each resource grants. */
  scope: string;
}): Promise<OAuthIssuer> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'as-key-1', alg: 'ES256', use: 'sig' };
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    })),
    jwks: { keys: [jwk] },
    routes: { jwks: '/.well-known/jwks.json' },
    scopes: options.scope.split(' '),
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined as unknown as string,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          if (!options.resources.includes(resource)) throw new errors.InvalidTarget();
          return {
            scope: options.scope,
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  });
  server.on('request', provider.callback());
  return {
    issuer,
    token: (credentials, form) =>
      fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          Authorization: `Basic ${Buffer.from(`${credentials.clientId}:${credentials.clientSecret}`).toString('base64')}`,
          'Content-Type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', ...form }),
      }),
    routed: (gatewayUrl, gateway) => (url, init) => {
      const request = new Request(url, init);
      return request.url.startsWith(gatewayUrl) ? gateway(request) : fetch(request);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

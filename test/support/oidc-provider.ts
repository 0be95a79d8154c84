/**
 * A minimal OpenID Connect provider on loopback, standing in for Cognito / Okta in the console's
 * browser test: discovery, an authorization endpoint that signs the user in at once, a token
 * endpoint that checks the PKCE verifier, and its JWKS. ID tokens are RS256, as real ones are.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface OidcUser {
  sub: string;
  email: string;
  tenant_id: string;
  /** As the IdP reports it; the gateway takes an email as an identity only when true. @default true */
  email_verified?: boolean;
}

export interface OidcProvider {
  issuer: string;
  clientId: string;
  /** Every authorization request and token exchange, as received. */
  authorizations: URLSearchParams[];
  tokenRequests: { form: URLSearchParams; pkceOk: boolean }[];
  close(): Promise<void>;
}

export async function startOidcProvider(options: {
  clientId: string;
  user: OidcUser;
}): Promise<OidcProvider> {
  const { privateKey, publicKey } = (await generateKeyPair('RS256')) as {
    privateKey: CryptoKey;
    publicKey: CryptoKey;
  };
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { challenge: string; nonce?: string; redirectUri: string }>();
  const authorizations: URLSearchParams[] = [];
  const tokenRequests: { form: URLSearchParams; pkceOk: boolean }[] = [];
  let issuer = '';

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, {
      'Content-Type': 'application/json',
      // The console calls discovery and the token endpoint from the browser (CORS), as with Cognito.
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': 'Content-Type, Authorization',
    });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        if (req.method === 'OPTIONS') return json(res, 204, {});
        if (url.pathname === '/.well-known/openid-configuration')
          return json(res, 200, {
            issuer,
            authorization_endpoint: `${issuer}/authorize`,
            token_endpoint: `${issuer}/token`,
            jwks_uri: `${issuer}/jwks`,
            response_types_supported: ['code'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: ['RS256'],
            code_challenge_methods_supported: ['S256'],
          });
        if (url.pathname === '/jwks') return json(res, 200, { keys: [jwk] });
        if (url.pathname === '/authorize') {
          const q = url.searchParams;
          authorizations.push(q);
          const code = randomUUID();
          codes.set(code, {
            challenge: q.get('code_challenge') ?? '',
            nonce: q.get('nonce') ?? undefined,
            redirectUri: q.get('redirect_uri') ?? '',
          });
          const back = new URL(q.get('redirect_uri') ?? '');
          back.searchParams.set('code', code);
          back.searchParams.set('state', q.get('state') ?? '');
          res.writeHead(302, { Location: back.toString() });
          return res.end();
        }
        if (url.pathname === '/token' && req.method === 'POST') {
          const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
          const grant = codes.get(form.get('code') ?? '');
          const verifier = form.get('code_verifier') ?? '';
          const pkceOk =
            grant !== undefined &&
            createHash('sha256').update(verifier).digest('base64url') === grant.challenge &&
            form.get('redirect_uri') === grant.redirectUri;
          tokenRequests.push({ form, pkceOk });
          if (!pkceOk) return json(res, 400, { error: 'invalid_grant' });
          codes.delete(form.get('code') ?? '');
          const now = Math.floor(Date.now() / 1000);
          const idToken = await new SignJWT({
            email: options.user.email,
            email_verified: options.user.email_verified ?? true,
            tenant_id: options.user.tenant_id,
            ...(grant.nonce ? { nonce: grant.nonce } : {}),
          })
            .setProtectedHeader({ alg: 'RS256', kid: 'test-key', typ: 'JWT' })
            .setIssuer(issuer)
            .setAudience(options.clientId)
            .setSubject(options.user.sub)
            .setIssuedAt(now)
            .setExpirationTime(now + 3600)
            .sign(privateKey);
          return json(res, 200, {
            access_token: randomUUID(),
            id_token: idToken,
            token_type: 'Bearer',
            expires_in: 3600,
          });
        }
        json(res, 404, { error: 'not_found' });
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    clientId: options.clientId,
    authorizations,
    tokenRequests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The agents' access-token verifier (`store/agent-tokens.ts`) against a loopback JWKS, for the
 * tokens a real authorization server will not mint (test/integration/mcp-oauth.test.ts covers the
 * ones oidc-provider does): a wrong `typ`, an over-long lifetime, an unconfigured issuer, an `aud`
 * array with a second audience, `none` and HS256; and the Cognito profile, with tokens shaped as a
 * Cognito user pool issues them (no `typ`, no `aud`, `token_use`, scopes `<identifier>/<name>`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { loadConfig } from '../../functions/shared/config.js';
import { ENV } from '../../functions/shared/constants.js';
import {
  createAgentTokenVerifier,
  MAX_AGENT_TOKEN_LIFETIME_SEC,
  type AgentTokenVerifier,
} from '../../functions/store/agent-tokens.js';
import { InvalidApproverToken } from '../../functions/store/approver-tokens.js';

const BASE = 'https://gateway.example.com';
const RESOURCE = `${BASE}/mcp`;
const now = () => Math.floor(Date.now() / 1000);
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

let server: http.Server;
let origin: string;
let privateKey: CryptoKey;
/** Two issuers on one loopback server (their keys at `<issuer>/.well-known/jwks.json`). */
let rfcIssuer: string;
let cognitoIssuer: string;
let verifier: AgentTokenVerifier;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  server = http.createServer((req, res) => {
    if (req.url?.endsWith('/.well-known/jwks.json'))
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  rfcIssuer = `${origin}/as`;
  cognitoIssuer = `${origin}/eu-west-1_Pool1`;
  verifier = createAgentTokenVerifier(
    loadConfig({
      [ENV.publicBaseUrl]: BASE,
      [ENV.mcpOAuthIssuers]: rfcIssuer,
      [ENV.mcpOAuthCognitoIssuers]: cognitoIssuer,
    }),
  );
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Claims and header overridable; `undefined` removes a claim. */
async function sign(
  claims: Record<string, unknown>,
  header: Record<string, unknown> = { typ: 'at+jwt' },
): Promise<string> {
  const payload = { ...claims };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'k1', ...header }).sign(privateKey);
}

/** An RFC 9068 access token of the RFC issuer, as oidc-provider mints one. */
const rfcToken = (claims: Record<string, unknown> = {}, header?: Record<string, unknown>) =>
  sign(
    {
      iss: rfcIssuer,
      aud: RESOURCE,
      client_id: 'agent-1',
      sub: 'agent-1',
      scope: 'mcp:tools',
      iat: now(),
      exp: now() + 600,
      jti: 'j1',
      ...claims,
    },
    header,
  );

/** A client-credentials access token shaped as a Cognito user pool issues it (no typ, no aud). */
const cognitoToken = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
  sign(
    {
      iss: cognitoIssuer,
      sub: 'cognitoclient1',
      client_id: 'cognitoclient1',
      token_use: 'access',
      scope: `${RESOURCE}/mcp:tools`,
      auth_time: now(),
      iat: now(),
      exp: now() + 3600,
      version: 2,
      jti: 'j2',
      ...claims,
    },
    header,
  );

async function rejection(token: Promise<string> | string): Promise<string> {
  try {
    await verifier.verify(await token);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidApproverToken);
    expect((error as InvalidApproverToken).kind).toBe('invalid');
    return (error as InvalidApproverToken).reason;
  }
  throw new Error('expected the token to be refused');
}

describe('RFC 9068 issuers', () => {
  it('accepts an access token for the resource', async () => {
    const identity = await verifier.verify(await rfcToken());
    expect(identity).toEqual({ issuer: rfcIssuer, clientId: 'agent-1', scopes: new Set(['mcp:tools']) });
  });

  it.each([
    ['an ID token (typ JWT)', { typ: 'JWT' }],
    ['no typ at all', {}],
    ['another type', { typ: 'id_token+jwt' }],
  ])('refuses %s signed with the issuer key', async (_, header) => {
    expect(await rejection(rfcToken({}, header))).toMatch(/typ/);
  });

  it('refuses a token that lives longer than an hour, even while fresh', async () => {
    expect(await rejection(rfcToken({ iat: now(), exp: now() + MAX_AGENT_TOKEN_LIFETIME_SEC + 60 }))).toMatch(
      /lifetime/,
    );
  });

  it('refuses a token of an issuer it is not configured for, though signed by a known key', async () => {
    expect(await rejection(rfcToken({ iss: `${origin}/other` }))).toBe('issuer not configured');
    expect(await rejection(rfcToken({ iss: undefined }))).toBe('issuer not configured');
  });

  it('refuses an aud array that holds the resource and another audience (RFC 8707)', async () => {
    expect(await rejection(rfcToken({ aud: [RESOURCE, 'https://other.example/api'] }))).toMatch(/audience/);
    // The one-element array is the resource alone.
    await expect(verifier.verify(await rfcToken({ aud: [RESOURCE] }))).resolves.toMatchObject({
      clientId: 'agent-1',
    });
  });

  it('refuses an unsigned token (alg none)', async () => {
    const claims = { iss: rfcIssuer, aud: RESOURCE, client_id: 'agent-1', iat: now(), exp: now() + 600 };
    expect(await rejection(`${b64url({ alg: 'none', typ: 'at+jwt' })}.${b64url(claims)}.`)).toBeTruthy();
  });

  it('refuses HS256, even keyed with the public key the issuer publishes', async () => {
    const jwks = (await (await fetch(`${rfcIssuer}/.well-known/jwks.json`)).json()) as {
      keys: Array<{ n: string }>;
    };
    const claims = { iss: rfcIssuer, aud: RESOURCE, client_id: 'agent-1', iat: now(), exp: now() + 600 };
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'k1' })
      .sign(new TextEncoder().encode(jwks.keys[0]!.n));
    expect(await rejection(token)).toBeTruthy();
  });

  it('refuses a Cognito-shaped token (no typ, no aud) from an RFC 9068 issuer: no profile by shape', async () => {
    expect(await rejection(cognitoToken({ iss: rfcIssuer }))).toMatch(/typ|aud/);
    expect(await rejection(cognitoToken({ iss: rfcIssuer }, { typ: 'at+jwt' }))).toMatch(/aud/);
  });
});

describe('the Cognito profile (issuers configured as Cognito user pools)', () => {
  it('accepts a client-credentials token bound by a scope of the /mcp resource server', async () => {
    const identity = await verifier.verify(await cognitoToken());
    expect(identity).toEqual({
      issuer: cognitoIssuer,
      clientId: 'cognitoclient1',
      scopes: new Set([`${RESOURCE}/mcp:tools`]),
    });
  });

  it('refuses a token with no scope of the /mcp resource server (minted for another API)', async () => {
    expect(await rejection(cognitoToken({ scope: 'https://other.example/api/mcp:tools' }))).toMatch(
      /audience/,
    );
    expect(await rejection(cognitoToken({ scope: undefined }))).toMatch(/audience/);
    // A prefix is not the resource: `<resource>x/...` or the bare identifier.
    expect(await rejection(cognitoToken({ scope: `${RESOURCE}x/mcp:tools ${RESOURCE}/` }))).toMatch(
      /audience/,
    );
  });

  it('still holds an aud, when present, to exactly the resource', async () => {
    expect(await rejection(cognitoToken({ aud: 'cognitoclient1' }))).toMatch(/audience/);
    expect(await rejection(cognitoToken({ aud: [RESOURCE, 'https://other.example'] }))).toMatch(/audience/);
    await expect(verifier.verify(await cognitoToken({ aud: RESOURCE }))).resolves.toBeTruthy();
  });

  it("refuses the pool's ID tokens (token_use id, aud the app client)", async () => {
    expect(
      await rejection(cognitoToken({ token_use: 'id', aud: 'cognitoclient1', client_id: undefined })),
    ).toBeTruthy();
    expect(await rejection(cognitoToken({ token_use: 'id' }))).toMatch(/token_use/);
    expect(await rejection(cognitoToken({ token_use: undefined }))).toMatch(/token_use/);
  });

  it("refuses a user's access token (sub is the user, not the client)", async () => {
    expect(await rejection(cognitoToken({ sub: '1b2c3d4e-user', username: 'alice' }))).toMatch(/sub/);
  });

  it('refuses a token that declares another type', async () => {
    expect(await rejection(cognitoToken({}, { typ: 'JWT' }))).toMatch(/typ/);
  });

  it('keeps the checks every issuer gets: lifetime, signature, algorithm', async () => {
    expect(await rejection(cognitoToken({ exp: now() + 2 * 3600 }))).toMatch(/lifetime/);
    expect(await rejection(cognitoToken({ exp: now() - 120 }))).toBeTruthy();
    const claims = {
      iss: cognitoIssuer,
      sub: 'c',
      client_id: 'c',
      token_use: 'access',
      scope: `${RESOURCE}/mcp:tools`,
      iat: now(),
      exp: now() + 600,
    };
    expect(await rejection(`${b64url({ alg: 'none' })}.${b64url(claims)}.`)).toBeTruthy();
    const forged = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .sign((await generateKeyPair('RS256')).privateKey);
    expect(await rejection(forged)).toBeTruthy();
  });
});

describe('configuration', () => {
  it('refuses an issuer listed under both profiles', () => {
    expect(() =>
      loadConfig({
        [ENV.mcpOAuthIssuers]: 'https://idp.example',
        [ENV.mcpOAuthCognitoIssuers]: 'https://idp.example',
      }),
    ).toThrow(/list it once/);
  });

  it('holds Cognito issuers to https (http only on loopback)', () => {
    expect(() => loadConfig({ [ENV.mcpOAuthCognitoIssuers]: 'http://cognito.example/pool' })).toThrow(
      /https/,
    );
  });
});

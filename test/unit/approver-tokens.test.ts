import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { authorizeApprover } from '../../functions/core/approvals.js';
import type { ApprovalRecord } from '../../functions/core/ports.js';
import { TenantConfig } from '../../functions/core/policy-data.js';
import { apiApprover } from '../../functions/handlers/approvals-state.js';
import { loadConfig } from '../../functions/shared/config.js';
import { DEV_JWT } from '../../functions/shared/constants.js';
import {
  createApproverVerifier,
  InvalidApproverToken,
  MAX_APPROVER_TOKEN_LENGTH,
  signDevToken,
  type ApproverTokenConfig,
} from '../../functions/store/approver-tokens.js';

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const devSecret = new TextEncoder().encode(DEV_JWT.defaultSecret);

const devConfig: ApproverTokenConfig = {
  jwtMode: 'dev',
  devJwtSecret: DEV_JWT.defaultSecret,
  jwtTenantClaim: 'tenant_id',
};

/** A dev-shaped token with every claim overridable (undefined removes it). */
async function devToken(
  claims: Record<string, unknown> = {},
  opts: { secret?: Uint8Array; alg?: string } = {},
): Promise<string> {
  const payload: Record<string, unknown> = {
    sub: 'user-1',
    email: 'alice@acme.example',
    tenant_id: 'tenant1',
    iss: DEV_JWT.issuer,
    aud: DEV_JWT.audience,
    iat: now(),
    exp: now() + 600,
    ...claims,
  };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'JWT' })
    .sign(opts.secret ?? devSecret);
}

async function rejection(verify: Promise<unknown>): Promise<InvalidApproverToken> {
  try {
    await verify;
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidApproverToken);
    return error as InvalidApproverToken;
  }
  throw new Error('expected the token to be rejected');
}

describe('dev mode (HS256)', () => {
  const verifier = createApproverVerifier(devConfig);

  it('accepts a token from signDevToken and returns the identity', async () => {
    const token = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example', sub: 'u-alice' });
    await expect(verifier.verify(token)).resolves.toEqual({
      sub: 'u-alice',
      email: 'alice@acme.example',
      tenantId: 'tenant1',
      issuer: DEV_JWT.issuer,
    });
  });

  it('defaults sub to the email and honours ttlSec and a custom secret', async () => {
    const token = await signDevToken({
      tenantId: 't2',
      email: 'bob@globex.example',
      ttlSec: 60,
      secret: 's3cret',
    });
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    expect(payload).toMatchObject({
      sub: 'bob@globex.example',
      iss: 'oc-local',
      aud: 'oc-approvals',
      tenant_id: 't2',
    });
    expect((payload.exp as number) - (payload.iat as number)).toBe(60);
    await expect(
      createApproverVerifier({ ...devConfig, devJwtSecret: 's3cret' }).verify(token),
    ).resolves.toMatchObject({ tenantId: 't2', sub: 'bob@globex.example' });
    expect((await rejection(verifier.verify(token))).reason).toBe('bad signature');
  });

  it('reads the tenant from the configured claim (e.g. Cognito custom:tenant_id)', async () => {
    const v = createApproverVerifier({ ...devConfig, jwtTenantClaim: 'custom:tenant_id' });
    const token = await devToken({ tenant_id: undefined, 'custom:tenant_id': 'tenant9' });
    await expect(v.verify(token)).resolves.toMatchObject({ tenantId: 'tenant9' });
    expect((await rejection(v.verify(await devToken()))).reason).toMatch(/custom:tenant_id/);
  });

  const cases: [string, () => Promise<string>, RegExp][] = [
    [
      'forged (another secret)',
      () => devToken({}, { secret: new TextEncoder().encode('not-the-secret') }),
      /signature/,
    ],
    ['expired (beyond the 30 s tolerance)', () => devToken({ iat: now() - 600, exp: now() - 60 }), /expired/],
    ['not yet valid', () => devToken({ nbf: now() + 300 }), /not yet valid/],
    ['wrong audience', () => devToken({ aud: 'someone-else' }), /audience/],
    ['wrong issuer', () => devToken({ iss: 'https://evil.example' }), /issuer/],
    ['without exp', () => devToken({ exp: undefined }), /exp/],
    ['without iss', () => devToken({ iss: undefined }), /iss/],
    ['without aud', () => devToken({ aud: undefined }), /aud/],
    ['without email', () => devToken({ email: undefined }), /email/],
    ['without sub', () => devToken({ sub: undefined }), /sub/],
    ['without the tenant claim', () => devToken({ tenant_id: undefined }), /tenant_id/],
    ['with an empty tenant', () => devToken({ tenant_id: '' }), /tenant_id/],
    ['with a non-string email', () => devToken({ email: ['a@b.example'] }), /email/],
    ['with HS512 (not on the allowlist)', () => devToken({}, { alg: 'HS512' }), /algorithm/],
    [
      'alg none (unsigned)',
      async () =>
        `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({
          sub: 'user-1',
          email: 'alice@acme.example',
          tenant_id: 'tenant1',
          iss: DEV_JWT.issuer,
          aud: DEV_JWT.audience,
          exp: now() + 600,
        })}.`,
      /algorithm|malformed/,
    ],
    ['garbage', async () => 'not-a-jwt', /malformed/],
    ['three garbage segments', async () => 'a.b.c', /malformed/],
    ['an agent API key', async () => 'sk-test-key-1', /malformed/],
    ['empty', async () => '', /empty/],
    ['oversized', async () => devToken({ pad: 'x'.repeat(MAX_APPROVER_TOKEN_LENGTH) }), /too large/],
  ];
  it.each(cases)('rejects a token %s', async (_name, make, reason) => {
    const error = await rejection(verifier.verify(await make()));
    expect(error.kind).toBe('invalid');
    expect(error.reason).toMatch(reason);
  });

  it('tolerates a little clock skew', async () => {
    await expect(verifier.verify(await devToken({ exp: now() - 5, nbf: now() + 5 }))).resolves.toBeDefined();
  });
});

describe('none mode', () => {
  it('refuses every token, even a valid dev token', async () => {
    const v = createApproverVerifier({ ...devConfig, jwtMode: 'none' });
    const error = await rejection(
      v.verify(await signDevToken({ tenantId: 'tenant1', email: 'a@b.example' })),
    );
    expect(error.reason).toMatch(/not enabled/);
  });
});

describe('oidc mode (JWKS)', () => {
  const issuer = 'https://idp.example/pool-1';
  const audience = 'client-123';
  let server: http.Server;
  let jwksUrl: string;
  let jwksStatus = 200;
  let fetches = 0;
  let es: { privateKey: CryptoKey; publicKey: CryptoKey };
  let rs: { privateKey: CryptoKey; publicKey: CryptoKey };
  let other: { privateKey: CryptoKey; publicKey: CryptoKey };
  let publicJwk: JWK;

  beforeAll(async () => {
    es = await generateKeyPair('ES256');
    rs = await generateKeyPair('RS256');
    other = await generateKeyPair('ES256');
    const keys = [
      { ...(await exportJWK(es.publicKey)), kid: 'es-1', alg: 'ES256', use: 'sig' },
      { ...(await exportJWK(rs.publicKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' },
    ];
    publicJwk = keys[1]!;
    server = http.createServer((req, res) => {
      fetches += 1;
      if (jwksStatus !== 200) {
        res.writeHead(jwksStatus).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const oidc = () =>
    createApproverVerifier({
      jwtMode: 'oidc',
      devJwtSecret: DEV_JWT.defaultSecret,
      jwtIssuer: issuer,
      jwtAudience: audience,
      jwtJwksUrl: jwksUrl,
      jwtTenantClaim: 'custom:tenant_id',
    });

  const sign = (
    key: CryptoKey | Uint8Array,
    alg: string,
    kid?: string,
    claims: Record<string, unknown> = {},
  ) =>
    new SignJWT({
      sub: '0f6c-uuid',
      email: 'alice@acme.example',
      email_verified: true,
      'custom:tenant_id': 'tenant1',
      iss: issuer,
      aud: audience,
      iat: now(),
      exp: now() + 300,
      ...claims,
    })
      .setProtectedHeader({ alg, ...(kid ? { kid } : {}) })
      .sign(key);

  it('accepts ES256 and RS256 tokens signed by the issuer keys, fetching the key set once', async () => {
    fetches = 0;
    const v = oidc();
    const identity = { sub: '0f6c-uuid', email: 'alice@acme.example', tenantId: 'tenant1', issuer };
    await expect(v.verify(await sign(es.privateKey, 'ES256', 'es-1'))).resolves.toEqual(identity);
    await expect(v.verify(await sign(rs.privateKey, 'RS256', 'rs-1'))).resolves.toEqual(identity);
    await expect(v.verify(await sign(es.privateKey, 'ES256'))).resolves.toEqual(identity); // no kid
    expect(fetches).toBe(1);
  });

  describe('an approver identified by email needs email_verified: true', () => {
    const tenant = TenantConfig.parse({
      name: 'Acme',
      max_risk_auto_approve: 3,
      approvers: {
        emails: ['alice@acme.example'],
        subjects: [{ issuer, sub: 'bob-sub' }],
      },
    });
    const pending = { user_id: 'someone-else' } as ApprovalRecord;
    /** What an approval route does with the token: verify it, then check the tenant's allowlist. */
    const approves = async (claims: Record<string, unknown>) => {
      const identity = await oidc().verify(await sign(es.privateKey, 'ES256', 'es-1', claims));
      authorizeApprover(tenant, apiApprover(identity), pending);
      return identity;
    };

    it.each([
      ['false', { email_verified: false }],
      ['missing', { email_verified: undefined }],
      ['the string "true" (not a verification)', { email_verified: 'true' }],
    ])('refuses a listed email whose email_verified is %s', async (_name, claims) => {
      const identity = await oidc().verify(await sign(es.privateKey, 'ES256', 'es-1', claims));
      expect(identity.email).toBe('');
      await expect(approves(claims)).rejects.toMatchObject({ status: 403, code: 'APPROVER_NOT_ALLOWED' });
    });

    it('accepts a listed email with email_verified: true', async () => {
      await expect(approves({ email_verified: true })).resolves.toMatchObject({
        email: 'alice@acme.example',
      });
    });

    it('accepts an approver listed by (issuer, sub), without any email', async () => {
      await expect(
        approves({ sub: 'bob-sub', email: undefined, email_verified: undefined }),
      ).resolves.toEqual({
        sub: 'bob-sub',
        email: '',
        tenantId: 'tenant1',
        issuer,
      });
      // The same sub from another issuer is someone else.
      const elsewhere = {
        ...tenant,
        approvers: { ...tenant.approvers, subjects: [{ issuer: 'https://other.example', sub: 'bob-sub' }] },
      };
      const identity = await oidc().verify(
        await sign(es.privateKey, 'ES256', 'es-1', { sub: 'bob-sub', email: undefined }),
      );
      expect(() => authorizeApprover(elsewhere, apiApprover(identity), pending)).toThrow(/not an approver/);
    });
  });

  it('rejects a token signed by another key', async () => {
    const v = oidc();
    expect((await rejection(v.verify(await sign(other.privateKey, 'ES256', 'es-1')))).reason).toBe(
      'bad signature',
    );
    const unknownKid = await rejection(v.verify(await sign(other.privateKey, 'ES256', 'attacker')));
    expect(unknownKid).toMatchObject({ kind: 'invalid', reason: 'unknown signing key' });
  });

  it('rejects HS256 (also keyed with the public JWK bytes: algorithm confusion)', async () => {
    const v = oidc();
    for (const secret of [devSecret, new TextEncoder().encode(JSON.stringify(publicJwk))]) {
      const error = await rejection(v.verify(await sign(secret, 'HS256', 'rs-1')));
      expect(error).toMatchObject({ kind: 'invalid', reason: 'algorithm not allowed' });
    }
    const devTok = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example' });
    expect((await rejection(v.verify(devTok))).kind).toBe('invalid');
  });

  it('rejects wrong issuer / audience and a missing tenant claim', async () => {
    const v = oidc();
    expect(
      (await rejection(v.verify(await sign(es.privateKey, 'ES256', 'es-1', { iss: 'https://x' })))).reason,
    ).toBe('wrong issuer');
    expect((await rejection(v.verify(await sign(es.privateKey, 'ES256', 'es-1', { aud: 'y' })))).reason).toBe(
      'wrong audience',
    );
    const noTenant = await sign(es.privateKey, 'ES256', 'es-1', { 'custom:tenant_id': undefined });
    expect((await rejection(v.verify(noTenant))).reason).toMatch(/custom:tenant_id/);
  });

  it('reports an unreachable key set as unavailable, not as a valid or merely invalid token', async () => {
    jwksStatus = 503;
    try {
      const error = await rejection(oidc().verify(await sign(es.privateKey, 'ES256', 'es-1')));
      expect(error).toMatchObject({ kind: 'unavailable', reason: 'issuer keys unavailable' });
    } finally {
      jwksStatus = 200;
    }
    const closed = createApproverVerifier({
      jwtMode: 'oidc',
      devJwtSecret: 'x',
      jwtIssuer: issuer,
      jwtAudience: audience,
      jwtJwksUrl: 'http://127.0.0.1:1/jwks.json',
      jwtTenantClaim: 'custom:tenant_id',
    });
    expect((await rejection(closed.verify(await sign(es.privateKey, 'ES256', 'es-1')))).kind).toBe(
      'unavailable',
    );
  });
});

describe('configuration', () => {
  it('defaults to none, with the dev secret and tenant_id claim', () => {
    expect(loadConfig({})).toMatchObject({
      jwtMode: 'none',
      devJwtSecret: 'dev-jwt-secret',
      jwtTenantClaim: 'tenant_id',
    });
  });

  it('requires issuer and audience in oidc mode, with a clear message', () => {
    expect(() => loadConfig({ OC_JWT_MODE: 'oidc' })).toThrow(
      /OC_JWT_ISSUER is required.*OC_JWT_AUDIENCE is required/,
    );
    expect(() => loadConfig({ OC_JWT_MODE: 'oidc', OC_JWT_ISSUER: 'https://idp.example' })).toThrow(
      /OC_JWT_AUDIENCE is required/,
    );
    expect(
      loadConfig({
        OC_JWT_MODE: 'oidc',
        OC_JWT_ISSUER: 'https://cognito-idp.eu-west-1.amazonaws.com/pool',
        OC_JWT_AUDIENCE: 'client',
        OC_JWT_TENANT_CLAIM: 'custom:tenant_id',
      }),
    ).toMatchObject({ jwtMode: 'oidc', jwtTenantClaim: 'custom:tenant_id' });
  });

  it('refuses a plain-http key set URL except on loopback, an unknown mode, and dev mode in Lambda', () => {
    const base = { OC_JWT_MODE: 'oidc', OC_JWT_AUDIENCE: 'a' };
    expect(() => loadConfig({ ...base, OC_JWT_ISSUER: 'http://idp.example' })).toThrow(/must be https/);
    expect(() =>
      loadConfig({ ...base, OC_JWT_ISSUER: 'https://idp.example', OC_JWT_JWKS_URL: 'http://idp.example/k' }),
    ).toThrow(/must be https/);
    expect(loadConfig({ ...base, OC_JWT_ISSUER: 'http://127.0.0.1:9/x' }).jwtMode).toBe('oidc');
    expect(() => loadConfig({ OC_JWT_MODE: 'hs256' })).toThrow(/jwtMode/);
    expect(() => loadConfig({ OC_JWT_MODE: 'dev', AWS_LAMBDA_FUNCTION_NAME: 'f' })).toThrow(
      /local stack only/,
    );
  });
});

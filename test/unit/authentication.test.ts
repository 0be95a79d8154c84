import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import type { AppState } from '../../functions/handlers/app-state.js';
import {
  authenticate,
  authenticated,
  presentedKey,
  routeAuthOf,
} from '../../functions/handlers/authentication.js';
import { ROUTES } from '../../functions/shared/constants.js';
import { hashApiKey, keyIdOf } from '../../functions/store/api-keys.js';
import { AppError } from '../../functions/shared/errors.js';
import {
  requireApprover,
  requireTenant,
  type AuthContext,
  type HttpEvent,
} from '../../functions/shared/http.js';
import {
  createApproverVerifier,
  InvalidApproverToken,
  signDevToken,
  type ApproverVerifier,
} from '../../functions/store/approver-tokens.js';

const KEY1_ID = keyIdOf(hashApiKey('sk-test-key-1'));

const SUBMIT = 'POST /v1/toolcalls';
const APPROVE = 'POST /v1/approvals/{approval_id}/approve';
const LIST = 'GET /v1/approvals';

function authEvent(
  routeKey: string,
  headers: Record<string, string> = {},
): APIGatewayRequestAuthorizerEventV2 {
  return {
    version: '2.0',
    type: 'REQUEST',
    routeKey,
    headers,
  } as unknown as APIGatewayRequestAuthorizerEventV2;
}

function fakeState(opts: { resolve?: (key: string) => Promise<unknown>; verifier?: ApproverVerifier } = {}): {
  state: AppState;
  lookups: string[];
  verified: string[];
  uses: string[];
} {
  const lookups: string[] = [];
  const uses: string[] = [];
  const verified: string[] = [];
  const verifier =
    opts.verifier ??
    createApproverVerifier({ jwtMode: 'dev', devJwtSecret: 'dev-jwt-secret', jwtTenantClaim: 'tenant_id' });
  const state = {
    apiKeys: {
      resolve: async (key: string) => {
        lookups.push(key);
        return opts.resolve
          ? opts.resolve(key)
          : key === 'sk-test-key-1'
            ? { tenantId: 'tenant1', agentId: 'agent-1' }
            : undefined;
      },
      recordUse: async (key: string) => {
        uses.push(key);
      },
    },
    approverTokens: {
      verify: (token: string) => {
        verified.push(token);
        return verifier.verify(token);
      },
    },
  } as unknown as AppState;
  return { state, lookups, verified, uses };
}

const httpEvent = (context: AuthContext): HttpEvent =>
  ({ requestContext: { authorizer: { lambda: context } } }) as unknown as HttpEvent;

function status401(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).status).toBe(401);
    expect((error as AppError).code).toBe('UNAUTHORIZED');
    return (error as AppError).message;
  }
  throw new Error('expected a 401');
}

let alice: string;
beforeAll(async () => {
  alice = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example', sub: 'u-alice' });
});

describe('route lookup by routeKey', () => {
  it('finds every route in ROUTES by "<METHOD> <path template>"', () => {
    for (const r of ROUTES) expect(routeAuthOf(`${r.method} ${r.path}`)).toBe(r.auth);
    expect(routeAuthOf(APPROVE)).toBe('jwt');
    expect(routeAuthOf(SUBMIT)).toBe('api_key');
  });

  it('does not match concrete paths, other methods, $default or nothing', () => {
    expect(routeAuthOf('POST /v1/approvals/abc/approve')).toBeUndefined();
    expect(routeAuthOf('GET /v1/toolcalls')).toBeUndefined();
    expect(routeAuthOf('$default')).toBeUndefined();
    expect(routeAuthOf(undefined)).toBeUndefined();
  });

  it('fails closed on an unknown route: no identity, no lookups', async () => {
    const { state, lookups, verified } = fakeState();
    const result = await authenticate(() => state)(authEvent('$default', { 'x-api-key': 'sk-test-key-1' }));
    expect(result).toEqual({ context: { authError: 'invalid' } });
    expect(lookups).toEqual([]);
    expect(verified).toEqual([]);
  });
});

describe('api_key routes', () => {
  it('resolves an API key (X-API-Key or Bearer) to the tenant, agent and key id, authKind api_key', async () => {
    const { state } = fakeState();
    const expected = {
      context: { authKind: 'api_key', tenantId: 'tenant1', agentId: 'agent-1', keyId: KEY1_ID },
    };
    await expect(
      authenticate(() => state)(authEvent(SUBMIT, { 'X-API-Key': 'sk-test-key-1' })),
    ).resolves.toEqual(expected);
    await expect(
      authenticate(() => state)(authEvent(SUBMIT, { authorization: 'Bearer sk-test-key-1' })),
    ).resolves.toEqual(expected);
  });

  it('missing and unknown keys', async () => {
    const { state } = fakeState();
    expect((await authenticate(() => state)(authEvent(SUBMIT))).context).toEqual({ authError: 'missing' });
    expect((await authenticate(() => state)(authEvent(SUBMIT, { 'x-api-key': 'sk-nope' }))).context).toEqual({
      authError: 'invalid',
    });
  });

  it('an approver JWT is not an API key: authError, never an approver identity', async () => {
    const { state, verified } = fakeState();
    const result = await authenticate(() => state)(authEvent(SUBMIT, { authorization: `Bearer ${alice}` }));
    expect(result).toEqual({ context: { authError: 'invalid' } });
    expect(verified).toEqual([]);
  });

  it('a key store outage is unavailable', async () => {
    const { state } = fakeState({
      resolve: async () => {
        throw new Error('ECONNREFUSED');
      },
    });
    const result = await authenticate(() => state)(authEvent(SUBMIT, { 'x-api-key': 'sk-test-key-1' }));
    expect(result).toEqual({ context: { authError: 'unavailable' } });
  });
});

describe('jwt routes', () => {
  it('a valid approver token gives authKind jwt with tenant, sub and email', async () => {
    const { state, lookups } = fakeState();
    for (const routeKey of [APPROVE, LIST]) {
      const result = await authenticate(() => state)(
        authEvent(routeKey, { Authorization: `Bearer ${alice}` }),
      );
      expect(result).toEqual({
        context: {
          authKind: 'jwt',
          tenantId: 'tenant1',
          approverSub: 'u-alice',
          approverEmail: 'alice@acme.example',
          approverIssuer: 'oc-local',
        },
      });
    }
    expect(lookups).toEqual([]);
  });

  it('an agent API key (header or Bearer) is refused without a key lookup', async () => {
    const { state, lookups } = fakeState();
    const attempts: Record<string, string>[] = [
      { 'x-api-key': 'sk-test-key-1' },
      { authorization: 'Bearer sk-test-key-1' },
    ];
    for (const headers of attempts) {
      const result = await authenticate(() => state)(authEvent(APPROVE, headers));
      expect(result).toEqual({ context: { authError: 'invalid' } });
    }
    expect(lookups).toEqual([]);
  });

  it('missing, malformed, forged and oversized tokens', async () => {
    const { state } = fakeState();
    const ctx = async (headers: Record<string, string>) =>
      (await authenticate(() => state)(authEvent(APPROVE, headers))).context;
    expect(await ctx({})).toEqual({ authError: 'missing' });
    expect(await ctx({ authorization: 'Basic dXNlcjpwYXNz' })).toEqual({ authError: 'invalid' });
    expect(await ctx({ authorization: `Bearer ${alice}x` })).toEqual({ authError: 'invalid' });
    const forged = await signDevToken({ tenantId: 'tenant2', email: 'alice@acme.example', secret: 'guess' });
    expect(await ctx({ authorization: `Bearer ${forged}` })).toEqual({ authError: 'invalid' });
    expect(await ctx({ authorization: `Bearer ${'a'.repeat(9000)}` })).toEqual({ authError: 'invalid' });
  });

  it('an unreachable issuer key set is unavailable, an unexpected verifier failure too', async () => {
    for (const error of [
      new InvalidApproverToken('issuer keys unavailable', 'unavailable'),
      new Error('boom'),
    ]) {
      const { state } = fakeState({
        verifier: {
          verify: async () => {
            throw error;
          },
        },
      });
      const result = await authenticate(() => state)(
        authEvent(APPROVE, { authorization: `Bearer ${alice}` }),
      );
      expect(result.context).toEqual({ authError: 'unavailable' });
    }
  });
});

describe('authenticated routes', () => {
  it('hand the route the identity they established, whatever the incoming request context claimed', async () => {
    const { state, uses } = fakeState();
    const seen: AuthContext[] = [];
    const route = authenticated(
      () => state,
      async (event) => {
        seen.push(event.requestContext.authorizer.lambda);
        return { status: 200, body: '{}' };
      },
    );
    const forged = {
      routeKey: SUBMIT,
      headers: { 'x-api-key': 'sk-nope' },
      requestContext: { authorizer: { lambda: { authKind: 'api_key', tenantId: 'tenant2' } } },
    } as unknown as HttpEvent;
    await route(forged);
    await route({ ...forged, headers: { 'x-api-key': 'sk-test-key-1' } });
    expect(seen).toEqual([
      { authError: 'invalid' },
      { authKind: 'api_key', tenantId: 'tenant1', agentId: 'agent-1', keyId: KEY1_ID },
    ]);
    // Only the request answered under a valid key counts as a use of it.
    expect(uses).toEqual(['sk-test-key-1']);
    expect(() => requireTenant({ requestContext: { authorizer: { lambda: seen[0] } } } as never)).toThrow(
      AppError,
    );
  });
});

describe('requireTenant / requireApprover', () => {
  it('requireApprover returns the approver identity only for a jwt context', () => {
    const approver = {
      authKind: 'jwt',
      tenantId: 't1',
      approverSub: 's',
      approverIssuer: 'https://idp',
    } as const;
    expect(requireApprover(httpEvent({ ...approver, approverEmail: 'e@x.example' }))).toEqual({
      sub: 's',
      email: 'e@x.example',
      tenantId: 't1',
      issuer: 'https://idp',
    });
    // No verified email: still an identity (listed by issuer and sub, or refused by the allowlist).
    expect(requireApprover(httpEvent({ ...approver, approverEmail: '' }))).toMatchObject({ email: '' });
    expect(
      status401(() => requireApprover(httpEvent({ authKind: 'api_key', tenantId: 't1', agentId: 'a' }))),
    ).toBe('invalid approver token');
    expect(status401(() => requireApprover(httpEvent({ tenantId: 't1' })))).toBe('invalid approver token');
    expect(status401(() => requireApprover(httpEvent({ authError: 'missing' })))).toBe(
      'missing approver token',
    );
    expect(status401(() => requireApprover(httpEvent({ authError: 'invalid' })))).toBe(
      'invalid approver token',
    );
    expect(() => requireApprover(httpEvent({ authError: 'unavailable' }))).toThrow(/issuer/);
  });

  it('requireTenant refuses an approver (jwt) context', () => {
    expect(
      requireTenant(httpEvent({ authKind: 'api_key', tenantId: 't1', agentId: 'a', keyId: 'key_1' })),
    ).toEqual({ tenantId: 't1', agentId: 'a', keyId: 'key_1' });
    // No key id, no caller: the cores scope and record by it.
    status401(() => requireTenant(httpEvent({ authKind: 'api_key', tenantId: 't1', agentId: 'a' })));
    status401(() =>
      requireTenant(
        httpEvent({ authKind: 'jwt', tenantId: 't1', approverSub: 's', approverEmail: 'e@x.example' }),
      ),
    );
  });
});

describe('presentedKey', () => {
  it('prefers X-API-Key, then a Bearer token, case-insensitively', () => {
    expect(presentedKey({ 'X-Api-Key': ' k1 ', Authorization: 'Bearer k2' })).toBe('k1');
    expect(presentedKey({ AUTHORIZATION: 'bearer k2' })).toBe('k2');
    expect(presentedKey({ authorization: 'Basic k2' })).toBeUndefined();
  });
});

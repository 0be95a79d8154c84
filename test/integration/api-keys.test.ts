/**
 * API key lifecycle over HTTP on the local stack (W31): expiry, revocation within the lookup
 * cache's lifetime, rotation keeping the agent binding, last-used time written at most once a
 * minute, and tenants as walls. The stack's clock is moved instead of waiting.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Clock } from '../../functions/core/ports.js';
import {
  API_KEY_CACHE_MS,
  ApiKeyStore,
  generateApiKey,
  hashApiKey,
  keyIdOf,
  KeyNotFoundError,
} from '../../functions/store/api-keys.js';
import { keys } from '../../functions/store/keys.js';
import { startTestStack, toolCall, type TestStack } from '../support/stack.js';

const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
let stack: TestStack;
/** The operator's view (as `oc keys` builds it), on the same clock. */
let operator: ApiKeyStore;

beforeAll(async () => {
  stack = await startTestStack({ overrides: { clock } });
  operator = new ApiKeyStore(stack.state.doc, stack.config.tableName, undefined, undefined, () =>
    clock.now(),
  );
});
afterAll(async () => {
  await stack.stop();
});
beforeEach(() => {
  clock.offsetMs = 0;
});

const submitWith = (key: string, agentId = 'agent-7') =>
  stack.post('/v1/toolcalls', toolCall({ agent_id: agentId }), key);
async function newKey(options: { agentId?: string; expiresInMs?: number; tenantId?: string } = {}) {
  const key = generateApiKey();
  await operator.put(
    key,
    { tenantId: options.tenantId ?? 'tenant1', ...(options.agentId ? { agentId: options.agentId } : {}) },
    {
      label: 'test',
      ...(options.expiresInMs ? { expiresAt: new Date(clock.now().getTime() + options.expiresInMs) } : {}),
    },
  );
  return { key, keyId: keyIdOf(hashApiKey(key)) };
}
const storedItem = async (key: string) =>
  (
    await stack.state.doc.send(
      new GetCommand({ TableName: stack.config.tableName, Key: keys.apiKey(hashApiKey(key)) }),
    )
  ).Item;

describe('API keys', () => {
  it('an expired key is 401, even while its lookup is cached', async () => {
    const { key } = await newKey({ expiresInMs: 60_000 });
    expect((await submitWith(key)).status).toBe(200);

    clock.offsetMs = 61_000;
    const refused = await submitWith(key);

    expect(refused.status).toBe(401);
    expect(refused.json.code).toBe('UNAUTHORIZED');
  });

  it('a revoked key is refused once the cache lifetime has passed (and at once by an uncached instance)', async () => {
    const { key, keyId } = await newKey();
    expect((await submitWith(key)).status).toBe(200);

    const revoked = await operator.revoke('tenant1', keyId);
    expect(revoked).toMatchObject({ key_id: keyId, status: 'revoked', revoked_at: expect.any(String) });
    // The gateway instance that just served the key may serve it for up to the cache lifetime...
    expect((await submitWith(key)).status).toBe(200);
    // ...an instance without it cached refuses it at once...
    expect(await new ApiKeyStore(stack.state.doc, stack.config.tableName).resolve(key)).toBeUndefined();
    // ...and once the lifetime has passed, every instance does.
    clock.offsetMs = API_KEY_CACHE_MS + 1_000;
    expect((await submitWith(key)).status).toBe(401);
  });

  it('rotate issues a new key with the same tenant, agent binding and label, and retires the old one', async () => {
    const { key: oldKey, keyId } = await newKey({ agentId: 'agent-7' });

    const rotated = await operator.rotate('tenant1', keyId);

    expect(rotated.key).not.toBe(oldKey);
    expect(rotated.record).toMatchObject({
      tenant_id: 'tenant1',
      agent_id: 'agent-7',
      label: 'test',
      status: 'active',
    });
    expect(rotated.old).toMatchObject({ key_id: keyId, status: 'revoked' });
    expect((await submitWith(rotated.key, 'agent-7')).status).toBe(200);
    const otherAgent = await submitWith(rotated.key, 'agent-8');
    expect(otherAgent.status).toBe(403);
    expect(otherAgent.json.message).toBe('this API key is bound to another agent_id');
    expect((await submitWith(oldKey)).status).toBe(401);
  });

  it('rotate with a grace period keeps the old key working until then', async () => {
    const { key: oldKey, keyId } = await newKey({ agentId: 'agent-7' });

    const rotated = await operator.rotate('tenant1', keyId, { graceMs: 3_600_000 });

    expect(rotated.old.status).toBe('active');
    expect((await submitWith(oldKey)).status).toBe(200);
    clock.offsetMs = 3_600_000 + 1_000;
    expect((await submitWith(oldKey)).status).toBe(401);
    expect((await submitWith(rotated.key)).status).toBe(200);
  });

  it('a grace period never lengthens an expiring key: the earlier expiry wins', async () => {
    const { key: oldKey, keyId } = await newKey({ expiresInMs: 90_000 });

    const rotated = await operator.rotate('tenant1', keyId, { graceMs: 3_600_000 });

    expect(Date.parse(rotated.old.expires_at!)).toBe(Date.parse(rotated.record.expires_at!));
    expect((await submitWith(oldKey)).status).toBe(200);
    clock.offsetMs = 91_000;
    expect((await submitWith(rotated.key)).status).toBe(401);
    expect((await submitWith(oldKey)).status).toBe(401);
    clock.offsetMs = 3_600_000;
    expect((await submitWith(oldKey)).status).toBe(401);
    const stored = await storedItem(oldKey);
    expect(Date.parse(String(stored?.expires_at))).toBe(Date.parse(rotated.record.expires_at!));
  });

  it('rotating a key already in grace never lengthens its grace', async () => {
    const { key: first, keyId } = await newKey();
    const once = await operator.rotate('tenant1', keyId, { graceMs: 60_000 });
    const graceEnd = Date.parse(once.old.expires_at!);

    const twice = await operator.rotate('tenant1', keyId, { graceMs: 3_600_000 });

    expect(Date.parse(twice.old.expires_at!)).toBe(graceEnd);
    expect(Date.parse(String((await storedItem(first))?.expires_at))).toBe(graceEnd);
    clock.offsetMs = 61_000;
    expect((await submitWith(first)).status).toBe(401);
    expect((await submitWith(once.key)).status).toBe(200);
  });

  it("revoke with a later time than the key's expiry keeps the expiry", async () => {
    const { keyId } = await newKey({ expiresInMs: 90_000 });
    const before = (await operator.list('tenant1')).find((k) => k.key_id === keyId)!.expires_at;

    const revoked = await operator.revoke('tenant1', keyId, new Date(clock.now().getTime() + 3_600_000));

    expect(revoked.expires_at).toBe(before);
  });

  it('records the last use of an accepted request through the gateway, not of a refused one', async () => {
    const { key } = await newKey();

    const refused = await stack.post(
      '/v1/toolcalls',
      { ...toolCall({ agent_id: 'agent-7' }), risk_score: 99 },
      key,
    );
    expect(refused.status).toBe(422);
    expect((await storedItem(key))?.last_used_at).toBeUndefined();
    expect((await submitWith(key)).status).toBe(200);
    expect((await storedItem(key))?.last_used_at).toEqual(expect.any(String));
  });

  it('records the last use at most once a minute per key', async () => {
    const { key, keyId } = await newKey();
    const gateway = new ApiKeyStore(stack.state.doc, stack.config.tableName, 0, 0, () => clock.now());

    const use = async () => {
      await gateway.resolve(key);
      await gateway.recordUse(key);
    };
    await gateway.resolve(key);
    const unused = (await storedItem(key))?.last_used_at;
    await use();
    const first = (await storedItem(key))?.last_used_at;
    clock.offsetMs = 30_000;
    await use(); // no cache (0 ms): a lookup, but the last use is recent
    const second = (await storedItem(key))?.last_used_at;
    clock.offsetMs = 61_000;
    await use();
    const third = (await storedItem(key))?.last_used_at;

    // A lookup alone (a request that is then refused) records nothing.
    expect(unused).toBeUndefined();
    expect(first).toEqual(expect.any(String));
    expect(second).toBe(first);
    expect(Date.parse(third) - Date.parse(first)).toBeGreaterThanOrEqual(60_000);
    expect((await operator.list('tenant1')).find((k) => k.key_id === keyId)?.last_used_at).toBe(third);
  });

  it('lists a tenant’s keys without the keys, and another tenant can neither see nor revoke them', async () => {
    const { key, keyId } = await newKey({ agentId: 'agent-7', expiresInMs: 86_400_000 });

    const listed = (await operator.list('tenant1')).find((k) => k.key_id === keyId);
    expect(listed).toMatchObject({
      tenant_id: 'tenant1',
      agent_id: 'agent-7',
      status: 'active',
      expires_at: expect.any(String),
    });
    expect(JSON.stringify(await operator.list('tenant1'))).not.toContain(key);
    expect(JSON.stringify(await operator.list('tenant1'))).not.toContain(hashApiKey(key));
    expect((await operator.list('tenant2')).map((k) => k.key_id)).not.toContain(keyId);
    await expect(operator.revoke('tenant2', keyId)).rejects.toBeInstanceOf(KeyNotFoundError);
    await expect(operator.rotate('tenant2', keyId)).rejects.toBeInstanceOf(KeyNotFoundError);
    expect((await submitWith(key)).status).toBe(200);
  });
});

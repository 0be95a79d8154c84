/** The per-tenant rate limit is shared by every instance (it lives in DynamoDB, not in a process). */
import { startLocalHost, type LocalHost } from '../../bin/local/host.js';
import { KEYS, startTestStack, toolCall, toResponse, type TestStack } from '../support/stack.js';

let a: TestStack;
let b: LocalHost;
/** Both instances read one clock that only the test moves, so windows never slide under a slow run. */
const clock = { at: Date.parse('2030-01-01T00:00:00.200Z'), now: () => new Date(clock.at) };

beforeAll(async () => {
  a = await startTestStack({
    env: { OC_RATE_LIMIT_PER_SEC: '5', OC_RATE_LIMIT_BURST: '10' },
    overrides: { clock },
    consumers: false,
  });
  // A second "instance": another host process-state on the same table.
  b = await startLocalHost({ config: a.config, port: 0, overrides: { clock }, consumers: false });
});
afterAll(async () => {
  await b.stop();
  await a.stop();
});

const deny = () => toolCall({ tool: 'unknown', action: 'x' });

describe('rate limit', () => {
  it('answers 429 with Retry-After once the burst is spent across two instances, per tenant', async () => {
    const viaB = (body: unknown, key: string) =>
      fetch(`${b.url}/v1/toolcalls`, {
        method: 'POST',
        headers: { 'X-API-Key': key },
        body: JSON.stringify(body),
      }).then(toResponse);
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        i % 2 === 0 ? a.post('/v1/toolcalls', deny()) : viaB(deny(), KEYS.tenant1),
      ),
    );
    const limited = answers.filter((r) => r.status === 429);
    const accepted = answers.filter((r) => r.status === 200);
    expect(accepted.length).toBe(10);
    expect(limited.length).toBe(24 - accepted.length);
    for (const r of limited) {
      expect(r.json).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // another tenant has its own budget
    expect((await a.post('/v1/toolcalls', deny(), KEYS.tenant2)).status).toBe(200);
  });

  it('refills at the configured rate, and replays are answered even while limited', async () => {
    clock.at += 3000;
    const body = deny();
    const first = await a.post('/v1/toolcalls', body);
    expect(first.status).toBe(200);
    // spend the burst again, then replay the accepted call
    await Promise.all(Array.from({ length: 15 }, () => a.post('/v1/toolcalls', deny())));
    expect((await a.post('/v1/toolcalls', deny())).status).toBe(429);
    const replay = await a.post('/v1/toolcalls', body);
    expect(replay.status).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.text).toBe(first.text);
  });
});

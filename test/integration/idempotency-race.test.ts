/** Concurrent duplicates are decided, recorded and executed exactly once (fixes W12). */
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { countingInvoker } from '../support/connectors.js';
import { startTestStack, toolCall, type TestStack } from '../support/stack.js';

const connector = countingInvoker({ delayMs: 300 });
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ overrides: { connectors: connector }, consumers: false });
});
afterAll(async () => {
  await stack.stop();
});

async function eventsWithKey(eventIds: Set<string>): Promise<number> {
  let found = 0;
  for (const id of eventIds) {
    const out = await stack.state.doc.send(
      new QueryCommand({
        TableName: stack.config.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `T#tenant1#EVT#${id}` },
      }),
    );
    found += (out.Items ?? []).filter((i) => i.type === 'event').length;
  }
  return found;
}

describe('idempotency under concurrency', () => {
  it('64 concurrent submits with one key and one body: one event, one connector call, identical answers', async () => {
    const body = toolCall();
    const answers = await Promise.all(Array.from({ length: 64 }, () => stack.post('/v1/toolcalls', body)));
    const ok = answers.filter((a) => a.status === 200);
    const inFlight = answers.filter((a) => a.status === 409);
    expect(ok.length + inFlight.length).toBe(64);
    expect(ok.length).toBeGreaterThan(0);
    expect(new Set(ok.map((a) => a.text)).size).toBe(1);
    for (const a of inFlight) {
      expect(a.json.code).toBe('CONFLICT');
      expect(a.headers['retry-after']).toBe('1');
    }
    expect(connector.calls.filter((c) => c.event_id === ok[0]!.json.event_id)).toHaveLength(1);
    expect(connector.calls).toHaveLength(1);
    expect(await eventsWithKey(new Set(ok.map((a) => a.json.event_id as string)))).toBe(1);
    expect(ok.filter((a) => a.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
  });

  it('the same key with a different body, even concurrently, is 422', async () => {
    const body = toolCall();
    const first = stack.post('/v1/toolcalls', body);
    await new Promise((r) => setTimeout(r, 50));
    const changed = await stack.post('/v1/toolcalls', { ...body, risk_score: 4 });
    expect(changed.status).toBe(422);
    expect(changed.json.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await first).status).toBe(200);
  });
});

/**
 * The evidence chain under load and attack, on DynamoDB Local with the real stream poller:
 * no fork, no gap, nothing sealed twice, and any tampering found by verification.
 */
import { marshall } from '@aws-sdk/util-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { sequence } from '../../functions/handlers/sequencer.js';
import { verifyTenantChain } from '../../functions/store/chain.js';
import { keys } from '../../functions/store/keys.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';

const verifyOptions = () => ({ now: new Date(), unsealedGraceMs: 60_000 });

async function allFacts(stack: TestStack, tenant: string) {
  const facts: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const out = await stack.state.doc.send(
      new QueryCommand({
        TableName: stack.config.tableName,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :pk',
        ExpressionAttributeValues: { ':pk': `T#${tenant}#UNSEALED` },
        ExclusiveStartKey: startKey,
      }),
    );
    facts.push(...(out.Items ?? []));
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  return facts;
}

async function entries(stack: TestStack, tenant: string) {
  const list = [];
  for await (const e of stack.state.chain.entries(tenant)) list.push(e);
  return list;
}

describe('chain race: 32 concurrent writers x 50 calls for one tenant', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('seals every fact exactly once, seq 1..N without gaps, and verifies', async () => {
    const bodies = (w: number) =>
      Array.from({ length: 50 }, (_, i) =>
        toolCall(
          i % 3 === 0
            ? { tool: 'unknown', action: 'thing', idempotency_key: `w${w}-${i}` }
            : i % 3 === 1
              ? { tool: 'jira', action: 'issue.delete', params: {}, idempotency_key: `w${w}-${i}` }
              : { idempotency_key: `w${w}-${i}` },
        ),
      );
    const eventIds: string[] = [];
    await Promise.all(
      Array.from({ length: 32 }, async (_, w) => {
        for (const body of bodies(w)) {
          const r = await stack.post('/v1/toolcalls', body, KEYS.tenant1);
          expect(r.status).toBe(200);
          eventIds.push(r.json.event_id);
        }
      }),
    );
    expect(eventIds).toHaveLength(1600);
    await stack.poller!.drained(60_000);

    const chain = await entries(stack, 'tenant1');
    // deny and approve record one fact, allow two: 32 writers x (17 + 17 + 2 * 16)
    const expected = 32 * (17 + 17 + 2 * 16);
    expect(chain).toHaveLength(expected);
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: expected }, (_, i) => i + 1));
    expect(new Set(chain.map((e) => e.record.fact_id)).size).toBe(expected);
    expect(new Set(chain.map((e) => e.record.event_id))).toEqual(new Set(eventIds));
    expect(await allFacts(stack, 'tenant1')).toHaveLength(0);
    const report = await verifyTenantChain(stack.state.chain, 'tenant1', verifyOptions());
    expect(report).toMatchObject({ ok: true, entries: expected, problems: [] });
  }, 240_000);
});

describe('sequencer idempotency and tamper detection', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ consumers: false });
  });
  afterAll(async () => {
    await stack.stop();
  });

  /** The stream records the table would emit for the facts still unsealed (full items, as NEW_IMAGE carries them). */
  async function streamEventForUnsealed(tenant: string): Promise<DynamoDBStreamEvent> {
    const index = (await allFacts(stack, tenant)).sort((a, b) =>
      String(a.gsi1sk).localeCompare(String(b.gsi1sk)),
    );
    const facts = [];
    for (const f of index) {
      const full = await stack.state.doc.send(
        new GetCommand({
          TableName: stack.config.tableName,
          Key: { pk: f.pk, sk: f.sk },
          ConsistentRead: true,
        }),
      );
      facts.push(full.Item!);
    }
    return {
      Records: facts.map((f, i) => ({
        eventName: 'INSERT',
        dynamodb: { SequenceNumber: String(1000 + i), NewImage: marshall(f) as never },
      })),
    };
  }

  it('a batch delivered twice, or twice at once, seals nothing twice', async () => {
    // tenant2 auto-approves writes below risk 3: ten allowed calls, two facts each
    for (let i = 0; i < 10; i++)
      expect((await stack.post('/v1/toolcalls', toolCall({ risk_score: 1 }), KEYS.tenant2)).status).toBe(200);
    const batch = await streamEventForUnsealed('tenant2');
    expect(batch.Records).toHaveLength(20);
    const seq = sequence(() => stack.state.chain);
    const [a, b] = await Promise.all([seq(batch), seq(batch)]);
    expect(a.batchItemFailures).toEqual([]);
    expect(b.batchItemFailures).toEqual([]);
    expect(await seq(batch)).toEqual({ batchItemFailures: [] });
    const chain = await entries(stack, 'tenant2');
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect((await verifyTenantChain(stack.state.chain, 'tenant2', verifyOptions())).ok).toBe(true);
  });

  it('oc verify reports a fact left unsealed past the bound', async () => {
    await stack.post('/v1/toolcalls', toolCall({ tool: 'unknown', action: 'x' }), KEYS.tenant2);
    const report = await verifyTenantChain(stack.state.chain, 'tenant2', {
      now: new Date(Date.now() + 120_000),
      unsealedGraceMs: 60_000,
    });
    expect(report.ok).toBe(false);
    expect(report.problems.join()).toContain('unsealed');
    await sequence(() => stack.state.chain)(await streamEventForUnsealed('tenant2'));
    expect((await verifyTenantChain(stack.state.chain, 'tenant2', verifyOptions())).ok).toBe(true);
  });

  describe('tampering with a stored entry is detected', () => {
    const table = () => stack.config.tableName;
    const getEntry = async (seq: number) =>
      (
        await stack.state.doc.send(
          new GetCommand({ TableName: table(), Key: keys.chainEntry('tenant2', seq) }),
        )
      ).Item!;
    const putEntry = (item: Record<string, unknown>) =>
      stack.state.doc.send(new PutCommand({ TableName: table(), Item: item }));
    const expectBroken = async () => {
      const report = await verifyTenantChain(stack.state.chain, 'tenant2', verifyOptions());
      expect(report.ok).toBe(false);
      return report;
    };

    it('a changed field', async () => {
      const original = await getEntry(3);
      const record = JSON.parse(String(original.record));
      record.decision = 'deny';
      await putEntry({ ...original, record: JSON.stringify(record) });
      expect((await expectBroken()).problems[0]).toContain('seq 3');
      await putEntry(original);
      expect((await verifyTenantChain(stack.state.chain, 'tenant2', verifyOptions())).ok).toBe(true);
    });

    it('a deleted entry', async () => {
      const original = await getEntry(5);
      await stack.state.doc.send(
        new DeleteCommand({ TableName: table(), Key: keys.chainEntry('tenant2', 5) }),
      );
      expect((await expectBroken()).problems[0]).toContain('expected seq 5');
      await putEntry(original);
    });

    it('swapped order', async () => {
      const [six, seven] = [await getEntry(6), await getEntry(7)];
      await putEntry({ ...seven, pk: six.pk, sk: six.sk, seq: 6 });
      await putEntry({ ...six, pk: seven.pk, sk: seven.sk, seq: 7 });
      await expectBroken();
      await putEntry(six);
      await putEntry(seven);
      expect((await verifyTenantChain(stack.state.chain, 'tenant2', verifyOptions())).ok).toBe(true);
    });
  });
});

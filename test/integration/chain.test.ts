/**
 * The evidence chain under load and attack, on DynamoDB Local with the real stream poller:
 * no fork, no gap, nothing sealed twice, and any tampering found by verification.
 */
import { marshall } from '@aws-sdk/util-dynamodb';
import { PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { sequence } from '../../functions/handlers/sequencer.js';
import { ChainStore, decodeEntries, encodeEntries, verifyTenantChain } from '../../functions/store/chain.js';
import { faultyDocumentClient } from '../support/faults.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { chainOf } from '../../functions/handlers/chain-state.js';

const verifyOptions = () => ({ now: new Date(), unsealedGraceMs: 60_000 });

/** Full items of the tenant's facts still unsealed (what the stream's NEW_IMAGE carried), oldest first. */
async function unsealedItems(stack: TestStack, tenant: string) {
  const unsealed = new Set((await chainOf(stack.state).unsealed(tenant)).map((f) => f.fact_id));
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const out = await stack.state.doc.send(
      new ScanCommand({
        TableName: stack.config.tableName,
        FilterExpression: 'begins_with(pk, :p) AND attribute_exists(#r)',
        ExpressionAttributeNames: { '#r': 'record' },
        ExpressionAttributeValues: { ':p': `T#${tenant}#EVT#` },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    items.push(...(out.Items ?? []).filter((i) => unsealed.has(JSON.parse(String(i.record)).fact_id)));
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  return items.sort((a, b) =>
    `${String(a.created_at)}#${String(a.sk)}`.localeCompare(`${String(b.created_at)}#${String(b.sk)}`),
  );
}

async function entries(stack: TestStack, tenant: string) {
  const list = [];
  for await (const e of chainOf(stack.state).entries(tenant)) list.push(e);
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
              ? {
                  tool: 'jira',
                  action: 'issue.delete',
                  params: { issue: 'OPS-1' },
                  idempotency_key: `w${w}-${i}`,
                }
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
    expect(await chainOf(stack.state).unsealed('tenant1')).toHaveLength(0);
    const report = await verifyTenantChain(chainOf(stack.state), 'tenant1', verifyOptions());
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
    const facts = await unsealedItems(stack, tenant);
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
    const seq = sequence(() => chainOf(stack.state));
    const [a, b] = await Promise.all([seq(batch), seq(batch)]);
    expect(a.batchItemFailures).toEqual([]);
    expect(b.batchItemFailures).toEqual([]);
    expect(await seq(batch)).toEqual({ batchItemFailures: [] });
    const chain = await entries(stack, 'tenant2');
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect((await verifyTenantChain(chainOf(stack.state), 'tenant2', verifyOptions())).ok).toBe(true);
  });

  it('oc verify reports a fact left unsealed past the bound', async () => {
    await stack.post('/v1/toolcalls', toolCall({ tool: 'unknown', action: 'x' }), KEYS.tenant2);
    const report = await verifyTenantChain(chainOf(stack.state), 'tenant2', {
      now: new Date(Date.now() + 120_000),
      unsealedGraceMs: 60_000,
    });
    expect(report.ok).toBe(false);
    expect(report.problems.join()).toContain('unsealed');
    await sequence(() => chainOf(stack.state))(await streamEventForUnsealed('tenant2'));
    expect((await verifyTenantChain(chainOf(stack.state), 'tenant2', verifyOptions())).ok).toBe(true);
  });

  it('two sealer instances racing on one batch, and a sealer that stopped after its page, seal nothing twice', async () => {
    for (let i = 0; i < 10; i++)
      expect((await stack.post('/v1/toolcalls', toolCall(), KEYS.tenant1)).status).toBe(200);
    const batch = await streamEventForUnsealed('tenant1');
    expect(batch.Records).toHaveLength(20);
    const half = { Records: batch.Records.slice(0, 10) };

    // A sealer that wrote its page, then failed before marking its facts (a crash between two writes).
    const { doc: faulty, plan } = faultyDocumentClient();
    plan.fail = { command: 'BatchWriteCommand', nth: 1 };
    const crashed = await sequence(() => new ChainStore(faulty, stack.config.tableName))(half);
    expect(crashed.batchItemFailures).toHaveLength(1);
    expect((await entries(stack, 'tenant1')).length).toBe(10);

    // The redelivery and the whole batch, on two fresh instances at once.
    const [a, b] = await Promise.all([
      sequence(() => new ChainStore(stack.state.doc, stack.config.tableName))(batch),
      sequence(() => new ChainStore(stack.state.doc, stack.config.tableName))(half),
    ]);
    expect([a, b]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    const chain = await entries(stack, 'tenant1');
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(new Set(chain.map((e) => e.record.fact_id)).size).toBe(20);
    expect(await verifyTenantChain(chainOf(stack.state), 'tenant1', verifyOptions())).toMatchObject({
      ok: true,
      entries: 20,
    });
  });

  describe('tampering with a stored entry is detected', () => {
    const table = () => stack.config.tableName;
    const pages = async () =>
      (
        await stack.state.doc.send(
          new QueryCommand({
            TableName: table(),
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': 'T#tenant2#CHAIN' },
            ConsistentRead: true,
          }),
        )
      ).Items!;
    type Stored = { seq: number; hash: string; record: Record<string, unknown> };
    /** Rewrites the page holding `seq` with `edit` applied to its entries; returns a restore function. */
    const tamper = async (seq: number, edit: (entries: Stored[]) => Stored[]) => {
      const page = (await pages()).find((p) => Number(p.from_seq) <= seq && seq <= Number(p.to_seq))!;
      const stored = decodeEntries(page.entries) as Stored[];
      await stack.state.doc.send(
        new PutCommand({
          TableName: table(),
          Item: { ...page, entries: encodeEntries(edit(stored) as never) },
        }),
      );
      return () => stack.state.doc.send(new PutCommand({ TableName: table(), Item: page }));
    };
    const expectBroken = async () => {
      const report = await verifyTenantChain(chainOf(stack.state), 'tenant2', verifyOptions());
      expect(report.ok).toBe(false);
      return report;
    };
    const expectIntact = async () =>
      expect((await verifyTenantChain(chainOf(stack.state), 'tenant2', verifyOptions())).ok).toBe(true);

    it('a changed field', async () => {
      const restore = await tamper(3, (list) =>
        list.map((e) => (e.seq === 3 ? { ...e, record: { ...e.record, decision: 'deny' } } : e)),
      );
      expect((await expectBroken()).problems[0]).toContain('seq 3');
      await restore();
      await expectIntact();
    });

    it('a deleted entry', async () => {
      const restore = await tamper(5, (list) => list.filter((e) => e.seq !== 5));
      expect((await expectBroken()).problems[0]).toContain('expected seq 5');
      await restore();
      await expectIntact();
    });

    it('swapped order', async () => {
      const restore = await tamper(6, (list) => {
        const i = list.findIndex((e) => e.seq === 6);
        const copy = [...list];
        [copy[i], copy[i + 1]] = [
          { ...list[i + 1]!, seq: 6 },
          { ...list[i]!, seq: 7 },
        ];
        return copy;
      });
      await expectBroken();
      await restore();
      await expectIntact();
    });
  });
});

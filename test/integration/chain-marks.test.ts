/**
 * Sealing in few requests (issue 26): a sealed fact's mark is an item of its own, written blind with
 * others in BatchWriteItem requests, instead of one in-place update per event. On DynamoDB Local:
 * what a sealing batch costs in requests, a crash between mark writes, throttled (unprocessed)
 * marks (injected: DynamoDB Local never throttles), and facts marked in the seal item of before
 * (read as sealed: never sealed twice, their seq shown).
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DeleteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { fixtureFact } from '../../bench/chain-fixture.js';
import type { FactRecord } from '../../functions/core/evidence.js';
import { sequence } from '../../functions/handlers/sequencer.js';
import { ITEM_TYPE } from '../../functions/shared/constants.js';
import { ChainStore, verifyTenantChain } from '../../functions/store/chain.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { ensureTable } from '../../functions/store/table.js';
import { DynamoToolCallStore, factKey, SEAL_SK } from '../../functions/store/toolcalls.js';
import { faultyDocumentClient } from '../support/faults.js';
import { dynamoEndpoint, testConfig } from '../support/stack.js';

let doc: ReturnType<typeof createDocumentClient>;
let table: string;
beforeAll(async () => {
  table = testConfig().tableName;
  const client = new DynamoDBClient({ endpoint: dynamoEndpoint() });
  await ensureTable(client, table);
  client.destroy();
  doc = createDocumentClient({ endpoint: dynamoEndpoint() });
});
afterAll(() => doc.destroy());

let sequenceNumber = 0;

/**
 * `calls` allowed calls of a fresh tenant, as the request path stores them: each an event item
 * carrying its decided fact and an executed fact beside it (two facts in one event partition).
 * Returns the stream's INSERTs of those facts, in order.
 */
async function allowedCalls(
  tenant: string,
  calls: number,
): Promise<{ event: DynamoDBStreamEvent; facts: FactRecord[] }> {
  const facts: FactRecord[] = [];
  for (let n = 1; n <= calls; n++) {
    const decided = { ...fixtureFact(tenant, n), event_id: randomUUID(), fact_id: randomUUID() };
    const executed = {
      ...decided,
      kind: 'toolcall.executed',
      fact_id: randomUUID(),
      at: decided.at,
    } as FactRecord;
    facts.push(decided, executed);
  }
  const items = facts.map((record) => ({
    ...factKey(record),
    ...(record.kind === 'toolcall.decided' ? { type: ITEM_TYPE.event } : {}),
    created_at: record.at,
    record: JSON.stringify(record),
  }));
  for (let i = 0; i < items.length; i += 25)
    await doc.send(
      new BatchWriteCommand({
        RequestItems: { [table]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) },
      }),
    );
  return {
    facts,
    event: {
      Records: items.map((item) => ({
        eventName: 'INSERT',
        dynamodb: { SequenceNumber: String(++sequenceNumber), NewImage: marshall(item) as never },
      })),
    },
  };
}

const verify = (tenant: string) =>
  verifyTenantChain(new ChainStore(doc, table), tenant, { now: new Date(), unsealedGraceMs: 0 });

async function chainFactIds(tenant: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of new ChainStore(doc, table).entries(tenant)) ids.push(e.record.fact_id);
  return ids;
}

describe('sealing a batch costs a few requests, not one per event', () => {
  it('40 facts of 20 events: one read of the marks, one page, two mark writes', async () => {
    const tenant = `cost-${randomUUID().slice(0, 8)}`;
    const { event, facts } = await allowedCalls(tenant, 20);
    const { doc: counted, plan } = faultyDocumentClient();
    const chain = new ChainStore(counted, table);
    expect(await sequence(() => chain)(event)).toEqual({ batchItemFailures: [] });
    // A cold sealer also finds its tail (one Query) and registers the tenant with its first page.
    expect(plan.counts).toEqual({
      QueryCommand: 1,
      BatchGetCommand: 1,
      PutCommand: 2,
      BatchWriteCommand: 2,
    });
    // Warm, the next batch of the same size: 4 requests for 40 facts.
    const next = await allowedCalls(tenant, 20);
    plan.counts = {};
    expect(await sequence(() => chain)(next.event)).toEqual({ batchItemFailures: [] });
    expect(plan.counts).toEqual({ BatchGetCommand: 1, PutCommand: 1, BatchWriteCommand: 2 });
    counted.destroy();

    const report = await verify(tenant);
    expect(report).toMatchObject({ ok: true, entries: 80, problems: [], unsealedOverdue: 0 });
    expect(await chainFactIds(tenant)).toEqual([...facts, ...next.facts].map((f) => f.fact_id));
    // Each mark lives beside its fact, in the fact's own tenant's event partition.
    const first = facts[0]!;
    const stored = await new DynamoToolCallStore(doc, table).getEvent(tenant, first.event_id, {
      withApproval: false,
    });
    expect(stored?.facts.map((f) => [f.kind, f.seq])).toEqual([
      ['toolcall.decided', 1],
      ['toolcall.executed', 2],
    ]);
    const partition = await doc.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': factKey(first).pk },
        ConsistentRead: true,
      }),
    );
    expect(partition.Items?.filter((i) => i.type === ITEM_TYPE.seal).map((i) => [i.sk, i.seq])).toEqual([
      ['SEALED#EVENT', 1],
      [`SEALED#${factKey(facts[1]!).sk}`, 2],
    ]);
  });
});

describe('no gap, fork or duplicate when marking fails', () => {
  it('a sealer stopped between two mark writes: the redelivery, racing a second sealer, seals nothing twice', async () => {
    const tenant = `crash-${randomUUID().slice(0, 8)}`;
    const { event, facts } = await allowedCalls(tenant, 30);
    const { doc: faulty, plan } = faultyDocumentClient();
    // 60 facts: three mark writes; the second fails after the first was written.
    plan.fail = { command: 'BatchWriteCommand', nth: 2 };
    const crashed = await sequence(() => new ChainStore(faulty, table))(event);
    faulty.destroy();
    expect(crashed.batchItemFailures).toEqual([
      { itemIdentifier: event.Records[0]!.dynamodb!.SequenceNumber },
    ]);
    expect(await chainFactIds(tenant)).toHaveLength(60);

    const [a, b] = await Promise.all([
      sequence(() => new ChainStore(doc, table))(event),
      sequence(() => new ChainStore(doc, table))({ Records: event.Records.slice(20) }),
    ]);
    expect([a, b]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(await chainFactIds(tenant)).toEqual(facts.map((f) => f.fact_id));
    expect(await verify(tenant)).toMatchObject({ ok: true, entries: 60, unsealedOverdue: 0 });
  });

  it('throttled marks are written again; marks that stay unprocessed fail the batch, and its redelivery completes them', async () => {
    const tenant = `throttle-${randomUUID().slice(0, 8)}`;
    const { event, facts } = await allowedCalls(tenant, 10);
    // DynamoDB answers part of a BatchWriteItem as UnprocessedItems when throttled: here, every
    // request gets only its first half written, or (later) nothing.
    let writeNone = false;
    const throttling = createDocumentClient({ endpoint: dynamoEndpoint() });
    const send = throttling.send.bind(throttling) as (command: unknown) => Promise<unknown>;
    (throttling as { send: unknown }).send = async (command: unknown) => {
      if (!(command instanceof BatchWriteCommand)) return send(command);
      const [name, requests] = Object.entries(command.input.RequestItems ?? {})[0]!;
      if (writeNone) return { UnprocessedItems: { [name]: requests } };
      const half = Math.ceil(requests.length / 2);
      await send(new BatchWriteCommand({ RequestItems: { [name]: requests.slice(0, half) } }));
      return { UnprocessedItems: requests.length > half ? { [name]: requests.slice(half) } : {} };
    };
    const chain = new ChainStore(throttling, table);
    expect(await sequence(() => chain)(event)).toEqual({ batchItemFailures: [] });
    expect(await verify(tenant)).toMatchObject({ ok: true, entries: 20, unsealedOverdue: 0 });

    const more = await allowedCalls(tenant, 5);
    writeNone = true;
    const failed = await sequence(() => chain)(more.event);
    expect(failed.batchItemFailures).toHaveLength(1);
    expect(await verify(tenant)).toMatchObject({ ok: false, entries: 30, unsealedOverdue: 10 });
    writeNone = false;
    expect(await sequence(() => chain)(more.event)).toEqual({ batchItemFailures: [] });
    throttling.destroy();
    expect(await chainFactIds(tenant)).toEqual([...facts, ...more.facts].map((f) => f.fact_id));
    expect(await verify(tenant)).toMatchObject({ ok: true, entries: 30, unsealedOverdue: 0 });
  }, 30_000);
});

describe('facts marked in the one seal item of before issue 26', () => {
  it('are sealed already: a redelivery seals nothing twice, their seq is shown, and nothing reads as unsealed', async () => {
    const tenant = `legacy-${randomUUID().slice(0, 8)}`;
    const { event, facts } = await allowedCalls(tenant, 3);
    expect(await sequence(() => new ChainStore(doc, table))(event)).toEqual({ batchItemFailures: [] });
    // Rewrite the marks as the sequencer wrote them before: one item per event, an attribute per fact.
    const byEvent = new Map<string, Record<string, unknown>>();
    for (const [i, f] of facts.entries()) {
      const key = factKey(f);
      const partition = await doc.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'pk = :pk AND sk = :sk',
          ExpressionAttributeValues: { ':pk': key.pk, ':sk': `SEALED#${key.sk}` },
          ConsistentRead: true,
        }),
      );
      const mark = partition.Items![0]!;
      expect(mark.seq).toBe(i + 1);
      await doc.send(new DeleteCommand({ TableName: table, Key: { pk: mark.pk, sk: mark.sk } }));
      const legacy = byEvent.get(key.pk) ?? { pk: key.pk, sk: SEAL_SK, type: ITEM_TYPE.seal };
      legacy[key.sk] = { seq: mark.seq, hash: mark.hash, prev_hash: mark.prev_hash };
      byEvent.set(key.pk, legacy);
    }
    for (const Item of byEvent.values()) await doc.send(new PutCommand({ TableName: table, Item }));

    expect(await verify(tenant)).toMatchObject({ ok: true, entries: 6, unsealedOverdue: 0 });
    const stored = await new DynamoToolCallStore(doc, table).getEvent(tenant, facts[2]!.event_id, {
      withApproval: false,
    });
    expect(stored?.facts.map((f) => f.seq)).toEqual([3, 4]);
    // A cold sealer (its tail read back) and a redelivery of the whole batch.
    expect(await sequence(() => new ChainStore(doc, table))(event)).toEqual({ batchItemFailures: [] });
    const more = await allowedCalls(tenant, 1);
    expect(
      await sequence(() => new ChainStore(doc, table))({
        Records: [...event.Records, ...more.event.Records],
      }),
    ).toEqual({
      batchItemFailures: [],
    });
    expect(await chainFactIds(tenant)).toEqual([...facts, ...more.facts].map((f) => f.fact_id));
    expect(await verify(tenant)).toMatchObject({ ok: true, entries: 8, unsealedOverdue: 0 });
  });
});

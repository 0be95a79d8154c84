/**
 * The sequencer seals a fact id once (issue 23): a copy of a fact's record in another item, or two
 * items of one batch with the same fact id, are not sealed a second time; they hold the tenant's
 * chain like any fact that cannot be sealed (the isolation the sequencer has: the RecordsParked
 * metric, `oc verify` names it), and the chain keeps the fact once.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { sequence } from '../../functions/handlers/sequencer.js';
import { ChainStore, verifyTenantChain } from '../../functions/store/chain.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { ensureTable } from '../../functions/store/table.js';
import { factKey } from '../../functions/store/toolcalls.js';
import { fixtureFact } from '../../bench/chain-fixture.js';
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
/** Stream INSERTs of items carrying these records, under these keys. */
const stream = (items: { key: { pk: string; sk: string }; record: object }[]): DynamoDBStreamEvent => ({
  Records: items.map(({ key, record }) => ({
    eventName: 'INSERT',
    dynamodb: {
      SequenceNumber: String(++sequenceNumber),
      NewImage: marshall({ ...key, record: JSON.stringify(record) }) as never,
    },
  })),
});

/** A decided fact of its own event. */
const fact = (tenant: string, n: number) => ({
  ...fixtureFact(tenant, n),
  event_id: randomUUID(),
  fact_id: randomUUID(),
});

const chainOf = async (tenant: string) => {
  const report = await verifyTenantChain(new ChainStore(doc, table), tenant, {
    now: new Date(),
    unsealedGraceMs: 3_600_000,
  });
  return report;
};

describe('a fact id is sealed once', () => {
  it('a copy of a sealed fact in another item is not sealed again: the chain holds at it', async () => {
    const tenant = `copy-${randomUUID().slice(0, 8)}`;
    const seal = sequence(() => new ChainStore(doc, table));
    const original = fact(tenant, 1);
    expect((await seal(stream([{ key: factKey(original), record: original }]))).batchItemFailures).toEqual(
      [],
    );
    // The same record carried by another event's item (a replay, a bug, a hand-made item).
    const elsewhere = { pk: `T#${tenant}#EVT#${randomUUID()}`, sk: 'EVENT' };
    const later = fact(tenant, 2);
    expect(
      (
        await seal(
          stream([
            { key: elsewhere, record: original },
            { key: factKey(later), record: later },
          ]),
        )
      ).batchItemFailures,
    ).toEqual([]);
    const report = await chainOf(tenant);
    expect(report.entries).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.problems.join('\n')).toMatch(
      new RegExp(`chain held at seq 2 .*fact ${original.fact_id}.*a copy is never sealed`),
    );
  });

  it('two items of one batch with the same fact id: the first is sealed, the second holds the chain', async () => {
    const tenant = `twice-${randomUUID().slice(0, 8)}`;
    const seal = sequence(() => new ChainStore(doc, table));
    const other = `beside-${randomUUID().slice(0, 8)}`;
    const a = fact(tenant, 1);
    const b = { ...fact(tenant, 2), fact_id: a.fact_id };
    const c = fact(other, 1);
    await seal(
      stream([
        { key: factKey(a), record: a },
        { key: factKey(b), record: b },
        { key: factKey(c), record: c },
      ]),
    );
    const report = await chainOf(tenant);
    expect(report.entries).toBe(1);
    expect(report.problems.join('\n')).toMatch(/chain held at seq 2 .*a fact id is sealed once/);
    // Another tenant's fact in the same batch is sealed: the held chain holds only its own tenant.
    expect(await chainOf(other)).toMatchObject({ ok: true, entries: 1 });
  });

  it('a redelivery of the same item is still skipped without a word', async () => {
    const tenant = `again-${randomUUID().slice(0, 8)}`;
    const seal = sequence(() => new ChainStore(doc, table));
    const a = fact(tenant, 1);
    await seal(stream([{ key: factKey(a), record: a }]));
    await seal(
      stream([
        { key: factKey(a), record: a },
        { key: factKey(a), record: a },
      ]),
    );
    const report = await chainOf(tenant);
    expect(report).toMatchObject({ ok: true, entries: 1 });
  });
});

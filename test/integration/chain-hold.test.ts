/**
 * A fact that cannot be sealed (injected past validation, as a bug or an old writer could leave
 * one) holds only its own tenant's chain: the stream moves on, every other tenant keeps sealing,
 * the held tenant's later facts wait in order, `oc verify` names the fact, and once the fact can
 * be sealed the release job resumes the chain with every fact sealed exactly once.
 */
import { randomUUID } from 'node:crypto';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { sequence } from '../../functions/handlers/sequencer.js';
import { holdRetryDelayMs, verifyTenantChain } from '../../functions/store/chain.js';
import { keys } from '../../functions/store/keys.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { chainOf } from '../../functions/handlers/chain-state.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack.stop();
});

const verify = (tenant: string) =>
  verifyTenantChain(chainOf(stack.state), tenant, { now: new Date(), unsealedGraceMs: 3_600_000 });

/** Writes a fact item straight to the table, past every check the request path makes. */
async function inject(
  tenant: string,
  recordText: string,
  eventId = randomUUID(),
): Promise<{ pk: string; sk: string }> {
  const key = { pk: keys.event(tenant, eventId).pk, sk: 'FACT#003#approval.decided' };
  await stack.state.doc.send(
    new PutCommand({
      TableName: stack.config.tableName,
      Item: { ...key, type: 'fact', created_at: new Date().toISOString(), record: recordText },
    }),
  );
  return key;
}

const poisonRecord = (tenant: string, eventId: string, factId: string, comment: string) =>
  `{"v":1,"tenant_id":"${tenant}","kind":"approval.decided","event_id":"${eventId}","fact_id":"${factId}",` +
  `"at":"${new Date().toISOString()}","approval_id":"${randomUUID()}","decision":"approved","comment":"${comment}"}`;

async function sealedKinds(eventId: string, key: string = KEYS.tenant1): Promise<string[]> {
  const r = await stack.get(`/v1/toolcalls/${eventId}`, key);
  return r.json.evidence.map((f: { status: string }) => f.status);
}

async function parkedCount(tenant: string): Promise<number> {
  const out = await stack.state.doc.send(
    new QueryCommand({
      TableName: stack.config.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': keys.chainPartition(tenant), ':p': keys.chainParkedPrefix },
      ConsistentRead: true,
    }),
  );
  return out.Items?.length ?? 0;
}

describe('a fact that cannot be sealed', () => {
  const eventId = randomUUID();
  const factId = randomUUID();
  let poison: { pk: string; sk: string };
  let poisonText: string;
  let laterCall: string;
  let entriesBefore: number;

  it('holds its tenant, parks the later facts, and lets other tenants seal', async () => {
    const first = await stack.post('/v1/toolcalls', toolCall());
    await stack.poller?.drained();
    entriesBefore = (await verify('tenant1')).entries;
    expect(entriesBefore).toBeGreaterThan(0);

    // A lone surrogate, escaped in the stored JSON text: it parses, and canonical JSON refuses it.
    poisonText = poisonRecord('tenant1', eventId, factId, '\\ud800');
    poison = await inject('tenant1', poisonText, eventId);
    const later = await stack.post('/v1/toolcalls', toolCall());
    laterCall = later.json.event_id;
    const other = await stack.post('/v1/toolcalls', toolCall(), KEYS.tenant2);
    await stack.poller?.drained();

    expect(await sealedKinds(other.json.event_id, KEYS.tenant2)).toEqual(expect.arrayContaining(['sealed']));
    expect(await sealedKinds(other.json.event_id, KEYS.tenant2)).not.toContain('pending');
    expect(await sealedKinds(laterCall)).toEqual(['pending', 'pending']);
    expect(await sealedKinds(first.json.event_id)).toEqual(['sealed', 'sealed']);
    expect(await parkedCount('tenant1')).toBe(3); // the held fact and the two behind it
    expect(await chainOf(stack.state).heldTenants()).toEqual(['tenant1']);
    expect((await verify('tenant2')).ok).toBe(true);
  });

  it('is named by verification', async () => {
    const report = await verify('tenant1');
    expect(report.ok).toBe(false);
    expect(report.entries).toBe(entriesBefore);
    expect(report.hold).toMatchObject({
      seq: entriesBefore + 1,
      fact: { ...poison, fact_id: factId, event_id: eventId },
    });
    expect(report.problems[0]).toBe(
      `chain held at seq ${entriesBefore + 1} since ${report.hold!.since}: fact ${factId} (approval.decided of event ${eventId})` +
        ` cannot be sealed: record cannot be canonicalized (Lone surrogate is not allowed); later facts wait behind it` +
        ` (retry 1 at ${report.hold!.nextRetryAt})`,
    );
  });

  it('parks a redelivered fact once and never blocks the shard', async () => {
    const image = {
      ...poison,
      type: 'fact',
      record: poisonText,
    };
    const record = {
      eventName: 'INSERT' as const,
      dynamodb: { SequenceNumber: '1', NewImage: marshall(image) as never },
    };
    const out = await sequence(() => chainOf(stack.state))({
      Records: [record, record],
    } as DynamoDBStreamEvent);
    expect(out.batchItemFailures).toEqual([]);
    expect(await parkedCount('tenant1')).toBe(3);
  });

  it('is retried with backoff while it still cannot be sealed', async () => {
    const hold = (await chainOf(stack.state).hold('tenant1'))!;
    const early = await chainOf(stack.state).release(
      'tenant1',
      new Date(Date.parse(hold.nextRetryAt) - 1000),
    );
    expect(early.status).toBe('waiting');
    const at = new Date(Date.parse(hold.nextRetryAt) + 1000);
    const retried = await chainOf(stack.state).release('tenant1', at);
    expect(retried).toMatchObject({
      status: 'held',
      sealed: 0,
      hold: {
        holdId: hold.holdId,
        attempts: 1,
        nextRetryAt: new Date(at.getTime() + holdRetryDelayMs(1)).toISOString(),
      },
    });
    expect(holdRetryDelayMs(1)).toBeGreaterThan(holdRetryDelayMs(0));
    expect(holdRetryDelayMs(100)).toBe(3_600_000);
    expect(await sealedKinds(laterCall)).toEqual(['pending', 'pending']);
  });

  it('resumes in order, each fact sealed once, when the fact can be sealed again', async () => {
    // What a fixed sealer or a repaired item gives: the same fact, now sealable.
    await stack.state.doc.send(
      new PutCommand({
        TableName: stack.config.tableName,
        Item: {
          ...poison,
          type: 'fact',
          created_at: new Date().toISOString(),
          record: poisonRecord('tenant1', eventId, factId, 'repaired'),
        },
      }),
    );
    await stack.poller?.drained(); // the overwrite is a MODIFY: the sequencer ignores it
    const hold = (await chainOf(stack.state).hold('tenant1'))!;
    const released = await chainOf(stack.state).release(
      'tenant1',
      new Date(Date.parse(hold.nextRetryAt) + 1000),
    );
    expect(released).toEqual({ status: 'released', sealed: 3 });
    const report = await verify('tenant1');
    expect(report.problems).toEqual([]);
    expect(report.entries).toBe(entriesBefore + 3);
    expect(await sealedKinds(laterCall)).toEqual(['sealed', 'sealed']);
    expect(await parkedCount('tenant1')).toBe(0);
    expect(await chainOf(stack.state).heldTenants()).toEqual([]);
    // And new facts seal directly again.
    const next = await stack.post('/v1/toolcalls', toolCall());
    await stack.poller?.drained();
    expect(await sealedKinds(next.json.event_id)).toEqual(['sealed', 'sealed']);
  });

  it('holds a tenant whose record is not even JSON, through the release job of the host', async () => {
    await inject('tenant3', '{not json');
    await stack.poller?.drained();
    const hold = await chainOf(stack.state).hold('tenant3');
    expect(hold).toMatchObject({ seq: 1, reason: 'record is not JSON' });
    expect(await stack.runSchedule('release-parked')).toEqual({
      held: ['tenant3'],
      released: [],
      retried: 0,
      parked: 0,
    });
    // Other tenants were never held.
    expect((await verify('tenant1')).ok).toBe(true);
  });
});

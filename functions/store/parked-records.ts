/**
 * Parked records: a stream record or queue message that a consumer could not process waits here,
 * in an item of its own tenant, instead of failing a batch that every tenant shares (a stream shard
 * carries every tenant; a record retried for ever holds all of them). The consumer reports the batch
 * done once the record is parked; `release-parked` retries due records with backoff; the record
 * leaves when it is processed. What parking cannot lose: the item is written before the batch is
 * reported done, and a consumer that cannot write it fails the record as before (storage down is
 * a reason to retry, not to drop).
 *
 * Listed by the index (`PARKED` / `<next retry>#<tenant>#<consumer>#<id>`), due first, so a release
 * run reads only what is due and nothing scans the table.
 */
import { randomUUID } from 'node:crypto';
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { ITEM_TYPE, RECORDS_PARKED_METRIC, TABLE, type ParkingConsumer } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { TENANT_ID_PATTERN } from '../shared/input-rules.js';
import { logger, metrics } from '../shared/powertools.js';
import { isConditionalFailure, queryAll, readOrFail } from './dynamo.js';
import { keys } from './keys.js';

/** The partition of a record whose tenant cannot be read (no tenant id starts with `_`). */
export const NO_TENANT = '_';

export interface ParkedRecord {
  tenantId: string;
  consumer: ParkingConsumer;
  /** Stable per record (a redelivered record parks the same item). */
  recordId: string;
  /** What the consumer needs to try again (its own format). */
  payload: string;
  /** Why it could not be processed, the last time it was tried. */
  reason: string;
  since: string;
  /** Releases tried so far. */
  attempts: number;
  nextRetryAt: string;
  /** Changes on every write: a release replaces only what it read. */
  version: string;
}

/** 15 s, doubling, at most an hour (the chain holds' schedule). */
export function parkedRetryDelayMs(attempts: number): number {
  return Math.min(15_000 * 2 ** Math.min(attempts, 20), 3_600_000);
}

const MAX_REASON = 500;
const shortReason = (reason: string) => reason.replace(/\s+/g, ' ').slice(0, MAX_REASON);

/** The tenant a record names, if it is a tenant id at all; else NO_TENANT. */
export function parkingTenant(candidate: unknown): string {
  return typeof candidate === 'string' && TENANT_ID_PATTERN.test(candidate) ? candidate : NO_TENANT;
}

function toRecord(item: Record<string, unknown>): ParkedRecord {
  return {
    tenantId: String(item.tenant_id),
    consumer: String(item.consumer) as ParkingConsumer,
    recordId: String(item.record_id),
    payload: String(item.payload),
    reason: String(item.reason),
    since: String(item.since),
    attempts: Number(item.attempts),
    nextRetryAt: String(item.next_retry_at),
    version: String(item.version),
  };
}

export class ParkedRecordStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /**
   * Parks a record (idempotent: a record parked already keeps its schedule and gets the new reason).
   * Logs one line naming it and counts it in the one `RecordsParked` metric.
   */
  async park(
    input: { tenantId: string; consumer: ParkingConsumer; recordId: string; payload: string; reason: string },
    now: Date,
  ): Promise<ParkedRecord> {
    const reason = shortReason(input.reason);
    const record: ParkedRecord = {
      ...input,
      reason,
      since: now.toISOString(),
      attempts: 0,
      nextRetryAt: new Date(now.getTime() + parkedRetryDelayMs(0)).toISOString(),
      version: randomUUID(),
    };
    // Parked already (a redelivered record, a released message failing again): it keeps its
    // schedule and takes the new reason. Removed between the two writes: parked anew.
    for (let tries = 0; ; tries += 1) {
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: this.item(record),
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
        break;
      } catch (error) {
        if (!isConditionalFailure(error)) throw new StorageError('parking a record failed', error);
      }
      try {
        const out = await this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: keys.parkedRecord(input.tenantId, input.consumer, input.recordId),
            UpdateExpression: 'SET reason = :reason',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':reason': reason },
            ReturnValues: 'ALL_NEW',
          }),
        );
        Object.assign(record, toRecord(out.Attributes ?? {}));
        break;
      } catch (error) {
        if (!isConditionalFailure(error) || tries >= 2)
          throw new StorageError('parking a record failed', error);
      }
    }
    logger.error('record parked: it waits for release-parked, the other records go on', {
      consumer: input.consumer,
      tenantId: input.tenantId,
      recordId: input.recordId,
      reason,
      nextRetryAt: record.nextRetryAt,
    });
    metrics.addMetric(RECORDS_PARKED_METRIC, MetricUnit.Count, 1);
    return record;
  }

  async get(
    tenantId: string,
    consumer: ParkingConsumer,
    recordId: string,
  ): Promise<ParkedRecord | undefined> {
    const out = await readOrFail(
      () =>
        this.doc.send(
          new GetCommand({
            TableName: this.table,
            Key: keys.parkedRecord(tenantId, consumer, recordId),
            ConsistentRead: true,
          }),
        ),
      'parked record read',
    );
    return out.Item ? toRecord(out.Item) : undefined;
  }

  /** Every parked record (due or not), due first; `dueBy`: only those due by then. */
  async *list(dueBy?: Date): AsyncGenerator<ParkedRecord> {
    const bound = dueBy ? `${dueBy.toISOString()}$` : undefined; // '$' sorts after '#'
    for await (const entry of queryAll(
      this.doc,
      {
        TableName: this.table,
        IndexName: TABLE.gsi1.name,
        KeyConditionExpression: bound ? 'gsi1pk = :pk AND gsi1sk < :bound' : 'gsi1pk = :pk',
        ExpressionAttributeValues: {
          ':pk': keys.parkedListingPartition,
          ...(bound ? { ':bound': bound } : {}),
        },
      },
      'parked records listing',
    )) {
      // The index is eventually consistent and projects keys only: read the item itself.
      const pk = String(entry.pk);
      const sk = String(entry.sk);
      const out = await readOrFail(
        () => this.doc.send(new GetCommand({ TableName: this.table, Key: { pk, sk }, ConsistentRead: true })),
        'parked record read',
      );
      if (out.Item) yield toRecord(out.Item);
    }
  }

  /** How many records are parked. */
  async count(): Promise<number> {
    let n = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await readOrFail(
        () =>
          this.doc.send(
            new QueryCommand({
              TableName: this.table,
              IndexName: TABLE.gsi1.name,
              KeyConditionExpression: 'gsi1pk = :pk',
              ExpressionAttributeValues: { ':pk': keys.parkedListingPartition },
              Select: 'COUNT',
              ExclusiveStartKey: startKey,
            }),
          ),
        'parked records count',
      );
      n += out.Count ?? 0;
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return n;
  }

  /**
   * A release tried it (or is about to hand it back to its consumer): the next try waits longer.
   * Conditional on the version read, so two releasers never both take it.
   */
  async retryLater(
    record: ParkedRecord,
    reason: string | undefined,
    now: Date,
  ): Promise<ParkedRecord | undefined> {
    const next: ParkedRecord = {
      ...record,
      ...(reason !== undefined ? { reason: shortReason(reason) } : {}),
      attempts: record.attempts + 1,
      nextRetryAt: new Date(now.getTime() + parkedRetryDelayMs(record.attempts + 1)).toISOString(),
      version: randomUUID(),
    };
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: this.item(next),
          ConditionExpression: 'version = :version',
          ExpressionAttributeValues: { ':version': record.version },
        }),
      );
      return next;
    } catch (error) {
      if (isConditionalFailure(error)) return undefined; // another releaser took it, or it was processed
      throw new StorageError('parked record reschedule failed', error);
    }
  }

  /** The record was processed: it leaves. */
  async remove(tenantId: string, consumer: ParkingConsumer, recordId: string): Promise<void> {
    await readOrFail(
      () =>
        this.doc.send(
          new DeleteCommand({ TableName: this.table, Key: keys.parkedRecord(tenantId, consumer, recordId) }),
        ),
      'parked record delete',
    );
  }

  private item(record: ParkedRecord): Record<string, unknown> {
    return {
      ...keys.parkedRecord(record.tenantId, record.consumer, record.recordId),
      ...keys.parkedListing(record.nextRetryAt, record.tenantId, record.consumer, record.recordId),
      type: ITEM_TYPE.parkedRecord,
      tenant_id: record.tenantId,
      consumer: record.consumer,
      record_id: record.recordId,
      payload: record.payload,
      reason: record.reason,
      since: record.since,
      attempts: record.attempts,
      next_retry_at: record.nextRetryAt,
      version: record.version,
    };
  }
}

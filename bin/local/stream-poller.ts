/**
 * Local stand-in for Lambda's DynamoDB Streams event source mapping: reads the table's stream,
 * applies the same filter as the deployed mapping, invokes the same handler with the same batch
 * shape, honours partial-batch failures (retry from the reported record), and keeps its position
 * in the table so a restart neither skips records nor replays them unboundedly. While DynamoDB is
 * down it backs off (rate-limited log, shard iterators dropped) and, once it is back, looks the
 * table's stream up again: a re-created table has a new stream, read from its start (the sequencer
 * is idempotent, so nothing is sealed twice).
 */
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record,
} from '@aws-sdk/client-dynamodb-streams';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { ITEM_TYPE } from '../../functions/shared/constants.js';
import { lambdaImage } from '../../functions/shared/stream-image.js';
import { keys } from '../../functions/store/keys.js';
import { Backoff, FailureLog } from './backoff.js';

/** The subset of Lambda's filter patterns the deployed consumers use: values or `exists`, on string attributes. */
export interface StreamFilter {
  eventName: readonly string[];
  dynamodb: { NewImage: Readonly<Record<string, { S: readonly (string | { exists: boolean })[] }>> };
}

export interface PollerOptions {
  streams: DynamoDBStreamsClient;
  doc: DynamoDBDocumentClient;
  table: string;
  streamArn: string;
  /** Cursor namespace, so that several consumers of one stream keep separate positions. */
  consumer: string;
  filter: StreamFilter;
  batchSize: number;
  handler: (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void>;
  /** The pause when there is nothing to read. @default 100 */
  intervalMs?: number;
  /** The table's current stream (DescribeTable), looked up again after every error. */
  resolveStreamArn?: () => Promise<string>;
  /** Where the (rate-limited) failure lines go. @default console.error */
  log?: (line: string) => void;
}

/** The pauses after consecutive errors, and after batches the handler failed. */
const BACKOFF = { initialMs: 200, maxMs: 5000 };

export interface PollerHealth {
  ok: boolean;
  detail?: string;
}

type ShardOutcome = 'idle' | 'delivered' | 'failed';

export function matchesFilter(record: _Record, filter: StreamFilter): boolean {
  if (!filter.eventName.includes(record.eventName ?? '')) return false;
  const image = record.dynamodb?.NewImage ?? {};
  return Object.entries(filter.dynamodb.NewImage).every(([name, { S: allowed }]) => {
    const value = image[name]?.S;
    return allowed.some((a) => (typeof a === 'string' ? value === a : a.exists === (value !== undefined)));
  });
}

/**
 * The record as Lambda's event carries it: the SDK's stream client returns binary attributes as
 * bytes, Lambda's JSON as base64 text, which the handlers decode (`shared/stream-image.ts`).
 */
function asLambdaRecord(record: _Record): _Record {
  const d = record.dynamodb;
  if (!d) return record;
  const images = ['NewImage', 'OldImage', 'Keys'] as const;
  const converted = Object.fromEntries(
    images.filter((k) => d[k]).map((k) => [k, lambdaImage(d[k] as Record<string, unknown>)]),
  );
  return { ...record, dynamodb: { ...d, ...converted } } as _Record;
}

interface ShardState {
  iterator?: string;
  lastSequence?: string;
  closed: boolean;
  pending: _Record[];
}

export class StreamPoller {
  private readonly shards = new Map<string, ShardState>();
  private running = false;
  private loop?: Promise<void>;
  private idleWaiters: Array<() => void> = [];
  private busy = false;
  /** Passes begun so far, and the number of the last pass that found nothing (see drained). */
  private passesStarted = 0;
  private idlePassStartedAt = 0;
  private streamArn: string;
  /** After an error the stream is looked up again before the next read. */
  private stale = false;
  private readonly errorBackoff: Backoff;
  private readonly retryBackoff: Backoff;
  private readonly failures: FailureLog;
  private readonly log: (line: string) => void;
  private wake?: () => void;

  constructor(private readonly options: PollerOptions) {
    this.streamArn = options.streamArn;
    this.errorBackoff = new Backoff(BACKOFF);
    this.retryBackoff = new Backoff(BACKOFF);
    this.log = options.log ?? ((line) => console.error(line));
    this.failures = new FailureLog({ what: '[oc] stream poller', log: this.log });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** Not ok while reading the stream (or saving the position) fails, with the last error. */
  health(): PollerHealth {
    if (!this.running) return { ok: false, detail: 'stopped' };
    const status = this.failures.status();
    if (status.ok) return { ok: true };
    return {
      ok: false,
      detail: `${status.errors} ${status.errors === 1 ? 'error' : 'errors'} since ${new Date(status.sinceMs).toISOString()}: ${status.message}`,
    };
  }

  /**
   * Resolves once a full pass that began after this call found nothing left to deliver (for tests
   * and benchmarks): a pass already under way may have read the stream before the caller's last
   * write, and finding nothing then says nothing about that write.
   */
  async drained(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const after = this.passesStarted;
    for (;;) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      if (!this.running) return;
      if (!this.busy && this.idlePassStartedAt > after) return;
      if (Date.now() > deadline) throw new Error('stream poller did not drain in time');
    }
  }

  /** A pause that stop() cuts short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const interval = this.options.intervalMs ?? 100;
    let lastDescribe = -Infinity;
    while (this.running) {
      let pause = 0;
      const pass = ++this.passesStarted;
      try {
        if (this.stale) await this.resolveStream();
        if (Date.now() - lastDescribe > 5000 || this.shards.size === 0) {
          await this.discoverShards();
          lastDescribe = Date.now();
        }
        const outcomes: ShardOutcome[] = [];
        for (const [shardId, shard] of this.shards) outcomes.push(await this.pollShard(shardId, shard));
        this.errorBackoff.succeed();
        this.failures.success();
        this.busy = outcomes.some((o) => o !== 'idle');
        if (outcomes.includes('failed')) {
          // The handler reported a record it could not process: retry it, ever more slowly.
          pause = this.retryBackoff.fail();
        } else {
          this.retryBackoff.succeed();
          if (!this.busy) pause = interval;
        }
      } catch (error) {
        // Iterators may point into a stream that no longer exists: fetch them (and the stream) again.
        this.busy = true;
        this.stale = true;
        for (const shard of this.shards.values()) shard.iterator = undefined;
        this.failures.failure(error);
        pause = this.errorBackoff.fail();
      }
      if (!this.busy) {
        this.idlePassStartedAt = pass;
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        waiters.forEach((w) => w());
      }
      if (pause > 0 && this.running) await this.sleep(pause);
    }
    this.idleWaiters.forEach((w) => w());
  }

  private async resolveStream(): Promise<void> {
    if (this.options.resolveStreamArn) {
      const current = await this.options.resolveStreamArn();
      if (current !== this.streamArn) {
        this.log(
          '[oc] stream poller: the table has a new stream (it was re-created); reading it from its start',
        );
        this.streamArn = current;
        this.shards.clear();
      }
    }
    this.stale = false;
  }

  private async discoverShards(): Promise<void> {
    let exclusiveStart: string | undefined;
    do {
      const out = await this.options.streams.send(
        new DescribeStreamCommand({
          StreamArn: this.streamArn,
          ExclusiveStartShardId: exclusiveStart,
        }),
      );
      for (const shard of out.StreamDescription?.Shards ?? []) {
        if (!shard.ShardId || this.shards.has(shard.ShardId)) continue;
        const saved = await this.options.doc.send(
          new GetCommand({
            TableName: this.options.table,
            Key: keys.streamCursor(this.cursorName(), shard.ShardId),
            ConsistentRead: true,
          }),
        );
        this.shards.set(shard.ShardId, {
          lastSequence: saved.Item?.sequence_number as string | undefined,
          closed: false,
          pending: [],
        });
      }
      exclusiveStart = out.StreamDescription?.LastEvaluatedShardId;
    } while (exclusiveStart);
  }

  private cursorName(): string {
    return `${this.streamArn}#${this.options.consumer}`;
  }

  /** One read + delivery for a shard. */
  private async pollShard(shardId: string, shard: ShardState): Promise<ShardOutcome> {
    if (shard.closed && shard.pending.length === 0) return 'idle';
    if (shard.pending.length === 0) {
      if (!shard.iterator) shard.iterator = await this.iteratorFor(shardId, shard.lastSequence);
      let out;
      try {
        out = await this.options.streams.send(
          new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: 1000 }),
        );
      } catch (error) {
        if (error instanceof ExpiredIteratorException) {
          shard.iterator = undefined;
          return 'delivered';
        }
        throw error;
      }
      shard.iterator = out.NextShardIterator;
      if (!out.NextShardIterator) shard.closed = true;
      shard.pending = out.Records ?? [];
      if (shard.pending.length === 0) return 'idle';
    }
    // Deliver matching records in batches. Non-matching records are skipped without saving the
    // cursor: saving writes an item, whose own stream record would keep the poller busy forever.
    let delivered = false;
    while (shard.pending.length > 0) {
      const window = shard.pending.slice(0, this.options.batchSize * 4);
      const batch = window
        .filter((r) => matchesFilter(r, this.options.filter))
        .slice(0, this.options.batchSize);
      const lastOfBatch =
        batch.length > 0 ? window.indexOf(batch[batch.length - 1] as _Record) : window.length - 1;
      if (batch.length > 0) {
        const response = await this.options.handler({
          Records: batch.map(asLambdaRecord) as unknown as DynamoDBRecord[],
        });
        const failed = response?.batchItemFailures?.[0]?.itemIdentifier;
        if (failed) {
          // Retry from the failed record: drop only what precedes it.
          const at = shard.pending.findIndex((r) => r.dynamodb?.SequenceNumber === failed);
          if (at > 0) {
            await this.saveCursor(shardId, shard, shard.pending[at - 1] as _Record);
            shard.pending = shard.pending.slice(at);
          }
          return 'failed';
        }
      }
      const consumed = shard.pending.slice(0, lastOfBatch + 1);
      shard.pending = shard.pending.slice(lastOfBatch + 1);
      if (batch.length > 0) {
        delivered = true;
        await this.saveCursor(shardId, shard, consumed[consumed.length - 1] as _Record);
      }
    }
    return delivered ? 'delivered' : 'idle';
  }

  private async iteratorFor(shardId: string, after?: string): Promise<string | undefined> {
    const out = await this.options.streams.send(
      new GetShardIteratorCommand({
        StreamArn: this.streamArn,
        ShardId: shardId,
        ...(after
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: after }
          : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    );
    return out.ShardIterator;
  }

  private async saveCursor(shardId: string, shard: ShardState, record: _Record): Promise<void> {
    const sequence = record.dynamodb?.SequenceNumber;
    if (!sequence) return;
    shard.lastSequence = sequence;
    await this.options.doc.send(
      new PutCommand({
        TableName: this.options.table,
        Item: {
          ...keys.streamCursor(this.cursorName(), shardId),
          type: ITEM_TYPE.streamCursor,
          sequence_number: sequence,
        },
      }),
    );
  }
}

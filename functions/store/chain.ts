/**
 * The per-tenant evidence chain in DynamoDB: sealing facts (the sequencer's writes) and reading
 * the chain back for verification.
 *
 * The chain is stored as pages: one item per sealing batch holding its entries, keyed by its first
 * seq. A page is written with one conditional put at (known tail + 1), so two sealers that start
 * from the same tail cannot both write: no fork, no gap, no transaction. Every sealed fact is then
 * marked (seq, hash, prev_hash) in its event's seal item, and that mark is how a redelivered fact
 * is recognized and skipped.
 *
 * Invariant: before a sealer writes a page, every fact of every earlier page is marked. A sealer
 * marks its own page before the next, and marks the pages of others it rolls forward over; so
 * only the last page can hold unmarked facts, and a sealer that starts cold marks that page first.
 * A fact is therefore either marked or in no page before the one being written: never sealed twice.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import {
  BatchGetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import {
  GENESIS,
  sealFacts,
  verifyChain,
  type ChainEntry,
  type ChainHead,
  type FactRecord,
  type SealedRecord,
} from '../core/evidence.js';
import { ITEM_TYPE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { isConditionalFailure, queryAll, readOrFail } from './dynamo.js';
import { keys } from './keys.js';
import { factKey, SEAL_SK, sealKey, type SealMark } from './toolcalls.js';

export interface FactRef {
  key: { pk: string; sk: string };
  record: FactRecord;
}

/** A page stays well under DynamoDB's 400 KB item limit; one entry always fits (its fact item did). */
const PAGE_MAX_BYTES = 300_000;
const MAX_SEAL_ATTEMPTS = 20;
/** Concurrent mark writes (one per event partition). */
const MARK_CONCURRENCY = 16;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fact item's identity in the maps below: its partition and sort key. */
const factId = (pk: unknown, sk: unknown): string => `${String(pk)}|${String(sk)}`;

export interface StoredPage {
  fromSeq: number;
  prevHash: string;
  entries: { seq: number; hash: string; record: SealedRecord }[];
}

/**
 * A page's entries are stored as raw-deflated JSON: records repeat their keys, tenant and policy
 * version, so a page is about half the write units (an allowed call's page fits in 1 KB).
 */
export function encodeEntries(entries: StoredPage['entries']): Uint8Array {
  return deflateRawSync(Buffer.from(JSON.stringify(entries), 'utf8'), { level: 9 });
}

export function decodeEntries(stored: unknown): StoredPage['entries'] {
  return JSON.parse(inflateRawSync(stored as Uint8Array).toString('utf8')) as StoredPage['entries'];
}

function toPage(item: Record<string, unknown>): StoredPage {
  return {
    fromSeq: Number(item.from_seq),
    prevHash: String(item.prev_hash),
    entries: decodeEntries(item.entries),
  };
}

/** The entries of a page with each one's prev_hash (the hash stored before it). */
function pageEntries(page: StoredPage): ChainEntry[] {
  let prev = page.prevHash;
  return page.entries.map((e) => {
    const entry = { seq: e.seq, prev_hash: prev, hash: e.hash, record: e.record };
    prev = e.hash;
    return entry;
  });
}

function splitPages(entries: readonly ChainEntry[]): ChainEntry[][] {
  const pages: ChainEntry[][] = [];
  let current: ChainEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(JSON.stringify(entry.record)) + 100;
    if (current.length > 0 && bytes + size > PAGE_MAX_BYTES) {
      pages.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) pages.push(current);
  return pages;
}

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

export class ChainStore {
  /** Per tenant: the chain's tail as this instance last wrote or read it, every fact up to it marked. */
  private readonly tails = new Map<string, ChainHead>();
  /** Per tenant: sealing in this process is one at a time (concurrent deliveries queue here). */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  private async lastPage(tenantId: string): Promise<StoredPage | undefined> {
    const out = await readOrFail(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: {
            ':pk': keys.chainPartition(tenantId),
            ':prefix': keys.chainPagePrefix,
          },
          ScanIndexForward: false,
          Limit: 1,
          ConsistentRead: true,
        }),
      ),
    );
    const item = out.Items?.[0];
    return item ? toPage(item) : undefined;
  }

  /** Pages that start after `seq`, in order. */
  private async pagesAfter(tenantId: string, seq: number): Promise<StoredPage[]> {
    const pages: StoredPage[] = [];
    const items = queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk > :after',
        ExpressionAttributeValues: {
          ':pk': keys.chainPartition(tenantId),
          ':after': keys.chainPage(tenantId, seq).sk,
        },
        ConsistentRead: true,
      },
      'chain read',
    );
    for await (const item of items) if (item.type === ITEM_TYPE.chainPage) pages.push(toPage(item));
    return pages;
  }

  /** The seq each of these facts is marked with (undefined: not sealed), by `pk|sk` of the fact. */
  private async marks(refs: readonly { pk: string; sk: string }[]): Promise<Map<string, number | undefined>> {
    const found = new Map<string, number | undefined>(refs.map((k) => [factId(k.pk, k.sk), undefined]));
    const partitions = [...new Set(refs.map((k) => k.pk))];
    for (let i = 0; i < partitions.length; i += 100) {
      let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> | undefined =
        {
          [this.table]: {
            Keys: partitions.slice(i, i + 100).map((pk) => ({ pk, sk: SEAL_SK })),
            ConsistentRead: true,
          },
        };
      while (request && Object.keys(request).length > 0) {
        const out = await readOrFail(() => this.doc.send(new BatchGetCommand({ RequestItems: request })));
        for (const item of out.Responses?.[this.table] ?? []) {
          for (const [name, value] of Object.entries(item)) {
            const mark = value as Partial<SealMark> | undefined;
            const id = factId(item.pk, name);
            if (found.has(id) && typeof mark?.seq === 'number') found.set(id, mark.seq);
          }
        }
        request = out.UnprocessedKeys as typeof request;
      }
    }
    return found;
  }

  /**
   * Marks the entries' facts as sealed: one write per event partition (an allowed call's two facts
   * share it), each fact an attribute of the partition's seal item. Idempotent: the same mark may
   * be written again. The fact items themselves are not rewritten.
   */
  private async mark(entries: readonly ChainEntry[]): Promise<void> {
    const byPartition = new Map<string, ChainEntry[]>();
    for (const entry of entries) {
      const { pk } = sealKey(entry.record);
      const group = byPartition.get(pk);
      if (group) group.push(entry);
      else byPartition.set(pk, [entry]);
    }
    await mapLimit([...byPartition.values()], MARK_CONCURRENCY, async (group) => {
      const names: Record<string, string> = { '#type': 'type' };
      const values: Record<string, unknown> = { ':type': ITEM_TYPE.seal };
      const sets = group.map((entry, i) => {
        names[`#f${i}`] = factKey(entry.record).sk;
        values[`:m${i}`] = {
          seq: entry.seq,
          hash: entry.hash,
          prev_hash: entry.prev_hash,
        } satisfies SealMark;
        return `#f${i} = :m${i}`;
      });
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: sealKey(group[0]!.record),
            UpdateExpression: `SET #type = :type, ${sets.join(', ')}`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        );
      } catch (error) {
        throw new StorageError('marking sealed facts failed', error);
      }
    });
  }

  /** Marks the facts of pages this sealer did not write, only those not marked yet. */
  private async markPages(pages: readonly StoredPage[]): Promise<void> {
    const entries = pages.flatMap(pageEntries);
    const current = await this.marks(entries.map((e) => factKey(e.record)));
    await this.mark(
      entries.filter((e) => {
        const key = factKey(e.record);
        return current.get(factId(key.pk, key.sk)) === undefined;
      }),
    );
  }

  /** A cold sealer: the last page may be unmarked (its writer may have stopped); mark it, start after it. */
  private async recoverTail(tenantId: string): Promise<ChainHead> {
    const last = await this.lastPage(tenantId);
    if (!last) return GENESIS;
    await this.markPages([last]);
    const entry = last.entries[last.entries.length - 1] as StoredPage['entries'][number];
    return { seq: entry.seq, hash: entry.hash };
  }

  private async putPage(tenantId: string, entries: readonly ChainEntry[]): Promise<boolean> {
    const first = entries[0] as ChainEntry;
    const last = entries[entries.length - 1] as ChainEntry;
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...keys.chainPage(tenantId, first.seq),
            type: ITEM_TYPE.chainPage,
            tenant_id: tenantId,
            from_seq: first.seq,
            to_seq: last.seq,
            prev_hash: first.prev_hash,
            entries: encodeEntries(entries.map((e) => ({ seq: e.seq, hash: e.hash, record: e.record }))),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalFailure(error)) return false;
      throw new StorageError('chain page write failed', error);
    }
  }

  /**
   * Seals the facts of one tenant, in the given order, skipping any already sealed. Concurrent
   * sealers of the same tenant race on the next page's key; the loser reads what it missed and retries.
   */
  async seal(tenantId: string, facts: readonly FactRef[]): Promise<number> {
    const previous = this.locks.get(tenantId) ?? Promise.resolve();
    const run = previous.then(
      () => this.sealExclusive(tenantId, facts),
      () => this.sealExclusive(tenantId, facts),
    );
    this.locks.set(tenantId, run);
    try {
      return await run;
    } finally {
      if (this.locks.get(tenantId) === run) this.locks.delete(tenantId);
    }
  }

  private async sealExclusive(tenantId: string, facts: readonly FactRef[]): Promise<number> {
    try {
      let tail = this.tails.get(tenantId) ?? (await this.recoverTail(tenantId));
      // Only facts not marked sealed; each once, in the given order.
      const current = await this.marks(facts.map((f) => f.key));
      const seen = new Set<string>();
      let pending = facts.filter((f) => {
        const id = factId(f.key.pk, f.key.sk);
        if (seen.has(id) || current.get(id) !== undefined) return false;
        seen.add(id);
        return true;
      });
      let sealed = 0;
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt >= MAX_SEAL_ATTEMPTS)
          throw new StorageError(
            `could not seal facts for tenant ${tenantId} after ${MAX_SEAL_ATTEMPTS} attempts`,
          );
        const pages = splitPages(
          sealFacts(
            tail,
            pending.map((f) => f.record),
          ),
        );
        for (const page of pages) {
          if (!(await this.putPage(tenantId, page))) {
            // Another sealer extended the chain: take in (and mark) what it wrote, drop what it sealed.
            const newer = await this.pagesAfter(tenantId, tail.seq);
            await this.markPages(newer);
            const taken = new Set(newer.flatMap((p) => p.entries.map((e) => e.record.fact_id)));
            pending = pending.filter((f) => !taken.has(f.record.fact_id));
            const lastEntry = newer.at(-1)?.entries.at(-1);
            tail = lastEntry
              ? { seq: lastEntry.seq, hash: lastEntry.hash }
              : await this.recoverTail(tenantId);
            await sleep(Math.random() * Math.min(100, 5 * 2 ** attempt));
            break;
          }
          await this.mark(page);
          const last = page[page.length - 1] as ChainEntry;
          tail = { seq: last.seq, hash: last.hash };
          this.tails.set(tenantId, tail);
          sealed += page.length;
          const done = new Set(page.map((e) => e.record.fact_id));
          pending = pending.filter((f) => !done.has(f.record.fact_id));
        }
      }
      this.tails.set(tenantId, tail);
      return sealed;
    } catch (error) {
      // Whatever this instance believed about the tail may be wrong now: start cold next time.
      this.tails.delete(tenantId);
      throw error;
    }
  }

  /** Chain entries in seq order, from `fromSeq` (inclusive), page by page. */
  async *entries(tenantId: string, fromSeq = 1): AsyncGenerator<ChainEntry> {
    const items = queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': keys.chainPartition(tenantId), ':prefix': keys.chainPagePrefix },
        ConsistentRead: true,
      },
      'chain read',
    );
    for await (const item of items) {
      if (item.type !== ITEM_TYPE.chainPage) continue;
      if (Number(item.to_seq) < fromSeq) continue;
      for (const entry of pageEntries(toPage(item))) if (entry.seq >= fromSeq) yield entry;
    }
  }

  /**
   * Facts of this tenant not sealed yet, oldest first. A filtered scan of the tenant's event
   * partitions (fact items and seal items), joined per partition: the request path writes no index
   * entry for this (it would cost a write per fact), and verification is rare next to writes.
   */
  async unsealed(tenantId: string): Promise<{ fact_id: string; created_at: string }[]> {
    const facts = new Map<string, { fact_id: string; created_at: string }>();
    const sealed = new Set<string>();
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await readOrFail(
        () =>
          this.doc.send(
            new ScanCommand({
              TableName: this.table,
              FilterExpression: 'begins_with(pk, :prefix) AND (attribute_exists(#record) OR #type = :seal)',
              ExpressionAttributeNames: { '#record': 'record', '#type': 'type' },
              ExpressionAttributeValues: {
                ':prefix': keys.eventPartitionPrefix(tenantId),
                ':seal': ITEM_TYPE.seal,
              },
              ConsistentRead: true,
              ExclusiveStartKey: startKey,
            }),
          ),
        'unsealed scan',
      );
      for (const item of out.Items ?? []) {
        const pk = String(item.pk);
        if (item.type === ITEM_TYPE.seal) {
          for (const [name, value] of Object.entries(item))
            if (typeof (value as Partial<SealMark>)?.seq === 'number') sealed.add(factId(pk, name));
          continue;
        }
        const record = JSON.parse(String(item.record)) as FactRecord;
        facts.set(factId(pk, item.sk), { fact_id: record.fact_id, created_at: record.at });
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return [...facts]
      .filter(([id]) => !sealed.has(id))
      .map(([, f]) => f)
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
  }
}

export interface VerifyReport {
  tenantId: string;
  ok: boolean;
  entries: number;
  head: ChainHead;
  problems: string[];
  unsealedOverdue: number;
}

/**
 * Re-checks a tenant's whole chain from DynamoDB (every hash, link and seq; no fact sealed twice)
 * and that no fact has waited for the sequencer longer than `unsealedGraceMs`.
 */
export async function verifyTenantChain(
  chain: ChainStore,
  tenantId: string,
  options: { now: Date; unsealedGraceMs: number },
): Promise<VerifyReport> {
  const entries: ChainEntry[] = [];
  for await (const entry of chain.entries(tenantId)) entries.push(entry);
  const result = verifyChain(tenantId, entries);
  const problems: string[] = [];
  if (!result.ok) problems.push(`chain broken at seq ${result.break.seq}: ${result.break.problem}`);
  const cutoff = options.now.getTime() - options.unsealedGraceMs;
  const unsealed = await chain.unsealed(tenantId);
  const overdue = unsealed.filter((f) => Date.parse(f.created_at) < cutoff);
  if (overdue.length > 0)
    problems.push(`${overdue.length} fact(s) unsealed for more than ${options.unsealedGraceMs} ms`);
  const last = entries.at(-1);
  return {
    tenantId,
    ok: problems.length === 0,
    entries: entries.length,
    head: result.ok ? result.head : last ? { seq: last.seq, hash: last.hash } : GENESIS,
    problems,
    unsealedOverdue: overdue.length,
  };
}

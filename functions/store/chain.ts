/**
 * The per-tenant evidence chain in DynamoDB: sealing facts (the sequencer's writes) and reading
 * the chain back for verification.
 *
 * The chain is stored as pages: one item per sealing batch holding its entries, keyed by its first
 * seq. A page is written with one conditional put at (known tail + 1), so two sealers that start
 * from the same tail cannot both write: no fork, no gap, no transaction. Every sealed fact is then
 * marked (seq, hash, prev_hash) in a mark item of its own beside it (`markKey`), written blind in
 * batches of 25, and that mark is how a redelivered fact is recognized and skipped. Under load a
 * sealing batch then costs one read of the marks, one page and one mark write per 25 facts
 * (issue 26: one mark update per event before).
 *
 * Invariant: before a sealer writes a page, every fact of every earlier page is marked. A sealer
 * marks its own page before the next, and marks the pages of others it rolls forward over; so
 * only the last page can hold unmarked facts, and a sealer that starts cold marks that page first.
 * A fact is therefore either marked or in no page before the one being written: never sealed twice.
 */
import { ViewEvidence } from '../core/view-evidence.js';
import { randomUUID } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import {
  GENESIS,
  sealPrefix,
  verifyChain,
  type ChainEntry,
  type ChainHead,
  type FactRecord,
  type SealedRecord,
} from '../core/evidence.js';
import { ITEM_TYPE, RECORDS_PARKED_METRIC } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { logger, metrics } from '../shared/powertools.js';
import { isConditionalFailure, queryAll, readOrFail } from './dynamo.js';
import { keys } from './keys.js';
import { factKey, markKey, SEAL_MARK_PREFIX, SEAL_SK, type SealMark } from './toolcalls.js';
import { transact } from './transact.js';

export interface FactRef {
  key: { pk: string; sk: string };
  record: FactRecord;
  /** Why the stored record could not even be read (not JSON): the fact cannot be sealed. */
  problem?: string;
}

/**
 * A tenant's chain stopped at a fact that cannot be sealed. The hold item sits at the page key the
 * fact would take (`seq`), so no sealer can extend the chain past it (their conditional page put
 * fails there, and they find the hold). Every later fact of the tenant is parked, in order, until
 * the hold is released: nothing is skipped, other tenants keep sealing, and the stream moves on.
 */
export interface ChainHold {
  tenantId: string;
  seq: number;
  holdId: string;
  /** The hash before the hold: where sealing resumes. */
  prevHash: string;
  fact: { pk: string; sk: string; fact_id?: string; kind?: string; event_id?: string };
  reason: string;
  since: string;
  attempts: number;
  nextRetryAt: string;
}

/** What a release attempt did. */
export type ReleaseOutcome =
  | { status: 'released'; sealed: number }
  | { status: 'held'; hold: ChainHold; sealed: number }
  | { status: 'waiting'; hold: ChainHold }
  | { status: 'clear' };

/** A fact as read back from its item's `record` text: what cannot be parsed still has a key to name. */
export function factRefOf(key: { pk: string; sk: string }, text: unknown): FactRef {
  if (typeof text === 'string') {
    try {
      return { key, record: JSON.parse(text) as FactRecord };
    } catch {
      // fall through: the record is not JSON
    }
  }
  return {
    key,
    record: {} as FactRecord,
    problem: typeof text === 'string' ? 'record is not JSON' : 'record is missing',
  };
}

/** Retry a held chain after 15 s, 30 s, 1 min ... at most hourly. */
export function holdRetryDelayMs(attempts: number): number {
  return Math.min(15_000 * 2 ** Math.min(attempts, 20), 3_600_000);
}

/**
 * Why this fact cannot take a place in `tenantId`'s chain, before hashing: an unreadable record, a
 * record of another tenant, a missing identity field. (A record with no canonical form is found
 * while hashing it, by `sealPrefix`.)
 */
function unplaceableReason(ref: FactRef, tenantId: string): string | undefined {
  if (ref.problem) return ref.problem;
  const r = ref.record as Partial<FactRecord> | undefined;
  if (typeof r !== 'object' || r === null) return 'record is not an object';
  if (r.tenant_id !== tenantId) return 'record belongs to another tenant than its key';
  for (const field of ['kind', 'event_id', 'fact_id', 'at'] as const)
    if (typeof r[field] !== 'string') return `record has no ${field}`;
  // A fact is sealed from its own item only (its key follows from its event and kind), and its
  // seal mark is kept there: a copy of it in another item would be sealed a second time (issue 23).
  const own = factKey(r as FactRecord);
  if (own.pk !== ref.key.pk || own.sk !== ref.key.sk)
    return `record is fact ${r.fact_id} of item ${own.pk} ${own.sk}, not of this item: a copy is never sealed`;
  return undefined;
}

/**
 * Facts of one batch with a fact id an earlier one of the batch has (two items of one fact): the
 * later ones cannot be sealed (a fact id is sealed once), so they hold the chain like any fact
 * that cannot be sealed. Redeliveries of one item are dropped before this (`unmarked`).
 */
function withRepeatedFactIdsRefused(facts: readonly FactRef[]): FactRef[] {
  const seen = new Set<string>();
  return facts.map((f) => {
    const id = (f.record as Partial<FactRecord> | undefined)?.fact_id;
    if (typeof id !== 'string' || f.problem) return f;
    if (!seen.has(id)) {
      seen.add(id);
      return f;
    }
    return { ...f, problem: `fact id ${id} is another item's fact id too: a fact id is sealed once` };
  });
}

/** Registers a tenant whose chain begins (idempotent): the archiver's list of tenants. */
export async function registerChainTenant(
  doc: DynamoDBDocumentClient,
  table: string,
  tenantId: string,
): Promise<void> {
  await readOrFail(
    () =>
      doc.send(
        new PutCommand({
          TableName: table,
          Item: { ...keys.chainTenant(tenantId), type: ITEM_TYPE.chainTenant, tenant_id: tenantId },
        }),
      ),
    'chain tenant registration',
  );
}

/** A page stays well under DynamoDB's 400 KB item limit; one entry always fits (its fact item did). */
const PAGE_MAX_BYTES = 300_000;
const MAX_SEAL_ATTEMPTS = 20;
/** Concurrent mark writes (BatchWriteItem requests of 25 marks). */
const MARK_CONCURRENCY = 4;
/** BatchWriteItem takes 25 items; BatchGetItem 100 keys. */
const BATCH_WRITE_MAX = 25;
const BATCH_GET_MAX = 100;
/** Rounds of a BatchWriteItem's unprocessed items (throttling) before the write fails as storage. */
const MAX_UNPROCESSED_ROUNDS = 8;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fact item's identity in the maps below: its partition and sort key. */
const factId = (pk: unknown, sk: unknown): string => `${String(pk)}|${String(sk)}`;
/** The item a sealed record came from: its own (a copy in another item is never sealed). */
const sealedItem = (record: FactRecord): string => {
  const key = factKey(record);
  return factId(key.pk, key.sk);
};

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

function toHold(item: Record<string, unknown>): ChainHold {
  return {
    tenantId: String(item.tenant_id),
    seq: Number(item.from_seq),
    holdId: String(item.hold_id),
    prevHash: String(item.prev_hash),
    fact: JSON.parse(String(item.fact)) as ChainHold['fact'],
    reason: String(item.reason),
    since: String(item.since),
    attempts: Number(item.attempts ?? 0),
    nextRetryAt: String(item.next_retry_at),
  };
}

/** The fact a hold names, for logs, `oc verify` and the hold item. */
function heldFact(ref: FactRef): ChainHold['fact'] {
  const r = ref.record as Partial<FactRecord> | undefined;
  const text = (v: unknown) => (typeof v === 'string' ? v.toWellFormed().slice(0, 200) : undefined);
  return {
    pk: ref.key.pk,
    sk: ref.key.sk,
    ...(text(r?.fact_id) ? { fact_id: text(r?.fact_id) } : {}),
    ...(text(r?.kind) ? { kind: text(r?.kind) } : {}),
    ...(text(r?.event_id) ? { event_id: text(r?.event_id) } : {}),
  };
}

/** Where a parked fact waits: ordered by the fact's time, idempotent for a redelivered fact. */
function parkedKey(tenantId: string, ref: FactRef) {
  const at = typeof ref.record?.at === 'string' ? ref.record.at : '';
  return {
    pk: keys.chainPartition(tenantId),
    sk: `${keys.chainParkedPrefix}${at}#${ref.key.pk}#${ref.key.sk}`,
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

/** A tenant's last chain item, raw and undecoded: its last page, or the hold that stops it. */
export async function lastChainItem(
  doc: DynamoDBDocumentClient,
  table: string,
  tenantId: string,
): Promise<Record<string, unknown> | undefined> {
  const out = await readOrFail(() =>
    doc.send(
      new QueryCommand({
        TableName: table,
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
  return out.Items?.[0];
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

  /** The chain's last item: its last page, or the hold that stops it. */
  private async lastItem(
    tenantId: string,
  ): Promise<{ page: StoredPage; hold?: undefined } | { hold: ChainHold; page?: undefined } | undefined> {
    const item = await lastChainItem(this.doc, this.table, tenantId);
    if (!item) return undefined;
    return item.type === ITEM_TYPE.chainHold ? { hold: toHold(item) } : { page: toPage(item) };
  }

  /** The hold that stops this tenant's chain, if any (`oc verify` names it). */
  async hold(tenantId: string): Promise<ChainHold | undefined> {
    return (await this.lastItem(tenantId))?.hold;
  }

  /** Pages that start after `seq`, in order, and the hold that ends them, if any. */
  private async itemsAfter(
    tenantId: string,
    seq: number,
  ): Promise<{ pages: StoredPage[]; hold?: ChainHold }> {
    const pages: StoredPage[] = [];
    let hold: ChainHold | undefined;
    const items = queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :after AND :end',
        ExpressionAttributeValues: {
          ':pk': keys.chainPartition(tenantId),
          ':after': keys.chainPage(tenantId, seq + 1).sk,
          ':end': `${keys.chainPagePrefix}~`,
        },
        ConsistentRead: true,
      },
      'chain read',
    );
    for await (const item of items) {
      if (item.type === ITEM_TYPE.chainPage) pages.push(toPage(item));
      else if (item.type === ITEM_TYPE.chainHold) hold = toHold(item);
    }
    return { pages, ...(hold ? { hold } : {}) };
  }

  /**
   * The seq each of these facts is marked with (undefined: not sealed), by `pk|sk` of the fact: its
   * own mark item, or (sealed before issue 26) its attribute in its event's one seal item. Both in
   * the same BatchGetItem requests, 100 keys each.
   */
  private async marks(refs: readonly { pk: string; sk: string }[]): Promise<Map<string, number | undefined>> {
    const found = new Map<string, number | undefined>(refs.map((k) => [factId(k.pk, k.sk), undefined]));
    const wanted = [
      ...refs.map((k) => markKey(k)),
      ...[...new Set(refs.map((k) => k.pk))].map((pk) => ({ pk, sk: SEAL_SK })),
    ];
    const unique = [...new Map(wanted.map((k) => [factId(k.pk, k.sk), k])).values()];
    for (let i = 0; i < unique.length; i += BATCH_GET_MAX) {
      let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> | undefined =
        { [this.table]: { Keys: unique.slice(i, i + BATCH_GET_MAX), ConsistentRead: true } };
      while (request && Object.keys(request).length > 0) {
        const out = await readOrFail(() => this.doc.send(new BatchGetCommand({ RequestItems: request })));
        for (const item of out.Responses?.[this.table] ?? []) {
          const sk = String(item.sk);
          if (sk.startsWith(SEAL_MARK_PREFIX)) {
            const id = factId(item.pk, sk.slice(SEAL_MARK_PREFIX.length));
            if (found.has(id) && typeof item.seq === 'number') found.set(id, item.seq);
            continue;
          }
          for (const [name, value] of Object.entries(item)) {
            const mark = value as Partial<SealMark> | undefined;
            const id = factId(item.pk, name);
            if (found.has(id) && found.get(id) === undefined && typeof mark?.seq === 'number')
              found.set(id, mark.seq);
          }
        }
        request = out.UnprocessedKeys as typeof request;
      }
    }
    return found;
  }

  /**
   * Marks the entries' facts as sealed: one mark item per fact, 25 to a BatchWriteItem. Blind and
   * idempotent: a fact's mark (its seq, hash, prev_hash) is the same whoever writes it, whenever.
   * Unprocessed items (throttling) are written again with backoff; if they never are, this fails as
   * storage, the page stays unmarked, and the next sealer marks it before extending the chain.
   */
  private async mark(entries: readonly ChainEntry[]): Promise<void> {
    const puts = entries.map((entry) => ({
      PutRequest: {
        Item: {
          ...markKey(factKey(entry.record)),
          type: ITEM_TYPE.seal,
          seq: entry.seq,
          hash: entry.hash,
          prev_hash: entry.prev_hash,
        },
      },
    }));
    const chunks: (typeof puts)[] = [];
    for (let i = 0; i < puts.length; i += BATCH_WRITE_MAX) chunks.push(puts.slice(i, i + BATCH_WRITE_MAX));
    await mapLimit(chunks, MARK_CONCURRENCY, async (chunk) => {
      let pending: unknown[] = chunk;
      for (let round = 0; pending.length > 0; round++) {
        if (round >= MAX_UNPROCESSED_ROUNDS)
          throw new StorageError(`marking sealed facts failed: ${pending.length} left unprocessed`);
        if (round > 0) await sleep(Math.random() * Math.min(1000, 25 * 2 ** round));
        let out;
        try {
          out = await this.doc.send(
            new BatchWriteCommand({ RequestItems: { [this.table]: pending as never } }),
          );
        } catch (error) {
          throw new StorageError('marking sealed facts failed', error);
        }
        pending = (out.UnprocessedItems?.[this.table] as unknown[] | undefined) ?? [];
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

  /**
   * A cold sealer: the last page may be unmarked (its writer may have stopped); mark it, start
   * after it. A chain that ends in a hold answers the hold.
   */
  private async recoverTail(tenantId: string): Promise<ChainHead | ChainHold> {
    const last = await this.lastItem(tenantId);
    if (!last) return GENESIS;
    if (last.hold) return last.hold;
    await this.markPages([last.page]);
    const entry = last.page.entries[last.page.entries.length - 1] as StoredPage['entries'][number];
    return { seq: entry.seq, hash: entry.hash };
  }

  /** Writes a page at its first seq; `replacing` lets it take the place of that hold (its release). */
  private async putPage(
    tenantId: string,
    entries: readonly ChainEntry[],
    replacing?: ChainHold,
  ): Promise<boolean> {
    const first = entries[0] as ChainEntry;
    const last = entries[entries.length - 1] as ChainEntry;
    // The chain's first page registers its tenant for the archiver, before the page (so no chain
    // exists unregistered); a race loser registers a tenant that has a chain all the same.
    if (first.seq === 1) await registerChainTenant(this.doc, this.table, tenantId);
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
          ...(replacing
            ? {
                ConditionExpression: '#type = :hold AND hold_id = :holdId',
                ExpressionAttributeNames: { '#type': 'type' },
                ExpressionAttributeValues: { ':hold': ITEM_TYPE.chainHold, ':holdId': replacing.holdId },
              }
            : { ConditionExpression: 'attribute_not_exists(pk)' }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalFailure(error)) return false;
      throw new StorageError('chain page write failed', error);
    }
  }

  /** One sealing job per tenant at a time in this process (concurrent deliveries queue here). */
  private exclusive<T>(tenantId: string, job: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(tenantId) ?? Promise.resolve();
    const run = previous.then(job, job);
    this.locks.set(tenantId, run);
    return run.finally(() => {
      if (this.locks.get(tenantId) === run) this.locks.delete(tenantId);
    });
  }

  /** Facts not marked sealed yet; each once, in the given order. */
  private async unmarked(facts: readonly FactRef[]): Promise<FactRef[]> {
    const current = await this.marks(facts.map((f) => f.key));
    const seen = new Set<string>();
    return facts.filter((f) => {
      const id = factId(f.key.pk, f.key.sk);
      if (seen.has(id) || current.get(id) !== undefined) return false;
      seen.add(id);
      return true;
    });
  }

  /**
   * Seals the facts of one tenant, in the given order, skipping any already sealed. Concurrent
   * sealers of the same tenant race on the next page's key; the loser reads what it missed and
   * retries. A fact that cannot be sealed holds the tenant's chain (see `ChainHold`): it and every
   * later fact are parked, and this returns normally, so the stream moves on for other tenants.
   */
  async seal(tenantId: string, facts: readonly FactRef[]): Promise<number> {
    return this.exclusive(tenantId, async () => {
      try {
        const tail = this.tails.get(tenantId) ?? (await this.recoverTail(tenantId));
        const pending = withRepeatedFactIdsRefused(await this.unmarked(facts));
        if ('holdId' in tail) {
          await this.park(tenantId, tail, pending);
          return 0;
        }
        const outcome = await this.extend(tenantId, tail, pending);
        if (outcome.hold) await this.park(tenantId, outcome.hold, outcome.parked);
        return outcome.sealed;
      } catch (error) {
        // Whatever this instance believed about the tail may be wrong now: start cold next time.
        this.tails.delete(tenantId);
        throw error;
      }
    });
  }

  /**
   * Extends the chain from `tail` with `pending`, in order, until done or until a fact that cannot
   * be sealed (which it holds the chain at) or a hold another sealer placed. `replacing`: the hold
   * being released, whose place the first page takes. Returns what is left to park behind a hold.
   */
  private async extend(
    tenantId: string,
    start: ChainHead,
    facts: readonly FactRef[],
    replacing?: ChainHold,
  ): Promise<{ sealed: number; hold?: ChainHold; parked: FactRef[] }> {
    let tail = start;
    let pending = [...facts];
    let replace = replacing;
    let sealed = 0;
    const heldBy = (hold: ChainHold) => {
      this.tails.delete(tenantId);
      return { sealed, hold, parked: pending };
    };
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= MAX_SEAL_ATTEMPTS)
        throw new StorageError(
          `could not seal facts for tenant ${tenantId} after ${MAX_SEAL_ATTEMPTS} attempts`,
        );
      // Hash what can be placed, up to the first fact that cannot be sealed (each hashed once).
      const unplaceable = pending.findIndex((f) => unplaceableReason(f, tenantId) !== undefined);
      const placeable = unplaceable < 0 ? pending : pending.slice(0, unplaceable);
      const { entries, failed } = sealPrefix(
        tail,
        placeable.map((f) => f.record),
      );
      if (entries.length === 0 && (failed || unplaceable === 0)) {
        const first = pending[0] as FactRef;
        if (replace) return heldBy(replace); // still unsealable: the release keeps its hold
        const reason = failed
          ? `record cannot be canonicalized (${failed.reason})`
          : (unplaceableReason(first, tenantId) as string);
        const placed = await this.placeHold(tenantId, tail, first, reason);
        if (placed) return heldBy(placed);
      } else {
        let conflicted = false;
        for (const page of splitPages(entries)) {
          if (!(await this.putPage(tenantId, page, replace))) {
            conflicted = true;
            break;
          }
          replace = undefined;
          await this.mark(page);
          const last = page[page.length - 1] as ChainEntry;
          tail = { seq: last.seq, hash: last.hash };
          this.tails.set(tenantId, tail);
          sealed += page.length;
          // By item: a later item with the same fact id is not this fact, and must hold the chain.
          const done = new Set(page.map((e) => sealedItem(e.record)));
          pending = pending.filter((f) => !done.has(factId(f.key.pk, f.key.sk)));
        }
        if (!conflicted) continue;
      }
      // Another sealer extended the chain (or held it): take in (and mark) what it wrote, drop
      // what it sealed, and stop behind its hold if it placed one.
      const newer = await this.itemsAfter(tenantId, tail.seq);
      await this.markPages(newer.pages);
      const taken = new Set(newer.pages.flatMap((p) => p.entries.map((e) => sealedItem(e.record))));
      pending = pending.filter((f) => !taken.has(factId(f.key.pk, f.key.sk)));
      const lastEntry = newer.pages.at(-1)?.entries.at(-1);
      if (lastEntry) tail = { seq: lastEntry.seq, hash: lastEntry.hash };
      if (newer.hold) {
        if (replace && newer.hold.holdId !== replace.holdId) replace = undefined;
        if (!replace) return heldBy(newer.hold);
      } else if (!lastEntry) {
        const recovered = await this.recoverTail(tenantId);
        if ('holdId' in recovered) return heldBy(recovered);
        tail = recovered;
      }
      replace = undefined;
      await sleep(Math.random() * Math.min(100, 5 * 2 ** attempt));
    }
    this.tails.set(tenantId, tail);
    return { sealed, parked: [] };
  }

  /**
   * Holds the chain at `tail + 1` for a fact that cannot be sealed: the hold item (at that page
   * key, so the chain cannot grow past it) and the registry entry the release job walks, in one
   * transaction. False if another sealer wrote that seq first.
   */
  private async placeHold(
    tenantId: string,
    tail: ChainHead,
    fact: FactRef,
    reason: string,
    now = new Date(),
  ): Promise<ChainHold | undefined> {
    const hold: ChainHold = {
      tenantId,
      seq: tail.seq + 1,
      holdId: randomUUID(),
      prevHash: tail.hash,
      fact: heldFact(fact),
      reason: reason.toWellFormed().slice(0, 500),
      since: now.toISOString(),
      attempts: 0,
      nextRetryAt: new Date(now.getTime() + holdRetryDelayMs(0)).toISOString(),
    };
    const written = await transact(this.doc, [
      {
        Put: {
          TableName: this.table,
          Item: {
            ...keys.chainPage(tenantId, hold.seq),
            type: ITEM_TYPE.chainHold,
            tenant_id: tenantId,
            from_seq: hold.seq,
            hold_id: hold.holdId,
            prev_hash: hold.prevHash,
            fact: JSON.stringify(hold.fact),
            reason: hold.reason,
            since: hold.since,
            attempts: 0,
            next_retry_at: hold.nextRetryAt,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      {
        Put: {
          TableName: this.table,
          Item: {
            ...keys.chainHoldEntry(tenantId),
            type: ITEM_TYPE.chainHold,
            seq: hold.seq,
            since: hold.since,
          },
        },
      },
    ]);
    if (!written.ok) return undefined;
    logger.error('evidence chain held: a fact cannot be sealed', {
      tenantId,
      seq: hold.seq,
      ...hold.fact,
      reason: hold.reason,
    });
    metrics.addMetric(RECORDS_PARKED_METRIC, MetricUnit.Count, 1);
    return hold;
  }

  /**
   * Parks facts behind a hold (idempotent: a redelivered fact lands on the same item). If the
   * hold was released meanwhile, nobody would come back for them: seal them now instead.
   */
  private async park(tenantId: string, hold: ChainHold, facts: readonly FactRef[]): Promise<void> {
    if (facts.length === 0) return;
    for (let i = 0; i < facts.length; i += 25) {
      let request: Record<string, unknown[]> | undefined = {
        [this.table]: facts.slice(i, i + 25).map((f) => ({
          PutRequest: {
            Item: {
              ...parkedKey(tenantId, f),
              type: ITEM_TYPE.chainParked,
              fact_pk: f.key.pk,
              fact_sk: f.key.sk,
            },
          },
        })),
      };
      while (request && Object.keys(request).length > 0) {
        const out = await readOrFail(
          () => this.doc.send(new BatchWriteCommand({ RequestItems: request as never })),
          'parking facts',
        );
        request = out.UnprocessedItems as typeof request;
      }
    }
    const still = await readOrFail(() =>
      this.doc.send(
        new GetCommand({
          TableName: this.table,
          Key: keys.chainPage(tenantId, hold.seq),
          ConsistentRead: true,
        }),
      ),
    );
    if (still.Item?.type === ITEM_TYPE.chainHold) {
      logger.warn('facts parked behind a held evidence chain', {
        tenantId,
        seq: hold.seq,
        parked: facts.length,
      });
      return;
    }
    await this.drainParked(tenantId);
  }

  /** Parked facts of a tenant, in order, with their records read back from their items. */
  private async parked(tenantId: string): Promise<{ refs: FactRef[]; items: { pk: string; sk: string }[] }> {
    const items: { pk: string; sk: string; fact_pk: string; fact_sk: string }[] = [];
    for await (const item of queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: {
          ':pk': keys.chainPartition(tenantId),
          ':prefix': keys.chainParkedPrefix,
        },
        ConsistentRead: true,
      },
      'parked facts read',
    ))
      items.push(item as (typeof items)[number]);
    const records = new Map<string, unknown>();
    // One read per fact, even if it was parked twice (under two times).
    const wanted = [
      ...new Map(items.map((i) => [factId(i.fact_pk, i.fact_sk), { pk: i.fact_pk, sk: i.fact_sk }])).values(),
    ];
    for (let i = 0; i < wanted.length; i += 100) {
      let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> | undefined =
        {
          [this.table]: { Keys: wanted.slice(i, i + 100), ConsistentRead: true },
        };
      while (request && Object.keys(request).length > 0) {
        const out = await readOrFail(() => this.doc.send(new BatchGetCommand({ RequestItems: request })));
        for (const item of out.Responses?.[this.table] ?? [])
          records.set(factId(item.pk, item.sk), item.record);
        request = out.UnprocessedKeys as typeof request;
      }
    }
    const refs = items.map((i) =>
      factRefOf({ pk: i.fact_pk, sk: i.fact_sk }, records.get(factId(i.fact_pk, i.fact_sk))),
    );
    return { refs, items: items.map((i) => ({ pk: i.pk, sk: i.sk })) };
  }

  private async unpark(items: readonly { pk: string; sk: string }[]): Promise<void> {
    for (let i = 0; i < items.length; i += 25) {
      let request: Record<string, unknown[]> | undefined = {
        [this.table]: items.slice(i, i + 25).map((key) => ({ DeleteRequest: { Key: key } })),
      };
      while (request && Object.keys(request).length > 0) {
        const out = await readOrFail(
          () => this.doc.send(new BatchWriteCommand({ RequestItems: request as never })),
          'unparking facts',
        );
        request = out.UnprocessedItems as typeof request;
      }
    }
  }

  /** Seals whatever is parked for a tenant whose chain is not held (a release, or a race with one). */
  private async drainParked(tenantId: string): Promise<number> {
    let sealed = 0;
    for (;;) {
      const { refs, items } = await this.parked(tenantId);
      if (items.length === 0) return sealed;
      const tail = await this.recoverTail(tenantId);
      if ('holdId' in tail) return sealed; // held again: the facts wait for that hold's release
      const outcome = await this.extend(tenantId, tail, await this.unmarked(refs));
      sealed += outcome.sealed;
      const stillParked = new Set(outcome.parked.map((f) => factId(f.key.pk, f.key.sk)));
      await this.unpark(items.filter((_, i) => !stillParked.has(factId(refs[i]!.key.pk, refs[i]!.key.sk))));
      if (outcome.hold) return sealed;
    }
  }

  /**
   * The release job, per held tenant: once the hold's retry time has come, tries to seal the held
   * fact and everything parked behind it. A fact still unsealable keeps the hold (retried later,
   * with backoff); one that now seals (a fixed sealer, a repaired item) releases it, and the chain
   * resumes in order. Each fact is sealed exactly once, whoever else is sealing.
   */
  async release(tenantId: string, now = new Date()): Promise<ReleaseOutcome> {
    return this.exclusive(tenantId, async () => {
      const last = await this.lastItem(tenantId);
      if (!last?.hold) {
        const sealed = await this.drainParked(tenantId);
        await this.clearHoldEntry(tenantId);
        return sealed > 0 ? { status: 'released', sealed } : { status: 'clear' };
      }
      const hold = last.hold;
      if (Date.parse(hold.nextRetryAt) > now.getTime()) return { status: 'waiting', hold };
      const { refs, items } = await this.parked(tenantId);
      const pending = await this.unmarked(refs);
      const outcome = await this.extend(tenantId, { seq: hold.seq - 1, hash: hold.prevHash }, pending, hold);
      const stillParked = new Set(outcome.parked.map((f) => factId(f.key.pk, f.key.sk)));
      await this.unpark(items.filter((_, i) => !stillParked.has(factId(refs[i]!.key.pk, refs[i]!.key.sk))));
      if (outcome.hold?.holdId === hold.holdId) {
        const attempts = hold.attempts + 1;
        const nextRetryAt = new Date(now.getTime() + holdRetryDelayMs(attempts)).toISOString();
        await this.doc
          .send(
            new UpdateCommand({
              TableName: this.table,
              Key: keys.chainPage(tenantId, hold.seq),
              UpdateExpression: 'SET attempts = :a, next_retry_at = :next',
              ConditionExpression: '#type = :hold AND hold_id = :id',
              ExpressionAttributeNames: { '#type': 'type' },
              ExpressionAttributeValues: {
                ':a': attempts,
                ':next': nextRetryAt,
                ':hold': ITEM_TYPE.chainHold,
                ':id': hold.holdId,
              },
            }),
          )
          .catch((error: unknown) => {
            if (!isConditionalFailure(error)) throw new StorageError('hold update failed', error);
          });
        logger.error('evidence chain still held', {
          tenantId,
          seq: hold.seq,
          ...hold.fact,
          attempts,
          nextRetryAt,
        });
        return { status: 'held', hold: { ...hold, attempts, nextRetryAt }, sealed: outcome.sealed };
      }
      if (outcome.hold) return { status: 'held', hold: outcome.hold, sealed: outcome.sealed };
      await this.clearHoldEntry(tenantId);
      const drained = await this.drainParked(tenantId);
      logger.info('evidence chain released', { tenantId, seq: hold.seq, sealed: outcome.sealed + drained });
      return { status: 'released', sealed: outcome.sealed + drained };
    });
  }

  /** Tenants whose chain is (or recently was) held: the release job's work list. */
  async heldTenants(): Promise<string[]> {
    const tenants: string[] = [];
    for await (const item of queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.chainHoldsPartition },
        ConsistentRead: true,
      },
      'held chains read',
    ))
      tenants.push(String(item.sk));
    return tenants;
  }

  private async clearHoldEntry(tenantId: string): Promise<void> {
    await readOrFail(
      () => this.doc.send(new DeleteCommand({ TableName: this.table, Key: keys.chainHoldEntry(tenantId) })),
      'hold registry delete',
    );
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
    return (await this.audit(tenantId)).unsealed;
  }

  /**
   * One scan of the tenant's event partitions: facts not sealed yet (oldest first), and calls whose
   * tool may have run with no recorded outcome (an allow left `executing`/`unknown` with no result
   * fact, an approved execution left `running`/`unknown`), for `oc verify`.
   */
  async audit(tenantId: string): Promise<{
    unsealed: { fact_id: string; created_at: string }[];
    outcomes: { event_id: string; kind: 'allow' | 'execution'; status: string; since: string }[];
  }> {
    const facts = new Map<string, { fact_id: string; created_at: string }>();
    const sealed = new Set<string>();
    const results = new Set<string>();
    const open: {
      pk: string;
      event_id: string;
      kind: 'allow' | 'execution';
      status: string;
      since: string;
    }[] = [];
    const resultSk = factKey({ tenant_id: tenantId, event_id: '', kind: 'toolcall.executed' }).sk;
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await readOrFail(
        () =>
          this.doc.send(
            new ScanCommand({
              TableName: this.table,
              FilterExpression:
                'begins_with(pk, :prefix) AND (attribute_exists(#record) OR #type = :seal OR #type = :execution)',
              ExpressionAttributeNames: { '#record': 'record', '#type': 'type' },
              ExpressionAttributeValues: {
                ':prefix': keys.eventPartitionPrefix(tenantId),
                ':seal': ITEM_TYPE.seal,
                ':execution': ITEM_TYPE.execution,
              },
              ConsistentRead: true,
              ExclusiveStartKey: startKey,
            }),
          ),
        'unsealed scan',
      );
      for (const item of out.Items ?? []) {
        const pk = String(item.pk);
        const eventId = pk.slice(keys.eventPartitionPrefix(tenantId).length);
        if (item.type === ITEM_TYPE.seal) {
          const sk = String(item.sk);
          if (sk.startsWith(SEAL_MARK_PREFIX)) {
            if (typeof item.seq === 'number') sealed.add(factId(pk, sk.slice(SEAL_MARK_PREFIX.length)));
            continue;
          }
          for (const [name, value] of Object.entries(item))
            if (typeof (value as Partial<SealMark>)?.seq === 'number') sealed.add(factId(pk, name));
          continue;
        }
        if (item.type === ITEM_TYPE.execution) {
          if (item.status !== 'completed')
            open.push({
              pk,
              event_id: eventId,
              kind: 'execution',
              status: String(item.status),
              since: String(item.claimed_at),
            });
          continue;
        }
        if (item.sk === resultSk) results.add(pk);
        if (item.type === ITEM_TYPE.event && (item.status === 'executing' || item.status === 'unknown'))
          open.push({
            pk,
            event_id: eventId,
            kind: 'allow',
            status: String(item.status),
            since: String(item.created_at),
          });
        const ref = factRefOf({ pk, sk: String(item.sk) }, item.record);
        facts.set(factId(pk, item.sk), {
          fact_id: ref.record.fact_id ?? `${pk}|${String(item.sk)}`,
          created_at: ref.record.at ?? '',
        });
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return {
      unsealed: [...facts]
        .filter(([id]) => !sealed.has(id))
        .map(([, f]) => f)
        .sort((a, b) => a.created_at.localeCompare(b.created_at)),
      // An allow whose result fact exists is complete, whatever its event item still says.
      outcomes: open
        .filter((o) => o.kind === 'execution' || !results.has(o.pk))
        .map(({ pk: _pk, ...o }) => o)
        .sort((a, b) => a.since.localeCompare(b.since)),
    };
  }
}

export interface VerifyReport {
  tenantId: string;
  ok: boolean;
  entries: number;
  head: ChainHead;
  problems: string[];
  unsealedOverdue: number;
  /** The chain is held at a fact that cannot be sealed. */
  hold?: ChainHold;
  /** Calls whose tool may have run with no recorded outcome, past every timeout. */
  unresolved: { event_id: string; kind: 'allow' | 'execution'; status: string; since: string }[];
}

/**
 * Re-checks a tenant's whole chain from DynamoDB (every hash, link and seq; no fact sealed twice),
 * that it is not held, that no fact has waited for the sequencer longer than `unsealedGraceMs`,
 * and that no call's outcome is left unknown past `outcomeGraceMs` (resolve them with
 * `oc executions resolve`; `allowUnresolved` reports them without failing).
 */
export async function verifyTenantChain(
  chain: ChainStore,
  tenantId: string,
  options: { now: Date; unsealedGraceMs: number; outcomeGraceMs?: number; allowUnresolved?: boolean },
): Promise<VerifyReport> {
  const entries: ChainEntry[] = [];
  for await (const entry of chain.entries(tenantId)) entries.push(entry);
  const result = verifyChain(tenantId, entries);
  const problems: string[] = [];
  if (!result.ok) problems.push(`chain broken at seq ${result.break.seq}: ${result.break.problem}`);
  // Every recorded approval view is re-rendered from its recorded request and its hash checked.
  const views = new ViewEvidence();
  for (const entry of entries) {
    const problem = views.check(entry.record);
    if (problem) problems.push(`approval view at seq ${entry.seq}: ${problem}`);
  }
  const hold = await chain.hold(tenantId);
  if (hold)
    problems.push(
      `chain held at seq ${hold.seq} since ${hold.since}: fact ${hold.fact.fact_id ?? `${hold.fact.pk} ${hold.fact.sk}`}` +
        `${hold.fact.kind ? ` (${hold.fact.kind}` : ' ('}${hold.fact.event_id ? ` of event ${hold.fact.event_id})` : ')'}` +
        ` cannot be sealed: ${hold.reason}; later facts wait behind it (retry ${hold.attempts + 1} at ${hold.nextRetryAt})`,
    );
  const cutoff = options.now.getTime() - options.unsealedGraceMs;
  const audit = await chain.audit(tenantId);
  const overdue = audit.unsealed.filter((f) => Date.parse(f.created_at) < cutoff);
  if (overdue.length > 0)
    problems.push(`${overdue.length} fact(s) unsealed for more than ${options.unsealedGraceMs} ms`);
  const outcomeCutoff = options.now.getTime() - (options.outcomeGraceMs ?? 60_000);
  const unresolved = audit.outcomes.filter(
    (o) => o.status === 'unknown' || Date.parse(o.since) < outcomeCutoff,
  );
  if (unresolved.length > 0 && !options.allowUnresolved)
    for (const o of unresolved)
      problems.push(
        `${o.kind === 'allow' ? 'allowed call' : 'approved execution of'} ${o.event_id}: outcome unknown since ${o.since}` +
          ' (the tool may have run); record it with `oc executions resolve`',
      );
  const last = entries.at(-1);
  return {
    tenantId,
    ok: problems.length === 0,
    entries: entries.length,
    head: result.ok ? result.head : last ? { seq: last.seq, hash: last.hash } : GENESIS,
    problems,
    unsealedOverdue: overdue.length,
    ...(hold ? { hold } : {}),
    unresolved,
  };
}

/**
 * The per-tenant evidence chain in DynamoDB: sealing facts (the sequencer's writes) and reading
 * the chain back for verification. Sealing is idempotent: a fact is marked with its seq in the
 * same transaction that writes its entry and advances the head, so a retried batch skips it.
 */
import {
  BatchGetCommand,
  GetCommand,
  QueryCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import {
  GENESIS,
  sealFacts,
  verifyChain,
  type ChainEntry,
  type ChainHead,
  type FactRecord,
} from '../core/evidence.js';
import { ITEM_TYPE, TABLE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { queryAll, readOrFail } from './dynamo.js';
import { keys } from './keys.js';
import { transact, type TransactItems } from './transact.js';

export interface FactRef {
  key: { pk: string; sk: string };
  record: FactRecord;
}

/** Facts per transaction: two items each (entry + fact marker) plus the head, within DynamoDB's 100. */
const FACTS_PER_TRANSACTION = 49;
const MAX_SEAL_ATTEMPTS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ChainStore {
  /** The head each tenant's chain had after this instance's last successful seal. */
  private readonly heads = new Map<string, ChainHead>();

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async head(tenantId: string): Promise<ChainHead> {
    const out = await readOrFail(() =>
      this.doc.send(
        new GetCommand({ TableName: this.table, Key: keys.chainHead(tenantId), ConsistentRead: true }),
      ),
    );
    return out.Item ? { seq: Number(out.Item.seq), hash: String(out.Item.hash) } : GENESIS;
  }

  /** Which of these facts already carry a seq (were sealed by an earlier delivery)? */
  private async sealedFactKeys(facts: readonly FactRef[]): Promise<Set<string>> {
    const sealed = new Set<string>();
    for (let i = 0; i < facts.length; i += 100) {
      const chunk = facts.slice(i, i + 100);
      let request:
        | Record<
            string,
            { Keys: Record<string, unknown>[]; ConsistentRead: boolean; ProjectionExpression: string }
          >
        | undefined = {
        [this.table]: {
          Keys: chunk.map((f) => f.key),
          ConsistentRead: true,
          ProjectionExpression: 'pk, sk, seq',
        },
      };
      while (request && Object.keys(request).length > 0) {
        const out = await readOrFail(() => this.doc.send(new BatchGetCommand({ RequestItems: request })));
        for (const item of out.Responses?.[this.table] ?? []) {
          if (item.seq !== undefined) sealed.add(`${String(item.pk)}|${String(item.sk)}`);
        }
        request = out.UnprocessedKeys as typeof request;
      }
    }
    return sealed;
  }

  /**
   * Seals the facts of one tenant, in the given order, skipping any already sealed. Concurrent
   * sealers of the same tenant are serialized by the head's condition; the loser re-reads and retries.
   */
  async seal(tenantId: string, facts: readonly FactRef[]): Promise<number> {
    let sealedCount = 0;
    for (let start = 0; start < facts.length; start += FACTS_PER_TRANSACTION) {
      const chunk = facts.slice(start, start + FACTS_PER_TRANSACTION);
      sealedCount += await this.sealChunk(tenantId, chunk);
    }
    return sealedCount;
  }

  private async sealChunk(tenantId: string, facts: readonly FactRef[]): Promise<number> {
    // Optimistic first try: the head this sealer last wrote (cached) and no pre-read of the facts.
    // The transaction's conditions guard both; only when one fails do we read and filter.
    let head = this.heads.get(tenantId);
    let pending: readonly FactRef[] = facts;
    for (let attempt = 0; attempt < MAX_SEAL_ATTEMPTS; attempt++) {
      if (!head || attempt > 0) {
        const [freshHead, alreadySealed] = await Promise.all([
          this.head(tenantId),
          this.sealedFactKeys(facts),
        ]);
        head = freshHead;
        pending = facts.filter((f) => !alreadySealed.has(`${f.key.pk}|${f.key.sk}`));
      }
      if (pending.length === 0) return 0;
      const entries = sealFacts(
        head,
        pending.map((f) => f.record),
      );
      const last = entries[entries.length - 1] as ChainEntry;
      const items: TransactItems = [
        {
          Put: {
            TableName: this.table,
            Item: {
              ...keys.chainHead(tenantId),
              type: ITEM_TYPE.chainHead,
              tenant_id: tenantId,
              seq: last.seq,
              hash: last.hash,
            },
            ConditionExpression: head.seq === 0 ? 'attribute_not_exists(pk)' : 'seq = :seq',
            ...(head.seq === 0 ? {} : { ExpressionAttributeValues: { ':seq': head.seq } }),
          },
        },
      ];
      entries.forEach((entry, i) => {
        const fact = pending[i] as FactRef;
        items.push({
          Put: {
            TableName: this.table,
            Item: {
              ...keys.chainEntry(tenantId, entry.seq),
              type: ITEM_TYPE.chainEntry,
              tenant_id: tenantId,
              seq: entry.seq,
              prev_hash: entry.prev_hash,
              hash: entry.hash,
              fact_id: entry.record.fact_id,
              record: JSON.stringify(entry.record),
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        });
        items.push({
          Update: {
            TableName: this.table,
            Key: fact.key,
            // Leaving the sparse "unsealed" index marks the fact sealed for `oc verify`.
            UpdateExpression: `SET seq = :seq, #hash = :hash, prev_hash = :prev REMOVE ${TABLE.gsi1.partitionKey}, ${TABLE.gsi1.sortKey}`,
            ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(seq)',
            ExpressionAttributeNames: { '#hash': 'hash' },
            ExpressionAttributeValues: { ':seq': entry.seq, ':hash': entry.hash, ':prev': entry.prev_hash },
          },
        });
      });
      const outcome = await transact(this.doc, items, { maxConflictRetries: 2 });
      if (outcome.ok) {
        this.heads.set(tenantId, { seq: last.seq, hash: last.hash });
        return entries.length;
      }
      this.heads.delete(tenantId);
      // Another sealer moved the head or sealed one of these facts first: re-read and go again.
      await sleep(Math.random() * Math.min(250, 10 * 2 ** attempt));
    }
    throw new StorageError(`could not seal facts for tenant ${tenantId} after ${MAX_SEAL_ATTEMPTS} attempts`);
  }

  /** Chain entries in seq order, from `fromSeq` (inclusive), paginated. */
  async *entries(tenantId: string, fromSeq = 1): AsyncGenerator<ChainEntry> {
    const items = queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk >= :from',
        ExpressionAttributeValues: {
          ':pk': keys.chainPartition(tenantId),
          ':from': keys.chainEntry(tenantId, fromSeq).sk,
        },
        ConsistentRead: true,
      },
      'chain read',
    );
    for await (const item of items) {
      if (item.type !== ITEM_TYPE.chainEntry) continue;
      yield {
        seq: Number(item.seq),
        prev_hash: String(item.prev_hash),
        hash: String(item.hash),
        record: JSON.parse(String(item.record)),
      };
    }
  }

  /** Facts still waiting for the sequencer, oldest first (the sparse GSI). */
  async unsealed(tenantId: string, limit = 100): Promise<{ fact_id: string; created_at: string }[]> {
    const out = await readOrFail(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: TABLE.gsi1.name,
          KeyConditionExpression: `${TABLE.gsi1.partitionKey} = :pk`,
          ExpressionAttributeValues: { ':pk': keys.unsealedPartition(tenantId) },
          Limit: limit,
        }),
      ),
    );
    return (out.Items ?? []).map((i) => ({ fact_id: String(i.fact_id), created_at: String(i.created_at) }));
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
  const storedHead = await chain.head(tenantId);
  if (result.ok && (storedHead.seq !== result.head.seq || storedHead.hash !== result.head.hash)) {
    problems.push(`head (seq ${storedHead.seq}) does not match the last entry (seq ${result.head.seq})`);
  }
  const cutoff = options.now.getTime() - options.unsealedGraceMs;
  const unsealed = await chain.unsealed(tenantId, 1000);
  const overdue = unsealed.filter((f) => Date.parse(f.created_at) < cutoff);
  if (overdue.length > 0)
    problems.push(`${overdue.length} fact(s) unsealed for more than ${options.unsealedGraceMs} ms`);
  return {
    tenantId,
    ok: problems.length === 0,
    entries: entries.length,
    head: result.ok ? result.head : storedHead,
    problems,
    unsealedOverdue: overdue.length,
  };
}

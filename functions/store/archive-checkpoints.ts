/**
 * The archiver's view of the table: which tenants have a chain, how far each is archived (the
 * checkpoint item beside the chain's pages), and the chain read by seq range, page by page.
 *
 * A checkpoint moves in two conditional steps, so that a range is archived once whoever runs and
 * whenever one stops: `claim` records the next range (only on the archived head it read, only if
 * no range is claimed), `advance` moves the head past it (only from that head, only for that
 * claim). A claimed range is finished by whoever comes next: its bundle's bytes are the same, so
 * rewriting it is harmless, and the head cannot skip it.
 */
import { QueryCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GENESIS, type ChainEntry, type ChainHead, type SealedRecord } from '../core/evidence.js';
import { ITEM_TYPE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { decodeEntries, lastChainItem, registerChainTenant } from './chain.js';
import { isConditionalFailure, queryAll, readOrFail } from './dynamo.js';
import { keys } from './keys.js';

export interface ArchiveCheckpoint {
  /** The archived head: every entry up to `head.seq` is in a bundle with a signed checkpoint. */
  head: ChainHead;
  /** A range an archiver claimed and has not advanced past yet. */
  pending?: { fromSeq: number; toSeq: number };
  bundleKey?: string;
  /**
   * The Merkle tree's right edge at `head` (TreeEdge.encode, issue 23): moved with the head by
   * `advance`, so a run appends to the tree without reading a tile. Absent on a checkpoint
   * written before the log existed: the first run rebuilds it from seq 1 (`setEdge`).
   */
  edge?: Buffer;
  /** The log checkpoint last published (`log/<tenant>/checkpoint`): its size and root. */
  published?: { size: number; root: Buffer };
}

/** Where a tenant's chain ends: its last page's last seq, or the seq before the hold that stops it. */
export interface ChainTail {
  seq: number;
  heldAt?: number;
}

export class ArchiveCheckpointStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Every tenant whose chain has begun: registered by the sealer with the chain's first page. */
  async tenants(): Promise<string[]> {
    const found: string[] = [];
    for await (const item of queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.chainTenantsPartition },
        ConsistentRead: true,
      },
      'chain tenants read',
    ))
      found.push(String(item.sk));
    return found.sort();
  }

  /**
   * Finds every tenant with a chain from the chain's own first items (the page or hold at seq 1)
   * and registers those that are not yet: for chains begun before the sealer registered tenants
   * (`oc archive --discover`, once after upgrading). A filtered scan: it reads the whole table.
   */
  async discover(): Promise<string[]> {
    const found = new Set<string>();
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await readOrFail(
        () =>
          this.doc.send(
            new ScanCommand({
              TableName: this.table,
              FilterExpression: 'sk = :first AND (#type = :page OR #type = :hold)',
              ProjectionExpression: 'tenant_id',
              ExpressionAttributeNames: { '#type': 'type' },
              ExpressionAttributeValues: {
                ':first': keys.chainPage('x', 1).sk,
                ':page': ITEM_TYPE.chainPage,
                ':hold': ITEM_TYPE.chainHold,
              },
              ExclusiveStartKey: startKey,
            }),
          ),
        'chain tenants scan',
      );
      for (const item of out.Items ?? []) if (typeof item.tenant_id === 'string') found.add(item.tenant_id);
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    const registered = new Set(await this.tenants());
    for (const tenantId of found)
      if (!registered.has(tenantId)) await registerChainTenant(this.doc, this.table, tenantId);
    return [...found].sort();
  }

  async checkpoint(tenantId: string): Promise<ArchiveCheckpoint> {
    const out = await readOrFail(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk = :sk',
          ExpressionAttributeValues: {
            ':pk': keys.archiveCheckpoint(tenantId).pk,
            ':sk': keys.archiveCheckpoint(tenantId).sk,
          },
          ConsistentRead: true,
        }),
      ),
    );
    const item = out.Items?.[0];
    if (!item) return { head: GENESIS };
    return {
      head: { seq: Number(item.seq ?? 0), hash: String(item.hash ?? '') },
      ...(item.pending_to !== undefined
        ? { pending: { fromSeq: Number(item.pending_from), toSeq: Number(item.pending_to) } }
        : {}),
      ...(typeof item.bundle_key === 'string' ? { bundleKey: item.bundle_key } : {}),
      ...(item.tree_edge instanceof Uint8Array ? { edge: Buffer.from(item.tree_edge) } : {}),
      ...(typeof item.log_size === 'number' && item.log_root instanceof Uint8Array
        ? { published: { size: item.log_size, root: Buffer.from(item.log_root) } }
        : {}),
    };
  }

  /** The chain's last seq (before a hold, if it is held). */
  async tail(tenantId: string): Promise<ChainTail> {
    const item = await lastChainItem(this.doc, this.table, tenantId);
    if (!item) return { seq: 0 };
    if (item.type === ITEM_TYPE.chainHold)
      return { seq: Number(item.from_seq) - 1, heldAt: Number(item.from_seq) };
    return { seq: Number(item.to_seq) };
  }

  /** Claims `fromSeq..toSeq` on the archived head `head`; false if the checkpoint moved or is claimed. */
  async claim(
    tenantId: string,
    head: ChainHead,
    range: { fromSeq: number; toSeq: number },
  ): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.archiveCheckpoint(tenantId),
          UpdateExpression:
            'SET #type = :type, tenant_id = :tenant, seq = if_not_exists(seq, :zero), #hash = if_not_exists(#hash, :empty), pending_from = :from, pending_to = :to',
          ConditionExpression:
            '(attribute_not_exists(pk) AND :headSeq = :zero OR seq = :headSeq AND #hash = :headHash) AND attribute_not_exists(pending_to)',
          ExpressionAttributeNames: { '#type': 'type', '#hash': 'hash' },
          ExpressionAttributeValues: {
            ':type': ITEM_TYPE.archiveCheckpoint,
            ':tenant': tenantId,
            ':zero': 0,
            ':empty': '',
            ':from': range.fromSeq,
            ':to': range.toSeq,
            ':headSeq': head.seq,
            ':headHash': head.hash,
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalFailure(error)) return false;
      throw new StorageError('archive checkpoint claim failed', error);
    }
  }

  /**
   * Moves the archived head past the claimed range, with the tree's edge at the new head (if the
   * log is kept); false if another archiver already did. The edge is a function of the chain up
   * to the head, so whoever advances writes the same bytes.
   */
  async advance(
    tenantId: string,
    from: ChainHead,
    to: ChainHead,
    bundle: { key: string; sha256: string },
    now: Date,
    edge?: Buffer,
  ): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.archiveCheckpoint(tenantId),
          // Without an edge (the log off) the stored one would no longer match the head: removed,
          // so that a run with the log rebuilds it from seq 1.
          UpdateExpression: `SET seq = :to, #hash = :hash, bundle_key = :key, bundle_sha256 = :sha, archived_at = :now${edge ? ', tree_edge = :edge' : ''} REMOVE pending_from, pending_to${edge ? '' : ', tree_edge'}`,
          ConditionExpression:
            'seq = :headSeq AND #hash = :headHash AND pending_from = :from AND pending_to = :to',
          ExpressionAttributeNames: { '#hash': 'hash' },
          ExpressionAttributeValues: {
            ':to': to.seq,
            ':hash': to.hash,
            ':key': bundle.key,
            ':sha': bundle.sha256,
            ':now': now.toISOString(),
            ':headSeq': from.seq,
            ':headHash': from.hash,
            ':from': from.seq + 1,
            ...(edge ? { ':edge': edge } : {}),
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalFailure(error)) return false;
      throw new StorageError('archive checkpoint advance failed', error);
    }
  }

  /**
   * Stores the edge rebuilt from seq 1 for a checkpoint archived before the log existed (the
   * migration), only on that head and only if none is stored; false if the checkpoint moved.
   */
  async setEdge(tenantId: string, head: ChainHead, edge: Buffer): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.archiveCheckpoint(tenantId),
          UpdateExpression: 'SET tree_edge = :edge',
          ConditionExpression: 'seq = :seq AND #hash = :hash AND attribute_not_exists(tree_edge)',
          ExpressionAttributeNames: { '#hash': 'hash' },
          ExpressionAttributeValues: { ':edge': edge, ':seq': head.seq, ':hash': head.hash },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalFailure(error)) return false;
      throw new StorageError('archive tree edge write failed', error);
    }
  }

  /**
   * Records the log checkpoint just published (what the next run checks the bucket against);
   * never moves back to a smaller tree.
   */
  async recordPublished(tenantId: string, size: number, root: Buffer): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.archiveCheckpoint(tenantId),
          UpdateExpression: 'SET log_size = :size, log_root = :root',
          ConditionExpression:
            'attribute_exists(pk) AND (attribute_not_exists(log_size) OR log_size <= :size)',
          ExpressionAttributeValues: { ':size': size, ':root': root },
        }),
      );
    } catch (error) {
      if (isConditionalFailure(error)) return; // a newer one is recorded already
      throw new StorageError('archive log checkpoint record failed', error);
    }
  }

  /**
   * Chain entries `fromSeq..toSeq` in order, read page by page from the page that holds `fromSeq`
   * (each Query answer is at most 1 MB, so memory does not grow with the chain). Stops at a hold.
   */
  async *range(tenantId: string, fromSeq: number, toSeq: number): AsyncGenerator<ChainEntry> {
    const pk = keys.chainPartition(tenantId);
    // The page that holds fromSeq is the last one keyed at or before it.
    const start = await readOrFail(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
          ExpressionAttributeValues: {
            ':pk': pk,
            ':lo': keys.chainPagePrefix,
            ':hi': keys.chainPage(tenantId, fromSeq).sk,
          },
          ScanIndexForward: false,
          Limit: 1,
          ConsistentRead: true,
          ProjectionExpression: 'sk',
        }),
      ),
    );
    const startSk = String(start.Items?.[0]?.sk ?? keys.chainPage(tenantId, fromSeq).sk);
    const items = queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: { ':pk': pk, ':from': startSk, ':to': keys.chainPage(tenantId, toSeq).sk },
        ConsistentRead: true,
      },
      'chain range read',
    );
    for await (const item of items) {
      if (item.type !== ITEM_TYPE.chainPage) return;
      let prev = String(item.prev_hash);
      for (const e of decodeEntries(item.entries)) {
        const entry = { seq: e.seq, prev_hash: prev, hash: e.hash, record: e.record as SealedRecord };
        prev = e.hash;
        if (entry.seq > toSeq) return;
        if (entry.seq >= fromSeq) yield entry;
      }
    }
  }
}

/**
 * Reads what shadow mode recorded (issue 24): the events whose candidate decided otherwise, by
 * tenant and time, through their sparse listing on the one index (`keys.shadowListing`), then
 * their `shadow` attribute (BatchGetItem, 100 events a request). Never a scan: the listing holds
 * only events with a difference, and tenants come from the chain's registry.
 */
import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ShadowDiffEntry, ShadowRecord } from '../core/shadow.js';
import { TABLE } from '../shared/constants.js';
import { ArchiveCheckpointStore } from './archive-checkpoints.js';
import { queryAll, readOrFail } from './dynamo.js';
import { keys } from './keys.js';

export type ShadowDiff = ShadowDiffEntry;

const DECISIONS = ['allow', 'approve', 'deny'];

/** A stored attribute read back: anything else (an item written by hand) is skipped, not trusted. */
function toRecord(value: unknown): ShadowRecord | undefined {
  const r = value as Partial<ShadowRecord> | undefined;
  if (!r || typeof r !== 'object') return undefined;
  if (!DECISIONS.includes(String(r.decision)) || !DECISIONS.includes(String(r.enforced))) return undefined;
  if (typeof r.action !== 'string' || typeof r.reason !== 'string' || typeof r.policy_version !== 'string')
    return undefined;
  return r as ShadowRecord;
}

export class ShadowDiffStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Every tenant whose chain has begun (a tenant with a recorded decision has one). */
  tenants(): Promise<string[]> {
    return new ArchiveCheckpointStore(this.doc, this.table).tenants();
  }

  /**
   * The tenant's differences decided at or after `since` (an ISO time as `Date#toISOString` writes
   * it: the listing sorts by that text), oldest first, a page at a time.
   */
  async *diffs(tenantId: string, since?: string): AsyncGenerator<ShadowDiff[]> {
    const listing = keys.shadowListing(tenantId, '', '');
    const pending: { pk: string; at: string; eventId: string }[] = [];
    const flush = async (): Promise<ShadowDiff[]> => {
      const batch = pending.splice(0, pending.length);
      const byPk = new Map(batch.map((b) => [b.pk, b]));
      const found: ShadowDiff[] = [];
      let request:
        Record<string, { Keys: Record<string, unknown>[]; ProjectionExpression: string }> | undefined = {
        [this.table]: {
          Keys: batch.map((b) => ({ pk: b.pk, sk: keys.event(tenantId, b.eventId).sk })),
          ProjectionExpression: 'pk, shadow',
        },
      };
      while (request && Object.keys(request).length > 0) {
        const out = await readOrFail(
          () => this.doc.send(new BatchGetCommand({ RequestItems: request })),
          'shadow diffs read',
        );
        for (const item of out.Responses?.[this.table] ?? []) {
          const ref = byPk.get(String(item.pk));
          const record = toRecord(item.shadow);
          if (ref && record)
            found.push({ ...record, tenant_id: tenantId, event_id: ref.eventId, at: ref.at });
        }
        request = out.UnprocessedKeys as typeof request;
      }
      return found.sort((a, b) => a.at.localeCompare(b.at) || a.event_id.localeCompare(b.event_id));
    };
    for await (const item of queryAll(
      this.doc,
      {
        TableName: this.table,
        IndexName: TABLE.gsi1.name,
        KeyConditionExpression: `${TABLE.gsi1.partitionKey} = :pk AND ${TABLE.gsi1.sortKey} >= :since`,
        // Every ISO time sorts after "0": no `since` reads the whole listing.
        ExpressionAttributeValues: { ':pk': listing.gsi1pk, ':since': since ?? '0' },
      },
      'shadow listing read',
    )) {
      const sortKey = String(item[TABLE.gsi1.sortKey]);
      const cut = sortKey.lastIndexOf('#');
      pending.push({ pk: String(item.pk), at: sortKey.slice(0, cut), eventId: sortKey.slice(cut + 1) });
      if (pending.length === 100) yield await flush();
    }
    if (pending.length > 0) yield await flush();
  }
}

/**
 * Every DynamoDB key of the single table, in one place. Tenant-scoped items carry the tenant in
 * the partition key, so a lookup under another tenant's key cannot find them.
 */
import { ITEM_TYPE } from '../shared/constants.js';

const seqPart = (seq: number) => String(seq).padStart(12, '0');

export const keys = {
  apiKey: (keyHash: string) => ({ pk: `KEY#${keyHash}`, sk: 'KEY' }),
  event: (tenantId: string, eventId: string) => ({ pk: `T#${tenantId}#EVT#${eventId}`, sk: 'EVENT' }),
  /** Facts live in their event's partition, ordered by their index within the event. */
  fact: (tenantId: string, eventId: string, index: number, kind: string) => ({
    pk: `T#${tenantId}#EVT#${eventId}`,
    sk: `FACT#${String(index).padStart(3, '0')}#${kind}`,
  }),
  factPrefix: 'FACT#',
  /** The single-use grant and the execution claim live in their event's partition too. */
  grant: (tenantId: string, eventId: string) => ({ pk: `T#${tenantId}#EVT#${eventId}`, sk: 'GRANT' }),
  execution: (tenantId: string, eventId: string) => ({ pk: `T#${tenantId}#EVT#${eventId}`, sk: 'EXECUTION' }),
  /** Sparse GSI entry that exists only while a fact is unsealed. */
  unsealedFact: (tenantId: string, createdAt: string, factId: string) => ({
    gsi1pk: `T#${tenantId}#UNSEALED`,
    gsi1sk: `${createdAt}#${factId}`,
  }),
  unsealedPartition: (tenantId: string) => `T#${tenantId}#UNSEALED`,
  idempotency: (tenantId: string, keyHash: string) => ({ pk: `T#${tenantId}#IDEM#${keyHash}`, sk: 'IDEM' }),
  approval: (tenantId: string, approvalId: string) => ({
    pk: `T#${tenantId}#APR#${approvalId}`,
    sk: 'APPROVAL',
  }),
  approvalListing: (tenantId: string, status: string, createdAt: string, approvalId: string) => ({
    gsi1pk: `T#${tenantId}#APR#${status}`,
    gsi1sk: `${createdAt}#${approvalId}`,
  }),
  chainHead: (tenantId: string) => ({ pk: `T#${tenantId}#CHAIN`, sk: 'HEAD' }),
  chainEntry: (tenantId: string, seq: number) => ({ pk: `T#${tenantId}#CHAIN`, sk: `SEQ#${seqPart(seq)}` }),
  chainPartition: (tenantId: string) => `T#${tenantId}#CHAIN`,
  chainEntryPrefix: 'SEQ#',
  rateLimit: (tenantId: string) => ({ pk: `T#${tenantId}#RL`, sk: 'RL' }),
  streamCursor: (streamArn: string, shardId: string) => ({ pk: `CURSOR#${streamArn}`, sk: shardId }),
  /** Every tenant that has a key: the expiry sweep walks these. */
  tenant: (tenantId: string) => ({ pk: 'TENANTS', sk: tenantId }),
  tenantsPartition: 'TENANTS',
} as const;

export { ITEM_TYPE };

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
  /** Prefix of every event partition of a tenant (the unsealed-fact scan of `oc verify`). */
  eventPartitionPrefix: (tenantId: string) => `T#${tenantId}#EVT#`,
  approval: (tenantId: string, approvalId: string) => ({
    pk: `T#${tenantId}#APR#${approvalId}`,
    sk: 'APPROVAL',
  }),
  /** One approver's vote on a quorum approval (issue 21): at most one item per (approval, approver). */
  approvalVote: (tenantId: string, approvalId: string, approverId: string) => ({
    pk: `T#${tenantId}#APR#${approvalId}`,
    sk: `VOTE#${approverId}`,
  }),
  /** A notification's delivery record lives in its approval's partition (one Query lists them). */
  delivery: (tenantId: string, approvalId: string, deliveryId: string) => ({
    pk: `T#${tenantId}#APR#${approvalId}`,
    sk: `DLV#${deliveryId}`,
  }),
  deliveryPrefix: 'DLV#',
  approvalListing: (tenantId: string, status: string, createdAt: string, approvalId: string) => ({
    gsi1pk: `T#${tenantId}#APR#${status}`,
    gsi1sk: `${createdAt}#${approvalId}`,
  }),
  /** A page of chain entries, keyed by its first seq: the chain is the pages in key order. */
  chainPage: (tenantId: string, fromSeq: number) => ({
    pk: `T#${tenantId}#CHAIN`,
    sk: `SEQ#${seqPart(fromSeq)}`,
  }),
  chainPartition: (tenantId: string) => `T#${tenantId}#CHAIN`,
  chainPagePrefix: 'SEQ#',
  /** Facts waiting behind a held chain, in the chain's partition, ordered by the fact's time. */
  chainParkedPrefix: 'PARK#',
  /** The registry of held chains: what the release job walks. */
  chainHoldEntry: (tenantId: string) => ({ pk: 'CHAIN_HOLDS', sk: tenantId }),
  chainHoldsPartition: 'CHAIN_HOLDS',
  /**
   * Every tenant whose chain has begun: the sealer registers it with the chain's first page, and the
   * archiver walks these (no scan of the table per run).
   */
  chainTenant: (tenantId: string) => ({ pk: 'CHAIN_TENANTS', sk: tenantId }),
  chainTenantsPartition: 'CHAIN_TENANTS',
  /** How far the tenant's chain is archived (beside its pages; `ARCHIVE` sorts before `PARK#`/`SEQ#`). */
  archiveCheckpoint: (tenantId: string) => ({ pk: `T#${tenantId}#CHAIN`, sk: 'ARCHIVE' }),
  /**
   * A record a consumer parked, in its tenant's partition (`_` for one whose tenant cannot be read:
   * no tenant id starts with `_`). Listed, due first, by the index: `PARKED` / `<next retry>#…`.
   */
  parkedRecord: (tenantId: string, consumer: string, recordId: string) => ({
    pk: `T#${tenantId}#PARKED`,
    sk: `${consumer}#${recordId}`,
  }),
  parkedListing: (nextRetryAt: string, tenantId: string, consumer: string, recordId: string) => ({
    gsi1pk: 'PARKED',
    gsi1sk: `${nextRetryAt}#${tenantId}#${consumer}#${recordId}`,
  }),
  parkedListingPartition: 'PARKED',
  /**
   * An event whose shadow candidate decided otherwise (issue 24): a sparse listing on the event
   * item itself, set in the decision's one write, that `oc policy shadow-report` queries by tenant
   * and time (events have no other index entry).
   */
  shadowListing: (tenantId: string, at: string, eventId: string) => ({
    gsi1pk: `T#${tenantId}#SHADOW`,
    gsi1sk: `${at}#${eventId}`,
  }),
  /**
   * A pending approval's reminder (issue 21 deliverable 5): one sparse partition for every tenant,
   * sorted by when it is due, so the expiry sweep reads what is due with one Query a run.
   */
  reminder: (remindAt: string, tenantId: string, approvalId: string) => ({
    pk: 'REMINDERS',
    sk: `${remindAt}#${tenantId}#${approvalId}`,
  }),
  remindersPartition: 'REMINDERS',
  /** A standing grant (issue 21 deliverable 6), in its tenant's grant partition (one Query lists them). */
  standingGrant: (tenantId: string, grantId: string) => ({ pk: `T#${tenantId}#SGR`, sk: grantId }),
  standingGrantsPartition: (tenantId: string) => `T#${tenantId}#SGR`,
  rateLimit: (tenantId: string) => ({ pk: `T#${tenantId}#RL`, sk: 'RL' }),
  streamCursor: (streamArn: string, shardId: string) => ({ pk: `CURSOR#${streamArn}`, sk: shardId }),
  /** Every tenant that has a key: the expiry sweep walks these. */
  tenant: (tenantId: string) => ({ pk: 'TENANTS', sk: tenantId }),
  tenantsPartition: 'TENANTS',
  /** One per Slack request signature acted on: a replay finds it and is refused. */
  slackReplay: (signature: string) => ({ pk: `SLACKSIG#${signature}`, sk: 'SLACKSIG' }),
} as const;

export { ITEM_TYPE };

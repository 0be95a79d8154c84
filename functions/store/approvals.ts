/** DynamoDB repository for approval requests, their decisions, grants and expiry. */
import { DeleteCommand, GetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DecisionOutcome, Grant, PolicyRevocation, StoredApproval } from '../core/approvals.js';
import type { Vote, VoteOutcome, withdrawVote } from '../core/quorum.js';
import type { FactRecord } from '../core/evidence.js';
import { summaryOf, type StandingGrant, type StandingGrantSummary } from '../core/grants.js';
import type { DueReminder, Extension, ExtensionOutcome } from '../core/reminders.js';
import { LEGACY_VIEW } from '../core/approval-view.js';
import type { ApprovalRecord } from '../core/ports.js';
import { ITEM_TYPE, TABLE } from '../shared/constants.js';
import { badRequest, StorageError } from '../shared/errors.js';
import { UUID_PATTERN } from '../shared/input-rules.js';
import { queryAll, readOrFail } from './dynamo.js';
import { standingGrantItem } from './grants.js';
import { keys } from './keys.js';
import { unpackText } from './packed-text.js';
import { putFact } from './toolcalls.js';
import { transact } from './transact.js';

export type DecideResult = { ok: true } | { ok: false; current: StoredApproval | undefined };

export interface ApprovalPage {
  items: StoredApproval[];
  nextCursor?: string;
}

/** `T#<tenant>#APR#<approval id>` (tenant ids have no `#`). */
const APPROVAL_PARTITION = /^T#([^#]+)#APR#([^#]+)$/;

/**
 * The approval record from its item: the request fields from `approval`, the rest from the key and
 * the top-level attributes (items written before the record was slimmed carry it all in `approval`).
 */
export function toStoredApproval(item: Record<string, unknown>): StoredApproval {
  const stored = JSON.parse(unpackText(item.approval) ?? '') as Partial<ApprovalRecord>;
  const [, tenantId, approvalId] = APPROVAL_PARTITION.exec(String(item.pk)) ?? [];
  // In the order the record was created in, so that the API's JSON reads as it always did.
  const { event_id, requirements, notify, ...middle } = stored;
  const record = {
    id: approvalId ?? stored.id,
    event_id,
    tenant_id: tenantId ?? stored.tenant_id,
    ...middle,
    status: (item.status as ApprovalRecord['status'] | undefined) ?? stored.status,
    created_at: typeof item.created_at === 'string' ? item.created_at : stored.created_at,
    expires_at: typeof item.expires_at === 'string' ? item.expires_at : stored.expires_at,
    // Not in the listing index: the listing never shows it (decisions read the item itself).
    request_hash: typeof item.request_hash === 'string' ? item.request_hash : (stored.request_hash ?? ''),
    requirements,
    notify,
    // Approvals created before views existed have no stamp: they say so, never a made-up hash.
    view: stored.view ?? { version: LEGACY_VIEW },
  } as ApprovalRecord;
  return {
    record,
    status: item.status as StoredApproval['status'],
    ...(typeof item.decided_by === 'string' ? { decided_by: item.decided_by } : {}),
    ...(typeof item.decided_at === 'string' ? { decided_at: item.decided_at } : {}),
    ...(typeof item.comment === 'string' ? { comment: item.comment } : {}),
    ...(typeof item.deny_reason === 'string' ? { deny_reason: item.deny_reason } : {}),
    ...(typeof item.grant === 'string' ? { grant: JSON.parse(item.grant) as Grant } : {}),
    ...(typeof item.revocation === 'string'
      ? { revocation: JSON.parse(item.revocation) as PolicyRevocation }
      : {}),
    ...(typeof item.votes === 'string' ? { votes: JSON.parse(item.votes) as Vote[] } : {}),
    ...(item.vote_rev !== undefined ? { vote_rev: Number(item.vote_rev) } : {}),
    ...(typeof item.remind_at === 'string' ? { remind_at: item.remind_at } : {}),
    ...(typeof item.reminded_at === 'string' ? { reminded_at: item.reminded_at } : {}),
    ...(typeof item.extensions === 'string'
      ? { extensions: JSON.parse(item.extensions) as Extension[] }
      : {}),
    ...(item.notice === 'reminder' || item.notice === 'extended' || item.notice === 'vote'
      ? { notice: item.notice }
      : {}),
    ...(typeof item.notices === 'number' ? { notices: item.notices } : {}),
    ...(typeof item.standing_grant === 'string'
      ? { standing_grant: JSON.parse(item.standing_grant) as StandingGrantSummary }
      : {}),
  };
}

export type VoteResult =
  { ok: true } | { ok: false; reason: 'voted' | 'changed'; current: StoredApproval | undefined };

/** The approval item's condition for a vote: pending, unexpired, and at the revision the vote read. */
function atRevision(rev: number, now: Date) {
  return {
    ConditionExpression:
      '#status = :pending AND expires_at > :now AND ' +
      (rev === 0 ? '(attribute_not_exists(vote_rev) OR vote_rev = :rev)' : 'vote_rev = :rev'),
    values: {
      ':pending': 'pending',
      ':now': now.toISOString(),
      ':rev': rev,
      ':next': rev + 1,
      // The outbox announces the approval's latest change: this vote (core/notifications.ts).
      ':vote': 'vote',
    },
  };
}

/** Seconds since the epoch a day after `iso`: when a leftover reminder item may go (TTL). */
const ttlAfter = (iso: string) => Math.floor(Date.parse(iso) / 1000) + 86_400;

/** A pending approval's reminder item (sparse: only approvals whose tenant asks for reminders have one). */
export function reminderItem(
  tenantId: string,
  approvalId: string,
  remindAt: string,
): Record<string, unknown> {
  return {
    ...keys.reminder(remindAt, tenantId, approvalId),
    type: ITEM_TYPE.reminder,
    [TABLE.ttlAttribute]: ttlAfter(remindAt),
  };
}

/** `<remind at>#<tenant>#<approval id>` (tenant ids have no `#`; ISO times none either). */
const REMINDER_SORT_KEY = /^([^#]+)#([^#]+)#([^#]+)$/;

/** Cursors are the listing's last key, bound to the tenant and status they were issued for. */
function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** `<created_at (ISO 8601, UTC)>#<approval id>`, as `approvalListing` builds it. */
const LISTING_SORT_KEY = new RegExp(
  `^(\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,9})?Z)#(${UUID_PATTERN.source.slice(1, -1)})$`,
);

/**
 * A cursor must be exactly a key this listing could have returned: the tenant's listing partition
 * for this status, a sort key `<created_at>#<approval id>`, and that approval's own item key. A
 * forged or edited cursor is a 400, never handed to DynamoDB (which would refuse a malformed start
 * key with a 500-class ValidationException).
 */
function decodeCursor(cursor: string, tenantId: string, status: string): Record<string, unknown> {
  const fail = () =>
    badRequest('invalid cursor', [{ path: '/cursor', message: 'use next_cursor from a previous page' }]);
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw fail();
  }
  if (typeof key !== 'object' || key === null || Array.isArray(key)) throw fail();
  const k = key as Record<string, unknown>;
  const sortKey = typeof k.gsi1sk === 'string' ? LISTING_SORT_KEY.exec(k.gsi1sk) : null;
  if (!sortKey || Object.keys(k).length !== 4) throw fail();
  const [, createdAt = '', approvalId = ''] = sortKey;
  const expected = {
    ...keys.approvalListing(tenantId, status, createdAt, approvalId),
    ...keys.approval(tenantId, approvalId),
  };
  if (k.gsi1pk !== expected.gsi1pk || k.pk !== expected.pk || k.sk !== expected.sk) throw fail();
  return expected;
}

/**
 * The grant item: an edited approval's grant carries the edited request and its patch as JSON
 * strings (read back by `toolcalls.ts`), so DynamoDB never re-types a param value.
 */
export function grantItem(grant: Grant): Record<string, unknown> {
  const { request, edit, ...rest } = grant;
  return {
    ...rest,
    ...(request ? { request: JSON.stringify(request) } : {}),
    ...(edit ? { edit: JSON.stringify(edit) } : {}),
  };
}

/** The grant's item, put once in a decision's transaction (single approver, quorum or edit). */
export function putGrant(table: string, r: { tenant_id: string; event_id: string }, grant: Grant) {
  return {
    Put: {
      TableName: table,
      Item: { ...keys.grant(r.tenant_id, r.event_id), type: ITEM_TYPE.grant, ...grantItem(grant) },
      ConditionExpression: 'attribute_not_exists(pk)',
    },
  };
}

/** The approval item keeps the grant as issued, without the edited request (its record holds it). */
const approvalsGrant = (grant: Grant): Grant => {
  const { request: _request, ...rest } = grant;
  return rest;
};

export class ApprovalStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(tenantId: string, approvalId: string): Promise<StoredApproval | undefined> {
    const out = await readOrFail(() =>
      this.doc.send(
        new GetCommand({
          TableName: this.table,
          Key: keys.approval(tenantId, approvalId),
          ConsistentRead: true,
        }),
      ),
    );
    return out.Item ? toStoredApproval(out.Item) : undefined;
  }

  /** Newest first; a pending listing leaves out requests already past their expiry. */
  async list(
    tenantId: string,
    status: string,
    limit: number,
    cursor: string | undefined,
    now: Date,
  ): Promise<ApprovalPage> {
    const startKey = cursor ? decodeCursor(cursor, tenantId, status) : undefined;
    const out = await readOrFail(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: TABLE.gsi1.name,
          KeyConditionExpression: `${TABLE.gsi1.partitionKey} = :pk`,
          ExpressionAttributeValues: {
            ':pk': keys.approvalListing(tenantId, status, '', '').gsi1pk,
            ...(status === 'pending' ? { ':now': now.toISOString() } : {}),
          },
          ...(status === 'pending' ? { FilterExpression: 'expires_at > :now' } : {}),
          ScanIndexForward: false,
          Limit: limit,
          ExclusiveStartKey: startKey,
        }),
      ),
    );
    return {
      items: (out.Items ?? []).map(toStoredApproval),
      ...(out.LastEvaluatedKey ? { nextCursor: encodeCursor(out.LastEvaluatedKey) } : {}),
    };
  }

  /** Records a decision if, and only if, the request is still pending and unexpired. */
  async decide(
    a: StoredApproval,
    outcome: DecisionOutcome,
    now: Date,
    standing?: StandingGrant,
  ): Promise<DecideResult> {
    const r = a.record;
    const listing = keys.approvalListing(r.tenant_id, outcome.status, r.created_at, r.id);
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.approval(r.tenant_id, r.id),
          UpdateExpression:
            'SET #status = :status, decided_by = :by, decided_at = :at, gsi1pk = :gpk' +
            (outcome.comment ? ', #comment = :comment' : '') +
            (outcome.denyReason ? ', deny_reason = :reason' : '') +
            (outcome.grant ? ', #grant = :grant' : '') +
            (standing ? ', standing_grant = :standing' : ''),
          // On the request the decision read: an approver's edit (core/edit.ts) committed since
          // changed what is decided, so this decision is on another view (items from before the
          // hash was a top-level attribute have none, and are never edited without setting it).
          ConditionExpression:
            '#status = :pending AND expires_at > :now AND (attribute_not_exists(request_hash) OR request_hash = :read)',
          ExpressionAttributeNames: {
            '#status': 'status',
            ...(outcome.comment ? { '#comment': 'comment' } : {}),
            ...(outcome.grant ? { '#grant': 'grant' } : {}),
          },
          ExpressionAttributeValues: {
            ':status': outcome.status,
            ':by': outcome.decidedBy,
            ':at': outcome.decidedAt,
            ':gpk': listing.gsi1pk,
            ':pending': 'pending',
            ':now': now.toISOString(),
            ':read': r.request_hash,
            ...(outcome.comment ? { ':comment': outcome.comment } : {}),
            ...(outcome.denyReason ? { ':reason': outcome.denyReason } : {}),
            ...(outcome.grant ? { ':grant': JSON.stringify(approvalsGrant(outcome.grant)) } : {}),
            ...(standing ? { ':standing': JSON.stringify(summaryOf(standing)) } : {}),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      ...(standing
        ? [
            {
              Put: {
                TableName: this.table,
                Item: standingGrantItem(standing),
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ]
        : []),
      ...(outcome.grant ? [putGrant(this.table, r, outcome.grant)] : []),
      putFact(this.table, outcome.fact),
    ]);
    if (result.ok) return { ok: true };
    if (result.index !== 0) throw new StorageError(`approval decision rejected at item ${result.index}`);
    return {
      ok: false,
      current: result.item ? toStoredApproval(result.item) : await this.get(r.tenant_id, r.id),
    };
  }

  /**
   * A quorum vote (core/quorum.ts), in one transaction: the voter's vote item (a conditional put:
   * one per approval and approver), the approval item (only while pending, unexpired and at the
   * revision the vote was counted from; it takes the new votes and revision, and, when this vote
   * completes the last stage, the approved status and grant), the grant item and the facts, and
   * the standing grant the quorum agreed on, if any.
   */
  async vote(a: StoredApproval, outcome: VoteOutcome, now: Date): Promise<VoteResult> {
    const r = a.record;
    const cond = atRevision(outcome.rev, now);
    const final = outcome.final;
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.approval(r.tenant_id, r.id),
          UpdateExpression:
            'SET votes = :votes, vote_rev = :next, notice = :vote' +
            (final
              ? ', #status = :approved, decided_by = :by, decided_at = :at, gsi1pk = :gpk, #grant = :grant' +
                (final.comment ? ', #comment = :comment' : '') +
                (final.standingSummary ? ', standing_grant = :standing' : '')
              : ''),
          ConditionExpression: cond.ConditionExpression,
          ExpressionAttributeNames: {
            '#status': 'status',
            ...(final ? { '#grant': 'grant' } : {}),
            ...(final?.comment ? { '#comment': 'comment' } : {}),
          },
          ExpressionAttributeValues: {
            ...cond.values,
            ':votes': JSON.stringify(outcome.votes),
            ...(final
              ? {
                  ':approved': 'approved',
                  ':by': outcome.vote.approver,
                  ':at': final.decidedAt,
                  ':gpk': keys.approvalListing(r.tenant_id, 'approved', r.created_at, r.id).gsi1pk,
                  ':grant': JSON.stringify(approvalsGrant(final.grant)),
                  ...(final.comment ? { ':comment': final.comment } : {}),
                  ...(final.standingSummary ? { ':standing': JSON.stringify(final.standingSummary) } : {}),
                }
              : {}),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      {
        Put: {
          TableName: this.table,
          Item: {
            ...keys.approvalVote(r.tenant_id, r.id, outcome.vote.approver),
            type: ITEM_TYPE.approvalVote,
            stage: outcome.vote.stage,
            at: outcome.vote.at,
            via: outcome.vote.via,
            fact_id: outcome.vote.fact_id,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      putFact(this.table, outcome.fact),
      // An edited approval's grant carries the edited request (as `decide` writes it).
      ...(final ? [putGrant(this.table, r, final.grant), putFact(this.table, final.fact)] : []),
      // The standing grant the whole quorum agreed on: in the transaction that completes it, so
      // exactly one exists however the votes race (only one write holds at the revision read).
      ...(final?.standing
        ? [
            {
              Put: {
                TableName: this.table,
                Item: standingGrantItem(final.standing),
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ]
        : []),
    ]);
    if (result.ok) return { ok: true };
    if (result.index === 1) return { ok: false, reason: 'voted', current: undefined };
    if (result.index !== 0) throw new StorageError(`approval vote rejected at item ${result.index}`);
    return {
      ok: false,
      reason: 'changed',
      current: result.item ? toStoredApproval(result.item) : await this.get(r.tenant_id, r.id),
    };
  }

  /** Takes back an approve vote: its item goes, the approval item's votes move on a revision. */
  async unvote(a: StoredApproval, w: ReturnType<typeof withdrawVote>, now: Date): Promise<DecideResult> {
    const r = a.record;
    const cond = atRevision(w.rev, now);
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.approval(r.tenant_id, r.id),
          UpdateExpression: 'SET votes = :votes, vote_rev = :next, notice = :vote',
          ConditionExpression: cond.ConditionExpression,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ...cond.values, ':votes': JSON.stringify(w.votes) },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      {
        Delete: {
          TableName: this.table,
          Key: keys.approvalVote(r.tenant_id, r.id, w.removed.approver),
          ConditionExpression: 'attribute_exists(pk)',
        },
      },
      putFact(this.table, w.fact),
    ]);
    if (result.ok) return { ok: true };
    if (result.index !== 0) throw new StorageError(`vote withdrawal rejected at item ${result.index}`);
    return {
      ok: false,
      current: result.item ? toStoredApproval(result.item) : await this.get(r.tenant_id, r.id),
    };
  }

  /**
   * The agent's withdrawal (core/withdraw.ts): `withdrawn` only while pending and unexpired, with
   * its fact, in one transaction. The decision's condition (`status = pending`) then refuses every
   * later approve or deny, so no grant is ever issued for it.
   */
  async withdraw(
    a: StoredApproval,
    w: { by: string; at: string; fact: FactRecord },
    now: Date,
  ): Promise<DecideResult> {
    const r = a.record;
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.approval(r.tenant_id, r.id),
          UpdateExpression: 'SET #status = :withdrawn, decided_by = :by, decided_at = :at, gsi1pk = :gpk',
          ConditionExpression: '#status = :pending AND expires_at > :now',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':withdrawn': 'withdrawn',
            ':by': w.by,
            ':at': w.at,
            ':pending': 'pending',
            ':now': now.toISOString(),
            ':gpk': keys.approvalListing(r.tenant_id, 'withdrawn', r.created_at, r.id).gsi1pk,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      putFact(this.table, w.fact),
    ]);
    if (result.ok) return { ok: true };
    if (result.index !== 0) throw new StorageError(`approval withdrawal rejected at item ${result.index}`);
    return {
      ok: false,
      current: result.item ? toStoredApproval(result.item) : await this.get(r.tenant_id, r.id),
    };
  }

  /** Marks a pending request past its expiry `expired` and records the fact; false if it was decided first. */
  async expire(a: StoredApproval, fact: FactRecord, now: Date): Promise<boolean> {
    const r = a.record;
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.approval(r.tenant_id, r.id),
          UpdateExpression: 'SET #status = :expired, gsi1pk = :gpk',
          ConditionExpression: '#status = :pending AND expires_at <= :now',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':expired': 'expired',
            ':pending': 'pending',
            ':now': now.toISOString(),
            ':gpk': keys.approvalListing(r.tenant_id, 'expired', r.created_at, r.id).gsi1pk,
          },
        },
      },
      putFact(this.table, fact),
    ]);
    return result.ok;
  }

  /**
   * An approver's extension (core/reminders.ts): the new deadline, the history, a notice for the
   * outbox, the reminder moved with the deadline, and the `approval.extended` fact, in ONE
   * transaction that holds only while the request is pending at the deadline the approver saw
   * (two extensions racing: one wins, the other reads the request as it now is).
   */
  async extend(a: StoredApproval, x: ExtensionOutcome, now: Date): Promise<DecideResult> {
    const r = a.record;
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.approval(r.tenant_id, r.id),
          UpdateExpression:
            'SET expires_at = :to, extensions = :history, notice = :extended, ' +
            'notices = if_not_exists(notices, :zero) + :one' +
            (x.remindAt ? ', remind_at = :remind REMOVE reminded_at' : ' REMOVE remind_at, reminded_at'),
          ConditionExpression: '#status = :pending AND expires_at = :from AND expires_at > :now',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':to': x.extension.to,
            ':history': JSON.stringify(x.extensions),
            ':extended': 'extended',
            ':zero': 0,
            ':one': 1,
            ':pending': 'pending',
            ':from': x.extension.from,
            ':now': now.toISOString(),
            ...(x.remindAt ? { ':remind': x.remindAt } : {}),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      // The reminder moves with the deadline: the old item goes (if any), the new one comes.
      ...(a.remind_at && a.remind_at !== x.remindAt
        ? [{ Delete: { TableName: this.table, Key: keys.reminder(a.remind_at, r.tenant_id, r.id) } }]
        : []),
      ...(x.remindAt && x.remindAt !== a.remind_at
        ? [{ Put: { TableName: this.table, Item: reminderItem(r.tenant_id, r.id, x.remindAt) } }]
        : []),
      putFact(this.table, x.fact),
    ]);
    if (result.ok) return { ok: true };
    if (result.index !== 0) throw new StorageError(`approval extension rejected at item ${result.index}`);
    return {
      ok: false,
      current: result.item ? toStoredApproval(result.item) : await this.get(r.tenant_id, r.id),
    };
  }

  /** Reminders due by `now`, every tenant's, soonest first (one Query of the sparse partition). */
  async dueReminders(now: Date, limit = 100): Promise<DueReminder[]> {
    const due: DueReminder[] = [];
    const items = queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk <= :due',
        // `#` sorts after every character of an ISO time up to its `Z`: all reminders due by now.
        ExpressionAttributeValues: { ':pk': keys.remindersPartition, ':due': `${now.toISOString()}#\uffff` },
      },
      'due reminders query',
    );
    for await (const item of items) {
      const m = REMINDER_SORT_KEY.exec(String(item.sk));
      if (m) due.push({ remindAt: m[1]!, tenantId: m[2]!, approvalId: m[3]! });
      if (due.length >= limit) break;
    }
    return due;
  }

  /**
   * Sends one reminder: ONE transaction marks the approval reminded (only while it is pending,
   * unexpired, not reminded yet, with this reminder time) and takes the reminder item away (only
   * if it is still there). Two sweeps racing: one commits, the other's condition fails (false).
   * A reminder whose approval moved on (decided, extended, gone) is removed, and false.
   */
  async remind(due: DueReminder, now: Date): Promise<boolean> {
    const reminderKey = keys.reminder(due.remindAt, due.tenantId, due.approvalId);
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.approval(due.tenantId, due.approvalId),
          UpdateExpression:
            'SET reminded_at = :now, notice = :reminder, notices = if_not_exists(notices, :zero) + :one',
          ConditionExpression:
            '#status = :pending AND expires_at > :now AND remind_at = :at AND attribute_not_exists(reminded_at)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':now': now.toISOString(),
            ':reminder': 'reminder',
            ':zero': 0,
            ':one': 1,
            ':pending': 'pending',
            ':at': due.remindAt,
          },
        },
      },
      { Delete: { TableName: this.table, Key: reminderKey, ConditionExpression: 'attribute_exists(pk)' } },
    ]);
    if (result.ok) return true;
    // The approval moved on: its reminder has nothing left to say (another sweep may have sent it).
    if (result.index === 0)
      await this.doc
        .send(new DeleteCommand({ TableName: this.table, Key: reminderKey }))
        .catch((error: unknown) => {
          throw new StorageError('stale reminder delete failed', error);
        });
    return false;
  }

  /** Pending requests of a tenant whose expiry has passed, oldest first. */
  async overdue(tenantId: string, now: Date, limit = 100): Promise<StoredApproval[]> {
    const found: StoredApproval[] = [];
    const items = queryAll(
      this.doc,
      {
        TableName: this.table,
        IndexName: TABLE.gsi1.name,
        KeyConditionExpression: `${TABLE.gsi1.partitionKey} = :pk`,
        FilterExpression: 'expires_at <= :now',
        ExpressionAttributeValues: {
          ':pk': keys.approvalListing(tenantId, 'pending', '', '').gsi1pk,
          ':now': now.toISOString(),
        },
      },
      'overdue approvals query',
    );
    for await (const item of items) {
      found.push(toStoredApproval(item));
      if (found.length >= limit) break;
    }
    return found;
  }

  async tenants(): Promise<string[]> {
    const list: string[] = [];
    const items = queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.tenantsPartition },
      },
      'tenant registry query',
    );
    for await (const item of items) list.push(String(item.sk));
    return list;
  }
}

/** DynamoDB repository for tool-call events (each also its idempotency claim), their facts and approvals. */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { ExecutionResult } from '../connectors/types.js';
import { assertSealable, type FactRecord } from '../core/evidence.js';
import type {
  ApprovalRecord,
  ClaimOutcome,
  DecisionWrite,
  ExecutionWrite,
  GrantEdit,
  IdempotencyRecord,
  StoredEvent,
  StoredExecution,
  StoredFact,
  ToolCallStore,
} from '../core/ports.js';
import type { ToolCallRequest } from '../core/toolcall.js';
import { ITEM_TYPE, type FactKind } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { isConditionalFailure, readOrFail } from './dynamo.js';
import { reminderItem } from './approvals.js';
import { grantUseUpdate } from './grants.js';
import { keys } from './keys.js';
import { packText, unpackText } from './packed-text.js';
import { transact, type TransactItems } from './transact.js';

/** Facts are numbered within their event so that a Query returns them in order. */
export const FACT_INDEX: Record<FactKind, number> = {
  'toolcall.decided': 1,
  'toolcall.executed': 2,
  'approval.decided': 3,
  'approval.expired': 3,
  // Instead of a decision: the agent withdrew the pending request.
  'approval.withdrawn': 3,
  // Between the decision that parked the call and the decision on it (an approval-gated event never
  // has a `toolcall.executed`); each edit is its own item, numbered by its `edit_seq`.
  'approval.edited': 2,
  // Before the decision; an approval may be extended more than once (each its own key, below).
  'approval.extended': 2,
  'execution.started': 4,
  // Instead of `execution.started`: the grant was revoked at execute, so nothing ever starts.
  'approval.revoked_by_policy': 4,
  'execution.completed': 5,
  // Before the decision they lead to; one item per vote (the key carries the fact's id).
  'approval.vote': 2,
  'approval.vote_withdrawn': 2,
  // A standing grant created with this event's approval, revoked later.
  'standing_grant.revoked': 6,
  // The one fact of its own event (issue 25).
  'upstream.drift': 1,
  'upstream.accepted': 1,
};

/** Kinds an event may hold many of: their items are keyed by time and fact id too. */
const MANY_PER_EVENT: ReadonlySet<FactKind> = new Set(['approval.vote', 'approval.vote_withdrawn']);

/** Kinds an event may hold more than one of: their key adds the fact's time and id (in time order). */
const REPEATABLE_KINDS: ReadonlySet<FactKind> = new Set(['approval.extended']);

/**
 * Where a fact is stored, from the fact alone: a submission's decision is carried by its event
 * item; every other fact is an item of its own in its event's partition. The sequencer marks the
 * sealed fact at this key.
 */
export function factKey(
  fact: Pick<FactRecord, 'tenant_id' | 'event_id' | 'kind'> & Partial<FactRecord> & { edit_seq?: unknown },
): {
  pk: string;
  sk: string;
} {
  if (fact.kind === 'toolcall.decided') return keys.event(fact.tenant_id, fact.event_id);
  if (fact.kind === 'approval.edited')
    return keys.fact(
      fact.tenant_id,
      fact.event_id,
      FACT_INDEX[fact.kind],
      `${fact.kind}#${String(fact.edit_seq).padStart(3, '0')}`,
    );
  if (MANY_PER_EVENT.has(fact.kind))
    return keys.fact(fact.tenant_id, fact.event_id, FACT_INDEX[fact.kind], `vote#${fact.at}#${fact.fact_id}`);
  const key = keys.fact(fact.tenant_id, fact.event_id, FACT_INDEX[fact.kind] ?? 9, fact.kind);
  if (!REPEATABLE_KINDS.has(fact.kind)) return key;
  const { at, fact_id } = fact as Partial<FactRecord>;
  return { ...key, sk: `${key.sk}#${String(at)}#${String(fact_id)}` };
}

/**
 * Where the sequencer recorded that an event's facts are sealed until issue 26 (still read, never
 * written): one item per event partition, one attribute per fact (named by the fact item's sort
 * key) holding its seq, hash and prev_hash.
 */
export function sealKey(fact: Pick<FactRecord, 'tenant_id' | 'event_id'>): { pk: string; sk: string } {
  return { pk: keys.event(fact.tenant_id, fact.event_id).pk, sk: SEAL_SK };
}
export const SEAL_SK = 'SEALED';

/**
 * Where the sequencer records that a fact is sealed: a small item of its own beside the fact item
 * (`SEALED#<fact item's sort key>`, type `seal`, the mark's seq, hash and prev_hash as attributes).
 * A fact is sealed once, so its mark never changes: marks are written blind, many to a
 * BatchWriteItem, where one item per event had to be updated in place, one request per event
 * (issue 26). The fact items themselves are never rewritten.
 */
export function markKey(fact: { pk: string; sk: string }): { pk: string; sk: string } {
  return { pk: fact.pk, sk: `${SEAL_MARK_PREFIX}${fact.sk}` };
}
export const SEAL_MARK_PREFIX = `${SEAL_SK}#`;

/** The mark of the fact item `factSk` among an event partition's items: its own item, or the legacy one's attribute. */
export function markAmong(items: readonly Record<string, unknown>[], factSk: string): SealMark | undefined {
  const own = items.find((i) => i.sk === `${SEAL_MARK_PREFIX}${factSk}`);
  if (typeof own?.seq === 'number')
    return { seq: own.seq, hash: String(own.hash), prev_hash: String(own.prev_hash) };
  const legacy = items.find((i) => i.sk === SEAL_SK)?.[factSk] as Partial<SealMark> | undefined;
  return typeof legacy?.seq === 'number' ? (legacy as SealMark) : undefined;
}

/** A sealed fact's place in its tenant's chain, as the seal item holds it. */
export interface SealMark {
  seq: number;
  hash: string;
  prev_hash: string;
}

/**
 * The attributes that make an item a fact carrier (what the sequencer's stream filter selects).
 * Ids and kind live in the record only: every byte over 1 KB costs a write unit.
 */
function factAttributes(fact: FactRecord): Record<string, unknown> {
  assertSealable(fact);
  return {
    created_at: fact.at,
    // Stored as JSON text: DynamoDB maps cannot hold every JSON value (depth, number range).
    record: JSON.stringify(fact),
  };
}

export function factItem(fact: FactRecord): Record<string, unknown> {
  return { ...factKey(fact), type: ITEM_TYPE.fact, ...factAttributes(fact) };
}

export function putFact(table: string, fact: FactRecord): TransactItems[number] {
  return { Put: { TableName: table, Item: factItem(fact), ConditionExpression: 'attribute_not_exists(pk)' } };
}

/**
 * A submission's storage, chosen for the fewest and smallest writes: the event item is the
 * idempotency claim (its id derives from the key) and carries the `toolcall.decided` fact; an
 * allowed call's `toolcall.executed` fact is one more item carrying the replayable response.
 * Decision, reason and policy version are read from the decision fact, not stored twice.
 */
export class DynamoToolCallStore implements ToolCallStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async recordDecision(w: DecisionWrite): Promise<ClaimOutcome> {
    const event = {
      ...keys.event(w.tenantId, w.eventId),
      type: ITEM_TYPE.event,
      status: w.status,
      request_hash: w.requestHash,
      approval_id: w.approval?.id,
      approval_expires_at: w.approval?.expires_at,
      // A call that used a standing grant (issue 21 deliverable 6): which one.
      ...(w.standingGrant ? { standing_grant_id: w.standingGrant.id } : {}),
      ...(w.response === undefined ? {} : { response: packText(w.response) }),
      ...factAttributes(w.fact),
      // Shadow mode: beside the sealed `record`, never in it (the chain holds what was enforced).
      ...(w.shadow ? { shadow: w.shadow, ...keys.shadowListing(w.tenantId, w.receivedAt, w.eventId) } : {}),
    };
    if (w.standingGrant) {
      // The claim and the grant's use in one transaction: a grant revoked, used up or expired
      // since it was read spends nothing and claims nothing (the caller parks the call instead).
      const outcome = await transact(this.doc, [
        {
          Put: {
            TableName: this.table,
            Item: event,
            ConditionExpression: 'attribute_not_exists(pk)',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        },
        grantUseUpdate(this.table, w.tenantId, w.standingGrant.id, w.receivedAt),
      ]);
      if (outcome.ok) return { kind: 'claimed' };
      if (outcome.index === 1) return { kind: 'grant_unavailable' };
      return this.existing(w, outcome.item);
    }
    if (!w.approval) {
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: event,
            ConditionExpression: 'attribute_not_exists(pk)',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return { kind: 'claimed' };
      } catch (error) {
        if (!isConditionalFailure(error)) throw new StorageError('decision write failed', error);
        const old = (error as { Item?: Record<string, AttributeValue> }).Item;
        return this.existing(w, old ? unmarshall(old) : undefined);
      }
    }
    const outcome = await transact(this.doc, [
      {
        Put: {
          TableName: this.table,
          Item: event,
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      {
        Put: {
          TableName: this.table,
          Item: { ...approvalItem(w.approval), ...(w.remindAt ? { remind_at: w.remindAt } : {}) },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      // Its reminder, due at `remindAt`, in the sweep's sparse partition (issue 21 deliverable 5).
      ...(w.remindAt
        ? [{ Put: { TableName: this.table, Item: reminderItem(w.tenantId, w.approval.id, w.remindAt) } }]
        : []),
    ]);
    if (outcome.ok) return { kind: 'claimed' };
    if (outcome.index !== 0) throw new StorageError(`unexpected condition failure on item ${outcome.index}`);
    return this.existing(w, outcome.item);
  }

  private async existing(w: DecisionWrite, old: Record<string, unknown> | undefined): Promise<ClaimOutcome> {
    const existing =
      old && !isExecutingAllow(old)
        ? toIdempotency(w.eventId, old, undefined)
        : await this.getIdempotency(w.tenantId, w.eventId);
    if (!existing) throw new StorageError('event vanished');
    return { kind: 'existing', record: existing };
  }

  /** The event's partition holds the claim (event item) and, for allow, the result with the response. */
  async getIdempotency(
    tenantId: string,
    eventId: string,
    options: { consistent?: boolean } = {},
  ): Promise<IdempotencyRecord | undefined> {
    const event = keys.event(tenantId, eventId);
    const result = factKey({ tenant_id: tenantId, event_id: eventId, kind: 'toolcall.executed' });
    const out = await readOrFail(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :event AND :result',
          ExpressionAttributeValues: { ':pk': event.pk, ':event': event.sk, ':result': result.sk },
          ConsistentRead: options.consistent !== false,
        }),
      ),
    );
    const items = out.Items ?? [];
    const claim = items.find((i) => i.sk === event.sk);
    if (!claim || typeof claim.request_hash !== 'string') return undefined;
    return toIdempotency(
      eventId,
      claim,
      items.find((i) => i.sk === result.sk),
    );
  }

  /** The result's fact with the replayable response: one conditional write, so never twice. */
  async recordExecution(w: ExecutionWrite): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...factItem(w.fact), response: packText(w.response) },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      throw new StorageError('execution record rejected', error);
    }
  }

  async markExecutionUnknown(tenantId: string, eventId: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.event(tenantId, eventId),
          UpdateExpression: 'SET #status = :unknown',
          ConditionExpression: '#status = :executing',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':unknown': 'unknown', ':executing': 'executing' },
        }),
      );
    } catch (error) {
      throw new StorageError('execution was already finalized', error);
    }
  }

  /** The event with its facts, grant and execution claim (one Query), and its approval's state (one GetItem) unless told not to. */
  async getEvent(
    tenantId: string,
    eventId: string,
    options: { withApproval?: boolean } = {},
  ): Promise<StoredEvent | undefined> {
    const { pk } = keys.event(tenantId, eventId);
    const out = await readOrFail(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': pk },
          ConsistentRead: true,
        }),
      ),
    );
    const items = out.Items ?? [];
    const event = items.find((i) => i.type === ITEM_TYPE.event);
    if (!event) return undefined;
    const facts: StoredFact[] = items
      .filter((i) => typeof i.record === 'string')
      .map((i) => {
        const record = JSON.parse(String(i.record)) as FactRecord;
        const seal = markAmong(items, String(i.sk));
        return {
          fact_id: record.fact_id,
          kind: record.kind,
          record,
          ...(seal ? { seq: seal.seq, hash: seal.hash, prev_hash: seal.prev_hash } : {}),
        };
      });
    let approval: StoredEvent['approval'];
    if (typeof event.approval_id === 'string' && options.withApproval !== false) {
      const a = await readOrFail(() =>
        this.doc.send(
          new GetCommand({
            TableName: this.table,
            Key: keys.approval(tenantId, String(event.approval_id)),
            ConsistentRead: true,
          }),
        ),
      );
      const item = a.Item ?? {};
      const expired =
        item.status === 'pending' && Date.parse(String(event.approval_expires_at)) <= Date.now();
      approval = {
        id: String(event.approval_id),
        status: expired ? 'expired' : String(item.status ?? 'pending'),
        expires_at: String(event.approval_expires_at),
        ...(typeof item.decided_by === 'string' ? { decided_by: item.decided_by } : {}),
        ...(typeof item.decided_at === 'string' ? { decided_at: item.decided_at } : {}),
        ...(typeof item.deny_reason === 'string' ? { deny_reason: item.deny_reason } : {}),
        ...approverGroupOf(item.approval),
      };
    }
    const requestFact = facts.find((f) => f.kind === 'toolcall.decided' || f.kind === 'execution.completed');
    const decidedRecord = facts.find((f) => f.kind === 'toolcall.decided')?.record;
    const resultFact = facts.find((f) => f.kind === 'toolcall.executed' || f.kind === 'execution.completed');
    const grant = items.find((i) => i.type === ITEM_TYPE.grant);
    const execution = items.find((i) => i.type === ITEM_TYPE.execution);
    return {
      event_id: eventId,
      tenant_id: tenantId,
      received_at: String(event.received_at ?? event.created_at),
      // Request and result are read from the facts that recorded them (written once, in the
      // same transactions as the event), not kept twice.
      request: (requestFact?.record.request ?? {}) as StoredEvent['request'],
      decision: (event.decision ?? decidedRecord?.decision) as StoredEvent['decision'],
      reason: String(event.reason ?? decidedRecord?.reason),
      policy_version: String(event.policy_version ?? decidedRecord?.policy_version),
      // A recorded result completes the event, whatever the event item says (it is not rewritten).
      status: (resultFact ? 'completed' : event.status) as StoredEvent['status'],
      ...(resultFact ? { result: resultFact.record.result as ExecutionResult } : {}),
      ...(approval ? { approval } : {}),
      ...(typeof event.approval_id === 'string' ? { approval_id: event.approval_id } : {}),
      ...(typeof event.parent_event_id === 'string' ? { parent_event_id: event.parent_event_id } : {}),
      ...(grant
        ? {
            grant: {
              id: String(grant.id),
              approval_id: String(grant.approval_id),
              event_id: String(grant.event_id),
              request_hash: String(grant.request_hash),
              uses_left: Number(grant.uses_left),
              expires_at: String(grant.expires_at),
              ...(typeof grant.policy_version === 'string' ? { policy_version: grant.policy_version } : {}),
              // An edited approval's grant: the request it runs and the patch (store/approvals.ts).
              ...(typeof grant.request === 'string'
                ? { request: JSON.parse(grant.request) as ToolCallRequest }
                : {}),
              ...(typeof grant.edit === 'string' ? { edit: JSON.parse(grant.edit) as GrantEdit } : {}),
            },
          }
        : {}),
      ...(execution ? { execution: toExecution(execution) } : {}),
      facts,
    };
  }
}

export function toExecution(item: Record<string, unknown>): StoredExecution {
  const response = unpackText(item.response);
  return {
    execution_event_id: String(item.execution_event_id),
    status: item.status as StoredExecution['status'],
    claimed_at: String(item.claimed_at),
    grant_id: String(item.grant_id),
    // The replayable response carries the result; it is not stored twice.
    ...(response === undefined
      ? {}
      : { result: (JSON.parse(response) as { result: ExecutionResult }).result, response }),
    ...(typeof item.resolved_by === 'string' ? { resolved_by: item.resolved_by } : {}),
  };
}

/** An allowed call whose result lives in its own item (recorded, or resolved by an operator later). */
const isExecutingAllow = (event: Record<string, unknown>) =>
  event.status === 'executing' || event.status === 'unknown';

/** The first request's outcome, from its event and (allow) its result. */
function toIdempotency(
  eventId: string,
  event: Record<string, unknown>,
  result: Record<string, unknown> | undefined,
): IdempotencyRecord {
  const response = unpackText(result?.response) ?? unpackText(event.response);
  const status = result
    ? 'completed'
    : event.status === 'unknown'
      ? 'unknown'
      : event.status === 'executing'
        ? 'in_flight'
        : 'completed';
  return {
    eventId,
    requestHash: String(event.request_hash),
    status,
    ...(typeof response === 'string' ? { response } : {}),
    createdAt: String(event.created_at),
  };
}

/**
 * The approval item, kept small (it is written in the submit transaction, at twice the write units
 * per KB, and copied into the listing index): the request fields go in `approval` once, and what
 * the key, the listing key or a top-level attribute already says (id, tenant, status, created_at,
 * expires_at, request hash) is not repeated in it. `toStoredApproval` puts the record back together.
 */
export function approvalItem(a: ApprovalRecord): Record<string, unknown> {
  const {
    id: _id,
    tenant_id: _tenant,
    status: _status,
    created_at: _created,
    expires_at: _expires,
    request_hash: _hash,
    ...rest
  } = a;
  return {
    ...keys.approval(a.tenant_id, a.id),
    ...keys.approvalListing(a.tenant_id, a.status, a.created_at, a.id),
    type: ITEM_TYPE.approval,
    status: a.status,
    created_at: a.created_at,
    expires_at: a.expires_at,
    request_hash: a.request_hash,
    approval: packText(JSON.stringify(rest)),
  };
}

/** The approval's approver group, from the request fields its item keeps as JSON (none if unreadable). */
function approverGroupOf(approval: unknown): { approver_group?: string } {
  try {
    const text = unpackText(approval);
    if (text === undefined) return {};
    const group = (JSON.parse(text) as { approver_group?: unknown }).approver_group;
    return typeof group === 'string' ? { approver_group: group } : {};
  } catch {
    return {};
  }
}

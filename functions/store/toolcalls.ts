/** DynamoDB repository for tool-call events, their facts, idempotency records and approvals. */
import { GetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ExecutionResult } from '../connectors/types.js';
import type { FactRecord } from '../core/evidence.js';
import type {
  ApprovalRecord,
  ClaimOutcome,
  DecisionWrite,
  ExecutionWrite,
  IdempotencyRecord,
  StoredEvent,
  StoredExecution,
  StoredFact,
  ToolCallStore,
} from '../core/ports.js';
import { ITEM_TYPE, LIMITS } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { readOrFail } from './dynamo.js';
import { keys } from './keys.js';
import { transact, type TransactItems } from './transact.js';

const epochSec = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/** Facts are numbered within their event so that a Query returns them in order. */
export const FACT_INDEX: Record<string, number> = {
  'toolcall.decided': 1,
  'toolcall.executed': 2,
  'approval.decided': 3,
  'approval.expired': 3,
  'execution.started': 4,
  'execution.completed': 5,
};

export function factItem(fact: FactRecord): Record<string, unknown> {
  return {
    ...keys.fact(fact.tenant_id, fact.event_id, FACT_INDEX[fact.kind] ?? 9, fact.kind),
    ...keys.unsealedFact(fact.tenant_id, fact.at, fact.fact_id),
    type: ITEM_TYPE.fact,
    tenant_id: fact.tenant_id,
    event_id: fact.event_id,
    fact_id: fact.fact_id,
    kind: fact.kind,
    created_at: fact.at,
    // Stored as JSON text: DynamoDB maps cannot hold every JSON value (depth, number range).
    record: JSON.stringify(fact),
  };
}

export function putFact(table: string, fact: FactRecord): TransactItems[number] {
  return { Put: { TableName: table, Item: factItem(fact), ConditionExpression: 'attribute_not_exists(pk)' } };
}

export class DynamoToolCallStore implements ToolCallStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async recordDecision(w: DecisionWrite): Promise<ClaimOutcome> {
    const ttl = epochSec(w.receivedAt) + LIMITS.idempotencyTtlSec;
    const items: TransactItems = [
      {
        Put: {
          TableName: this.table,
          Item: {
            ...keys.idempotency(w.tenantId, w.idempotencyKeyHash),
            type: ITEM_TYPE.idempotency,
            event_id: w.eventId,
            request_hash: w.requestHash,
            status: w.response === undefined ? 'in_flight' : 'completed',
            response: w.response,
            created_at: w.receivedAt,
            ttl,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      {
        Put: {
          TableName: this.table,
          Item: {
            ...keys.event(w.tenantId, w.eventId),
            type: ITEM_TYPE.event,
            tenant_id: w.tenantId,
            event_id: w.eventId,
            received_at: w.receivedAt,
            decision: w.decision.decision,
            reason: w.decision.reason,
            policy_version: w.decision.policyVersion,
            status: w.status,
            approval_id: w.approval?.id,
            approval_expires_at: w.approval?.expires_at,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      putFact(this.table, w.fact),
    ];
    if (w.approval)
      items.push({
        Put: {
          TableName: this.table,
          Item: approvalItem(w.approval),
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      });

    const outcome = await transact(this.doc, items);
    if (outcome.ok) return { kind: 'claimed' };
    if (outcome.index !== 0) throw new StorageError(`unexpected condition failure on item ${outcome.index}`);
    const existing = outcome.item
      ? toIdempotency(outcome.item)
      : await this.getIdempotency(w.tenantId, w.idempotencyKeyHash);
    if (!existing) throw new StorageError('idempotency record vanished');
    return { kind: 'existing', record: existing };
  }

  async getIdempotency(
    tenantId: string,
    keyHash: string,
    options: { consistent?: boolean } = {},
  ): Promise<IdempotencyRecord | undefined> {
    const out = await readOrFail(() =>
      this.doc.send(
        new GetCommand({
          TableName: this.table,
          Key: keys.idempotency(tenantId, keyHash),
          ConsistentRead: options.consistent !== false,
        }),
      ),
    );
    return out.Item ? toIdempotency(out.Item) : undefined;
  }

  /**
   * The result's fact and the replayable response, in one transaction. The event item is not
   * rewritten: its status reads `completed` from the fact (the fewer and smaller the items in a
   * transaction, the fewer write units). The conditions make a second finalize impossible.
   */
  async recordExecution(w: ExecutionWrite): Promise<void> {
    const outcome = await transact(this.doc, [
      putFact(this.table, w.fact),
      {
        Update: {
          TableName: this.table,
          Key: keys.idempotency(w.tenantId, w.idempotencyKeyHash),
          UpdateExpression: 'SET #status = :completed, #response = :response',
          ConditionExpression: 'event_id = :event AND #status = :inflight',
          ExpressionAttributeNames: { '#status': 'status', '#response': 'response' },
          ExpressionAttributeValues: {
            ':completed': 'completed',
            ':inflight': 'in_flight',
            ':response': w.response,
            ':event': w.eventId,
          },
        },
      },
    ]);
    if (!outcome.ok) throw new StorageError(`execution record rejected at item ${outcome.index}`);
  }

  async markExecutionUnknown(tenantId: string, eventId: string, idempotencyKeyHash: string): Promise<void> {
    const outcome = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.event(tenantId, eventId),
          UpdateExpression: 'SET #status = :unknown',
          ConditionExpression: '#status = :executing',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':unknown': 'unknown', ':executing': 'executing' },
        },
      },
      {
        Update: {
          TableName: this.table,
          Key: keys.idempotency(tenantId, idempotencyKeyHash),
          UpdateExpression: 'SET #status = :unknown',
          ConditionExpression: 'event_id = :event AND #status = :inflight',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':unknown': 'unknown', ':inflight': 'in_flight', ':event': eventId },
        },
      },
    ]);
    if (!outcome.ok) throw new StorageError('execution was already finalized');
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
      .filter((i) => i.type === ITEM_TYPE.fact)
      .map((i) => ({
        fact_id: String(i.fact_id),
        kind: String(i.kind),
        record: JSON.parse(String(i.record)) as FactRecord,
        ...(typeof i.seq === 'number'
          ? { seq: i.seq, hash: String(i.hash), prev_hash: String(i.prev_hash) }
          : {}),
      }));
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
      };
    }
    const requestFact = facts.find((f) => f.kind === 'toolcall.decided' || f.kind === 'execution.completed');
    const resultFact = facts.find((f) => f.kind === 'toolcall.executed' || f.kind === 'execution.completed');
    const grant = items.find((i) => i.type === ITEM_TYPE.grant);
    const execution = items.find((i) => i.type === ITEM_TYPE.execution);
    return {
      event_id: String(event.event_id),
      tenant_id: String(event.tenant_id),
      received_at: String(event.received_at),
      // Request and result are read from the facts that recorded them (written once, in the
      // same transactions as the event), not kept twice.
      request: (requestFact?.record.request ?? {}) as StoredEvent['request'],
      decision: event.decision as StoredEvent['decision'],
      reason: String(event.reason),
      policy_version: String(event.policy_version),
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
            },
          }
        : {}),
      ...(execution ? { execution: toExecution(execution) } : {}),
      facts,
    };
  }
}

export function toExecution(item: Record<string, unknown>): StoredExecution {
  return {
    execution_event_id: String(item.execution_event_id),
    status: item.status as StoredExecution['status'],
    claimed_at: String(item.claimed_at),
    grant_id: String(item.grant_id),
    // The replayable response carries the result; it is not stored twice.
    ...(typeof item.response === 'string'
      ? { result: (JSON.parse(item.response) as { result: ExecutionResult }).result }
      : {}),
    ...(typeof item.response === 'string' ? { response: item.response } : {}),
    ...(typeof item.resolved_by === 'string' ? { resolved_by: item.resolved_by } : {}),
  };
}

function toIdempotency(item: Record<string, unknown>): IdempotencyRecord {
  return {
    eventId: String(item.event_id),
    requestHash: String(item.request_hash),
    status: item.status === 'completed' || item.status === 'unknown' ? item.status : 'in_flight',
    ...(typeof item.response === 'string' ? { response: item.response } : {}),
    createdAt: String(item.created_at),
  };
}

export function approvalItem(a: ApprovalRecord): Record<string, unknown> {
  return {
    ...keys.approval(a.tenant_id, a.id),
    ...keys.approvalListing(a.tenant_id, a.status, a.created_at, a.id),
    type: ITEM_TYPE.approval,
    tenant_id: a.tenant_id,
    approval_id: a.id,
    event_id: a.event_id,
    status: a.status,
    created_at: a.created_at,
    expires_at: a.expires_at,
    request_hash: a.request_hash,
    approval: JSON.stringify(a),
  };
}

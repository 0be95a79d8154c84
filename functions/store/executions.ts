/**
 * DynamoDB side of exactly-once execution: the grant is consumed and the execution claimed in one
 * transaction (with an `execution.started` fact: the durable intent), then finalized in another.
 */
import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ExecutionResult } from '../connectors/types.js';
import type { PolicyRevocation } from '../core/approvals.js';
import type { FactRecord } from '../core/evidence.js';
import type { StoredEvent, StoredGrant } from '../core/ports.js';
import { ITEM_TYPE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { isConditionalFailure } from './dynamo.js';
import { keys } from './keys.js';
import { packText } from './packed-text.js';
import { putFact } from './toolcalls.js';
import { transact } from './transact.js';

export type ClaimResult = { ok: true } | { ok: false; reason: 'grant_unusable' | 'already_claimed' };

export interface FinalizeWrite {
  parent: StoredEvent;
  executionEventId: string;
  result: ExecutionResult;
  response: string;
  fact: FactRecord;
  completedAt: string;
  resolvedBy?: string;
}

export class ExecutionStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async claim(
    parent: StoredEvent,
    grant: StoredGrant,
    claim: { executionEventId: string; requestHash: string; fact: FactRecord; now: string },
  ): Promise<ClaimResult> {
    const t = parent.tenant_id;
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.grant(t, parent.event_id),
          UpdateExpression: 'SET uses_left = :zero, consumed_at = :now, consumed_by = :exec',
          // Bound to this event and to the exact request that was approved.
          ConditionExpression:
            'uses_left = :one AND expires_at > :now AND event_id = :event AND request_hash = :hash AND id = :grant',
          ExpressionAttributeValues: {
            ':zero': 0,
            ':one': 1,
            ':now': claim.now,
            ':event': parent.event_id,
            ':hash': claim.requestHash,
            ':grant': grant.id,
            ':exec': claim.executionEventId,
          },
        },
      },
      {
        Put: {
          TableName: this.table,
          Item: {
            ...keys.execution(t, parent.event_id),
            type: ITEM_TYPE.execution,
            execution_event_id: claim.executionEventId,
            status: 'running',
            claimed_at: claim.now,
            grant_id: grant.id,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      putFact(this.table, claim.fact),
    ]);
    if (result.ok) return { ok: true };
    return { ok: false, reason: result.index === 1 ? 'already_claimed' : 'grant_unusable' };
  }

  /**
   * The live policy refused an approved call: the grant is spent (so no claim can ever use it),
   * the approval turns `revoked_by_policy` (from `approved`; it moves to that listing) and the
   * fact is written, all or nothing. False when the grant was spent first (a claim or another
   * revocation): the caller re-reads and answers with what happened.
   */
  async revoke(
    parent: StoredEvent,
    grant: StoredGrant,
    w: { revocation: PolicyRevocation; fact: FactRecord; now: string },
  ): Promise<boolean> {
    const t = parent.tenant_id;
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.grant(t, parent.event_id),
          UpdateExpression: 'SET uses_left = :zero, revoked_at = :now',
          ConditionExpression: 'uses_left = :one AND event_id = :event AND id = :grant',
          ExpressionAttributeValues: {
            ':zero': 0,
            ':one': 1,
            ':now': w.now,
            ':event': parent.event_id,
            ':grant': grant.id,
          },
        },
      },
      {
        Update: {
          TableName: this.table,
          Key: keys.approval(t, grant.approval_id),
          UpdateExpression: 'SET #status = :revoked, gsi1pk = :gpk, revocation = :revocation',
          ConditionExpression: '#status = :approved',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':revoked': 'revoked_by_policy',
            ':approved': 'approved',
            ':gpk': keys.approvalListing(t, 'revoked_by_policy', '', '').gsi1pk,
            ':revocation': JSON.stringify(w.revocation),
          },
        },
      },
      putFact(this.table, w.fact),
    ]);
    if (result.ok) return true;
    if (result.index === 0) return false;
    throw new StorageError(`policy revocation rejected at item ${result.index}`);
  }

  /** Records the result: the claim turns completed, the execution event and its fact are written. */
  async finalize(
    w: FinalizeWrite,
    expectedStatuses: Array<'running' | 'unknown'> = ['running'],
  ): Promise<boolean> {
    const t = w.parent.tenant_id;
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.execution(t, w.parent.event_id),
          UpdateExpression:
            'SET #status = :completed, #response = :response, completed_at = :at' +
            (w.resolvedBy ? ', resolved_by = :by' : ''),
          ConditionExpression: expectedStatuses.map((_, i) => `#status = :s${i}`).join(' OR '),
          ExpressionAttributeNames: { '#status': 'status', '#response': 'response' },
          ExpressionAttributeValues: {
            ':completed': 'completed',
            ':response': packText(w.response),
            ':at': w.completedAt,
            ...Object.fromEntries(expectedStatuses.map((s, i) => [`:s${i}`, s])),
            ...(w.resolvedBy ? { ':by': w.resolvedBy } : {}),
          },
        },
      },
      {
        Put: {
          TableName: this.table,
          Item: {
            ...keys.event(t, w.executionEventId),
            type: ITEM_TYPE.event,
            tenant_id: t,
            event_id: w.executionEventId,
            parent_event_id: w.parent.event_id,
            received_at: w.completedAt,
            decision: 'allow',
            reason: 'approved execution',
            policy_version: w.parent.policy_version,
            status: 'completed',
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      putFact(this.table, w.fact),
    ]);
    if (!result.ok && result.index !== 0)
      throw new StorageError(`execution finalize rejected at item ${result.index}`);
    return result.ok;
  }

  /** Best effort after a failed finalize: the connector ran, its outcome is not recorded. */
  async markUnknown(tenantId: string, parentEventId: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.execution(tenantId, parentEventId),
          UpdateExpression: 'SET #status = :unknown',
          ConditionExpression: '#status = :running',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':unknown': 'unknown', ':running': 'running' },
        }),
      );
    } catch (error) {
      if (!isConditionalFailure(error)) throw new StorageError('could not mark execution unknown', error);
    }
  }
}

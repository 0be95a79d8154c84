/**
 * DynamoDB writes of edit-on-approve (`core/edit.ts`): each ONE transaction, conditional on the
 * approval being pending, unexpired and still on the request the editor read (its request hash),
 * so two editors (or an editor and a decision) racing leave exactly one outcome.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DecisionOutcome, StoredApproval } from '../core/approvals.js';
import type { EditPort, EditWriteResult } from '../core/edit.js';
import type { FactRecord } from '../core/evidence.js';
import type { ApprovalRecord } from '../core/ports.js';
import { ITEM_TYPE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { ApprovalStore, grantItem, toStoredApproval } from './approvals.js';
import { keys } from './keys.js';
import { approvalItem, putFact } from './toolcalls.js';
import { transact, type TransactItems } from './transact.js';

export class ApprovalEditStore implements EditPort {
  private readonly approvals: ApprovalStore;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {
    this.approvals = new ApprovalStore(doc, table);
  }

  park(a: StoredApproval, edited: ApprovalRecord, fact: FactRecord, now: Date): Promise<EditWriteResult> {
    return this.write(a, [this.update(a, edited, now), putFact(this.table, fact)]);
  }

  approve(
    a: StoredApproval,
    edited: ApprovalRecord,
    fact: FactRecord,
    outcome: DecisionOutcome,
    now: Date,
  ): Promise<EditWriteResult> {
    const r = a.record;
    const grant = outcome.grant;
    if (!grant) throw new Error('an approving edit needs its grant');
    return this.write(a, [
      this.update(a, edited, now, outcome),
      {
        Put: {
          TableName: this.table,
          Item: { ...keys.grant(r.tenant_id, r.event_id), type: ITEM_TYPE.grant, ...grantItem(grant) },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      putFact(this.table, fact),
      putFact(this.table, outcome.fact),
    ]);
  }

  /** The approval item with the edited record; with an outcome, decided as `ApprovalStore.decide` does. */
  private update(
    a: StoredApproval,
    edited: ApprovalRecord,
    now: Date,
    outcome?: DecisionOutcome,
  ): TransactItems[number] {
    const r = a.record;
    // The approval keeps the grant as issued (as `decide` does); its record holds the edited request.
    const grant = outcome?.grant ? { ...outcome.grant, request: undefined } : undefined;
    return {
      Update: {
        TableName: this.table,
        Key: keys.approval(r.tenant_id, r.id),
        UpdateExpression:
          'SET approval = :approval, request_hash = :hash' +
          (outcome
            ? ', #status = :status, decided_by = :by, decided_at = :at, gsi1pk = :gpk, #grant = :grant' +
              (outcome.comment ? ', #comment = :comment' : '')
            : ''),
        ConditionExpression: '#status = :pending AND expires_at > :now AND request_hash = :read',
        ExpressionAttributeNames: {
          '#status': 'status',
          ...(outcome ? { '#grant': 'grant' } : {}),
          ...(outcome?.comment ? { '#comment': 'comment' } : {}),
        },
        ExpressionAttributeValues: {
          ':approval': approvalItem(edited).approval,
          ':hash': edited.request_hash,
          ':pending': 'pending',
          ':now': now.toISOString(),
          ':read': r.request_hash,
          ...(outcome
            ? {
                ':status': outcome.status,
                ':by': outcome.decidedBy,
                ':at': outcome.decidedAt,
                ':gpk': keys.approvalListing(r.tenant_id, outcome.status, r.created_at, r.id).gsi1pk,
                ':grant': JSON.stringify(grant),
              }
            : {}),
          ...(outcome?.comment ? { ':comment': outcome.comment } : {}),
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  private async write(a: StoredApproval, items: TransactItems): Promise<EditWriteResult> {
    const result = await transact(this.doc, items);
    if (result.ok) return { ok: true };
    // Only the approval item's condition can fail while the approval is as read: anything else is storage.
    if (result.index !== 0) throw new StorageError(`approval edit rejected at item ${result.index}`);
    return {
      ok: false,
      current: result.item
        ? toStoredApproval(result.item)
        : await this.approvals.get(a.record.tenant_id, a.record.id),
    };
  }
}

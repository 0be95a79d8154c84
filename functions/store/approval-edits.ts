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
import { StorageError } from '../shared/errors.js';
import { ApprovalStore, putGrant, toStoredApproval } from './approvals.js';
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
    return this.write(a, [this.update(a, edited, now), ...this.resetVotes(a), putFact(this.table, fact)]);
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
      putGrant(this.table, r, grant),
      ...this.resetVotes(a),
      putFact(this.table, fact),
      putFact(this.table, outcome.fact),
    ]);
  }

  /**
   * A quorum's vote items go with the edit: the votes were cast on the view before it, and each
   * approver may vote again on the edited one (one vote item per approval and approver). The
   * approval item's revision condition makes `a.votes` exactly the items there are (at most 50:
   * five stages of ten, within a transaction's 100 items).
   */
  private resetVotes(a: StoredApproval): TransactItems {
    const r = a.record;
    return (a.votes ?? []).map((v) => ({
      Delete: { TableName: this.table, Key: keys.approvalVote(r.tenant_id, r.id, v.approver) },
    }));
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
    const rev = a.vote_rev ?? 0;
    return {
      Update: {
        TableName: this.table,
        Key: keys.approval(r.tenant_id, r.id),
        // The votes reset and their revision moved on (a vote counted from the old one is refused,
        // core/approvals.ts); the outbox announces the reset as a vote notice at the new revision,
        // so every route (the Slack message too) shows the edited view with no votes yet.
        UpdateExpression:
          'SET approval = :approval, request_hash = :hash, votes = :none, vote_rev = :next' +
          (edited.quorum ? ', notice = :vote' : '') +
          (outcome
            ? ', #status = :status, decided_by = :by, decided_at = :at, gsi1pk = :gpk, #grant = :grant' +
              (outcome.comment ? ', #comment = :comment' : '')
            : ''),
        ConditionExpression:
          '#status = :pending AND expires_at > :now AND request_hash = :read AND ' +
          (rev === 0 ? '(attribute_not_exists(vote_rev) OR vote_rev = :rev)' : 'vote_rev = :rev'),
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
          ':none': '[]',
          ':rev': rev,
          ':next': rev + 1,
          ...(edited.quorum ? { ':vote': 'vote' } : {}),
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

/**
 * Use case: batch decisions that show every item (issue 21 deliverable 4). An approver decides up
 * to 50 pending approvals at once, naming for each the view they were shown (`view_hash`,
 * required: a batch is never blind). Each item is exactly a decision of its own through `decide`
 * (the one decision path: allowlist, separation of duties, the view's hash, one conditional
 * write with its own `approval.decided` fact and grant), so an approver can never batch-decide an
 * item they may not decide alone, and a stale, changed, decided or foreign item is refused alone,
 * in its own result, never the batch.
 */
import { AppError, toErrorResponse } from '../shared/errors.js';
import {
  decide,
  requireListedApprover,
  type ApprovalDeps,
  type ApprovalView,
  type Approver,
  type DecisionInput,
} from './approvals.js';

export const MAX_BATCH = 50;
/** Items decided at once: each is a read and a transaction; a few in flight keep a batch of 50 short. */
const CONCURRENCY = 5;

export interface BatchInput {
  decision: 'approve' | 'deny';
  items: { approval_id: string; view_hash: string }[];
  comment?: string;
  reason?: string;
}

/**
 * One item's outcome: the approval as decided, or only voted on (a quorum still needs more: its
 * progress, as a vote alone would answer), or the error body deciding it alone would answer.
 */
export type BatchItemResult =
  | {
      approval_id: string;
      status: 200;
      result: 'decided' | 'voted';
      progress?: string;
      approval: ApprovalView;
    }
  | {
      approval_id: string;
      status: number;
      error: {
        code: string;
        message: string;
        retryable: boolean;
        details?: { path: string; message: string }[];
      };
    };

export interface BatchResult {
  decision: 'approve' | 'deny';
  decided: number;
  /** Items where this approver's vote counted and the quorum still needs more. */
  voted: number;
  refused: number;
  results: BatchItemResult[];
}

export async function decideBatch(
  deps: ApprovalDeps,
  approver: Approver,
  input: BatchInput,
  /** Told an item's unexpected failure (its cause is logged, never answered). */
  onFailure?: (approvalId: string, error: unknown) => void,
): Promise<BatchResult> {
  // Someone who may decide nothing is refused whole, as each single decision would be (403).
  requireListedApprover(deps, approver);
  const one = (item: BatchInput['items'][number]): DecisionInput =>
    input.decision === 'approve'
      ? {
          decision: 'approve',
          view_hash: item.view_hash,
          ...(input.comment ? { comment: input.comment } : {}),
        }
      : { decision: 'deny', view_hash: item.view_hash, ...(input.reason ? { reason: input.reason } : {}) };
  const results: BatchItemResult[] = new Array(input.items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < input.items.length; i = next++) {
      const item = input.items[i]!;
      try {
        const approval = await decide(deps, approver, item.approval_id, one(item));
        // An approve vote that leaves a quorum short decided nothing yet: say so, with the progress.
        results[i] =
          approval.status === 'pending'
            ? {
                approval_id: item.approval_id,
                status: 200,
                result: 'voted',
                ...(approval.quorum ? { progress: approval.quorum.summary } : {}),
                approval,
              }
            : { approval_id: item.approval_id, status: 200, result: 'decided', approval };
      } catch (error) {
        const shown = itemError(error);
        if (shown.status >= 500) onFailure?.(item.approval_id, error);
        results[i] = { approval_id: item.approval_id, ...shown };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, input.items.length) }, worker));
  const count = (result: 'decided' | 'voted') =>
    results.filter((r) => 'result' in r && r.result === result).length;
  const decided = count('decided');
  const voted = count('voted');
  return { decision: input.decision, decided, voted, refused: results.length - decided - voted, results };
}

/**
 * The item's error as a single decision would answer it. A storage failure fails that item
 * closed (nothing was decided unless its transaction committed; retrying it answers the state).
 */
function itemError(error: unknown): Omit<Extract<BatchItemResult, { error: unknown }>, 'approval_id'> {
  if (error instanceof AppError && error.status < 500) {
    const { body } = toErrorResponse(error, '');
    const { request_id: _id, ...shown } = body;
    return { status: error.status, error: shown };
  }
  // Never this item's cause in the answer (it goes to the log): fail closed, as a single decision does.
  return {
    status: 500,
    error: {
      code: 'INTERNAL_ERROR',
      message: 'this item could not be decided; read it again before retrying it',
      retryable: true,
    },
  };
}

/** TransactWriteItems with the retries and outcome mapping every repository needs. */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  TransactWriteCommand,
  type DynamoDBDocumentClient,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { StorageError } from '../shared/errors.js';

export type TransactItems = NonNullable<TransactWriteCommandInput['TransactItems']>;

export type TransactOutcome =
  | { ok: true }
  /** A condition failed: the index of the first failed item and, if asked for, that item's old image. */
  | { ok: false; index: number; item?: Record<string, unknown> };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs one transaction. Conflicts with concurrent transactions are retried with jittered backoff;
 * a failed condition is a domain outcome; anything else is a StorageError (fail closed).
 */
export async function transact(
  doc: DynamoDBDocumentClient,
  items: TransactItems,
  options: { maxConflictRetries?: number } = {},
): Promise<TransactOutcome> {
  const maxRetries = options.maxConflictRetries ?? 12;
  for (let attempt = 0; ; attempt++) {
    try {
      await doc.send(new TransactWriteCommand({ TransactItems: items }));
      return { ok: true };
    } catch (error) {
      if (
        error instanceof TransactionCanceledException ||
        (error as Error)?.name === 'TransactionCanceledException'
      ) {
        const reasons = (error as TransactionCanceledException).CancellationReasons ?? [];
        const failed = reasons.findIndex((r) => r.Code === 'ConditionalCheckFailed');
        if (failed >= 0) {
          const image = reasons[failed]?.Item;
          return { ok: false, index: failed, item: image ? unmarshall(image) : undefined };
        }
        const conflict = reasons.some((r) => r.Code === 'TransactionConflict');
        if (conflict && attempt < maxRetries) {
          await sleep(Math.random() * Math.min(200, 5 * 2 ** attempt));
          continue;
        }
      }
      if ((error as Error)?.name === 'TransactionInProgressException' && attempt < maxRetries) {
        await sleep(Math.random() * 50);
        continue;
      }
      throw new StorageError('transaction failed', error);
    }
  }
}

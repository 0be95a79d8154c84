/** DynamoDB clients at module scope: created once per Lambda container, reused across invocations. */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { StorageError } from '../shared/errors.js';

export function createDocumentClient(config: DynamoDBClientConfig = {}): DynamoDBDocumentClient {
  const client = new DynamoDBClient({ maxAttempts: 3, ...config });
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
  });
}

/** Is this SDK error a failed condition (as opposed to an outage)? */
export function isConditionalFailure(error: unknown): boolean {
  return (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

/** Runs a read; an SDK failure becomes a StorageError (fail closed, retryable 5xx). */
export async function readOrFail<T>(op: () => Promise<T>, what = 'read'): Promise<T> {
  try {
    return await op();
  } catch (error) {
    throw new StorageError(`${what} failed`, error);
  }
}

/** Every item a Query matches, page by page. */
export async function* queryAll(
  doc: DynamoDBDocumentClient,
  input: QueryCommandInput,
  what = 'query',
): AsyncGenerator<Record<string, unknown>> {
  let startKey: Record<string, unknown> | undefined = input.ExclusiveStartKey;
  do {
    const out = await readOrFail(
      () => doc.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey })),
      what,
    );
    for (const item of out.Items ?? []) yield item;
    startKey = out.LastEvaluatedKey;
  } while (startKey);
}

/** The whole table as sorted JSON lines: "nothing was written" is `expect(after).toEqual(before)`. */
import { ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Everything but the rate-limit counters (they count attempts by design) and stream cursors. */
export async function tableSnapshot(doc: DynamoDBDocumentClient, table: string): Promise<string[]> {
  const items: string[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const out = await doc.send(
      new ScanCommand({ TableName: table, ExclusiveStartKey: startKey, ConsistentRead: true }),
    );
    for (const i of out.Items ?? [])
      if (i.type !== 'rate_limit' && i.type !== 'stream_cursor') items.push(JSON.stringify(i));
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  return items.sort();
}

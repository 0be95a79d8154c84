/**
 * `npx tsx bench/emulator-durability.ts [--runs 6]`: does DynamoDB Local (on disk) keep every
 * write it acknowledged when its Java process is SIGKILLed? 32 writers (half conditional puts,
 * half two-item transactions, on a table with a stream, like the gateway's) write for 3 s, Java is
 * killed, DynamoDB Local restarts on the same folder, and every acknowledged key is read back.
 * No gateway code is involved: this measures the emulator the fault run kills.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { freePort, startDynamoDbLocal } from '../bin/local/emulators.js';
import { createDocumentClient } from '../functions/store/dynamo.js';

process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'local';

async function once(): Promise<{ acked: number; lost: number; lostMsFromKill: number[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oc-ddb-durability-'));
  const port = await freePort();
  let ddb = await startDynamoDbLocal({ port, dataDir: dir });
  try {
    await new DynamoDBClient({ endpoint: ddb.endpoint }).send(
      new CreateTableCommand({
        TableName: 'durability',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' },
      }),
    );
    const doc = createDocumentClient({ endpoint: ddb.endpoint, maxAttempts: 1 });
    const acked: { key: string; at: number }[] = [];
    let stop = false;
    let n = 0;
    const writers = Array.from({ length: 32 }, async (_, w) => {
      while (!stop) {
        const key = `k${n++}`;
        const put = {
          TableName: 'durability',
          Item: { pk: key },
          ConditionExpression: 'attribute_not_exists(pk)',
        };
        try {
          if (w % 2)
            await doc.send(
              new TransactWriteCommand({
                TransactItems: [{ Put: put }, { Put: { TableName: 'durability', Item: { pk: `${key}b` } } }],
              }),
            );
          else await doc.send(new PutCommand(put));
          acked.push({ key, at: Date.now() });
        } catch {
          // refused or cut off by the kill: not acknowledged, not counted
        }
      }
    });
    await new Promise((r) => setTimeout(r, 3000));
    const java = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => /^\s*(\d+)\s+(.*)$/.exec(l))
      .find((m) => m?.[2]?.startsWith('java ') && m[2].includes(`DynamoDBLocal.jar -port ${port} `));
    const killedAt = Date.now();
    process.kill(Number(java![1]), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await Promise.all(writers);
    await ddb.stop().catch(() => undefined);
    ddb = await startDynamoDbLocal({ port, dataDir: dir });
    const reader = createDocumentClient({ endpoint: ddb.endpoint });
    const lostMsFromKill: number[] = [];
    for (const a of acked) {
      const r = await reader.send(
        new GetCommand({ TableName: 'durability', Key: { pk: a.key }, ConsistentRead: true }),
      );
      if (!r.Item) lostMsFromKill.push(a.at - killedAt);
    }
    return { acked: acked.length, lost: lostMsFromKill.length, lostMsFromKill };
  } finally {
    await ddb.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({ options: { runs: { type: 'string', default: '6' } } });
for (let i = 0; i < Number(values.runs); i++) console.log(JSON.stringify(await once()));

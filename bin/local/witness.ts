/**
 * One witness on the local stack (`npm start`): the same handler the witness stack deploys
 * (functions/handlers/witness.ts) behind its own port (OC_WITNESS_PORT, default 4571), its own
 * key file (generated on first use, like the evidence signing key) and its own table in DynamoDB
 * Local. It follows the local deployment's logs (origins `local/t/<tenant>`) signed with the
 * evidence signing key, and the local archiver submits every new checkpoint to it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, ResourceInUseException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { witnessRoute } from '../../functions/handlers/witness.js';
import { MAX_ADD_CHECKPOINT_BYTES, type FollowedLogs } from '../../functions/core/witness.js';
import type { HttpEvent } from '../../functions/shared/http.js';
import { FileCheckpointSigner } from '../../functions/store/checkpoint-signer.js';
import { Witness, WitnessStateStore } from '../../functions/store/witness.js';
import type { WitnessConfig } from '../../functions/store/witness-client.js';

/** The local witness's name (its key name in cosignature lines and in its vkey). */
export const LOCAL_WITNESS_NAME = 'localhost/oc-witness';
export const LOCAL_WITNESS_TABLE = 'oc-witness';

/** The witness's table: one item per log origin (`pk`), as lib/witness-stack.ts declares it. */
export async function ensureWitnessTable(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
}

export interface LocalWitness {
  url: string;
  vkey: string;
  /** What the archiver is configured with to submit here. */
  config: WitnessConfig;
  witness: Witness;
  close(): Promise<void>;
}

export async function startLocalWitness(options: {
  port: number;
  doc: DynamoDBDocumentClient;
  client: DynamoDBClient;
  table?: string;
  keyFile: string;
  logs: FollowedLogs[];
  name?: string;
  now?: () => Date;
}): Promise<LocalWitness> {
  const table = options.table ?? LOCAL_WITNESS_TABLE;
  await ensureWitnessTable(options.client, table);
  const name = options.name ?? LOCAL_WITNESS_NAME;
  const witness = new Witness({
    name,
    logs: options.logs,
    store: new WitnessStateStore(options.doc, table),
    signer: FileCheckpointSigner.open(options.keyFile),
    ...(options.now ? { now: options.now } : {}),
  });
  const route = witnessRoute(() => witness);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    req.on('data', (chunk: Buffer) => {
      // Keep chunks until past the limit, no further: the handler answers 413 on the length alone.
      if (kept > MAX_ADD_CHECKPOINT_BYTES) return;
      chunks.push(chunk);
      kept += chunk.length;
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const event = {
        rawPath: url.pathname,
        rawQueryString: url.search.slice(1),
        headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
        body: Buffer.concat(chunks).toString('base64'),
        isBase64Encoded: true,
        requestContext: {
          requestId: crypto.randomUUID(),
          http: { method: req.method ?? 'GET', path: url.pathname },
        },
      } as unknown as HttpEvent;
      void route(event).then(
        (out) => {
          res.writeHead(out.statusCode ?? 500, out.headers as http.OutgoingHttpHeaders);
          res.end(out.body ?? '');
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const vkey = await witness.vkey();
  return {
    url,
    vkey,
    config: { name, url, vkey },
    witness,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

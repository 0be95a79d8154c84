/**
 * The order of the Merkle log's writes (issue 26): full tiles are put a few at a time while a range
 * is read, all of a range's before its checkpoint; the end of a run writes the partial tiles and
 * signs while it checks the bucket, and publishes the log checkpoint only after its partial tiles.
 * A failure at any of these writes leaves a state the next run completes (s3rver, DynamoDB Local).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { writeChainFixture } from '../../bench/chain-fixture.js';
import { s3Source, verifyArchive } from '../../bin/audit/verify-archive.js';
import { localS3Client } from '../../bin/local/archive.js';
import { parseCheckpointBody, parseNote } from '../../functions/core/signed-note.js';
import { ArchiveCheckpointStore } from '../../functions/store/archive-checkpoints.js';
import { Archiver, s3ArchiveObjects, type ArchiveObjects } from '../../functions/store/archiver.js';
import { FileCheckpointSigner } from '../../functions/store/checkpoint-signer.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { ensureTable } from '../../functions/store/table.js';
import { dynamoEndpoint, testConfig } from '../support/stack.js';

const tmp = (name: string) => mkdtempSync(path.join(process.env.OC_TEST_TMP!, `${name}-`));

let s3: S3Client;
let doc: ReturnType<typeof createDocumentClient>;
let table: string;
let keyFile: string;
let n = 0;

beforeAll(async () => {
  s3 = localS3Client(process.env.OC_TEST_S3_ENDPOINT!);
  table = testConfig().tableName;
  const client = new DynamoDBClient({ endpoint: dynamoEndpoint() });
  await ensureTable(client, table);
  client.destroy();
  doc = createDocumentClient({ endpoint: dynamoEndpoint() });
  keyFile = path.join(tmp('key'), 'k.pem');
});
afterAll(() => {
  s3.destroy();
  doc.destroy();
});

async function setup(name: string, entries: number) {
  const tenant = `${name}-${process.pid}-${++n}`;
  const bucket = `oc-archive-log-writes-${process.pid}-${n}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await writeChainFixture(doc, table, tenant, entries);
  return { tenant, bucket };
}

const FULL_TILE = /^log\/[^/]+\/tile\/\d+\/(?:x\d{3}\/)*\d{3}$/;
const PARTIAL_TILE = /^log\/[^/]+\/tile\/\d+\/(?:x\d{3}\/)*\d{3}\.p\/\d+$/;
const BUNDLE_CHECKPOINT = /^evidence\/[^/]+\/checkpoints\/(\d{12})\.json$/;
const LOG_CHECKPOINT = /^log\/[^/]+\/checkpoint$/;

/**
 * The bucket's objects as the archiver writes them, watched: tile puts held a little so that they
 * overlap (as S3's tens of ms do), what was in flight at most, what was done when each checkpoint
 * was put, and a failure injected at a chosen put.
 */
function watched(bucket: string, fail?: (key: string) => boolean) {
  const inner = s3ArchiveObjects(s3, bucket);
  const state = { inFlight: 0, maxInFlight: 0, done: new Set<string>(), order: [] as string[] };
  const objects: ArchiveObjects = {
    async put(key, body, contentType) {
      if (fail?.(key)) throw new Error(`injected: put ${key} failed`);
      const tile = FULL_TILE.test(key) || PARTIAL_TILE.test(key);
      if (FULL_TILE.test(key)) state.maxInFlight = Math.max(state.maxInFlight, ++state.inFlight);
      try {
        if (tile) await new Promise((r) => setTimeout(r, 15));
        if (BUNDLE_CHECKPOINT.test(key) || LOG_CHECKPOINT.test(key)) state.order.push(key);
        await inner.put(key, body, contentType);
        state.done.add(key);
      } finally {
        if (FULL_TILE.test(key)) state.inFlight -= 1;
      }
    },
    get: (key) => inner.get(key),
    exists: (key) => inner.exists!(key),
  };
  /** Puts done before `key` was put (the tiles a checkpoint relies on must be among them). */
  const doneBefore = new Map<string, Set<string>>();
  const put = objects.put;
  objects.put = async (key, body, contentType) => {
    if (BUNDLE_CHECKPOINT.test(key) || LOG_CHECKPOINT.test(key)) doneBefore.set(key, new Set(state.done));
    return put(key, body, contentType);
  };
  return { objects, state, doneBefore };
}

const archiver = (objects: ArchiveObjects, maxTilePuts?: number) =>
  new Archiver({
    store: new ArchiveCheckpointStore(doc, table),
    objects,
    signer: FileCheckpointSigner.open(keyFile),
    maxEntriesPerBundle: 2560,
    ...(maxTilePuts ? { maxTilePuts } : {}),
    events: {
      chainBroken: () => undefined,
      tenantFailed: () => undefined,
      archived: () => undefined,
      lag: () => undefined,
    },
  });

async function logCheckpointSize(bucket: string, tenant: string): Promise<number | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `log/${tenant}/checkpoint` }));
    const note = parseNote(Buffer.from(await out.Body!.transformToByteArray()).toString('utf8'));
    return parseCheckpointBody(note.body).size;
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
    throw error;
  }
}

async function verified(bucket: string, tenant: string) {
  const pem = await s3ArchiveObjects(s3, bucket).get('evidence/public-key.pem');
  return verifyArchive({ source: s3Source(s3, bucket), tenantId: tenant, publicKeyPem: pem!.toString() });
}

it('full tiles are put at most `maxTilePuts` at a time while the range is read; every tile of a range is in before its checkpoint, the partial tiles before the log checkpoint', async () => {
  const { tenant, bucket } = await setup('order', 5000);
  const { objects, state, doneBefore } = watched(bucket);
  const report = await archiver(objects, 4).run({ tenantId: tenant });
  expect(report.ok).toBe(true);
  expect(report.tenants[0]?.bundles.map((b) => [b.fromSeq, b.toSeq])).toEqual([
    [1, 2560],
    [2561, 5000],
  ]);
  // 19 full tiles; a page of the chain fills several at once, yet no more than 4 are in flight
  // (the default is larger than a range's tiles: a put is latency, not bandwidth).
  expect([...state.done].filter((k) => FULL_TILE.test(k))).toHaveLength(19);
  expect(state.maxInFlight).toBeGreaterThan(1);
  expect(state.maxInFlight).toBeLessThanOrEqual(4);
  const tile = (i: number) => `log/${tenant}/tile/0/${String(i).padStart(3, '0')}`;
  const first = doneBefore.get(`evidence/${tenant}/checkpoints/000000002560.json`)!;
  for (let i = 0; i < 10; i++) expect(first.has(tile(i))).toBe(true);
  const second = doneBefore.get(`evidence/${tenant}/checkpoints/000000005000.json`)!;
  for (let i = 0; i < 19; i++) expect(second.has(tile(i))).toBe(true);
  const log = doneBefore.get(`log/${tenant}/checkpoint`)!;
  expect(log.has(`log/${tenant}/tile/0/019.p/136`)).toBe(true);
  expect(log.has(`log/${tenant}/tile/1/000.p/19`)).toBe(true);
  expect(await logCheckpointSize(bucket, tenant)).toBe(5000);
  const check = await verified(bucket, tenant);
  expect(check.ok).toBe(true);
  expect(check.entries).toBe(5000);
});

it.each([
  ['a full tile of the second range', (t: string) => (k: string) => k === `log/${t}/tile/0/012`, 2560],
  [
    'a partial tile at the end of the run',
    (t: string) => (k: string) => k === `log/${t}/tile/0/019.p/136`,
    5000,
  ],
  ['the log checkpoint', (t: string) => (k: string) => k === `log/${t}/checkpoint`, 5000],
])(
  'a put of %s fails: the run fails with nothing published past what is proven, and the next run completes it',
  async (_what, failing, archivedHead) => {
    const { tenant, bucket } = await setup('crash', 5000);
    const broken = watched(bucket, failing(tenant));
    const report = await archiver(broken.objects).run({ tenantId: tenant });
    expect(report.ok).toBe(false);
    expect(report.tenants[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/^injected/) });
    // The range whose tile failed is not advanced past (nor its checkpoint written); no log
    // checkpoint names tiles that are not there.
    const checkpoint = await new ArchiveCheckpointStore(doc, table).checkpoint(tenant);
    expect(checkpoint.head.seq).toBe(archivedHead);
    if (archivedHead < 5000)
      expect(broken.state.order).not.toContain(`evidence/${tenant}/checkpoints/000000005000.json`);
    expect(await logCheckpointSize(bucket, tenant)).toBeUndefined();

    const again = await archiver(watched(bucket).objects).run({ tenantId: tenant });
    expect(again.ok).toBe(true);
    expect(await logCheckpointSize(bucket, tenant)).toBe(5000);
    const check = await verified(bucket, tenant);
    expect(check.ok).toBe(true);
    expect(check.entries).toBe(5000);
  },
);

it("every put carries its body's SHA-256 (Object Lock requires a checksum), the bundle's from the digest it already has", async () => {
  const { tenant, bucket } = await setup('checksum', 600);
  // A client of its own, watched at the wire: the header each PutObject sends, and its body.
  const client = localS3Client(process.env.OC_TEST_S3_ENDPOINT!);
  const sent: { key: string; checksum?: string; body: Buffer }[] = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as {
        path?: string;
        method?: string;
        headers: Record<string, string>;
        body?: unknown;
      };
      if (request.method === 'PUT' && Buffer.isBuffer(request.body))
        sent.push({
          key: request.path ?? '',
          checksum: request.headers['x-amz-checksum-sha256'],
          body: request.body,
        });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'watchChecksums' },
  );
  try {
    const report = await archiver(s3ArchiveObjects(client, bucket)).run({ tenantId: tenant });
    expect(report.ok).toBe(true);
    expect(sent.length).toBeGreaterThanOrEqual(6); // key, bundle, its checkpoint, 2 tiles, partials, log checkpoint
    for (const put of sent) expect(put.checksum).toBe(createHash('sha256').update(put.body).digest('base64'));
    const bundle = report.tenants[0]!.bundles[0]!;
    const sentBundle = sent.find((p) => p.key.endsWith(bundle.key))!;
    expect(Buffer.from(sentBundle.checksum!, 'base64').toString('hex')).toBe(bundle.sha256);
  } finally {
    client.destroy();
  }
});

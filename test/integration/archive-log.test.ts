/**
 * The archive's Merkle log (issue 23) on s3rver and DynamoDB Local: the tree built from seq 1 for
 * an archive made before it (test/fixtures/archive-v1), the signed checkpoint and tiles each run
 * publishes, what the archiver notices when published evidence disappears (finding (a)), a
 * checkpoint it refuses to publish, the witness seam, and `oc verify --trusted-checkpoint`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { jest } from '@jest/globals';
import canonicalize from 'canonicalize';
import { fixtureFact, writeChainFixture } from '../../bench/chain-fixture.js';
import { s3Source, verifyArchive } from '../../bin/audit/verify-archive.js';
import { localS3Client } from '../../bin/local/archive.js';
import { GENESIS } from '../../functions/core/evidence.js';
import {
  checkpointBody,
  formatNote,
  parseCheckpointBody,
  parseNote,
  rawEd25519,
  signNote,
  verifyNoteSignature,
} from '../../functions/core/signed-note.js';
import { leafHash, rootFromLeaves, verifyConsistency } from '../../functions/core/tlog.js';
import { metrics } from '../../functions/shared/powertools.js';
import { ArchiveCheckpointStore } from '../../functions/store/archive-checkpoints.js';
import {
  Archiver,
  powertoolsArchiveEvents,
  s3ArchiveObjects,
  type ArchiveEvents,
  type NewLogCheckpoint,
} from '../../functions/store/archiver.js';
import { FileCheckpointSigner } from '../../functions/store/checkpoint-signer.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { keys } from '../../functions/store/keys.js';
import { ensureTable } from '../../functions/store/table.js';
import { runOc } from '../support/cli.js';
import { dynamoEndpoint, testConfig } from '../support/stack.js';

const FIXTURE = path.resolve('test/fixtures/archive-v1');
const tmp = (name: string) => mkdtempSync(path.join(process.env.OC_TEST_TMP!, `${name}-`));
const seq12 = (n: number) => String(n).padStart(12, '0');

let s3: S3Client;
let doc: ReturnType<typeof createDocumentClient>;
let table: string;
let buckets = 0;

beforeAll(async () => {
  s3 = localS3Client(process.env.OC_TEST_S3_ENDPOINT!);
  table = testConfig().tableName;
  const client = new DynamoDBClient({ endpoint: dynamoEndpoint() });
  await ensureTable(client, table);
  client.destroy();
  doc = createDocumentClient({ endpoint: dynamoEndpoint() });
});
afterAll(() => {
  s3.destroy();
  doc.destroy();
});

async function newBucket(): Promise<string> {
  const bucket = `oc-archive-log-${process.pid}-${++buckets}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function get(bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
    throw error;
  }
}

async function list(bucket: string, prefix: string): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

const del = (bucket: string, key: string) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));

/** Events kept for assertions. */
function recording() {
  const seen = {
    missing: [] as { key: string; problem: string }[],
    refused: [] as string[],
    published: [] as { size: number; oldSize: number }[],
  };
  const events: ArchiveEvents = {
    chainBroken: () => undefined,
    tenantFailed: () => undefined,
    archived: () => undefined,
    lag: () => undefined,
    logMissing: (_t, key, problem) => void seen.missing.push({ key, problem }),
    logRefused: (_t, problem) => void seen.refused.push(problem),
    logPublished: (_t, size, oldSize) => void seen.published.push({ size, oldSize }),
  };
  return { seen, events };
}

const archiver = (
  bucket: string,
  keyFile: string,
  extra: { events?: ArchiveEvents; witness?: (c: NewLogCheckpoint) => Promise<string[]>; max?: number } = {},
) =>
  new Archiver({
    store: new ArchiveCheckpointStore(doc, table),
    objects: s3ArchiveObjects(s3, bucket),
    signer: FileCheckpointSigner.open(keyFile),
    maxEntriesPerBundle: extra.max ?? 200,
    events: extra.events ?? recording().events,
    ...(extra.witness ? { witness: extra.witness } : {}),
  });

let tenants = 0;
const newTenant = (name: string) => `${name}-${process.pid}-${++tenants}`;

/** The log checkpoint's parts, checked against the key; independently of the archiver's code. */
function readCheckpoint(note: Buffer, publicKeyPem: string) {
  const parsed = parseNote(note.toString('utf8'));
  // Signed under its origin as key name (C2SP tlog-checkpoint).
  const origin = parsed.body.split('\n')[0]!;
  expect(parsed.signatures[0]!.name).toBe(origin);
  expect(verifyNoteSignature(parsed.body, parsed.signatures[0]!, origin, rawEd25519(publicKeyPem))).toBe(
    true,
  );
  return { ...parseCheckpointBody(parsed.body), signatures: parsed.signatures };
}

/** RFC 6962 root of a tenant's records, straight from its bundles (no tile, no edge). */
async function rootOfBundles(bucket: string, tenantId: string, size: number): Promise<Buffer> {
  const leaves: Buffer[] = [];
  for (const key of (await list(bucket, `evidence/${tenantId}/`)).filter((k) =>
    /\d{12}-\d{12}\.json$/.test(k),
  )) {
    const bundle = JSON.parse((await get(bucket, key))!.toString('utf8'));
    for (const e of bundle.entries) leaves.push(leafHash(Buffer.from(canonicalize(e.record)!, 'utf8')));
  }
  return rootFromLeaves(leaves.slice(0, size));
}

describe('migration: an archive made before the log (test/fixtures/archive-v1)', () => {
  it('the first run builds each tenant tree from seq 1; the old bundles stay as they were and the whole archive verifies', async () => {
    const bucket = await newBucket();
    const keyDir = tmp('key');
    const keyFile = path.join(keyDir, 'evidence-signing-key.pem');
    copyFileSync(path.join(FIXTURE, 'signing-key.pem'), keyFile);
    const root = path.join(FIXTURE, 'bucket');
    const files = readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    // The fixture's tenants under fresh names would change their bytes: this table is the test's own.
    for (const f of files) {
      const key = path.relative(root, path.join(f.parentPath, f.name)).split(path.sep).join('/');
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(path.join(root, key)) }),
      );
    }
    // The chains, as they are in the table, and the checkpoint items today's archiver left.
    const store = new ArchiveCheckpointStore(doc, table);
    const heads = {
      acme: await writeChainFixture(doc, table, 'acme', 20),
      globex: await writeChainFixture(doc, table, 'globex', 12),
    };
    heads.acme = await writeChainFixture(doc, table, 'acme', 5, { head: heads.acme });
    expect(heads.acme).toEqual(JSON.parse(readFileSync(path.join(FIXTURE, 'heads.json'), 'utf8')).acme);
    for (const [t, head] of Object.entries(heads)) {
      const last = (await list(bucket, `evidence/${t}/`))
        .filter((k) => /\d{12}\.json$/.test(k) && !k.includes('checkpoints'))
        .pop()!;
      const from = Number(/(\d{12})-/.exec(last)![1]);
      expect(await store.claim(t, GENESIS, { fromSeq: 1, toSeq: head.seq })).toBe(true);
      expect(
        await store.advance(
          t,
          GENESIS,
          head,
          {
            key: last,
            sha256: createHash('sha256')
              .update((await get(bucket, last))!)
              .digest('hex'),
          },
          new Date(),
        ),
      ).toBe(true);
      expect(from).toBeGreaterThan(1);
    }
    const before = new Map<string, Buffer>();
    for (const key of await list(bucket, 'evidence/')) before.set(key, (await get(bucket, key))!);

    // acme grows by 7 meanwhile; globex does not.
    heads.acme = await writeChainFixture(doc, table, 'acme', 7, { head: heads.acme });
    const { seen, events } = recording();
    const report = await archiver(bucket, keyFile, { events, max: 10 }).run();
    expect(report.ok).toBe(true);
    expect(seen.missing).toEqual([]);
    expect(seen.published.sort((a, b) => a.size - b.size)).toEqual([
      { size: 12, oldSize: 0 },
      { size: 32, oldSize: 0 },
    ]);
    for (const [key, bytes] of before) expect((await get(bucket, key))!.equals(bytes)).toBe(true);
    const pem = readFileSync(path.join(FIXTURE, 'public-key.pem'), 'utf8');
    const acme = readCheckpoint((await get(bucket, 'log/acme/checkpoint'))!, pem);
    expect(acme).toMatchObject({
      origin: 'local/t/acme',
      size: 32,
      extensions: [`oc-chain-head 32 ${heads.acme.hash}`],
    });
    expect(acme.root.equals(await rootOfBundles(bucket, 'acme', 32))).toBe(true);
    for (const t of ['acme', 'globex']) {
      const verified = await verifyArchive({ source: s3Source(s3, bucket), tenantId: t, publicKeyPem: pem });
      expect(verified).toMatchObject({
        ok: true,
        entries: heads[t as 'acme' | 'globex'].seq,
        log: { size: heads[t as 'acme' | 'globex'].seq },
      });
    }
    // The tiles: 32 and 12 leaves fit in one partial tile each.
    expect(await list(bucket, 'log/acme/')).toEqual(['log/acme/checkpoint', 'log/acme/tile/0/000.p/32']);
  });
});

describe('what the archiver publishes, and notices missing', () => {
  const tenant = newTenant('log');
  let bucket: string;
  let keyFile: string;
  let pem: string;
  let head: { seq: number; hash: string };

  beforeAll(async () => {
    bucket = await newBucket();
    keyFile = path.join(tmp('key'), 'evidence-signing-key.pem');
    head = await writeChainFixture(doc, table, tenant, 600);
    expect((await archiver(bucket, keyFile).run({ tenantId: tenant })).ok).toBe(true);
    pem = (await get(bucket, 'evidence/public-key.pem'))!.toString();
  });

  it('full tiles, the partial tiles and a signed checkpoint whose root is the RFC 6962 root of the records', async () => {
    expect(await list(bucket, `log/${tenant}/`)).toEqual(
      [
        `log/${tenant}/checkpoint`,
        `log/${tenant}/tile/0/000`,
        `log/${tenant}/tile/0/001`,
        `log/${tenant}/tile/0/002.p/88`,
        `log/${tenant}/tile/1/000.p/2`,
      ].sort(),
    );
    const cp = readCheckpoint((await get(bucket, `log/${tenant}/checkpoint`))!, pem);
    expect(cp).toMatchObject({
      origin: `local/t/${tenant}`,
      size: 600,
      extensions: [`oc-chain-head 600 ${head.hash}`],
    });
    expect(cp.root.equals(await rootOfBundles(bucket, tenant, 600))).toBe(true);
    // A run with nothing new writes nothing under log/.
    const again = await archiver(bucket, keyFile).run({ tenantId: tenant });
    expect(again.tenants[0]?.status).toBe('up-to-date');
  });

  it('issue 26: the verifier reads the full tiles with the bundle that completes them, and hands the caller its time while the first bundle downloads', async () => {
    const source = s3Source(s3, bucket);
    const events: string[] = [];
    const watched: typeof source = {
      ...source,
      async get(key) {
        events.push(`get ${key}`);
        const bytes = await source.get(key);
        events.push(`got ${key}`);
        return bytes;
      },
    };
    let handed = 0;
    const report = await verifyArchive({
      source: watched,
      tenantId: tenant,
      publicKeyPem: pem,
      whileReading: () => void events.push('whileReading'),
      onRecords: (records) => void (handed += records.length),
    });
    expect(report).toMatchObject({ ok: true, entries: 600 });
    expect(handed).toBe(600);
    const at = (event: string) => {
      const i = events.indexOf(event);
      expect(i).toBeGreaterThanOrEqual(0);
      return i;
    };
    const bundleKey = (from: number, to: number) => `evidence/${tenant}/${seq12(from)}-${seq12(to)}.json`;
    // Tile 0/000 (leaves 1-256) is completed in the second bundle, 0/001 in the third: each asked
    // for with its bundle, before that bundle's bytes are in (not one by one inside the walk).
    expect(at(`get log/${tenant}/tile/0/000`)).toBeLessThan(at(`got ${bundleKey(201, 400)}`));
    expect(at(`get log/${tenant}/tile/0/001`)).toBeLessThan(at(`got ${bundleKey(401, 600)}`));
    // Once, after the first bundle was asked for and before it arrived.
    expect(events.filter((e) => e === 'whileReading')).toHaveLength(1);
    expect(at(`get ${bundleKey(1, 200)}`)).toBeLessThan(at('whileReading'));
    expect(at('whileReading')).toBeLessThan(at(`got ${bundleKey(1, 200)}`));
  });

  it('finding (a): the newest bundle, its checkpoints and the log deleted: a kept checkpoint fails verification, the archiver alarms and publishes its checkpoint again', async () => {
    const copy = await newBucket();
    for (const key of [...(await list(bucket, 'evidence/')), ...(await list(bucket, 'log/'))])
      await s3.send(new PutObjectCommand({ Bucket: copy, Key: key, Body: await get(bucket, key) }));
    const keptFile = path.join(tmp('kept'), 'kept.txt');
    writeFileSync(keptFile, (await get(copy, `log/${tenant}/checkpoint`))!);
    await del(copy, `evidence/${tenant}/${seq12(401)}-${seq12(600)}.json`);
    await del(copy, `evidence/${tenant}/checkpoints/${seq12(600)}.json`);
    await del(copy, `log/${tenant}/checkpoint`);

    // The auditor with the checkpoint kept from before: the archive is shorter (the real CLI).
    const env = {
      OC_S3_PORT: new URL(process.env.OC_TEST_S3_ENDPOINT!).port,
      OC_DYNAMODB_PORT: new URL(dynamoEndpoint()).port,
      OC_TABLE_NAME: table,
      OC_DATA_DIR: tmp('oc-data'),
    };
    const pubFile = path.join(tmp('pub'), 'public-key.pem');
    writeFileSync(pubFile, pem);
    // Without the log checkpoint, its tiles say a log was there.
    const run = await runOc(
      [
        'verify',
        '--bucket',
        copy,
        '--tenant',
        tenant,
        '--public-key',
        pubFile,
        '--trusted-checkpoint',
        keptFile,
      ],
      env,
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      `FAILED: tenant ${tenant}: log/${tenant}/checkpoint: the log's tiles are in the archive but its signed checkpoint is missing`,
    );
    for (const key of await list(copy, `log/${tenant}/`)) await del(copy, key);
    const cut = await verifyArchive({
      source: s3Source(s3, copy),
      tenantId: tenant,
      publicKeyPem: pem,
      trusted: [{ where: keptFile, bytes: readFileSync(keptFile) }],
    });
    expect(cut.ok).toBe(false);
    expect(cut.break).toMatchObject({
      key: keptFile,
      problem: expect.stringMatching(
        /^the archive's log ends at seq 400, before seq 600 of a checkpoint you kept/,
      ),
    });

    // The archiver, on the next run: the log checkpoint and the newest bundle are gone.
    const { seen, events } = recording();
    const addMetric = jest.spyOn(metrics, 'addMetric');
    powertoolsArchiveEvents.logMissing!(tenant, 'k', 'gone');
    expect(addMetric).toHaveBeenCalledWith('archive_log_missing', 'Count', 1);
    addMetric.mockRestore();
    const rerun = await archiver(copy, keyFile, { events }).run({ tenantId: tenant });
    expect(seen.missing).toEqual(
      expect.arrayContaining([
        { key: `log/${tenant}/checkpoint`, problem: 'the published log checkpoint is missing' },
        {
          key: `evidence/${tenant}/${seq12(401)}-${seq12(600)}.json`,
          problem: 'the newest bundle is missing',
        },
        { key: `log/${tenant}/tile/0/001`, problem: 'a full tile the archiver wrote is missing' },
      ]),
    );
    // What it can prove it publishes again (the same tree, the recorded root): the checkpoint is back.
    expect(rerun.tenants[0]?.status).toBe('up-to-date');
    expect(rerun.tenants[0]?.missing).toEqual(seen.missing); // what `oc archive` prints
    expect(readCheckpoint((await get(copy, `log/${tenant}/checkpoint`))!, pem)).toMatchObject({ size: 600 });
  });

  it('a tree that is not consistent with the published one (the recorded root changed): refused, nothing published, alarmed', async () => {
    const t = newTenant('fork');
    const b = await newBucket();
    let h = await writeChainFixture(doc, table, t, 300);
    expect((await archiver(b, keyFile).run({ tenantId: t })).ok).toBe(true);
    const published = (await get(b, `log/${t}/checkpoint`))!;
    await doc.send(
      new UpdateCommand({
        TableName: table,
        Key: keys.archiveCheckpoint(t),
        UpdateExpression: 'SET log_root = :r',
        ExpressionAttributeValues: { ':r': randomBytes(32) },
      }),
    );
    h = await writeChainFixture(doc, table, t, 100, { head: h });
    const { seen, events } = recording();
    const report = await archiver(b, keyFile, { events }).run({ tenantId: t });
    expect(report.ok).toBe(false);
    expect(report.tenants[0]).toMatchObject({ status: 'failed', head: { seq: 400 } });
    expect(report.tenants[0]!.error).toMatch(
      /^log checkpoint not published: the tree of 400 leaves is not consistent with the published tree of 300/,
    );
    expect(seen.refused).toHaveLength(1);
    expect((await get(b, `log/${t}/checkpoint`))!.equals(published)).toBe(true);
    const addMetric = jest.spyOn(metrics, 'addMetric');
    powertoolsArchiveEvents.logRefused!(t, 'x');
    expect(addMetric).toHaveBeenCalledWith('archive_log_refused', 'Count', 1);
    addMetric.mockRestore();
    expect(h.seq).toBe(400);
  });

  it('the witness step gets the signed checkpoint, the old size and a consistency proof; its cosignature lines are published', async () => {
    const t = newTenant('witness');
    const b = await newBucket();
    let h = await writeChainFixture(doc, table, t, 250);
    const calls: NewLogCheckpoint[] = [];
    const witness = async (c: NewLogCheckpoint) => {
      calls.push(c);
      return ['— witness.example AAAAAAAA\n'];
    };
    expect((await archiver(b, keyFile, { witness }).run({ tenantId: t })).ok).toBe(true);
    const first = readCheckpoint((await get(b, `log/${t}/checkpoint`))!, pem);
    h = await writeChainFixture(doc, table, t, 300, { head: h });
    expect((await archiver(b, keyFile, { witness }).run({ tenantId: t })).ok).toBe(true);
    const text = (await get(b, `log/${t}/checkpoint`))!.toString('utf8');
    expect(text.endsWith(`\n— witness.example AAAAAAAA\n`)).toBe(true);
    const second = readCheckpoint(Buffer.from(text), pem);
    expect(calls.map((c) => [c.tenantId, c.oldSize])).toEqual([
      [t, 0],
      [t, 250],
    ]);
    expect(text.startsWith(calls[1]!.note)).toBe(true);
    expect(verifyConsistency(250, 550, calls[1]!.proof, first.root, second.root)).toBe(true);
    expect(second.extensions).toEqual([`oc-chain-head 550 ${h.hash}`]);
    expect((await verifyArchive({ source: s3Source(s3, b), tenantId: t, publicKeyPem: pem })).ok).toBe(true);
  });
});

describe('oc verify prints the checkpoint to keep, and checks kept ones', () => {
  it('--save-checkpoint then --trusted-checkpoint: passes while the log grows; a fork, a rolled-back checkpoint and another tenant fail', async () => {
    const t = newTenant('keep');
    const b = await newBucket();
    const keyFile = path.join(tmp('key'), 'k.pem');
    let h = await writeChainFixture(doc, table, t, 30, { fact: (tt, n) => fixtureFact(tt, n) });
    expect((await archiver(b, keyFile).run({ tenantId: t })).ok).toBe(true);
    const env = {
      OC_S3_PORT: new URL(process.env.OC_TEST_S3_ENDPOINT!).port,
      OC_DYNAMODB_PORT: new URL(dynamoEndpoint()).port,
      OC_TABLE_NAME: table,
      OC_DATA_DIR: tmp('oc-data'),
    };
    const kept = path.join(tmp('kept'), 'checkpoint.txt');
    const first = await runOc(['verify', '--bucket', b, '--tenant', t, '--save-checkpoint', kept], env);
    expect(first.code).toBe(0);
    const note = readFileSync(kept, 'utf8');
    expect(note.startsWith(`local/t/${t}\n30\n`)).toBe(true);
    expect(first.stdout).toContain(
      `checkpoint verified (keep it; pass it to --trusted-checkpoint next time), saved to ${kept}:\n${note.trimEnd()}`,
    );
    h = await writeChainFixture(doc, table, t, 10, { head: h });
    expect((await archiver(b, keyFile).run({ tenantId: t })).ok).toBe(true);
    const later = await verifyArchive({
      source: s3Source(s3, b),
      tenantId: t,
      trusted: [{ where: kept, bytes: Buffer.from(note) }],
    });
    expect(later).toMatchObject({ ok: true, trusted: 1, log: { size: 40 } });
    expect(h.seq).toBe(40);

    // A fork: a checkpoint of size 30 signed by the same key with another root.
    const signer = FileCheckpointSigner.open(keyFile);
    const pub32 = rawEd25519(await signer.publicKeyPem());
    const head30 = parseCheckpointBody(parseNote(note).body).extensions[0]!;
    const body = checkpointBody({
      origin: `local/t/${t}`,
      size: 30,
      root: randomBytes(32),
      extensions: [head30],
    });
    const forked = formatNote(body, [await signNote(body, `local/t/${t}`, pub32, (m) => signer.sign(m))]);
    const fork = await verifyArchive({
      source: s3Source(s3, b),
      tenantId: t,
      trusted: [{ where: 'forked.txt', bytes: Buffer.from(forked) }],
    });
    expect(fork.break).toMatchObject({
      key: 'forked.txt',
      problem: 'fork: entries 1-30 of the archive do not hash to the root of the checkpoint you kept',
    });
    // A rollback of the published checkpoint alone: the bucket's is older than the one kept.
    const kept40 = (await get(b, `log/${t}/checkpoint`))!;
    await s3.send(new PutObjectCommand({ Bucket: b, Key: `log/${t}/checkpoint`, Body: note }));
    const rolledBack = await verifyArchive({
      source: s3Source(s3, b),
      tenantId: t,
      trusted: [{ where: 'kept-40.txt', bytes: kept40 }],
    });
    expect(rolledBack.break).toMatchObject({
      key: 'kept-40.txt',
      problem: expect.stringMatching(
        /published checkpoint \(size 30\) is older than one you kept \(size 40\)/,
      ),
    });
    await s3.send(new PutObjectCommand({ Bucket: b, Key: `log/${t}/checkpoint`, Body: kept40 }));
    // Tenants are walls: one tenant's kept checkpoint is not another's.
    const other = newTenant('other');
    await writeChainFixture(doc, table, other, 5);
    expect((await archiver(b, keyFile).run({ tenantId: other })).ok).toBe(true);
    const wall = await verifyArchive({
      source: s3Source(s3, b),
      tenantId: other,
      trusted: [{ where: kept, bytes: Buffer.from(note) }],
    });
    expect(wall.break).toMatchObject({ key: kept, problem: expect.stringMatching(/is not tenant .*'s log/) });
  });
});

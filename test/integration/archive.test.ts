/**
 * The evidence archive (SPEC §8) on the local S3 (s3rver) and DynamoDB Local: bundles and signed
 * checkpoints, `oc verify --bucket/--dir` (the real CLI), tampering, a crash between the bundle
 * and the checkpoint, two archivers at once, and a chain broken in DynamoDB.
 *
 * Chains are written straight into the table in the chain's own page format with the real hash
 * formula (bench/chain-fixture.ts): thousands of entries through the API would take minutes here.
 * The test's own verification (`independentlyVerify`) recomputes SPEC §7 itself from the objects.
 */
import { createHash, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
import canonicalize from 'canonicalize';
import { jest } from '@jest/globals';
import { writeChainFixture } from '../../bench/chain-fixture.js';
import { localArchiver, localS3Client } from '../../bin/local/archive.js';
import { metrics } from '../../functions/shared/powertools.js';
import { ArchiveCheckpointStore } from '../../functions/store/archive-checkpoints.js';
import {
  Archiver,
  powertoolsArchiveEvents,
  s3ArchiveObjects,
  type ArchiveEvents,
  type ArchiveObjects,
} from '../../functions/store/archiver.js';
import { FileCheckpointSigner } from '../../functions/store/checkpoint-signer.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { ensureTable } from '../../functions/store/table.js';
import { runOc } from '../support/cli.js';
import { dynamoEndpoint, testConfig } from '../support/stack.js';

const s3Endpoint = () => process.env.OC_TEST_S3_ENDPOINT!;
const tmp = (name: string) => mkdtempSync(path.join(process.env.OC_TEST_TMP!, `${name}-`));

let s3: S3Client;
let doc: ReturnType<typeof createDocumentClient>;
let table: string;
let bucketCount = 0;

beforeAll(async () => {
  s3 = localS3Client(s3Endpoint());
  const config = testConfig();
  table = config.tableName;
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
  const bucket = `oc-archive-test-${process.pid}-${++bucketCount}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function listKeys(bucket: string, prefix = 'evidence/'): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of out.Contents ?? []) keys.push(o.Key!);
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

async function getObject(bucket: string, key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

const putObject = (bucket: string, key: string, body: Buffer | string) =>
  s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

/** Events an archiver reports, kept for assertions. */
function recordingEvents() {
  const seen = { broken: [] as { tenantId: string; seq: number }[], failed: [] as string[], archived: 0 };
  const events: ArchiveEvents = {
    chainBroken: (tenantId, seq) => void seen.broken.push({ tenantId, seq }),
    tenantFailed: (tenantId) => void seen.failed.push(tenantId),
    archived: () => void (seen.archived += 1),
    lag: () => undefined,
  };
  return { seen, events };
}

function archiverFor(bucket: string, keyFile: string, extra: { maxEntriesPerBundle?: number; events?: ArchiveEvents; objects?: ArchiveObjects; store?: ArchiveCheckpointStore } = {}) {
  const signer = FileCheckpointSigner.open(keyFile);
  return new Archiver({
    store: extra.store ?? new ArchiveCheckpointStore(doc, table),
    objects: extra.objects ?? s3ArchiveObjects(s3, bucket),
    signer,
    maxEntriesPerBundle: extra.maxEntriesPerBundle ?? 500,
    events: extra.events ?? recordingEvents().events,
  });
}

let tenantCount = 0;
const newTenant = (name: string) => `${name}-${process.pid}-${++tenantCount}`;

/** SPEC §7 and §8 recomputed here, from the objects alone (none of the archiver's code). */
async function independentlyVerify(bucket: string, tenantId: string, publicKeyPem: string) {
  const L = (s: string) => {
    const bytes = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(bytes.length));
    return Buffer.concat([len, bytes]);
  };
  const hashOf = (prev: string, record: unknown) =>
    createHash('sha256')
      .update(Buffer.concat([L('oc-evidence/v1'), L(prev), L(canonicalize(record)!)]))
      .digest('hex');
  const publicKey = createPublicKey(publicKeyPem);
  const keys = await listKeys(bucket, `evidence/${tenantId}/`);
  const bundleKeys = keys.filter((k) => /\/\d{12}-\d{12}\.json$/.test(k));
  let prev = '';
  let seq = 0;
  for (const key of bundleKeys) {
    const bytes = await getObject(bucket, key);
    const bundle = JSON.parse(bytes.toString('utf8'));
    expect(bundle.format).toBe('oc-evidence-bundle/v1');
    expect(bundle.tenant_id).toBe(tenantId);
    expect(bundle.from_seq).toBe(seq + 1);
    expect(bundle.prev_hash).toBe(prev);
    for (const entry of bundle.entries) {
      expect(entry.seq).toBe(seq + 1);
      expect(entry.prev_hash).toBe(prev);
      expect(entry.record.seq).toBe(entry.seq);
      expect(hashOf(prev, entry.record)).toBe(entry.hash);
      prev = entry.hash;
      seq = entry.seq;
    }
    expect(bundle.to_seq).toBe(seq);
    expect(bundle.last_hash).toBe(prev);
    const checkpoint = JSON.parse(
      (await getObject(bucket, `evidence/${tenantId}/checkpoints/${String(seq).padStart(12, '0')}.json`)).toString(),
    );
    const { signature, ...statement } = checkpoint;
    expect(verify(null, Buffer.from(canonicalize(statement)!), publicKey, Buffer.from(signature, 'base64'))).toBe(true);
    expect(statement).toMatchObject({
      tenant_id: tenantId,
      seq,
      last_hash: prev,
      bundle_key: key,
      bundle_sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  return { entries: seq, bundles: bundleKeys.length, lastHash: prev };
}

const ocEnv = () => ({
  OC_S3_PORT: new URL(s3Endpoint()).port,
  OC_DYNAMODB_PORT: new URL(dynamoEndpoint()).port,
  OC_TABLE_NAME: table,
  OC_DATA_DIR: tmp('oc-data'),
});

describe('archiving two tenants and verifying as an auditor', () => {
  const tenants = [newTenant('alpha'), newTenant('beta')];
  let bucket: string;
  let keyFile: string;
  const heads: Record<string, { seq: number; hash: string }> = {};

  beforeAll(async () => {
    bucket = await newBucket();
    keyFile = path.join(tmp('key'), 'evidence-signing-key.pem');
    // 2,500 entries in all, archived in two runs (the chains grow in between), 500 per bundle.
    heads[tenants[0]!] = await writeChainFixture(doc, table, tenants[0]!, 800);
    heads[tenants[1]!] = await writeChainFixture(doc, table, tenants[1]!, 450);
    const first = await archiverFor(bucket, keyFile).run();
    for (const t of tenants) expect(first.tenants.find((r) => r.tenantId === t)?.status).toBe('archived');
    heads[tenants[0]!] = await writeChainFixture(doc, table, tenants[0]!, 500, { head: heads[tenants[0]!] });
    heads[tenants[1]!] = await writeChainFixture(doc, table, tenants[1]!, 750, { head: heads[tenants[1]!] });
    const second = await archiverFor(bucket, keyFile).run();
    expect(second.ok).toBe(true);
  });

  it('writes bundles and signed checkpoints that an independent check accepts, covering every entry', async () => {
    const publicKeyPem = (await getObject(bucket, 'evidence/public-key.pem')).toString();
    expect(publicKeyPem).toBe(createPublicKey(readFileSync(keyFile)).export({ format: 'pem', type: 'spki' }));
    const a = await independentlyVerify(bucket, tenants[0]!, publicKeyPem);
    const b = await independentlyVerify(bucket, tenants[1]!, publicKeyPem);
    expect(a).toEqual({ entries: 1300, bundles: 3, lastHash: heads[tenants[0]!]!.hash });
    expect(b).toEqual({ entries: 1200, bundles: 3, lastHash: heads[tenants[1]!]!.hash });
    // Ranges follow the checkpoint: 500 per bundle, the first run's tail ends one early.
    const bundles = async (t: string) =>
      (await listKeys(bucket, `evidence/${t}/`)).filter((k) => !k.includes('checkpoints')).map((k) => k.split('/')[2]);
    expect(await bundles(tenants[0]!)).toEqual([
      '000000000001-000000000500.json',
      '000000000501-000000000800.json',
      '000000000801-000000001300.json',
    ]);
    expect(await bundles(tenants[1]!)).toEqual([
      '000000000001-000000000450.json',
      '000000000451-000000000950.json',
      '000000000951-000000001200.json',
    ]);
  });

  it('`oc verify --bucket` and `--dir` (with the public key) pass and print the summary', async () => {
    const env = ocEnv();
    const pub = path.join(tmp('pub'), 'public-key.pem');
    writeFileSync(pub, await getObject(bucket, 'evidence/public-key.pem'));
    const copy = tmp('copy');
    const run = await runOc(['verify', '--bucket', bucket, '--tenant', tenants[0]!, '--public-key', pub, '--save', copy], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`ok: tenant ${tenants[0]}, 1300 entries in 3 bundles (seq 1-1300), 3 signed checkpoints`);
    expect(run.stdout).toContain(`last hash  ${heads[tenants[0]!]!.hash}`);
    const offline = await runOc(['verify', '--dir', copy, '--tenant', tenants[0]!, '--public-key', pub, '--json'], {
      OC_DATA_DIR: env.OC_DATA_DIR,
    });
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout)).toMatchObject({
      ok: true,
      tenant_id: tenants[0],
      entries: 1300,
      bundles: 3,
      from_seq: 1,
      to_seq: 1300,
      last_hash: heads[tenants[0]!]!.hash,
    });
    // Tenants are walls: one tenant's archive is not another's.
    const other = await runOc(['verify', '--dir', copy, '--tenant', tenants[1]!, '--public-key', pub], {
      OC_DATA_DIR: env.OC_DATA_DIR,
    });
    expect(other.code).toBe(1);
    expect(other.stdout).toContain(`no bundles for tenant ${tenants[1]}`);
  });
});

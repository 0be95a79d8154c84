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
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import canonicalize from 'canonicalize';
import { jest } from '@jest/globals';
import { fixtureFact, writeChainFixture } from '../../bench/chain-fixture.js';
import { buildApprovalView, viewHash } from '../../functions/core/approval-view.js';
import { acceptedFact, driftFact } from '../../functions/core/upstream-facts.js';
import { s3Source, verifyArchive } from '../../bin/audit/verify-archive.js';
import { localS3Client, signingKeyFile } from '../../bin/local/archive.js';
import { archiveEvidence } from '../../functions/handlers/archive-evidence.js';
import { createAppState } from '../../functions/handlers/app-state.js';
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
import { keys } from '../../functions/store/keys.js';
import { ensureTable } from '../../functions/store/table.js';
import { runOc } from '../support/cli.js';
import { dynamoEndpoint, KEYS, startTestStack, testConfig, toolCall } from '../support/stack.js';

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
    const out = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
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

function archiverFor(
  bucket: string,
  keyFile: string,
  extra: {
    maxEntriesPerBundle?: number;
    events?: ArchiveEvents;
    objects?: ArchiveObjects;
    store?: ArchiveCheckpointStore;
  } = {},
) {
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
      (
        await getObject(bucket, `evidence/${tenantId}/checkpoints/${String(seq).padStart(12, '0')}.json`)
      ).toString(),
    );
    const { signature, ...statement } = checkpoint;
    expect(
      verify(null, Buffer.from(canonicalize(statement)!), publicKey, Buffer.from(signature, 'base64')),
    ).toBe(true);
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
      (await listKeys(bucket, `evidence/${t}/`))
        .filter((k) => !k.includes('checkpoints'))
        .map((k) => k.split('/')[2]);
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
    const run = await runOc(
      ['verify', '--bucket', bucket, '--tenant', tenants[0]!, '--public-key', pub, '--save', copy],
      env,
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `ok: tenant ${tenants[0]}, 1300 entries in 3 bundles (seq 1-1300), 3 signed checkpoints`,
    );
    expect(run.stdout).toContain(`last hash  ${heads[tenants[0]!]!.hash}`);
    const offline = await runOc(
      ['verify', '--dir', copy, '--tenant', tenants[0]!, '--public-key', pub, '--json'],
      {
        OC_DATA_DIR: env.OC_DATA_DIR,
      },
    );
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

describe('tampering with the archived objects', () => {
  const tenant = newTenant('tamper');
  let bucket: string;
  let pub: string;
  let originals: Map<string, Buffer>;
  const prefix = `evidence/${tenant}/`;
  const bundle = (from: number, to: number) =>
    `${prefix}${String(from).padStart(12, '0')}-${String(to).padStart(12, '0')}.json`;
  const checkpoint = (to: number) => `${prefix}checkpoints/${String(to).padStart(12, '0')}.json`;
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

  beforeAll(async () => {
    const source = await newBucket();
    const keyFile = path.join(tmp('key'), 'evidence-signing-key.pem');
    await writeChainFixture(doc, table, tenant, 600);
    const report = await archiverFor(source, keyFile, { maxEntriesPerBundle: 200 }).run({ tenantId: tenant });
    expect(report.tenants[0]?.bundles).toHaveLength(3);
    originals = new Map();
    for (const key of [...(await listKeys(source, prefix)), 'evidence/public-key.pem'])
      originals.set(key, await getObject(source, key));
    pub = path.join(tmp('pub'), 'public-key.pem');
    writeFileSync(pub, originals.get('evidence/public-key.pem')!);
  });

  /** A fresh copy of the untouched archive, tampered by `change`, then verified by the real CLI. */
  async function verifyTampered(
    change: (bucket: string) => Promise<void>,
    args: string[] = ['--public-key', pub],
  ) {
    bucket = await newBucket();
    for (const [key, bytes] of originals) await putObject(bucket, key, bytes);
    await change(bucket);
    return runOc(['verify', '--bucket', bucket, '--tenant', tenant, ...args], ocEnv());
  }

  const lines = (bytes: Buffer) => bytes.toString('utf8').split('\n');

  it('the untouched copy verifies', async () => {
    const run = await verifyTampered(async () => undefined);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('600 entries in 3 bundles');
  });

  it('a changed byte in a record: the seq whose hash no longer matches', async () => {
    const run = await verifyTampered(async (b) => {
      const text = originals.get(bundle(201, 400))!.toString('utf8');
      await putObject(b, bundle(201, 400), text.replace('"fixture message 250"', '"fixture messagE 250"'));
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      new RegExp(`^FAILED: tenant ${tenant}: ${bundle(201, 400)} seq 250: hash does not match the record`),
    );
  });

  it('a dropped bundle: the gap it leaves', async () => {
    const run = await verifyTampered((b) =>
      s3.send(new DeleteObjectCommand({ Bucket: b, Key: bundle(201, 400) })).then(() => undefined),
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`${bundle(401, 600)} seq 201: gap: entries 201-400 are in no bundle`);
  });

  it('the newest bundle dropped: its checkpoint names a bundle that is not there', async () => {
    const run = await verifyTampered((b) =>
      s3.send(new DeleteObjectCommand({ Bucket: b, Key: bundle(401, 600) })).then(() => undefined),
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      `${checkpoint(600)} seq 600: checkpoint for seq 600 names bundle ${bundle(401, 600)}, which is not in the archive`,
    );
  });

  it('reordered entries: the first seq out of place', async () => {
    const run = await verifyTampered(async (b) => {
      const l = lines(originals.get(bundle(1, 200))!);
      [l[5], l[6]] = [l[6]!, l[5]!]; // entries 5 and 6 (line 0 is the header)
      await putObject(b, bundle(1, 200), l.join('\n'));
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`${bundle(1, 200)} seq 6: expected seq 5, found 6`);
  });

  it('a bundle replaced with a recomputed chain and digest, its checkpoint not re-signed: the signature', async () => {
    const run = await verifyTampered(async (b) => {
      const parsed = JSON.parse(originals.get(bundle(401, 600))!.toString('utf8'));
      let prev = parsed.prev_hash as string;
      for (const entry of parsed.entries) {
        if (entry.seq === 450) entry.record.decision = 'deny';
        entry.prev_hash = prev;
        entry.hash = hashOf(prev, entry.record);
        prev = entry.hash;
      }
      parsed.last_hash = prev;
      const bytes = Buffer.from(JSON.stringify(parsed));
      await putObject(b, bundle(401, 600), bytes);
      const cp = JSON.parse(originals.get(checkpoint(600))!.toString('utf8'));
      cp.last_hash = prev;
      cp.bundle_sha256 = createHash('sha256').update(bytes).digest('hex');
      // Written as the archiver writes checkpoints (canonical JSON and a newline): only the signature is off.
      await putObject(b, checkpoint(600), `${canonicalize(cp)}\n`);
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`${checkpoint(600)} seq 600: signature does not verify with the public key`);
  });

  it('a checkpoint signed by another key: the signature, even when the archive carries that key', async () => {
    const other = generateKeyPairSync('ed25519');
    const forge = async (b: string) => {
      const { signature: _old, ...statement } = JSON.parse(originals.get(checkpoint(400))!.toString('utf8'));
      const signature = sign(null, Buffer.from(canonicalize(statement)!), other.privateKey).toString(
        'base64',
      );
      await putObject(b, checkpoint(400), `${canonicalize({ ...statement, signature })}\n`);
    };
    const pinned = await verifyTampered(forge);
    expect(pinned.code).toBe(1);
    expect(pinned.stdout).toContain(`${checkpoint(400)} seq 400: signature does not verify`);
    // Replacing the bucket's public key too: the pinned key still refuses the forged checkpoint,
    // and without a pin the checkpoints the real key signed no longer verify.
    const swap = async (b: string) => {
      await forge(b);
      await putObject(b, 'evidence/public-key.pem', other.publicKey.export({ format: 'pem', type: 'spki' }));
    };
    const swappedPinned = await verifyTampered(swap);
    expect(swappedPinned.code).toBe(1);
    expect(swappedPinned.stdout).toContain(`${checkpoint(400)} seq 400: signature does not verify`);
    const swapped = await verifyTampered(swap, []);
    expect(swapped.code).toBe(1);
    expect(swapped.stdout).toContain(`${checkpoint(200)} seq 200: signature does not verify`);
  });

  it('a truncated newest bundle: named, with --json for machines', async () => {
    const run = await verifyTampered(
      async (b) => {
        const bytes = originals.get(bundle(401, 600))!;
        await putObject(b, bundle(401, 600), bytes.subarray(0, Math.floor(bytes.length / 2)));
      },
      ['--public-key', pub, '--json'],
    );
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout);
    expect(report.ok).toBe(false);
    expect(report.break).toMatchObject({ key: bundle(401, 600) });
    expect(report.break.problem).toMatch(/^the bundle is not valid JSON \(truncated or altered\)/);
  });

  it('a truncated newest bundle closed again at an entry: the missing entries', async () => {
    const run = await verifyTampered(async (b) => {
      const l = lines(originals.get(bundle(401, 600))!);
      // Header, entries 401-500 (the last without its comma), the closing line.
      const kept = [l[0]!, ...l.slice(1, 100), l[100]!.replace(/,$/, ''), ']}', ''];
      await putObject(b, bundle(401, 600), kept.join('\n'));
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      `${bundle(401, 600)} seq 501: the bundle ends at seq 500, but its key and header say 600 (truncated)`,
    );
  });
});

/** Bundle keys of a tenant as [from, to] ranges, in order. */
async function ranges(bucket: string, tenantId: string): Promise<[number, number][]> {
  return (await listKeys(bucket, `evidence/${tenantId}/`))
    .map((k) => /\/(\d{12})-(\d{12})\.json$/.exec(k))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [Number(m[1]), Number(m[2])]);
}

/** S3 puts as (key, SHA-256), in order. */
function recordingObjects(bucket: string) {
  const inner = s3ArchiveObjects(s3, bucket);
  const puts: { key: string; sha256: string }[] = [];
  const objects: ArchiveObjects = {
    async put(key, body, contentType) {
      await inner.put(key, body, contentType);
      puts.push({ key, sha256: createHash('sha256').update(body).digest('hex') });
    },
    get: (key) => inner.get(key),
  };
  return { puts, objects };
}

describe('a crash, and two archivers at once', () => {
  it('a crash between the S3 writes and the checkpoint update: the next run writes the same bytes, no range twice or skipped', async () => {
    const tenant = newTenant('crash');
    const bucket = await newBucket();
    const keyFile = path.join(tmp('key'), 'evidence-signing-key.pem');
    const head = await writeChainFixture(doc, table, tenant, 700);
    const store = new ArchiveCheckpointStore(doc, table);
    const crashing = jest.spyOn(store, 'advance').mockRejectedValueOnce(new Error('process killed'));
    const first = recordingObjects(bucket);
    const { seen, events } = recordingEvents();
    const crashed = await archiverFor(bucket, keyFile, { store, objects: first.objects, events }).run({
      tenantId: tenant,
    });
    expect(crashed.tenants[0]).toMatchObject({ status: 'failed', error: 'process killed', head: { seq: 0 } });
    expect(seen.failed).toEqual([tenant]);
    // The bundle and its checkpoint were written; the checkpoint item still claims 1-500.
    expect(
      first.puts.map((p) => p.key).filter((k) => k.startsWith('evidence/') && !k.endsWith('.pem')),
    ).toEqual([
      `evidence/${tenant}/000000000001-000000000500.json`,
      `evidence/${tenant}/checkpoints/000000000500.json`,
    ]);
    expect(await store.checkpoint(tenant)).toEqual({
      head: { seq: 0, hash: '' },
      pending: { fromSeq: 1, toSeq: 500 },
    });
    crashing.mockRestore();

    const second = recordingObjects(bucket);
    const resumed = await archiverFor(bucket, keyFile, { objects: second.objects }).run({ tenantId: tenant });
    expect(resumed.tenants[0]).toMatchObject({ status: 'archived', head: head });
    // The same range again, byte for byte, then the rest.
    const bundlePuts = (puts: { key: string }[]) =>
      puts.filter((p) => p.key.startsWith('evidence/') && !p.key.endsWith('.pem'));
    expect(bundlePuts(second.puts).slice(0, 2)).toEqual(bundlePuts(first.puts));
    // The log's full tiles of that range too: the same keys and bytes (immutable objects).
    const tilePuts = (puts: { key: string }[]) => puts.filter((p) => p.key.startsWith('log/'));
    expect(tilePuts(first.puts).map((p) => p.key)).toEqual([`log/${tenant}/tile/0/000`]);
    expect(tilePuts(second.puts).slice(0, 1)).toEqual(tilePuts(first.puts));
    expect(
      bundlePuts(second.puts)
        .map((p) => p.key)
        .slice(2),
    ).toEqual([
      `evidence/${tenant}/000000000501-000000000700.json`,
      `evidence/${tenant}/checkpoints/000000000700.json`,
    ]);
    expect(await ranges(bucket, tenant)).toEqual([
      [1, 500],
      [501, 700],
    ]);
    const pem = (await getObject(bucket, 'evidence/public-key.pem')).toString();
    expect(await independentlyVerify(bucket, tenant, pem)).toMatchObject({
      entries: 700,
      lastHash: head.hash,
    });
  });

  it('a crash after the claim, before any S3 write: the next run archives exactly the claimed range', async () => {
    const tenant = newTenant('crash-early');
    const bucket = await newBucket();
    const keyFile = path.join(tmp('key'), 'evidence-signing-key.pem');
    await writeChainFixture(doc, table, tenant, 300);
    const failing = recordingObjects(bucket);
    const objects: ArchiveObjects = {
      put: (key, body, type) =>
        key.endsWith('.pem')
          ? failing.objects.put(key, body, type)
          : Promise.reject(new Error('S3 unreachable')),
      get: failing.objects.get,
    };
    const crashed = await archiverFor(bucket, keyFile, { objects }).run({ tenantId: tenant });
    expect(crashed.tenants[0]?.status).toBe('failed');
    // The chain grows meanwhile: the claimed range is finished first, then the rest.
    const head = await writeChainFixture(doc, table, tenant, 300, { head: await tailHead(tenant) });
    const resumed = await archiverFor(bucket, keyFile).run({ tenantId: tenant });
    expect(resumed.tenants[0]).toMatchObject({ status: 'archived', head });
    expect(await ranges(bucket, tenant)).toEqual([
      [1, 300],
      [301, 600],
    ]);
  });

  it('two archivers at once: each range archived by one of them, no overlap, nothing missing', async () => {
    const tenant = newTenant('race');
    const bucket = await newBucket();
    const keyFile = path.join(tmp('key'), 'evidence-signing-key.pem');
    const head = await writeChainFixture(doc, table, tenant, 3000);
    const docs = [
      createDocumentClient({ endpoint: dynamoEndpoint() }),
      createDocumentClient({ endpoint: dynamoEndpoint() }),
    ];
    const [a, b] = await Promise.all(
      docs.map((d) =>
        archiverFor(bucket, keyFile, {
          store: new ArchiveCheckpointStore(d, table),
          maxEntriesPerBundle: 250,
        }).run({
          tenantId: tenant,
        }),
      ),
    );
    for (const d of docs) d.destroy();
    const advanced = [...a!.tenants[0]!.bundles, ...b!.tenants[0]!.bundles].map((x) => [x.fromSeq, x.toSeq]);
    const expected = Array.from({ length: 12 }, (_, i) => [i * 250 + 1, (i + 1) * 250]);
    expect(advanced.sort((x, y) => x[0]! - y[0]!)).toEqual(expected);
    expect(await ranges(bucket, tenant)).toEqual(expected);
    const pem = (await getObject(bucket, 'evidence/public-key.pem')).toString();
    expect(await independentlyVerify(bucket, tenant, pem)).toMatchObject({
      entries: 3000,
      lastHash: head.hash,
    });
  });
});

/** The fixture head of a tenant's chain, read back from the table. */
async function tailHead(tenantId: string) {
  const store = new ArchiveCheckpointStore(doc, table);
  const tail = await store.tail(tenantId);
  let hash = '';
  for await (const entry of store.range(tenantId, tail.seq, tail.seq)) hash = entry.hash;
  return { seq: tail.seq, hash };
}

describe('a chain broken in DynamoDB', () => {
  it('archives nothing of that tenant, archives the other, emits the metric, and `oc archive` exits 1 naming tenant and seq', async () => {
    // Its own table: a run archives every tenant the table has.
    const config = testConfig();
    const client = new DynamoDBClient({ endpoint: dynamoEndpoint() });
    await ensureTable(client, config.tableName);
    client.destroy();
    const bucket = await newBucket();
    const good = newTenant('good');
    const bad = newTenant('bad');
    await writeChainFixture(doc, config.tableName, good, 300);
    // Seq 120's record is changed after it was hashed: the stored hash no longer matches.
    await writeChainFixture(doc, config.tableName, bad, 300, {
      edit: (e) => (e.seq === 120 ? { ...e, record: { ...e.record, decision: 'deny' } } : e),
    });
    const { seen, events } = recordingEvents();
    const env = { ...ocEnv(), OC_TABLE_NAME: config.tableName, OC_EVIDENCE_BUCKET: bucket };
    const archiver = new Archiver({
      store: new ArchiveCheckpointStore(doc, config.tableName),
      objects: s3ArchiveObjects(s3, bucket),
      // The key `oc archive` finds in its data folder below.
      signer: FileCheckpointSigner.open(signingKeyFile(env.OC_DATA_DIR)),
      events,
    });
    const report = await archiver.run();
    expect(report.ok).toBe(false);
    expect(report.tenants.find((t) => t.tenantId === bad)).toMatchObject({
      status: 'broken',
      break: { seq: 120, problem: 'hash does not match the record' },
      bundles: [],
      behind: 300,
    });
    expect(report.tenants.find((t) => t.tenantId === good)).toMatchObject({
      status: 'archived',
      head: { seq: 300 },
    });
    expect(await listKeys(bucket, `evidence/${bad}/`)).toEqual([]);
    expect(await ranges(bucket, good)).toEqual([[1, 300]]);
    expect(seen.broken).toEqual([{ tenantId: bad, seq: 120 }]);

    // What the deployed archiver emits for it: the metric its alarm watches.
    const addMetric = jest.spyOn(metrics, 'addMetric');
    powertoolsArchiveEvents.chainBroken(bad, 120, 'hash does not match the record');
    expect(addMetric).toHaveBeenCalledWith('archive_chain_break', 'Count', 1);
    addMetric.mockRestore();

    // The CLI: every run fails again for that tenant (the range stays claimed), exit 1.
    const run = await runOc(['archive'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      `FAILED: tenant ${bad}: chain broken at seq 120: hash does not match the record`,
    );
    expect(run.stdout).toContain(`tenant ${good}: nothing new; archived to seq 300`);
    expect(await listKeys(bucket, `evidence/${bad}/`)).toEqual([]);

    // The scheduled archiver parks that tenant in its own partition (the RecordsParked alarm), the
    // run succeeds for the others, and later runs leave it alone until its backoff has passed.
    const now = { at: new Date() };
    const state = createAppState(config, { doc, clock: { now: () => now.at } });
    const scheduled = archiveEvidence(
      () => archiver,
      () => state,
    );
    const first = await scheduled();
    expect(first.tenants.find((t) => t.tenantId === bad)?.status).toBe('broken');
    const parked = await state.parked.get(bad, 'archive-evidence', 'chain');
    expect(parked).toMatchObject({ tenantId: bad, attempts: 0 });
    expect(parked!.reason).toMatch(/does not verify at seq 120/);
    const waiting = await scheduled();
    expect(waiting.tenants.map((t) => t.tenantId)).not.toContain(bad);
    expect(waiting.tenants.map((t) => t.tenantId)).toContain(good);
    now.at = new Date(Date.parse(parked!.nextRetryAt) + 1000);
    const retried = await scheduled();
    expect(retried.tenants.find((t) => t.tenantId === bad)?.status).toBe('broken');
    expect(await state.parked.get(bad, 'archive-evidence', 'chain')).toMatchObject({ attempts: 1 });
  });
});

describe('finding the tenants', () => {
  it("from the sealer's registry; `--discover` finds (and registers) a chain begun before it", async () => {
    const config = testConfig();
    const client = new DynamoDBClient({ endpoint: dynamoEndpoint() });
    await ensureTable(client, config.tableName);
    client.destroy();
    const registered = newTenant('registered');
    const older = newTenant('older');
    await writeChainFixture(doc, config.tableName, registered, 20);
    await writeChainFixture(doc, config.tableName, older, 30);
    // A chain from before the registry: no registration item.
    await doc.send(new DeleteCommand({ TableName: config.tableName, Key: keys.chainTenant(older) }));
    const store = new ArchiveCheckpointStore(doc, config.tableName);
    expect(await store.tenants()).toEqual([registered]);
    const bucket = await newBucket();
    const archiver = new Archiver({
      store,
      objects: s3ArchiveObjects(s3, bucket),
      signer: FileCheckpointSigner.open(path.join(tmp('key'), 'k.pem')),
      events: recordingEvents().events,
    });
    expect((await archiver.run()).tenants.map((t) => t.tenantId)).toEqual([registered]);
    const discovered = await archiver.run({ discover: true });
    const byTenant = Object.fromEntries(discovered.tenants.map((t) => [t.tenantId, [t.status, t.head.seq]]));
    expect(byTenant).toEqual({ [older]: ['archived', 30], [registered]: ['up-to-date', 20] });
    expect(await store.tenants()).toEqual([older, registered].sort());
  });
});

describe('through the gateway', () => {
  it('facts sealed by the real sequencer are archived for the tenants it registered, and oc verify passes', async () => {
    const stack = await startTestStack();
    try {
      for (const key of [KEYS.tenant1, KEYS.tenant2])
        for (let i = 0; i < 3; i++)
          expect((await stack.post('/v1/toolcalls', toolCall(), key)).status).toBe(200);
      await stack.poller!.drained(30_000);
      const store = new ArchiveCheckpointStore(stack.state.doc, stack.config.tableName);
      expect(await store.tenants()).toEqual(['tenant1', 'tenant2']);
      const bucket = await newBucket();
      const env = { ...ocEnv(), OC_TABLE_NAME: stack.config.tableName, OC_EVIDENCE_BUCKET: bucket };
      // tenant1's policy allows these calls (two facts each), tenant2's does not (one fact each).
      const seqs = { tenant1: (await store.tail('tenant1')).seq, tenant2: (await store.tail('tenant2')).seq };
      expect(seqs).toEqual({ tenant1: 6, tenant2: 3 });
      const archived = await runOc(['archive'], env);
      expect(archived.code).toBe(0);
      for (const [tenant, n] of Object.entries(seqs))
        expect(archived.stdout).toContain(
          `tenant ${tenant}: ${n} entries in 1 bundle(s) to s3://${bucket}/evidence/${tenant}/; archived to seq ${n}`,
        );
      const pem = (await getObject(bucket, 'evidence/public-key.pem')).toString();
      for (const [tenant, n] of Object.entries(seqs))
        expect((await independentlyVerify(bucket, tenant, pem)).entries).toBe(n);
      const verified = await runOc(['verify', '--bucket', bucket, '--tenant', 'tenant2'], env);
      expect(verified.code).toBe(0);
      expect(verified.stdout).toContain('ok: tenant tenant2, 3 entries in 1 bundle (seq 1-3)');
    } finally {
      await stack.stop();
    }
  });
});

describe('the archive verifier re-renders the recorded approval views (issue 19)', () => {
  /** A parked call's decision fact as submit records it: the known answer of the v1 view. */
  const requested = (tenantId: string, n: number, hash: string) => ({
    ...fixtureFact(tenantId, n),
    request: {
      tenant_id: tenantId,
      agent_id: 'agent-1',
      user_id: 'alice@acme.example',
      tool: 'jira',
      action: 'issue.delete',
      resource: 'PROD-42',
      params: { issue: 'PROD-42', note: 'o\u200bk' },
      risk_score: 9,
    },
    risk: { claimed: 3, floor: 9, effective: 9 },
    decision: 'approve',
    reason: 'destructive actions need approval',
    approval: {
      id: `3f2504e0-4f89-41d3-9a0c-${String(n).padStart(12, '0')}`,
      expires_at: '2026-08-01T12:00:00.000Z',
      request_hash: 'h',
      view: { version: 'oc-approval-view/v1', hash },
    },
  });
  const KNOWN_V1 = 'aeae46b191e160ab3a629f11b355fa809bbb318b318d429f12e9060aefd913c6';

  async function archivedWith(hashAt3: string) {
    const tenant = newTenant('views');
    const bucket = await newBucket();
    const keyFile = path.join(tmp('key'), 'evidence-signing-key.pem');
    await writeChainFixture(doc, table, tenant, 5, {
      fact: (t, n) => (n === 3 ? requested(t, n, hashAt3) : fixtureFact(t, n)),
    });
    expect((await archiverFor(bucket, keyFile).run({ tenantId: tenant })).ok).toBe(true);
    return verifyArchive({ source: s3Source(s3, bucket), tenantId: tenant });
  }

  it('accepts an archive whose recorded view hash is the view its request renders', async () => {
    const report = await archivedWith(KNOWN_V1);
    expect(report).toMatchObject({ ok: true, entries: 5 });
  });

  it('accepts the upstream facts (issue 25) and an upstream approval whose view carries its claims', async () => {
    const claims = {
      server: 'docs',
      tool: 'delete_page',
      hash: 'c'.repeat(64),
      description: 'Delete a page.',
    };
    const drift = {
      server: 'docs',
      tool: 'delete_page',
      at: '2026-08-01T11:00:00.000Z',
      pinnedHash: 'c'.repeat(64),
      seenHash: 'd'.repeat(64),
      fields: ['description'],
      detectedBy: 'sync' as const,
    };
    const withClaims = (t: string, n: number) => {
      const f = requested(t, n, '');
      const source = {
        ...f.request,
        risk: f.risk,
        reason: f.reason,
        expires_at: f.approval.expires_at,
        upstream_claims: claims,
      };
      const hash = viewHash(buildApprovalView(source));
      return {
        ...f,
        approval: { ...f.approval, view: { ...f.approval.view, hash }, upstream_claims: claims },
      };
    };
    const tenant = newTenant('upstream');
    const bucket = await newBucket();
    const keyFile = path.join(tmp('key'), 'evidence-signing-key.pem');
    await writeChainFixture(doc, table, tenant, 5, {
      fact: (t, n) =>
        n === 2
          ? driftFact(t, drift)
          : n === 3
            ? withClaims(t, n)
            : n === 4
              ? {
                  ...acceptedFact(t, {
                    server: 'docs',
                    tool: 'delete_page',
                    at: '2026-08-01T11:05:00.000Z',
                    previousHash: drift.pinnedHash,
                    acceptedHash: drift.seenHash,
                    acceptedBy: 'alice',
                  }),
                  seq: n,
                }
              : fixtureFact(t, n),
    });
    expect((await archiverFor(bucket, keyFile).run({ tenantId: tenant })).ok).toBe(true);
    const report = await verifyArchive({ source: s3Source(s3, bucket), tenantId: tenant });
    expect(report).toMatchObject({ ok: true, entries: 5 });
  });

  it('breaks at a recorded view hash that is not the view of the recorded request (what the human was shown is unproven)', async () => {
    const report = await archivedWith('0'.repeat(64));
    expect(report.ok).toBe(false);
    expect(report.break).toMatchObject({
      seq: 3,
      problem: expect.stringMatching(/^approval view: approval .* is not the hash of the view/),
    });
  });
});

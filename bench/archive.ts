/**
 * Archive benchmark (issue 12): the archiver's throughput (entries/s through read + verify +
 * bundle + upload, DynamoDB Local and s3rver) and its own peak RSS at 10,000 and 100,000 entries,
 * then `oc verify --bucket` on the same bundles (the real CLI, wall time) and the verifier's peak
 * RSS. The archiver and the verifier each run in a child process (bench/archive-child.ts), so the
 * RSS is theirs alone, not this process's.
 *
 * The chains are written straight into the table in the chain's own page format with the real
 * hash formula (bench/chain-fixture.ts): 100,000 entries through the API would take hours here.
 *
 *   npx tsx bench/archive.ts     # alone; `npm run bench` runs it too
 *   npx tsx bench/archive.ts --log [--quick]   # only the Merkle log's cost (issue 23)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { localS3Client } from '../bin/local/archive.js';
import { freePort, startDynamoDbLocal, startS3 } from '../bin/local/emulators.js';
import { createDocumentClient } from '../functions/store/dynamo.js';
import { ensureTable } from '../functions/store/table.js';
import { recordLeaf } from '../functions/core/archive.js';
import { canon } from '../functions/core/evidence.js';
import { TreeEdge } from '../functions/core/tlog.js';
import { ArchiveCheckpointStore } from '../functions/store/archive-checkpoints.js';
import { keys } from '../functions/store/keys.js';
import { writeChainFixture } from './chain-fixture.js';

/** `--quick` sizes of the log's part: 20,000 entries compared (best of 2), 2,000 and 20,000 for the heap, 100,000 for RSS. */
export const ARCHIVE_LOG_QUICK = { entries: 20_000, small: 2_000, bigEntries: 100_000, rounds: 2 };

export interface ArchiveRun {
  entries: number;
  archiveMs: number;
  archivePerSec: number;
  archivePeakRssMb: number;
  /** What the archiver holds after each bundle (heap after a forced full GC, largest over bundles). */
  archiveLiveHeapMb: number;
  verifyMs: number;
  verifyPerSec: number;
  verifyPeakRssMb: number;
}

interface ChildResult {
  entries: number;
  ms: number;
  maxRssKb: number;
  /** With --expose-gc: the heap in use after a full collection, after each bundle (its largest). */
  liveHeapKb?: number;
  firstLiveHeapKb?: number;
  lastLiveHeapKb?: number;
}

const REPO = path.resolve(import.meta.dirname, '..');

function run(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ stdout: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - started;
      if (code === 0) resolve({ stdout, ms });
      else reject(new Error(`${path.basename(args.at(-1) ?? command)} exited ${code}: ${stderr || stdout}`));
    });
  });
}

const tsx = path.join(REPO, 'node_modules', '.bin', 'tsx');

async function child(
  mode: 'archive' | 'verify',
  env: Record<string, string>,
  live = false,
): Promise<ChildResult> {
  const { stdout } = await run(tsx, [path.join(REPO, 'bench', 'archive-child.ts')], {
    ...(live ? { OC_BENCH_LIVE_HEAP: 'true' } : {}),
    ...env,
    OC_BENCH_MODE: mode,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult;
}

/** Archives and verifies one tenant with `entries` entries, on its own table and bucket. */
async function measureOne(
  endpoints: { dynamo: string; s3: string },
  entries: number,
  dir: string,
): Promise<ArchiveRun> {
  const table = `oc-bench-archive-${entries}`;
  const bucket = `oc-bench-archive-${entries}`;
  const tenant = 'tenant1';
  const client = new DynamoDBClient({ endpoint: endpoints.dynamo, region: 'us-east-1' });
  await ensureTable(client, table);
  client.destroy();
  const doc = createDocumentClient({ endpoint: endpoints.dynamo, region: 'us-east-1' });
  await writeChainFixture(doc, table, tenant, entries);
  doc.destroy();
  const s3 = localS3Client(endpoints.s3);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  s3.destroy();

  const env = {
    OC_BENCH_DYNAMODB_ENDPOINT: endpoints.dynamo,
    OC_BENCH_S3_ENDPOINT: endpoints.s3,
    OC_BENCH_TABLE: table,
    OC_BENCH_BUCKET: bucket,
    OC_BENCH_TENANT: tenant,
    OC_BENCH_KEY_FILE: path.join(dir, `key-${entries}.pem`),
  };
  const archived = await child('archive', env);
  if (archived.entries !== entries) throw new Error(`archived ${archived.entries} of ${entries} entries`);
  // The same size once more, on its own table, for what stays live between bundles.
  const live = await measureLive(endpoints, entries, dir);
  const verified = await child('verify', env);
  if (verified.entries !== entries) throw new Error(`verified ${verified.entries} of ${entries} entries`);
  // The auditor's command as run, end to end (its own Node and tsx start included).
  const cli = await run(
    process.execPath,
    [path.join(REPO, 'bin', 'oc.js'), 'verify', '--bucket', bucket, '--tenant', tenant, '--json'],
    {
      OC_S3_PORT: new URL(endpoints.s3).port,
      OC_DATA_DIR: dir,
    },
  );
  const report = JSON.parse(cli.stdout) as { ok: boolean; entries: number };
  if (!report.ok || report.entries !== entries) throw new Error(`oc verify --bucket: ${cli.stdout}`);
  return {
    entries,
    archiveMs: Math.round(archived.ms),
    archivePerSec: Math.round((entries / archived.ms) * 1000),
    archivePeakRssMb: Math.round(archived.maxRssKb / 1024),
    archiveLiveHeapMb: Math.round((live.liveHeapKb ?? 0) / 1024),
    verifyMs: Math.round(cli.ms),
    verifyPerSec: Math.round((entries / cli.ms) * 1000),
    verifyPeakRssMb: Math.round(verified.maxRssKb / 1024),
  };
}

/** The archiver again, on a table and bucket of its own, with a full GC after each bundle. */
async function measureLive(endpoints: { dynamo: string; s3: string }, entries: number, dir: string) {
  const table = `oc-bench-archive-live-${entries}`;
  const bucket = `oc-bench-archive-live-${entries}`;
  const client = new DynamoDBClient({ endpoint: endpoints.dynamo, region: 'us-east-1' });
  await ensureTable(client, table);
  client.destroy();
  const doc = createDocumentClient({ endpoint: endpoints.dynamo, region: 'us-east-1' });
  await writeChainFixture(doc, table, 'tenant1', entries);
  doc.destroy();
  const s3 = localS3Client(endpoints.s3);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  s3.destroy();
  return child(
    'archive',
    {
      OC_BENCH_DYNAMODB_ENDPOINT: endpoints.dynamo,
      OC_BENCH_S3_ENDPOINT: endpoints.s3,
      OC_BENCH_TABLE: table,
      OC_BENCH_BUCKET: bucket,
      OC_BENCH_TENANT: 'tenant1',
      OC_BENCH_KEY_FILE: path.join(dir, `key-live-${entries}.pem`),
    },
    true,
  );
}

/** Both sizes, on the DynamoDB Local given and an s3rver of its own. */
export async function measureArchive(
  dynamoEndpoint: string,
  sizes = [10_000, 100_000],
): Promise<ArchiveRun[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oc-bench-archive-'));
  const s3 = await startS3(await freePort(), path.join(dir, 's3'));
  try {
    const runs: ArchiveRun[] = [];
    for (const size of sizes)
      runs.push(await measureOne({ dynamo: dynamoEndpoint, s3: s3.endpoint }, size, dir));
    return runs;
  } finally {
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the Merkle log (issue 23) costs the archiver, and what it holds as the log grows. */
export interface ArchiveLogRun {
  /** Throughput of the same chain archived without the log and with it (best of `rounds` each). */
  entries: number;
  rounds: number;
  withoutLogPerSec: number;
  withLogPerSec: number;
  /** withLog / withoutLog. */
  ratio: number;
  /** Retained heap after each bundle (largest; first and last bundle), at the small and large size. */
  live: { entries: number; maxMb: number; firstMb: number; lastMb: number }[];
  /** The log's own CPU per entry (leaf hash and tree edge, no I/O), in µs. */
  logCpuUsPerEntry: number;
  /** The archiver with the log on the largest chain: its peak RSS and throughput. */
  big: { entries: number; peakRssMb: number; perSec: number };
}

const mb = (kb = 0) => Math.round((kb / 1024) * 10) / 10;

/**
 * The log's cost: one chain archived without the log, then (its checkpoint item removed, a new
 * bucket) with it; the retained heap per bundle at 10,000 and `entries`; peak RSS at `bigEntries`.
 */
export async function measureArchiveLog(
  dynamoEndpoint: string,
  { entries = 100_000, small = 10_000, bigEntries = 1_000_000, rounds = 3 } = {},
): Promise<ArchiveLogRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oc-bench-archive-log-'));
  const s3 = await startS3(await freePort(), path.join(dir, 's3'));
  const doc = createDocumentClient({ endpoint: dynamoEndpoint, region: 'us-east-1' });
  const s3c = localS3Client(s3.endpoint);
  let buckets = 0;
  const tenant = 'tenant1';
  /** A table with the chain, once per size. */
  const chain = async (n: number) => {
    const table = `oc-bench-archive-log-${n}`;
    const client = new DynamoDBClient({ endpoint: dynamoEndpoint, region: 'us-east-1' });
    await ensureTable(client, table);
    client.destroy();
    await writeChainFixture(doc, table, tenant, n);
    return table;
  };
  /** One archiver run over the whole chain, from scratch (checkpoint item removed, new bucket). */
  const archive = async (table: string, log: boolean, live = false) => {
    await doc.send(new DeleteCommand({ TableName: table, Key: keys.archiveCheckpoint(tenant) }));
    const bucket = `oc-bench-archive-log-${++buckets}`;
    await s3c.send(new CreateBucketCommand({ Bucket: bucket }));
    return child(
      'archive',
      {
        OC_BENCH_DYNAMODB_ENDPOINT: dynamoEndpoint,
        OC_BENCH_S3_ENDPOINT: s3.endpoint,
        OC_BENCH_TABLE: table,
        OC_BENCH_BUCKET: bucket,
        OC_BENCH_TENANT: tenant,
        OC_BENCH_KEY_FILE: path.join(dir, 'key.pem'),
        OC_BENCH_LOG: String(log),
      },
      live,
    );
  };
  try {
    const large = await chain(entries);
    const perSec = (r: ChildResult) => Math.round((r.entries / r.ms) * 1000);
    // Interleaved, the best of each: on a shared machine one run alone measures its neighbours.
    let without: ChildResult | undefined;
    let withLog: ChildResult | undefined;
    for (let i = 0; i < rounds; i++) {
      const a = await archive(large, false);
      const b = await archive(large, true);
      if (!without || a.ms < without.ms) without = a;
      if (!withLog || b.ms < withLog.ms) withLog = b;
    }
    const liveRun = async (table: string) => {
      const r = await archive(table, true, true);
      return {
        entries: r.entries,
        maxMb: mb(r.liveHeapKb),
        firstMb: mb(r.firstLiveHeapKb),
        lastMb: mb(r.lastLiveHeapKb),
      };
    };
    const live = [await liveRun(await chain(small)), await liveRun(large)];
    // The log's own CPU over the same records (leaf hash, tree edge, full tiles), no I/O: what
    // the ratio above costs apart from one more S3 PUT per 256 entries.
    const records: string[] = [];
    for await (const e of new ArchiveCheckpointStore(doc, large).range(tenant, 1, entries))
      records.push(canon(e.record));
    const started = performance.now();
    const edge = TreeEdge.empty();
    for (const r of records) edge.append(recordLeaf(r));
    const logCpuUsPerEntry = Math.round((((performance.now() - started) * 1000) / entries) * 10) / 10;
    const bigRun = await archive(bigEntries === entries ? large : await chain(bigEntries), true);
    return {
      entries,
      rounds,
      withoutLogPerSec: perSec(without!),
      withLogPerSec: perSec(withLog!),
      ratio: Math.round((perSec(withLog!) / perSec(without!)) * 100) / 100,
      live,
      logCpuUsPerEntry,
      big: { entries: bigRun.entries, peakRssMb: Math.round(bigRun.maxRssKb / 1024), perSec: perSec(bigRun) },
    };
  } finally {
    doc.destroy();
    s3c.destroy();
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  try {
    // `--log`: only the Merkle log's part (issue 23); `--quick`: smaller sizes.
    if (process.argv.includes('--log'))
      console.log(
        JSON.stringify(
          await measureArchiveLog(dynamo.endpoint, process.argv.includes('--quick') ? ARCHIVE_LOG_QUICK : {}),
          null,
          2,
        ),
      );
    else console.log(JSON.stringify(await measureArchive(dynamo.endpoint), null, 2));
  } finally {
    await dynamo.stop();
  }
}

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
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { localS3Client } from '../bin/local/archive.js';
import { freePort, startDynamoDbLocal, startS3 } from '../bin/local/emulators.js';
import { createDocumentClient } from '../functions/store/dynamo.js';
import { ensureTable } from '../functions/store/table.js';
import { writeChainFixture } from './chain-fixture.js';

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

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  try {
    const runs = await measureArchive(dynamo.endpoint);
    console.log(JSON.stringify(runs, null, 2));
  } finally {
    await dynamo.stop();
  }
}

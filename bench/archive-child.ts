/**
 * One archiver run or one verification in a process of its own (bench/archive.ts), so that its
 * peak RSS (`process.resourceUsage().maxRSS`) is its alone. Prints one JSON line.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { localArchiver, localS3Client } from '../bin/local/archive.js';
import { s3Source, verifyArchive } from '../bin/audit/verify-archive.js';
import { createDocumentClient } from '../functions/store/dynamo.js';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'local';

const s3 = localS3Client(env('OC_BENCH_S3_ENDPOINT'));
const tenantId = env('OC_BENCH_TENANT');
// OC_BENCH_LIVE_HEAP: a full collection after each bundle, to see what stays live (bench only).
if (process.env.OC_BENCH_LIVE_HEAP === 'true') setFlagsFromString('--expose-gc');
const gc = process.env.OC_BENCH_LIVE_HEAP === 'true' ? (runInNewContext('gc') as () => void) : undefined;
let liveHeapKb = 0;
/** The retained heap after the first and the last bundle (is it flat as the log grows?). */
let firstLiveHeapKb: number | undefined;
let lastLiveHeapKb = 0;
const started = performance.now();
let entries: number;
if (env('OC_BENCH_MODE') === 'archive') {
  const doc = createDocumentClient({ endpoint: env('OC_BENCH_DYNAMODB_ENDPOINT') });
  const { archiver } = localArchiver({
    doc,
    table: env('OC_BENCH_TABLE'),
    s3,
    bucket: env('OC_BENCH_BUCKET'),
    keyFile: env('OC_BENCH_KEY_FILE'),
    // OC_BENCH_LOG=false: the same run without the Merkle log (what the log costs).
    log: process.env.OC_BENCH_LOG !== 'false',
    events: {
      chainBroken: () => undefined,
      tenantFailed: () => undefined,
      // What stays live once a bundle is written (the rest is garbage).
      archived: () => {
        if (!gc) return;
        gc();
        lastLiveHeapKb = Math.round(process.memoryUsage().heapUsed / 1024);
        firstLiveHeapKb ??= lastLiveHeapKb;
        liveHeapKb = Math.max(liveHeapKb, lastLiveHeapKb);
      },
      lag: () => undefined,
    },
  });
  const report = await archiver.run({ tenantId });
  const tenant = report.tenants[0];
  if (!report.ok || !tenant) throw new Error(`archive failed: ${JSON.stringify(report)}`);
  entries = tenant.head.seq;
  doc.destroy();
} else {
  const report = await verifyArchive({ source: s3Source(s3, env('OC_BENCH_BUCKET')), tenantId });
  if (!report.ok) throw new Error(`verify failed: ${JSON.stringify(report.break)}`);
  entries = report.entries;
}
const ms = performance.now() - started;
s3.destroy();
console.log(
  JSON.stringify({
    entries,
    ms,
    maxRssKb: process.resourceUsage().maxRSS,
    ...(gc ? { liveHeapKb, firstLiveHeapKb, lastLiveHeapKb } : {}),
  }),
);

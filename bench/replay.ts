/**
 * Policy replay benchmark (issue 24): `oc policy replay --candidate DIR --bucket B` over one
 * tenant's archive of N decisions (1,000,000; fewer with --quick), made the way the archive
 * benchmark makes its chains (bench/chain-fixture.ts, `decidedFixtureFact`: decided facts as
 * submit records them, written straight into DynamoDB Local in the chain's page format, then
 * archived by the archiver's own code to s3rver in a child process). The replay runs in a child
 * process of its own (its peak RSS), and the same requests are evaluated bare by the candidate's
 * engine in that process right after (bench/replay-bare.ts): replay's rate as a share of the bare
 * policy-evaluation rate, both taken in one process within seconds, so the machine's load is the
 * same for both (measured in two processes minutes apart, one code gave 0.28 and 1.89).
 *
 *   npx tsx bench/replay.ts [--decisions N]     # alone; `npm run bench` runs it too
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { localS3Client } from '../bin/local/archive.js';
import { freePort, startDynamoDbLocal, startS3 } from '../bin/local/emulators.js';
import type { ReplayReport } from '../functions/core/replay.js';
import { createDocumentClient } from '../functions/store/dynamo.js';
import { defaultPolicyDir } from '../functions/store/policy-files.js';
import { ensureTable } from '../functions/store/table.js';
import { decidedFixtureFact, writeChainFixture } from './chain-fixture.js';

export interface ReplayRun {
  decisions: number;
  /** The replay in its child, from the CLI's entry to its report (the process start excluded). */
  replayMs: number;
  replayPerSec: number;
  replayPeakRssMb: number;
  /** The candidate's engine alone over the same requests, in this process. */
  barePerSec: number;
  ratio: number;
  changed: number;
  /**
   * Distinct policy inputs among the requests as the engine keys them (`decisionKey`: only what
   * the action's policies read): what replay evaluates, each once.
   */
  distinctInputs: number;
  /** Distinct requests counting every field policy is given (the resource among them). */
  distinctRequests: number;
}

const REPO = path.resolve(import.meta.dirname, '..');
const tsx = path.join(REPO, 'node_modules', '.bin', 'tsx');

function child(script: string, env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(tsx, [path.join(REPO, 'bench', script)], {
      cwd: REPO,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        POWERTOOLS_LOG_LEVEL: 'SILENT',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.on('error', reject);
    proc.on('close', (code) =>
      code === 0
        ? resolve({ stdout, stderr })
        : reject(new Error(`${script} exited ${code}: ${stderr || stdout}`)),
    );
  });
}

/** The candidate: tenant1's auto-approve threshold lowered from 5 to 3 (some allows become denials). */
function writeCandidate(dir: string): string {
  const candidate = path.join(dir, 'candidate');
  cpSync(defaultPolicyDir(), candidate, { recursive: true });
  const file = path.join(candidate, 'tenants.json');
  const tenants = JSON.parse(readFileSync(file, 'utf8'));
  tenants.tenant1.max_risk_auto_approve = 3;
  writeFileSync(file, JSON.stringify(tenants));
  return candidate;
}

export async function measureReplay(
  dynamoEndpoint: string,
  decisions: number,
  log: (msg: string) => void = () => undefined,
): Promise<ReplayRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oc-bench-replay-'));
  const s3 = await startS3(await freePort(), path.join(dir, 's3'));
  const table = `oc-bench-replay-${decisions}`;
  const bucket = `oc-bench-replay-${decisions}`;
  const tenant = 'tenant1';
  try {
    log(`replay: writing a chain of ${decisions} decisions`);
    const client = new DynamoDBClient({ endpoint: dynamoEndpoint, region: 'us-east-1' });
    await ensureTable(client, table);
    client.destroy();
    const doc = createDocumentClient({ endpoint: dynamoEndpoint, region: 'us-east-1' });
    await writeChainFixture(doc, table, tenant, decisions, { fact: decidedFixtureFact });
    doc.destroy();
    const s3Client = localS3Client(s3.endpoint);
    await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
    s3Client.destroy();
    log('replay: archiving it (the archiver in a child process)');
    await child('archive-child.ts', {
      OC_BENCH_MODE: 'archive',
      OC_BENCH_DYNAMODB_ENDPOINT: dynamoEndpoint,
      OC_BENCH_S3_ENDPOINT: s3.endpoint,
      OC_BENCH_TABLE: table,
      OC_BENCH_BUCKET: bucket,
      OC_BENCH_TENANT: tenant,
      OC_BENCH_KEY_FILE: path.join(dir, 'key.pem'),
    });
    // The archive is all replay reads: free DynamoDB Local's memory (a million entries) for the rest.
    const dropper = new DynamoDBClient({ endpoint: dynamoEndpoint, region: 'us-east-1' });
    await dropper.send(new DeleteTableCommand({ TableName: table }));
    dropper.destroy();
    const candidate = writeCandidate(dir);
    log('replay: oc policy replay --bucket (a child process)');
    const run = await child('replay-child.ts', {
      OC_BENCH_ARGS: JSON.stringify([
        'policy',
        'replay',
        '--candidate',
        candidate,
        '--bucket',
        bucket,
        '--json',
      ]),
      // The bare rate, in the same process right after the replay: both see the same machine.
      OC_BENCH_BARE: JSON.stringify({ candidate, tenantId: tenant, decisions }),
      OC_S3_PORT: new URL(s3.endpoint).port,
      OC_DATA_DIR: dir,
      AWS_REGION: 'us-east-1',
    });
    const report = JSON.parse(run.stdout) as ReplayReport;
    const measured = JSON.parse(run.stderr.trim().split('\n').at(-1)!) as {
      ms: number;
      maxRssKb: number;
      bare: { perSec: number; distinct: number; distinctRequests: number };
    };
    if (report.decisions !== decisions)
      throw new Error(`replayed ${report.decisions} of ${decisions} decisions`);
    const bare = measured.bare;
    const barePerSec = bare.perSec;
    const replayPerSec = (decisions / measured.ms) * 1000;
    return {
      decisions,
      replayMs: Math.round(measured.ms),
      replayPerSec: Math.round(replayPerSec),
      replayPeakRssMb: Math.round(measured.maxRssKb / 1024),
      barePerSec: Math.round(barePerSec),
      ratio: Math.round((replayPerSec / barePerSec) * 100) / 100,
      changed: report.changed,
      distinctInputs: bare.distinct,
      distinctRequests: bare.distinctRequests,
    };
  } finally {
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const { values } = parseArgs({ options: { decisions: { type: 'string', default: '1000000' } } });
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  try {
    const run = await measureReplay(dynamo.endpoint, Number(values.decisions), (m) =>
      console.error(`[bench] ${m}`),
    );
    console.log(JSON.stringify(run, null, 2));
  } finally {
    await dynamo.stop();
  }
}

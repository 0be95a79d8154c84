/**
 * `npm start` as a process, the way an operator, a supervisor or a CI job runs it: on free ports
 * and a temporary data folder, checked through HTTP, the state file and the process table.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../bin/local/emulators.js';
import { readStackState } from '../../bin/local/state-file.js';
import { gatewayClient } from '../support/gateway-client.js';
import { dynamoDbJava, isAlive, processTable, waitFor } from '../support/processes.js';
import { toolCall, type TestResponse } from '../support/stack.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const KEY = 'sk-test-key-1';

interface Ports {
  PORT: number;
  OC_DYNAMODB_PORT: number;
  OC_AWS_PORT: number;
  OC_S3_PORT: number;
}

interface Run {
  npm: ChildProcess;
  /** How npm ended: its exit code, or the signal that ended it. */
  exited: Promise<number | string>;
  output(): string;
}

const dirs: string[] = [];
const runs: Run[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oc-e2e-start-'));
  dirs.push(dir);
  return dir;
}

async function freePorts(): Promise<Ports> {
  const ports = new Set<number>();
  while (ports.size < 4) ports.add(await freePort());
  const [PORT, OC_DYNAMODB_PORT, OC_AWS_PORT, OC_S3_PORT] = [...ports] as [number, number, number, number];
  return { PORT, OC_DYNAMODB_PORT, OC_AWS_PORT, OC_S3_PORT };
}

/** `npm start` in its own process group, with the environment a developer's shell would give it. */
function npmStart(ports: Ports, dataDir: string, extra: Record<string, string> = {}): Run {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('npm_') && k !== 'NODE_OPTIONS') env[k] = v;
  Object.assign(env, { OC_DATA_DIR: dataDir, ...extra });
  for (const [k, v] of Object.entries(ports)) env[k] = String(v);
  const npm = spawn('npm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  npm.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  npm.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    npm.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const run = { npm, exited, output: () => output };
  runs.push(run);
  return run;
}

async function request(port: number, method: string, p: string, body?: unknown): Promise<TestResponse> {
  return gatewayClient(`http://127.0.0.1:${port}`).request(method, p, { body, key: KEY });
}

async function ready(port: number, run: Run): Promise<void> {
  await waitFor(`/readyz 200 on ${port}\n${run.output()}`, async () => {
    if (run.npm.exitCode !== null) throw new Error(`npm start exited:\n${run.output()}`);
    const r = await request(port, 'GET', '/readyz');
    return r.status === 200 && r.text === 'OK' ? true : undefined;
  });
}

async function sealed(port: number, eventId: string) {
  return waitFor(`event ${eventId} sealed`, async () => {
    const r = await request(port, 'GET', `/v1/toolcalls/${eventId}`);
    const evidence = r.json?.evidence as { status: string }[] | undefined;
    return evidence?.length && evidence.every((f) => f.status === 'sealed') ? r : undefined;
  });
}

/** npm and everything under it, now (pids, so that re-parented orphans are still found later). */
function tree(rootPid: number): number[] {
  const table = processTable();
  const found = new Set([rootPid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of table)
      if (found.has(p.ppid) && !found.has(p.pid)) {
        found.add(p.pid);
        grew = true;
      }
  }
  return [...found];
}

/** Processes of this stack left on the machine: a pid of its tree, or one naming its folder or a port. */
function leftovers(pids: number[], ports: Ports, dataDir: string): string[] {
  const marks = [dataDir, `-port ${ports.OC_DYNAMODB_PORT} `];
  return processTable()
    .filter((p) => pids.includes(p.pid) || marks.some((m) => p.args.includes(m)))
    .filter((p) => isAlive(p.pid) && !p.args.startsWith('ps '))
    .map((p) => `${p.pid} ${p.ppid} ${p.args}`);
}

async function expectAllGone(pids: number[], ports: Ports, dataDir: string): Promise<void> {
  await waitFor(`no process of the stack left`, () =>
    leftovers(pids, ports, dataDir).length === 0 ? true : undefined,
  );
  expect(leftovers(pids, ports, dataDir)).toEqual([]);
  expect(readStackState(dataDir).kind).toBe('missing');
}

/** The node host: npm's child (npm execs it through `sh -c exec`, so no shell stays between). */
function nodePid(run: Run): number {
  const child = processTable().find((p) => p.ppid === run.npm.pid);
  expect(child?.args).toBe('node bin/oc.js start');
  return child!.pid;
}

afterAll(() => {
  for (const run of runs)
    if (run.npm.pid && run.npm.exitCode === null) {
      try {
        process.kill(-run.npm.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('npm start, on disk', () => {
  const dataDir = tempDir();
  let ports: Ports;
  let run: Run;
  let eventId: string;

  beforeAll(async () => {
    ports = await freePorts();
  });

  it('boots on free ports, answers /readyz and a submit, and writes the state file', async () => {
    run = npmStart(ports, dataDir);
    await ready(ports.PORT, run);
    const submitted = await request(ports.PORT, 'POST', '/v1/toolcalls', toolCall());
    expect(submitted.status).toBe(200);
    expect(submitted.json.decision).toBe('allow');
    eventId = submitted.json.event_id;
    await sealed(ports.PORT, eventId);

    const state = readStackState(dataDir);
    expect(state).toMatchObject({
      kind: 'found',
      state: {
        version: 1,
        pid: nodePid(run),
        url: `http://localhost:${ports.PORT}`,
        port: ports.PORT,
        dynamodb_endpoint: `http://127.0.0.1:${ports.OC_DYNAMODB_PORT}`,
        sqs_endpoint: `http://127.0.0.1:${ports.OC_AWS_PORT}`,
        s3_endpoint: `http://127.0.0.1:${ports.OC_S3_PORT}`,
        table_name: 'oc-main',
        in_memory: false,
        data_dir: dataDir,
      },
    });
  }, 180_000);

  it('stops everything, Java included, on SIGTERM to the npm process', async () => {
    const pids = tree(run.npm.pid!);
    expect(pids.length).toBeGreaterThanOrEqual(4); // npm, node, the guardian, java
    expect(dynamoDbJava(ports.OC_DYNAMODB_PORT)).toBeDefined();
    process.kill(run.npm.pid!, 'SIGTERM');
    await run.exited;
    await expectAllGone(pids, ports, dataDir);
    expect(run.output()).toContain('[oc] SIGTERM: stopping');
  }, 120_000);

  it('starts again with its data, refuses a second start on its ports, and stops on SIGTERM to node', async () => {
    run = npmStart(ports, dataDir);
    await ready(ports.PORT, run);
    const again = await sealed(ports.PORT, eventId);
    expect(again.json).toMatchObject({ event_id: eventId, status: 'completed', decision: 'allow' });

    const second = npmStart(ports, tempDir());
    expect(await second.exited).toBe(1);
    expect(second.output().match(/^\[oc\].*$/gm)).toEqual([
      `[oc] cannot start: port ${ports.PORT} (PORT) is already in use: stop what listens there, or set PORT to a free port`,
    ]);
    expect((await request(ports.PORT, 'GET', '/readyz')).status).toBe(200);

    const pids = tree(run.npm.pid!);
    process.kill(nodePid(run), 'SIGTERM');
    expect(await run.exited).toBe(0);
    await expectAllGone(pids, ports, dataDir);
  }, 180_000);

  it('restarts DynamoDB Local when its Java process is killed, failing closed meanwhile', async () => {
    run = npmStart(ports, dataDir);
    await ready(ports.PORT, run);
    const java = dynamoDbJava(ports.OC_DYNAMODB_PORT);
    expect(java).toBeDefined();
    process.kill(java!.pid, 'SIGKILL');

    const down = await waitFor('/readyz 503 naming dynamodb', async () => {
      const r = await request(ports.PORT, 'GET', '/readyz');
      return r.status === 503 &&
        r.json.parts.some((p: { name: string; ok: boolean }) => p.name === 'dynamodb' && !p.ok)
        ? r
        : undefined;
    });
    expect(down.json.status).toBe('unavailable');
    const failed = await request(ports.PORT, 'POST', '/v1/toolcalls', toolCall());
    expect(failed.status).toBe(500);
    expect(failed.json).toMatchObject({ code: 'INTERNAL_ERROR', retryable: true });

    await ready(ports.PORT, run);
    const after = await request(ports.PORT, 'POST', '/v1/toolcalls', toolCall());
    expect(after.status).toBe(200);
    await sealed(ports.PORT, after.json.event_id);
    expect((await request(ports.PORT, 'GET', `/v1/toolcalls/${eventId}`)).status).toBe(200);
    expect(run.output()).toMatch(
      /\[oc\] DynamoDB Local killed by SIGKILL: .*restarting it in 1 s \(attempt 1 of 5\)/,
    );
    expect(run.output()).toContain(`[oc] DynamoDB Local is back on port ${ports.OC_DYNAMODB_PORT}`);
    expect(dynamoDbJava(ports.OC_DYNAMODB_PORT)?.pid).not.toBe(java!.pid);

    // Ctrl-C in a terminal: SIGINT to the whole foreground process group.
    const pids = tree(run.npm.pid!);
    process.kill(-run.npm.pid!, 'SIGINT');
    await run.exited;
    await expectAllGone(pids, ports, dataDir);
  }, 240_000);
});

describe('npm start, in memory', () => {
  it('re-creates the table and re-seeds the keys when DynamoDB Local restarts empty; exits 1 past OC_DYNAMODB_MAX_RESTARTS', async () => {
    const dataDir = tempDir();
    const ports = await freePorts();
    const run = npmStart(ports, dataDir, { OC_IN_MEMORY: 'true', OC_DYNAMODB_MAX_RESTARTS: '1' });
    await ready(ports.PORT, run);
    const before = await request(ports.PORT, 'POST', '/v1/toolcalls', toolCall());
    expect(before.status).toBe(200);

    process.kill(dynamoDbJava(ports.OC_DYNAMODB_PORT)!.pid, 'SIGKILL');
    await waitFor('the restart', () => (run.output().includes('DynamoDB Local is back') ? true : undefined));
    await ready(ports.PORT, run);
    expect(run.output()).toMatch(/\[oc\] WARNING: DynamoDB Local runs in memory .*LOST/);
    // The demo key was seeded again; what was stored before is gone.
    const after = await request(ports.PORT, 'POST', '/v1/toolcalls', toolCall());
    expect(after.status).toBe(200);
    await sealed(ports.PORT, after.json.event_id);
    expect((await request(ports.PORT, 'GET', `/v1/toolcalls/${before.json.event_id}`)).status).toBe(404);

    const pids = tree(run.npm.pid!);
    process.kill(dynamoDbJava(ports.OC_DYNAMODB_PORT)!.pid, 'SIGKILL');
    expect(await run.exited).toBe(1);
    expect(run.output().match(/^\[oc\].*giving up.*$/gm)).toEqual([
      '[oc] DynamoDB Local killed by SIGKILL; it died 2 times in ' +
        run.output().match(/died 2 times in (\d+ s)/)?.[1] +
        ', more than OC_DYNAMODB_MAX_RESTARTS=1 allows per minute: giving up (exit 1)',
    ]);
    await expectAllGone(pids, ports, dataDir);
  }, 240_000);
});

/** `oc verify --bucket` against the running stack of a data folder, as the banner prints it. */
function verifyArchive(dataDir: string): { status: number | null; output: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, OC_DATA_DIR: dataDir };
  delete env.NODE_OPTIONS;
  const run = spawnSync(
    process.execPath,
    [
      'bin/oc.js',
      'verify',
      '--bucket',
      'oc-evidence',
      '--tenant',
      'tenant1',
      '--public-key',
      path.join(dataDir, 'evidence-public-key.pem'),
    ],
    { cwd: ROOT, env, encoding: 'utf8' },
  );
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** What a start leaves in the OS temp folder that is ours (tsx keeps its own cache there). */
const ourTemp = (dir: string) =>
  readdirSync(dir).filter((name) => /^(oc-console-|openclause-policy-)/.test(name));

describe('npm start, in memory, twice on one data folder', () => {
  it("starts with an empty archive each time (the banner's oc verify --bucket passes) and leaves no temp folders", async () => {
    const dataDir = tempDir();
    const tmp = tempDir();
    for (const round of [1, 2]) {
      const ports = await freePorts();
      const run = npmStart(ports, dataDir, {
        OC_IN_MEMORY: 'true',
        OC_ARCHIVE_INTERVAL_SEC: '1',
        TMPDIR: tmp,
        OC_TEST_TMP: tmp,
      });
      await ready(ports.PORT, run);
      // The banner names the webhook route the policy names (policy/tenants.json: tenant1's).
      expect(run.output()).toContain(
        'Webhooks     tenant1 notifies http://localhost:8090/hooks/approvals: watch with npx oc webhooks listen\n',
      );
      expect(ourTemp(tmp)).toHaveLength(1); // the console, built at start
      const r = await request(ports.PORT, 'POST', '/v1/toolcalls', toolCall());
      expect(r.status).toBe(200);
      await sealed(ports.PORT, r.json.event_id);
      let last = { status: null as number | null, output: '' };
      await waitFor(
        `round ${round}: oc verify --bucket passes`,
        () => {
          last = verifyArchive(dataDir);
          return last.status === 0 ? true : undefined;
        },
        60_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}\n${last.output}`);
      });
      run.npm.kill('SIGTERM');
      expect(await run.exited).toBe(0);
      expect(ourTemp(tmp)).toEqual([]);
      expect(existsSync(path.join(dataDir, 's3-tmp'))).toBe(false);
    }
  }, 300_000);
});

describe('npm start on a port in use', () => {
  it.each(['PORT', 'OC_DYNAMODB_PORT', 'OC_AWS_PORT', 'OC_S3_PORT'] as const)(
    'fails in one line naming the port and %s, before it starts anything',
    async (variable) => {
      const ports = await freePorts();
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(ports[variable], '127.0.0.1', resolve));
      try {
        const dataDir = tempDir();
        const run = npmStart(ports, dataDir);
        expect(await run.exited).toBe(1);
        expect(run.output().match(/^\[oc\].*$/gm)).toEqual([
          `[oc] cannot start: port ${ports[variable]} (${variable}) is already in use: stop what listens there, or set ${variable} to a free port`,
        ]);
        expect(dynamoDbJava(ports.OC_DYNAMODB_PORT)).toBeUndefined();
        expect(readStackState(dataDir).kind).toBe('missing');
      } finally {
        taken.close();
      }
    },
    60_000,
  );
});

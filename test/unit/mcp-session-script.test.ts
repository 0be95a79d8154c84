/** scripts/mcp-session.ts finds its gateway as `npx oc` does, or says in one line that none runs. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeStackState } from '../../bin/local/state-file.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function script(dataDir: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, OC_DATA_DIR: dataDir };
  delete env.NODE_OPTIONS;
  delete env.OC_BASE_URL;
  const child = spawn('npx', ['tsx', 'scripts/mcp-session.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

const tempDir = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oc-mcp-session-'));
  dirs.push(dir);
  return dir;
};

describe('scripts/mcp-session.ts', () => {
  it('with no stack running and no OC_BASE_URL, says so in one line and exits 1', async () => {
    const dataDir = tempDir();
    const run = script(dataDir);
    expect(await run.exited).toBe(1);
    expect(run.output().trim()).toBe(
      `no running stack in ${dataDir}: start one with \`npm start\` (OC_DATA_DIR names its data folder), or set OC_BASE_URL to a gateway`,
    );
  }, 60_000);

  it("talks to the running stack's URL from its state file", async () => {
    const dataDir = tempDir();
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(503).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    writeStackState({
      version: 1,
      pid: process.pid,
      started_at: new Date().toISOString(),
      url: `http://127.0.0.1:${port}`,
      port,
      dynamodb_endpoint: 'http://127.0.0.1:1',
      sqs_endpoint: 'http://127.0.0.1:1',
      s3_endpoint: 'http://127.0.0.1:1',
      table_name: 'oc',
      evidence_bucket: 'oc-evidence',
      in_memory: true,
      data_dir: dataDir,
    });
    const run = script(dataDir);
    try {
      await run.exited;
      expect(seen).toContain('POST /mcp');
    } finally {
      run.child.kill();
      server.close();
    }
  }, 60_000);
});

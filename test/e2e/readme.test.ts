/**
 * The README, held to what the system does. Its walkthrough (the ```bash blocks between the
 * walkthrough marks) runs as printed, in one bash session with `set -euo pipefail`, against a
 * fresh `npm start` on free ports, with `npx oc` finding the stack through OC_DATA_DIR's state
 * file as in a second terminal. Every step must succeed and print what the README shows under it
 * (test/support/walkthrough.ts says how output is documented). The curls reach the stack through
 * a proxy built on the tests' gateway client, so every answer is also checked against
 * api/openapi.yaml, and the outcomes the walkthrough exists to show are asserted from the answers
 * themselves. The API table must list every route, and the README may name only files that exist.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../bin/local/emulators.js';
import { buildProgram } from '../../bin/cli/program.js';
import { readStackState } from '../../bin/local/state-file.js';
import { ROUTES, type RouteAuth } from '../../functions/shared/constants.js';
import { gatewayClient, type TestResponse } from '../support/gateway-client.js';
import { waitFor } from '../support/processes.js';
import {
  compareOutput,
  extractWalkthrough,
  referencedVariables,
  splitRun,
  walkthroughScript,
  type WalkthroughStep,
} from '../support/walkthrough.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
/** The front door and every guide: what a newcomer reads. */
const DOCS = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const WALKTHROUGH_TIMEOUT_MS = 150_000;

/** How the API table names each kind of caller. */
const AUTH: Record<RouteAuth, string> = {
  api_key: 'agent key',
  jwt: 'approver JWT',
  api_key_or_jwt: 'agent key or approver JWT',
  api_key_or_oauth: 'agent key or OAuth token',
  none: 'none',
};
/** The local host answers these itself, before the routes of ROUTES. */
const PROBES = ['GET /healthz none', 'GET /readyz none'];

describe('the README and the guides', () => {
  it('points to an API table (docs/agents.md) that lists every route: method, path, auth and what it does', () => {
    const AGENTS = readFileSync(path.join(ROOT, 'docs/agents.md'), 'utf8');
    const api = AGENTS.slice(
      AGENTS.indexOf('\n## API\n'),
      AGENTS.indexOf('\n## ', AGENTS.indexOf('\n## API\n') + 1),
    );
    const rows = api
      .split('\n')
      .filter((line) => /^\| `(GET|POST|PUT|PATCH|DELETE)` /.test(line))
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );
    expect(rows.every((cells) => cells.length === 4 && cells[3] !== '')).toBe(true);
    expect(rows.map(([method, route, auth]) => `${method} ${route} ${auth}`.replaceAll('`', ''))).toEqual([
      ...ROUTES.map((r) => `${r.method} ${r.path} ${AUTH[r.auth]}`),
      ...PROBES,
    ]);
  });

  it('name only files that are in the repository, and only headings they have', () => {
    // Paths the docs name that are written at build or run time, not kept in the repository.
    // (The console's screenshots are written by the browser tests, which may run after this one.)
    // `policy/shadow/` is shadow mode's candidate: an operator creates it, the repository never
    // ships one (a test checks), or every default deploy would run one.
    const generated = new Set([
      'policy/compiled.json',
      'test/ui/__screenshots__/',
      'sdk/dist',
      'policy/shadow/',
    ]);
    // GitHub's heading anchors: lowercase, punctuation dropped, spaces as hyphens.
    const anchors = (file: string) =>
      [...readFileSync(file, 'utf8').matchAll(/^#+ (.*)$/gm)].map((m) =>
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^\p{L}\p{N} _-]/gu, '')
          .replace(/ /g, '-'),
      );
    const missing: string[] = [];
    const broken: string[] = [];
    for (const doc of DOCS) {
      const text = readFileSync(path.join(ROOT, doc), 'utf8');
      const dir = path.dirname(path.join(ROOT, doc));
      const links = [...text.matchAll(/\]\(([^)#\s]*)(?:#([^)]*))?\)/g)]
        .map((m) => ({ file: m[1]!, anchor: m[2] }))
        .filter((link) => !/^(https?|mailto):/.test(link.file));
      for (const link of links) {
        const target = link.file === '' ? path.join(ROOT, doc) : path.resolve(dir, link.file);
        const repoPath = path.relative(ROOT, target);
        if (!generated.has(repoPath) && !existsSync(target)) missing.push(`${doc}: ${link.file}`);
        else if (link.anchor !== undefined && !anchors(target).includes(link.anchor))
          broken.push(`${doc}: ${link.file}#${link.anchor}`);
      }
      // Paths written in code spans are relative to the repository's root.
      for (const m of text.matchAll(
        /`((?:api|bench|bin|docs|functions|lib|policy|scripts|sdk|test)\/[^`\s]*)`/g,
      ))
        if (!generated.has(m[1]!) && !existsSync(path.join(ROOT, m[1]!))) missing.push(`${doc}: ${m[1]}`);
      // Design documents that live outside this repository.
      expect([doc, /ARCHITECTURE\.md|\bSPEC\b/.test(text)]).toEqual([doc, false]);
    }
    expect(missing).toEqual([]);
    expect(broken).toEqual([]);
  });

  it('reach every guide from the README in one click', () => {
    const linked = new Set([...README.matchAll(/\]\((docs\/[^)#\s]+\.md)(?:#[^)]*)?\)/g)].map((m) => m[1]!));
    expect(DOCS.filter((d) => d.startsWith('docs/') && !linked.has(d))).toEqual([]);
  });

  it('name only `npm run` scripts and `npx oc` commands that exist', () => {
    const scripts = Object.keys(
      (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: object }).scripts,
    );
    const program = buildProgram((command) => command, {});
    const unknown: string[] = [];
    let commands = 0;
    for (const doc of DOCS) {
      const text = readFileSync(path.join(ROOT, doc), 'utf8');
      for (const m of text.matchAll(/\bnpm run ([a-z][\w:-]*)/g)) {
        commands += 1;
        if (!scripts.includes(m[1]!)) unknown.push(`${doc}: npm run ${m[1]}`);
      }
      for (const m of text.matchAll(/\bnpx oc((?: [a-z][\w-]*)*)/g)) {
        commands += 1;
        let command = program;
        for (const word of m[1]!.trim().split(' ').filter(Boolean)) {
          if (command.commands.length === 0) break;
          const sub = command.commands.find((c) => c.name() === word);
          if (!sub) {
            unknown.push(`${doc}: npx oc${m[1]}`);
            break;
          }
          command = sub;
        }
      }
    }
    expect(commands).toBeGreaterThan(10);
    expect(unknown).toEqual([]);
  });
});

interface Exchange extends TestResponse {
  method: string;
  path: string;
}

/**
 * Forwards each request to the stack through the tests' gateway client (which checks the answer
 * against api/openapi.yaml) and answers with what the stack said; records both.
 */
async function contractProxy(target: string) {
  const client = gatewayClient(target);
  const exchanges: Exchange[] = [];
  const violations: string[] = [];
  const forwarded = {
    'x-api-key': 'X-API-Key',
    authorization: 'Authorization',
    'content-type': 'Content-Type',
    // MCP's Streamable HTTP headers (the walkthrough's MCP step).
    accept: 'Accept',
    'mcp-protocol-version': 'MCP-Protocol-Version',
    'mcp-session-id': 'Mcp-Session-Id',
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers: Record<string, string> = {};
      for (const [name, sent] of Object.entries(forwarded)) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[sent] = value;
      }
      const method = req.method ?? 'GET';
      const url = req.url ?? '/';
      client
        .request(method, url, { key: null, headers, ...(body === '' ? {} : { body }) })
        .then((r) => {
          exchanges.push({ ...r, method, path: url });
          const answer: Record<string, string> = {};
          for (const name of [
            'content-type',
            'idempotent-replayed',
            'retry-after',
            'x-request-id',
            'mcp-session-id',
          ])
            if (r.headers[name] !== undefined) answer[name] = r.headers[name];
          res.writeHead(r.status, answer).end(r.text);
        })
        .catch((error: Error) => {
          violations.push(error.message);
          res.writeHead(502, { 'content-type': 'text/plain' }).end(`proxy: ${error.message}\n`);
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    exchanges,
    violations,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One line per answer: route, status, and what it decided or refused (`code`, `decision`, `status`, result). */
function outcome(e: Exchange): string {
  const route = ROUTES.find(
    (r) =>
      r.method === e.method &&
      // `{name+}` is API Gateway's greedy parameter (the console's `/console/{path+}`).
      new RegExp(`^${r.path.replace(/\{[^}]+\+\}/g, '.+').replace(/\{[^}]+\}/g, '[^/]+')}$`).test(
        e.path.split('?')[0]!,
      ),
  );
  const j = e.json ?? {};
  const what = Array.isArray(j.items)
    ? [`${j.items.length} items`]
    : [j.code, j.decision, j.status, j.result?.status].filter((v) => typeof v === 'string');
  if (e.headers['idempotent-replayed'] === 'true') what.push('(replayed)');
  return [route?.handler ?? `${e.method} ${e.path}`, e.status, ...what].join(' ');
}

/** `localhost:3000` and friends, as the README writes them, on this run's ports. */
function onPorts(text: string, ports: { api: number; dynamodb: number }): string {
  return text
    .replace(/\blocalhost:3000\b/g, `localhost:${ports.api}`)
    .replace(/\b127\.0\.0\.1:8000\b/g, `127.0.0.1:${ports.dynamodb}`);
}

describe('the README walkthrough', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'oc-e2e-readme-'));
  let npm: ChildProcess | undefined;
  let npmOutput = '';
  let proxy: Awaited<ReturnType<typeof contractProxy>>;
  let dynamoPort: number;

  beforeAll(async () => {
    const ports = new Set<number>();
    while (ports.size < 4) ports.add(await freePort());
    const [api, dynamo, sqs, s3] = [...ports] as [number, number, number, number];
    dynamoPort = dynamo;
    proxy = await contractProxy(`http://127.0.0.1:${api}`);
    // npm start as a developer's shell runs it, minus anything that would move or change the stack.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !/^(npm_|OC_|NODE_OPTIONS$|PORT$)/.test(k)) env[k] = v;
    Object.assign(env, {
      PORT: String(api),
      OC_DYNAMODB_PORT: String(dynamo),
      OC_AWS_PORT: String(sqs),
      OC_S3_PORT: String(s3),
      OC_DATA_DIR: dataDir,
      // The walkthrough's curls go through the proxy; so does the approval.url they follow.
      OC_PUBLIC_BASE_URL: `http://localhost:${proxy.port}`,
    });
    npm = spawn('npm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    npm.stdout?.on('data', (d: Buffer) => (npmOutput += d.toString()));
    npm.stderr?.on('data', (d: Buffer) => (npmOutput += d.toString()));
    const stack = gatewayClient(`http://127.0.0.1:${api}`);
    // Ready as a newcomer sees it: /readyz answers 200 and the banner's state file is written.
    try {
      await waitFor('npm start to answer /readyz 200 and write its state file', async () => {
        if (npm?.exitCode !== null) throw new Error('npm start exited');
        const ready = (await stack.request('GET', '/readyz')).status === 200;
        return ready && readStackState(dataDir).kind === 'found' ? true : undefined;
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}\nnpm start printed:\n${npmOutput}`);
    }
  }, 120_000);

  afterAll(async () => {
    if (npm?.pid && npm.exitCode === null) {
      // SIGTERM to npm, as a supervisor would send; the stack stops everything it started.
      const exited = new Promise((resolve) => npm!.once('exit', resolve));
      process.kill(npm.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise((resolve) => (timer = setTimeout(() => resolve('late'), 15_000)));
      if ((await Promise.race([exited, late])) === 'late') process.kill(-npm.pid, 'SIGKILL');
      clearTimeout(timer);
    }
    await proxy?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  it(
    'runs as printed: every step succeeds and prints what the README shows',
    async () => {
      const ports = { api: proxy.port, dynamodb: dynamoPort };
      const steps: WalkthroughStep[] = extractWalkthrough(README).map((step) => ({
        ...step,
        shell: onPorts(step.shell, ports),
        expected: step.expected.map((pieces) => pieces.map((piece) => onPorts(piece, ports))),
      }));
      const scriptFile = path.join(dataDir, 'walkthrough.sh');
      writeFileSync(scriptFile, walkthroughScript(steps, referencedVariables(steps)));

      // A second terminal: the developer's PATH and HOME, OC_DATA_DIR to find the stack, nothing else.
      const env: Record<string, string> = { OC_DATA_DIR: dataDir };
      for (const k of ['PATH', 'HOME', 'USER', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k]!;
      const bash = spawn('bash', [scriptFile], {
        cwd: ROOT,
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      bash.stdout.on('data', (d: Buffer) => (output += d.toString()));
      bash.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const timer = setTimeout(() => process.kill(-bash.pid!, 'SIGKILL'), WALKTHROUGH_TIMEOUT_MS);
      const code = await new Promise<number | string>((resolve) =>
        bash.once('exit', (c, signal) => resolve(c ?? signal ?? 'unknown')),
      );
      clearTimeout(timer);

      const run = splitRun(output);
      const problems: string[] = [];
      steps.forEach((step, i) => {
        const where = `README line ${step.line}:\n${step.shell.trimEnd()}\n`;
        const ran = run.steps[i];
        if (ran) {
          const wrong = compareOutput(step, ran.output, ran.vars);
          if (wrong) problems.push(`${where}prints other than documented:\n${wrong}`);
        } else if (i === run.steps.length)
          problems.push(`${where}failed (bash exit ${code}) after printing:\n${run.rest.join('\n')}`);
      });
      if (run.steps.length < steps.length - 1)
        problems.push(`${steps.length - run.steps.length - 1} later steps did not run`);
      expect(problems.join('\n\n')).toBe('');
      expect(code).toBe(0);
      expect(run.steps).toHaveLength(steps.length);

      // What the walkthrough is there to show, read from the answers themselves.
      expect(proxy.violations).toEqual([]);
      const outcomes = proxy.exchanges.map(outcome);
      expect(
        ROUTES.map((r) => r.handler).filter((h) => !outcomes.some((o) => o.startsWith(`${h} `))),
      ).toEqual([]);
      expect(outcomes).toEqual(
        expect.arrayContaining([
          'GET /readyz 200',
          'submit-toolcall 200 allow success',
          'submit-toolcall 200 allow success (replayed)',
          'submit-toolcall 422 IDEMPOTENCY_KEY_REUSED',
          'submit-toolcall 200 deny',
          'submit-toolcall 200 approve',
          'execute-toolcall 409 AWAITING_APPROVAL',
          'list-approvals 200 2 items',
          'get-approval 200 pending',
          'approve-approval 200 approved',
          'execute-toolcall 200 allow success',
          'execute-toolcall 200 allow success (replayed)',
          'deny-approval 200 denied',
          'execute-toolcall 403 APPROVAL_DENIED',
          'approve-approval 409 APPROVAL_ALREADY_DECIDED',
          'execute-toolcall 409 NOT_APPROVAL_GATED',
          'get-toolcall 200 allow completed success',
          'get-toolcall 404 NOT_FOUND',
          'submit-toolcall 403 FORBIDDEN',
          'mcp 200',
        ]),
      );
      const denied = proxy.exchanges.find((e) => outcome(e) === 'execute-toolcall 403 APPROVAL_DENIED');
      const denial = proxy.exchanges.find((e) => outcome(e) === 'deny-approval 200 denied');
      expect(denied?.json.details).toContainEqual({ path: 'deny_reason', message: denial?.json.deny_reason });
    },
    WALKTHROUGH_TIMEOUT_MS + 20_000,
  );
});

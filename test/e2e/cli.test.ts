/**
 * `npx oc` as an operator runs it: the real CLI in a child process against a stack in the test
 * DynamoDB Local, asserting exit codes and what the operator reads.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ConnectorInvoker } from '../../functions/connectors/types.js';
import type { Clock } from '../../functions/core/ports.js';
import { freePort } from '../../bin/local/emulators.js';
import { writeStackState, type StackState } from '../../bin/local/state-file.js';
import { tokenFor } from '../support/approvers.js';
import { inBatches, runOc, type CliRun } from '../support/cli.js';
import { countingInvoker } from '../support/connectors.js';
import { dynamoEndpoint, startTestStack, toolCall, type TestStack } from '../support/stack.js';

let stack: TestStack;
/** A second stack whose clock runs 10 minutes behind and whose first connector call crashes. */
let crashy: TestStack;
const counted = countingInvoker();
let crashNext = false;
const behind: Clock = { now: () => new Date(Date.now() - 10 * 60 * 1000) };
const crashingConnector: ConnectorInvoker = {
  async invoke(req, opts) {
    // A Lambda that dies after claiming the execution, before the connector runs.
    if (crashNext) throw new Error('Runtime exited: out of memory');
    return counted.invoke(req, opts);
  },
};

const tempDirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oc-cli-test-'));
  tempDirs.push(dir);
  return dir;
};
/** No state file in it: the CLI must not find the developer's own `.oc-data/stack.json`. */
let emptyDataDir: string;
let deadPort: number;
let dynamoPort: string;

/** The CLI pointed at `table` the way `npm start`'s variables would. */
const local = (table: string, extra: Record<string, string> = {}) => ({
  OC_DATA_DIR: emptyDataDir,
  OC_DYNAMODB_PORT: dynamoPort,
  OC_TABLE_NAME: table,
  ...extra,
});

beforeAll(async () => {
  emptyDataDir = tempDir();
  deadPort = await freePort();
  dynamoPort = new URL(dynamoEndpoint()).port;
  stack = await startTestStack();
  crashy = await startTestStack({
    overrides: { connectors: crashingConnector, clock: behind },
    consumers: false,
  });
});
afterAll(async () => {
  await Promise.all([stack?.stop(), crashy?.stop()]);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** The one line an operator reads on a failure: `oc: ...`, no stack trace. */
function expectOneLine(run: CliRun, ...patterns: RegExp[]): string {
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^oc: /);
  for (const pattern of patterns) expect(lines[0]).toMatch(pattern);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  return lines[0]!;
}

async function sealedEvent(s: TestStack, eventId: string, facts: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const ev = (await s.get(`/v1/toolcalls/${eventId}`)).json.evidence as { status: string }[];
    if (ev.length === facts && ev.every((f) => f.status === 'sealed')) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`the facts of ${eventId} were not sealed within 30 s`);
}

/** An approved call of `s`, ready to execute. */
async function approvedEvent(s: TestStack): Promise<string> {
  const r = await s.post('/v1/toolcalls', toolCall({ tool: 'slack', action: 'msg.post', risk_score: 9 }));
  expect(r.json.decision).toBe('approve');
  const approved = await s.request('POST', `/v1/approvals/${r.json.approval.id}/approve`, {
    token: await tokenFor('alice'),
  });
  expect(approved.status).toBe(200);
  return r.json.event_id;
}

function stateFile(dir: string, overrides: Partial<StackState>): void {
  writeStackState({
    version: 1,
    pid: process.pid,
    started_at: new Date().toISOString(),
    url: 'http://localhost:3999',
    port: 3999,
    dynamodb_endpoint: dynamoEndpoint(),
    sqs_endpoint: 'http://127.0.0.1:4999',
    s3_endpoint: 'http://127.0.0.1:4998',
    table_name: stack.config.tableName,
    evidence_bucket: 'oc-evidence',
    in_memory: true,
    data_dir: dir,
    ...overrides,
  });
}

/** A pid that no process has any more. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  return child.pid!;
}

const OK_LINE = /^ok: tenant tenant1, (\d+) entries, head seq (\d+) [0-9a-f]{64}\n$/;

describe('oc keys create', () => {
  it('prints a new key once; the stored key authenticates its tenant and agent', async () => {
    const run = await runOc(
      ['keys', 'create', '--tenant', 'tenant1', '--agent', 'agent-7'],
      local(stack.config.tableName),
    );
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^sk-oc-[A-Za-z0-9_-]{43}\n$/);
    const key = run.stdout.trim();
    const allowed = await stack.post('/v1/toolcalls', toolCall({ agent_id: 'agent-7' }), key);
    expect(allowed.status).toBe(200);
    expect(allowed.json.decision).toBe('allow');
  });

  it('--json prints the key with its tenant and SHA-256 (what is stored)', async () => {
    const run = await runOc(
      ['keys', 'create', '--tenant', 'tenant2', '--label', 'ci', '--json'],
      local(stack.config.tableName),
    );
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({ tenant_id: 'tenant2', agent_id: null, label: 'ci' });
    expect(out.key_sha256).toBe(createHash('sha256').update(out.key).digest('hex'));
  });
});

describe('oc keys list|rotate|revoke', () => {
  it('lists keys without secrets, rotates keeping the agent binding, revokes, and refuses bad usage', async () => {
    const target = local(stack.config.tableName);
    const created = JSON.parse(
      (
        await runOc(
          ['keys', 'create', '--tenant', 'tenant1', '--agent', 'agent-9', '--expires-in', '30d', '--json'],
          target,
        )
      ).stdout,
    );
    expect(created.key_id).toMatch(/^key_[0-9a-f]{16}$/);

    const listed = await runOc(['keys', 'list', '--tenant', 'tenant1'], target);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(
      new RegExp(
        `^${created.key_id}  active  agent=agent-9  created=\\S+  expires=\\S+  last_used=never$`,
        'm',
      ),
    );
    expect(listed.stdout).not.toContain(created.key);

    const rotated = await runOc(
      ['keys', 'rotate', '--tenant', 'tenant1', '--key', created.key_id, '--json'],
      target,
    );
    expect(rotated.code).toBe(0);
    const out = JSON.parse(rotated.stdout);
    expect(out.new).toMatchObject({ agent_id: 'agent-9', status: 'active', expires_at: created.expires_at });
    expect(out.old).toMatchObject({ key_id: created.key_id, status: 'revoked' });
    expect((await stack.post('/v1/toolcalls', toolCall({ agent_id: 'agent-9' }), out.key)).status).toBe(200);

    const revoked = await runOc(['keys', 'revoke', '--tenant', 'tenant1', '--key', out.new.key_id], target);
    expect(revoked).toMatchObject({
      code: 0,
      stdout: `revoked ${out.new.key_id}; refused everywhere within 30 s\n`,
    });

    // Another tenant's key is not found; a malformed id is a usage error.
    const wrongTenant = await runOc(
      ['keys', 'revoke', '--tenant', 'tenant2', '--key', created.key_id],
      target,
    );
    expect(wrongTenant.code).toBe(1);
    expect(wrongTenant.stderr).toContain(`no key ${created.key_id} for tenant tenant2`);
    const usage = await runOc(['keys', 'revoke', '--tenant', 'tenant1', '--key', 'sk-oc-secret'], target);
    expect(usage.code).toBe(2);
    expect(usage.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('oc keys rotate --grace', () => {
  it('never lengthens an expiring key: the old key keeps its own earlier expiry', async () => {
    const target = local(stack.config.tableName);
    const created = JSON.parse(
      (await runOc(['keys', 'create', '--tenant', 'tenant1', '--expires-in', '90s', '--json'], target))
        .stdout,
    );
    const rotated = await runOc(
      ['keys', 'rotate', '--tenant', 'tenant1', '--key', created.key_id, '--grace', '1h', '--json'],
      target,
    );
    expect(rotated.code).toBe(0);
    const out = JSON.parse(rotated.stdout);
    expect(out.new.expires_at).toBe(created.expires_at);
    expect(out.old).toMatchObject({
      key_id: created.key_id,
      status: 'active',
      expires_at: created.expires_at,
    });
  });
});

describe('oc verify', () => {
  let entries: number;
  beforeAll(async () => {
    const r = await stack.post('/v1/toolcalls', toolCall());
    expect(r.json.decision).toBe('allow');
    await sealedEvent(stack, r.json.event_id, 2);
  });

  it("re-checks a tenant's chain and prints its head", async () => {
    const run = await runOc(['verify', '--tenant', 'tenant1'], local(stack.config.tableName));
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const [, count, head] = OK_LINE.exec(run.stdout)!;
    expect(Number(count)).toBeGreaterThanOrEqual(2);
    expect(head).toBe(count);
    entries = Number(count);
  });

  it('--json prints the report', async () => {
    const run = await runOc(['verify', '--tenant', 'tenant1', '--json'], local(stack.config.tableName));
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ tenantId: 'tenant1', ok: true, problems: [] });
    expect(report.entries).toBeGreaterThanOrEqual(entries);
  });

  it('a tenant with no entries is a failure naming the known tenants, unless --allow-empty', async () => {
    const typo = await runOc(['verify', '--tenant', 'tennant1'], local(stack.config.tableName));
    expect(typo.code).toBe(1);
    expect(typo.stdout).toBe('');
    expectOneLine(
      typo,
      /tenant tennant1 has no chain entries and no API key/,
      /tenant1, tenant2/,
      /--allow-empty/,
    );

    const allowed = await runOc(
      ['verify', '--tenant', 'tennant1', '--allow-empty'],
      local(stack.config.tableName),
    );
    expect(allowed).toMatchObject({ code: 0, stderr: '' });
    expect(allowed.stdout).toBe('ok: tenant tennant1 has no chain entries yet (--allow-empty)\n');
  });

  it('a tenant with a key but no calls yet is told apart from a typo', async () => {
    const env = local(stack.config.tableName);
    expect((await runOc(['keys', 'create', '--tenant', 'fresh.tenant'], env)).code).toBe(0);
    const run = await runOc(['verify', '--tenant', 'fresh.tenant'], env);
    expect(run.code).toBe(1);
    expectOneLine(run, /tenant fresh\.tenant has an API key but no chain entries yet/, /--allow-empty/);
  });

  it('lists every problem and exits 1 when facts wait too long for the sequencer', async () => {
    // The crashy stack seals nothing, and its facts are 10 minutes old.
    const r = await crashy.post('/v1/toolcalls', toolCall());
    expect(r.json.decision).toBe('allow');
    const run = await runOc(['verify', '--tenant', 'tenant1'], local(crashy.config.tableName));
    expect(run.code).toBe(1);
    const [first, ...problems] = run.stdout.trimEnd().split('\n');
    expect(first).toBe('FAILED: tenant tenant1, 0 entries, head seq 0');
    expect(problems.length).toBeGreaterThanOrEqual(1);
    for (const p of problems) expect(p).toMatch(/^ {2}- /);
    expect(problems.join('\n')).toMatch(/unsealed/);

    const json = await runOc(['verify', '--tenant', 'tenant1', '--json'], local(crashy.config.tableName));
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false });
  });
});

describe('finding the stack', () => {
  it('reads the state file of a running stack: no variables needed', async () => {
    const dir = tempDir();
    stateFile(dir, {});
    const viaEnv = await runOc(['verify', '--tenant', 'tenant1'], { OC_DATA_DIR: dir });
    expect(viaEnv).toMatchObject({ code: 0, stderr: '' });
    expect(viaEnv.stdout).toMatch(OK_LINE);
    const viaFlag = await runOc(['verify', '--tenant', 'tenant1', '--data-dir', dir], {
      OC_DATA_DIR: emptyDataDir,
    });
    expect(viaFlag.code).toBe(0);
    expect(viaFlag.stdout).toMatch(OK_LINE);
  });

  it('a flag beats a variable, and a variable beats the state file', async () => {
    const dir = tempDir();
    stateFile(dir, { dynamodb_endpoint: `http://127.0.0.1:${deadPort}`, table_name: 'no-such-table' });
    const [envWins, flagWins] = await Promise.all([
      runOc(['verify', '--tenant', 'tenant1'], {
        OC_DATA_DIR: dir,
        OC_DYNAMODB_PORT: dynamoPort,
        OC_TABLE_NAME: stack.config.tableName,
      }),
      runOc(
        ['verify', '--tenant', 'tenant1', '--dynamodb-port', dynamoPort, '--table', stack.config.tableName],
        {
          OC_DATA_DIR: dir,
          OC_DYNAMODB_PORT: String(deadPort),
          OC_TABLE_NAME: 'no-such-table',
        },
      ),
    ]);
    expect(envWins.code).toBe(0);
    expect(flagWins.code).toBe(0);
  });

  it('a state file whose stack is gone is an error that names it, not a silent default', async () => {
    const dir = tempDir();
    const pid = deadPid();
    stateFile(dir, { pid });
    const run = await runOc(['verify', '--tenant', 'tenant1'], { OC_DATA_DIR: dir });
    expect(run.code).toBe(1);
    expectOneLine(
      run,
      new RegExp(
        `local stack recorded in ${path.join(dir, 'stack.json')} \\(pid ${pid}, started .*\\) is not running`,
      ),
      /npm start/,
      /OC_DYNAMODB_PORT/,
    );
  });

  it('a state file that cannot be read is an error that names it', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'stack.json'), '{"version":');
    const run = await runOc(['keys', 'create', '--tenant', 'tenant1'], { OC_DATA_DIR: dir });
    expect(run.code).toBe(1);
    expectOneLine(run, /stack\.json is not a stack state file \(not JSON\)/, /npm start/);
  });

  it('an unreachable DynamoDB: exit 1, one line naming the endpoint and what to do', async () => {
    const fromEnv = await runOc(
      ['verify', '--tenant', 'tenant1'],
      local('oc-main', { OC_DYNAMODB_PORT: String(deadPort) }),
    );
    expect(fromEnv.code).toBe(1);
    expect(fromEnv.stdout).toBe('');
    expectOneLine(
      fromEnv,
      new RegExp(
        `^oc: cannot reach DynamoDB at http://127\\.0\\.0\\.1:${deadPort} \\(connection refused\\)\\.`,
      ),
      new RegExp(`OC_DYNAMODB_PORT=${deadPort} npm start`),
    );

    const dir = tempDir();
    stateFile(dir, { dynamodb_endpoint: `http://127.0.0.1:${deadPort}` });
    const fromState = await runOc(['keys', 'create', '--tenant', 'tenant1'], { OC_DATA_DIR: dir });
    expect(fromState.code).toBe(1);
    expectOneLine(
      fromState,
      new RegExp(`cannot reach DynamoDB at http://127\\.0\\.0\\.1:${deadPort} \\(connection refused\\)`),
      new RegExp(
        `stack recorded in ${path.join(dir, 'stack.json')} \\(pid ${process.pid}\\) does not answer`,
      ),
    );
  });

  it('a table that does not exist is named', async () => {
    const run = await runOc(['verify', '--tenant', 'tenant1'], local('no-such-table'));
    expect(run.code).toBe(1);
    expectOneLine(
      run,
      /table no-such-table does not exist in DynamoDB at http:\/\/127\.0\.0\.1:\d+/,
      /OC_TABLE_NAME/,
    );
  });

  it('--debug adds the stack trace and its cause', async () => {
    const run = await runOc(
      ['verify', '--tenant', 'tenant1', '--debug'],
      local('oc-main', { OC_DYNAMODB_PORT: String(deadPort) }),
    );
    expect(run.code).toBe(1);
    const [first, ...trace] = run.stderr.trimEnd().split('\n');
    expect(first).toMatch(/^oc: cannot reach DynamoDB at /);
    expect(trace.join('\n')).toMatch(/^StorageError: chain read failed\n\s+at /);
    expect(trace.join('\n')).toMatch(/caused by: Error: connect ECONNREFUSED/);
  });

  it('--aws reads the table from the stack outputs (OpenClauseData, else OpenClauseApp)', async () => {
    const stacks: Record<string, string> = {};
    const asked: string[] = [];
    const cloudformation = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const name = new URLSearchParams(body).get('StackName') ?? '';
        asked.push(name);
        res.setHeader('Content-Type', 'text/xml');
        const table = stacks[name];
        if (!table) {
          res.statusCode = 400;
          res.end(
            `<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${name} does not exist</Message></Error><RequestId>1</RequestId></ErrorResponse>`,
          );
          return;
        }
        res.end(
          `<DescribeStacksResponse><DescribeStacksResult><Stacks><member><StackName>${name}</StackName><StackStatus>CREATE_COMPLETE</StackStatus>` +
            `<CreationTime>2025-01-01T00:00:00Z</CreationTime><Outputs><member><OutputKey>TableName</OutputKey><OutputValue>${table}</OutputValue></member></Outputs>` +
            `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></DescribeStacksResponse>`,
        );
      });
    });
    await new Promise<void>((resolve) => cloudformation.listen(0, '127.0.0.1', resolve));
    const aws = {
      OC_DATA_DIR: emptyDataDir,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_ENDPOINT_URL_CLOUDFORMATION: `http://127.0.0.1:${(cloudformation.address() as AddressInfo).port}`,
      AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint(),
      // The local variables do not apply to --aws.
      OC_TABLE_NAME: 'no-such-table',
    };
    try {
      const none = await runOc(['verify', '--tenant', 'tenant1', '--aws'], aws);
      expect(none.code).toBe(1);
      expectOneLine(none, /no deployed OpenClause stack in us-east-1/, /--table/);
      expect(asked).toEqual(['OpenClauseData', 'OpenClauseApp']);

      stacks.OpenClauseApp = stack.config.tableName;
      const fromApp = await runOc(['verify', '--tenant', 'tenant1', '--aws'], aws);
      expect(fromApp).toMatchObject({ code: 0, stderr: '' });
      expect(fromApp.stdout).toMatch(OK_LINE);

      stacks.OpenClauseData = 'no-such-table';
      const fromData = await runOc(['verify', '--tenant', 'tenant1', '--aws'], aws);
      expect(fromData.code).toBe(1);
      expectOneLine(
        fromData,
        /table no-such-table does not exist in DynamoDB in us-east-1/,
        /OpenClauseData/,
      );

      const fromFlag = await runOc(
        ['verify', '--tenant', 'tenant1', '--aws', '--table', stack.config.tableName],
        aws,
      );
      expect(fromFlag.code).toBe(0);
    } finally {
      cloudformation.close();
    }
  });
});

describe('oc executions resolve', () => {
  it('a well-formed id of no event: one line, exit 1', async () => {
    const run = await runOc(
      [
        'executions',
        'resolve',
        '--tenant',
        'tenant1',
        '--event',
        '00000000-0000-4000-8000-000000000001',
      ].concat(['--status', 'success', '--note', 'checked']),
      local(stack.config.tableName),
    );
    expect(run.code).toBe(1);
    expectOneLine(
      run,
      /cannot resolve the execution of event 00000000-0000-4000-8000-000000000001: event not found/,
      /--tenant/,
    );
  });

  it('a completed execution: one line, exit 1, and nothing changes', async () => {
    const eventId = await approvedEvent(stack);
    const executed = await stack.post(`/v1/toolcalls/${eventId}/execute`, '');
    expect(executed.status).toBe(200);
    const before = await stack.get(`/v1/toolcalls/${eventId}`);
    const args = [
      'executions',
      'resolve',
      '--tenant',
      'tenant1',
      '--event',
      eventId,
      '--status',
      'error',
      '--note',
      'x',
    ];
    const run = await runOc(args, local(stack.config.tableName));
    expect(run.code).toBe(1);
    expectOneLine(run, /already has a recorded outcome/, /Nothing was changed/);
    const after = await stack.get(`/v1/toolcalls/${eventId}`);
    expect(after.json.result).toEqual(before.json.result);
    expect(after.json.execution).toEqual(before.json.execution);

    const otherTenant = await runOc(
      [...args.slice(0, 3), 'tenant2', ...args.slice(4)],
      local(stack.config.tableName),
    );
    expect(otherTenant.code).toBe(1);
    expectOneLine(otherTenant, /event not found/);
  });

  it('records the outcome of a crashed execution, once, without running the tool', async () => {
    const eventId = await approvedEvent(crashy);
    crashNext = true;
    const crashed = await crashy.post(`/v1/toolcalls/${eventId}/execute`, '');
    crashNext = false;
    expect(crashed.status).toBe(500);
    const connectorRuns = counted.calls.length;

    const args = ['executions', 'resolve', '--tenant', 'tenant1', '--event', eventId, '--status', 'success'];
    const run = await runOc(
      [...args, '--note', 'seen in #general', '--output', '{"ts":"1.2"}', '--json'],
      local(crashy.config.tableName, { USER: 'ops' }),
    );
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).toMatchObject({
      parent_event_id: eventId,
      result: { status: 'success', output: { ts: '1.2' } },
    });
    expect(counted.calls).toHaveLength(connectorRuns);
    const replay = await crashy.post(`/v1/toolcalls/${eventId}/execute`, '');
    expect(replay.status).toBe(200);
    expect(replay.json.result).toMatchObject({ status: 'success', output: { ts: '1.2' } });

    const again = await runOc([...args, '--note', 'twice'], local(crashy.config.tableName));
    expect(again.code).toBe(1);
    expectOneLine(again, /already has a recorded outcome/);
  });
});

describe('oc parked list|drop', () => {
  it('lists what the pipelines parked, as text and JSON, and drops one an operator dealt with', async () => {
    const target = local(stack.config.tableName);
    const recordId = `cli-${Date.now()}.oc.approval.requested`;
    await stack.state.parked.park(
      {
        tenantId: 'tenant2',
        consumer: 'outbox',
        recordId,
        payload: '{}',
        reason: 'notification enqueue refused 1 message(s)',
      },
      new Date(),
    );
    const listed = await runOc(['parked', 'list', '--tenant', 'tenant2'], target);
    expect(listed).toMatchObject({ code: 0, stderr: '' });
    expect(listed.stdout).toMatch(
      new RegExp(
        `^tenant2 outbox ${recordId.replaceAll('.', '\\.')}: notification enqueue refused 1 message\\(s\\) \\(since \\S+, 0 release\\(s\\), next \\S+\\)$`,
        'm',
      ),
    );
    const json = JSON.parse(
      (await runOc(['parked', 'list', '--tenant', 'tenant2', '--json'], target)).stdout,
    );
    expect(json).toContainEqual(
      expect.objectContaining({ tenant_id: 'tenant2', consumer: 'outbox', record_id: recordId, attempts: 0 }),
    );
    const dropped = await runOc(
      ['parked', 'drop', '--tenant', 'tenant2', '--consumer', 'outbox', '--record', recordId],
      target,
    );
    expect(dropped).toMatchObject({
      code: 0,
      stdout: `dropped: tenant2 outbox ${recordId} (it will not be retried)\n`,
    });
    expect(await stack.state.parked.get('tenant2', 'outbox', recordId)).toBeUndefined();
    const again = await runOc(
      ['parked', 'drop', '--tenant', 'tenant2', '--consumer', 'outbox', '--record', recordId],
      target,
    );
    expect(again.code).toBe(2);
    expectOneLine(again, /no parked record/);
  });
});

describe('usage errors', () => {
  const event = 'dee96972-e470-8c59-bccf-ad80755916b5';
  const resolve = ['executions', 'resolve', '--tenant', 'tenant1', '--event', event, '--status', 'success'];
  const cases: [string[], RegExp, Record<string, string>?][] = [
    [['verify'], /required option '--tenant <tenant>' not specified\. See `oc verify --help`\.$/],
    [['verify', '--tenant', 'tenant1', '--bogus'], /unknown option '--bogus'/],
    [
      ['verify', '--tenant', 'bad tenant!'],
      /argument 'bad tenant!' is invalid\. A tenant id is 1-64 letters/,
    ],
    [['verify', '--tenant', 'x'.repeat(65)], /A tenant id is 1-64/],
    [['keys', 'create', '--tenant', '.hidden'], /A tenant id is/],
    [['parked', 'list', '--tenant', 'tenant 1'], /A tenant id is/],
    [
      ['parked', 'drop', '--tenant', '_', '--consumer', 'outbox', '--record', 'r\u200b1'],
      /A record id must not contain control or invisible characters/,
    ],
    [
      ['verify', '--tenant', 'tenant1', '--unsealed-grace-sec', 'soon'],
      /'soon' is invalid\. It must be a whole number/,
    ],
    [
      ['verify', '--tenant', 'tenant1', '--aws', '--dynamodb-port', '8000'],
      /cannot be used with option '--aws'/,
    ],
    [['verify', '--tenant', 'tenant1', '--dynamodb-port', '99999'], /port number/],
    [['keys', 'create', '--tenant', 'tenant1', '--agent', ' '], /An agent id is/],
    [
      [...resolve.slice(0, 5), 'NOT-A-UUID', '--status', 'success', '--note', 'n'],
      /An event id is a lowercase UUID/,
    ],
    [[...resolve.slice(0, 5), event.toUpperCase(), '--status', 'success', '--note', 'n'], /lowercase UUID/],
    [[...resolve.slice(0, 7), 'maybe', '--note', 'n'], /Allowed choices are success, error/],
    [[...resolve, '--note', 'n', '--output', '[1,2]'], /must be a JSON object/],
    [[...resolve, '--note', 'n', '--output', '{oops'], /must be a JSON object.*not valid JSON/],
    [[...resolve, '--note', '  '], /must not be blank/],
    [resolve, /required option '--note <text>' not specified/],
    [['dev-token', '--tenant', 'tenant1', '--email', 'a@b.example', '--ttl-sec', '0'], /from 1 to 86400/],
    [['dev-token', '--tenant', 'tenant1', '--email', 'a@b.example', '--ttl-sec', '86401'], /from 1 to 86400/],
    [['nosuch'], /unknown command 'nosuch'\. See `oc --help`\./],
    [['keys'], /`oc keys` needs a command: create, list, revoke, rotate\. See `oc keys --help`\./],
    [
      [],
      /`oc` needs a command: start, keys, verify, executions, approvals, grants, dev-token, archive, webhooks, parked, policy, proof, vkey, upstream\. See `oc --help`\./,
    ],
    [
      ['verify', '--tenant', 'tenant1'],
      /OC_DYNAMODB_PORT=abc is not a port number/,
      { OC_DYNAMODB_PORT: 'abc' },
    ],
    [
      resolve.concat(['--note', 'n']),
      /OC_CONNECTOR_TIMEOUT_MS=soon is not/,
      { OC_CONNECTOR_TIMEOUT_MS: 'soon' },
    ],
  ];

  it('exit 2 with one line and no stack trace, before touching storage', async () => {
    // DynamoDB is unreachable here: a command that got as far as storage would exit 1.
    const runs = await inBatches(cases, 4, ([args, , env]) =>
      runOc(args, { ...local('oc-main', { OC_DYNAMODB_PORT: String(deadPort) }), ...env }),
    );
    runs.forEach((run, i) => {
      const [args, pattern] = cases[i]!;
      expect({ args, code: run.code, stdout: run.stdout, stderr: run.stderr.trimEnd() }).toEqual({
        args,
        code: 2,
        stdout: '',
        stderr: expect.stringMatching(pattern),
      });
      expectOneLine(run, pattern);
    });
  });
});

describe('help and the other commands', () => {
  it('every command has --help with examples', async () => {
    const commands = [
      [],
      ['start'],
      ['keys'],
      ['keys', 'create'],
      ['keys', 'list'],
      ['keys', 'rotate'],
      ['keys', 'revoke'],
      ['verify'],
      ['archive'],
      ['webhooks'],
      ['webhooks', 'listen'],
      ['webhooks', 'redrive'],
      ['executions'],
      ['executions', 'resolve'],
      ['approvals'],
      ['approvals', 'show'],
      ['dev-token'],
      ['parked'],
      ['parked', 'list'],
      ['parked', 'drop'],
      ['policy'],
      ['policy', 'replay'],
      ['policy', 'test'],
    ];
    const runs = await inBatches(commands, 4, (c) => runOc([...c, '--help']));
    runs.forEach((run, i) => {
      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(run.stdout).toContain(`Usage: ${['oc', ...commands[i]!].join(' ')} `);
      expect(run.stdout).toMatch(/\nExamples:\n {2}\S/);
      expect(run.stdout).toContain('--debug');
    });
  });

  it('dev-token prints a token the approver routes accept', async () => {
    const run = await runOc([
      'dev-token',
      '--tenant',
      'tenant1',
      '--email',
      'alice@acme.example',
      '--ttl-sec',
      '600',
    ]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const listing = await stack.request('GET', '/v1/approvals', { token: run.stdout.trim() });
    expect(listing.status).toBe(200);
  });

  it('start refuses a data folder whose stack is already running', async () => {
    const dir = tempDir();
    stateFile(dir, {});
    // Ports nobody uses, should the check ever let it start.
    const ports = {
      PORT: String(deadPort),
      OC_DYNAMODB_PORT: String(deadPort),
      OC_AWS_PORT: '1',
      OC_S3_PORT: '2',
    };
    const run = await runOc(['start'], { OC_DATA_DIR: dir, ...ports });
    expect(run.code).toBe(1);
    expectOneLine(
      run,
      new RegExp(`a local stack already runs from ${dir} \\(pid ${process.pid}, http://localhost:3999\\)`),
    );
  });
});

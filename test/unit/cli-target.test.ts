/** The CLI's target resolution and its one error mapper (the processes are in test/e2e/cli.test.ts). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommanderError } from 'commander';
import { writeStackState } from '../../bin/local/state-file.js';
import { CliError, RemoteError, UsageError, toFailure } from '../../bin/cli/errors.js';
import { localEndpoint, resolveLocalTarget, tableContext } from '../../bin/cli/target.js';
import { AppError, StorageError } from '../../functions/shared/errors.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'oc-cli-unit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeState(pid: number): void {
  writeStackState({
    version: 1,
    pid,
    started_at: '2026-01-01T00:00:00.000Z',
    url: 'http://localhost:3300',
    port: 3300,
    dynamodb_endpoint: 'http://127.0.0.1:8300',
    sqs_endpoint: 'http://127.0.0.1:4866',
    s3_endpoint: 'http://127.0.0.1:4869',
    table_name: 'oc-state',
    evidence_bucket: 'bucket-state',
    in_memory: false,
    data_dir: dir,
  });
}

describe('resolveLocalTarget', () => {
  it("uses npm start's defaults when nothing is set", () => {
    const t = resolveLocalTarget({}, { OC_DATA_DIR: dir });
    expect([t.dynamodb, t.sqs, t.s3, t.api, t.table, t.bucket].map((s) => s.value)).toEqual([
      'http://127.0.0.1:8000',
      'http://127.0.0.1:4566',
      'http://127.0.0.1:4569',
      'http://localhost:3000',
      'oc-main',
      'oc-evidence',
    ]);
    expect(t.dynamodb.source).toEqual({ kind: 'default' });
  });

  it("a running stack's state file beats the defaults, a variable the state file, a flag the variable", () => {
    writeState(process.pid);
    const file = path.join(dir, 'stack.json');
    const state = resolveLocalTarget({}, { OC_DATA_DIR: dir });
    expect(
      [state.dynamodb, state.sqs, state.s3, state.api, state.table, state.bucket].map((s) => s.value),
    ).toEqual([
      'http://127.0.0.1:8300',
      'http://127.0.0.1:4866',
      'http://127.0.0.1:4869',
      'http://localhost:3300',
      'oc-state',
      'bucket-state',
    ]);
    expect(state.table.source).toEqual({ kind: 'state', file, pid: process.pid });

    const env = {
      OC_DATA_DIR: dir,
      OC_DYNAMODB_PORT: '8400',
      OC_AWS_PORT: '4900',
      OC_S3_PORT: '4901',
      PORT: '3400',
      OC_TABLE_NAME: 'oc-env',
      OC_EVIDENCE_BUCKET: 'bucket-env',
    };
    const fromEnv = resolveLocalTarget({}, env);
    expect(
      [fromEnv.dynamodb, fromEnv.sqs, fromEnv.s3, fromEnv.api, fromEnv.table, fromEnv.bucket].map(
        (s) => s.value,
      ),
    ).toEqual([
      'http://127.0.0.1:8400',
      'http://127.0.0.1:4900',
      'http://127.0.0.1:4901',
      'http://localhost:3400',
      'oc-env',
      'bucket-env',
    ]);

    const fromFlags = resolveLocalTarget({ dynamodbPort: 8500, table: 'oc-flag' }, env);
    expect(fromFlags.dynamodb).toEqual({
      value: 'http://127.0.0.1:8500',
      source: { kind: 'flag', name: '--dynamodb-port' },
    });
    expect(fromFlags.table).toEqual({ value: 'oc-flag', source: { kind: 'flag', name: '--table' } });
  });

  it('--data-dir beats OC_DATA_DIR', () => {
    writeState(process.pid);
    expect(resolveLocalTarget({ dataDir: dir }, { OC_DATA_DIR: os.tmpdir() }).table.value).toBe('oc-state');
  });

  it('a stale state file is an error when a default would stand in for it, not when the endpoint is explicit', () => {
    const pid = spawnSync(process.execPath, ['-e', '']).pid!;
    writeState(pid);
    const stale = resolveLocalTarget({}, { OC_DATA_DIR: dir });
    expect(stale.dynamodb.source).toEqual({ kind: 'default' });
    expect(() => localEndpoint(stale, 'dynamodb')).toThrow(
      new CliError(
        `the local stack recorded in ${path.join(dir, 'stack.json')} (pid ${pid}, started 2026-01-01T00:00:00.000Z) is not running. ` +
          'Start it with `npm start` (it rewrites the file), or set OC_DYNAMODB_PORT (or --dynamodb-port) or use --aws.',
      ),
    );
    expect(
      localEndpoint(resolveLocalTarget({}, { OC_DATA_DIR: dir, OC_DYNAMODB_PORT: '8600' }), 'dynamodb'),
    ).toBe('http://127.0.0.1:8600');
  });

  it('a malformed port variable is a usage error naming it', () => {
    expect(() => resolveLocalTarget({}, { OC_DATA_DIR: dir, OC_S3_PORT: '70000' })).toThrow(
      new UsageError('OC_S3_PORT=70000 is not a port number (1-65535); fix or unset it.'),
    );
  });
});

describe('toFailure', () => {
  const target = resolveLocalTarget({}, { OC_DATA_DIR: os.tmpdir() + '/oc-none', OC_DYNAMODB_PORT: '8700' });
  const dynamo = tableContext(target);
  const sdkError = (name: string, message: string) =>
    Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });

  it('commander errors and usage errors exit 2 with a pointer to --help', () => {
    const commander = new CommanderError(
      1,
      'commander.unknownOption',
      "error: unknown option '--x'\n(Did you mean --tenant?)",
    );
    expect(toFailure(commander, { commandPath: 'oc verify' })).toEqual({
      line: "unknown option '--x' (Did you mean --tenant?). See `oc verify --help`.",
      exitCode: 2,
    });
    expect(toFailure(new UsageError('bad.'), { commandPath: 'oc keys create' })).toEqual({
      line: 'bad. See `oc keys create --help`.',
      exitCode: 2,
    });
  });

  it('an unreachable endpoint names it and what to do', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8700'), { code: 'ECONNREFUSED' });
    expect(toFailure(new StorageError('chain read failed', refused), { dynamo })).toEqual({
      line:
        'cannot reach DynamoDB at http://127.0.0.1:8700 (connection refused). Is a local stack running with ' +
        'OC_DYNAMODB_PORT=8700? Start one with `OC_DYNAMODB_PORT=8700 npm start`, or unset OC_DYNAMODB_PORT.',
      exitCode: 1,
    });
  });

  it('AWS credential, region and permission failures say what to set', () => {
    const where = 'CloudFormation in eu-west-1';
    const cases: [unknown, RegExp][] = [
      [
        sdkError('CredentialsProviderError', 'Could not load credentials'),
        /^no AWS credentials for CloudFormation in eu-west-1 .*AWS_PROFILE/,
      ],
      [sdkError('ExpiredTokenException', 'expired'), /refused the AWS credentials \(expired\)/],
      [new Error('Region is missing'), /no AWS region is configured .*AWS_REGION/],
      [sdkError('AccessDeniedException', 'not authorized'), /denied the request \(not authorized\)/],
    ];
    for (const [cause, pattern] of cases) {
      const failure = toFailure(new RemoteError(where, cause));
      expect(failure.exitCode).toBe(1);
      expect(failure.line).toMatch(pattern);
    }
  });

  it('a domain refusal says what the command was doing and that nothing changed', () => {
    const conflict = new AppError(409, 'CONFLICT', 'this execution already has a recorded outcome');
    expect(toFailure(conflict, { doing: 'resolve the execution of event e' })).toEqual({
      line: 'cannot resolve the execution of event e: this execution already has a recorded outcome (CONFLICT). Nothing was changed.',
      exitCode: 1,
    });
  });

  it('an unexpected error asks for --debug', () => {
    expect(toFailure(new TypeError('x is undefined'), { doing: 'verify' }).line).toBe(
      'cannot verify: x is undefined. This is unexpected: run again with --debug and report the stack trace.',
    );
  });
});

/**
 * Which stack a command talks to, in one place for every command.
 *
 * Local (the default), each setting from the first source that has it:
 *   1. an explicit flag (`--dynamodb-port`, `--table`, `--data-dir`),
 *   2. the variable `npm start` reads (OC_DYNAMODB_PORT, OC_AWS_PORT, OC_S3_PORT, PORT,
 *      OC_TABLE_NAME, OC_EVIDENCE_BUCKET; OC_DATA_DIR says where the state file is),
 *   3. the state file `npm start` writes (`<OC_DATA_DIR or .oc-data>/stack.json`), if the stack
 *      that wrote it still runs,
 *   4. the defaults `npm start` uses.
 * A state file whose stack is gone (or that cannot be read) is an error rather than a silent fall
 * back to the defaults, unless the endpoint is given explicitly.
 *
 * `--aws`: the deployed stack, with the standard AWS credentials and region; the table is `--table`
 * or the TableName output of the OpenClauseData (else OpenClauseApp) CloudFormation stack.
 */
import path from 'node:path';
import { Option, type Command } from 'commander';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { STACKS, TABLE } from '../../functions/shared/constants.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { readStackState, type StateLookup } from '../local/state-file.js';
import { port } from './args.js';
import { CliError, RemoteError, UsageError, type FailureContext } from './errors.js';

/** The options `addTargetOptions` declares, as commander parses them. */
export interface TargetOptions {
  aws?: boolean;
  table?: string;
  dynamodbPort?: number;
  dataDir?: string;
}

/** What `npm start` uses when nothing else is set (bin/local/stack.ts). */
export const LOCAL_DEFAULTS = {
  dataDir: '.oc-data',
  dynamodbPort: 8000,
  sqsPort: 4566,
  s3Port: 4569,
  apiPort: 3000,
  bucket: 'oc-evidence',
} as const;

/** Where a setting came from: messages name it, so the operator knows what to change. */
export type Source =
  | { kind: 'flag'; name: string }
  | { kind: 'env'; name: string }
  | { kind: 'state'; file: string; pid: number }
  | { kind: 'default' }
  | { kind: 'cloudformation'; stack: string };

export interface Setting<T> {
  value: T;
  source: Source;
}

export interface LocalTarget {
  kind: 'local';
  dataDir: string;
  state: StateLookup;
  dynamodb: Setting<string>;
  sqs: Setting<string>;
  s3: Setting<string>;
  api: Setting<string>;
  table: Setting<string>;
  bucket: Setting<string>;
}

export interface AwsTarget {
  kind: 'aws';
  region: string;
  table: Setting<string>;
}

export type Target = LocalTarget | AwsTarget;

type LocalEndpoint = 'dynamodb' | 'sqs' | 's3' | 'api';

/** How to point a command at another local endpoint, for messages. */
const MOVE: Record<LocalEndpoint, string> = {
  dynamodb: 'set OC_DYNAMODB_PORT (or --dynamodb-port) or use --aws',
  sqs: 'set OC_AWS_PORT',
  s3: 'set OC_S3_PORT',
  api: 'set PORT',
};

/** Adds the target flags to a command that reads or writes the stack's table. */
export function addTargetOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--aws', 'use the deployed stack (standard AWS credentials) instead of the local one'),
    )
    .addOption(
      new Option(
        '--table <name>',
        `table name (default: OC_TABLE_NAME, the running stack's, or ${TABLE.defaultName}; with --aws the stack output)`,
      ),
    )
    .addOption(
      new Option(
        '--dynamodb-port <port>',
        'local DynamoDB port (default: OC_DYNAMODB_PORT or the running stack)',
      )
        .argParser(port)
        .conflicts('aws'),
    )
    .addOption(
      new Option(
        '--data-dir <dir>',
        'where the local stack keeps its state file (default: OC_DATA_DIR or .oc-data)',
      ).conflicts('aws'),
    );
}

function envPort(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  try {
    return port(raw);
  } catch {
    throw new UsageError(`${name}=${raw} is not a port number (1-65535); fix or unset it.`);
  }
}

function pick<T>(...candidates: [T | undefined, Source][]): Setting<T> {
  for (const [value, source] of candidates) if (value !== undefined && value !== '') return { value, source };
  throw new Error('pick: no default given');
}

const loopback = (p: number) => `http://127.0.0.1:${p}`;

export function resolveLocalTarget(
  opts: TargetOptions,
  env: NodeJS.ProcessEnv,
  cwd = process.cwd(),
): LocalTarget {
  const dataDir = path.resolve(cwd, opts.dataDir ?? (env.OC_DATA_DIR || LOCAL_DEFAULTS.dataDir));
  const lookup = readStackState(dataDir);
  const running = lookup.kind === 'found' ? lookup.state : undefined;
  const fromState: Source = running
    ? { kind: 'state', file: lookup.file, pid: running.pid }
    : { kind: 'default' };
  const flag = (name: string): Source => ({ kind: 'flag', name });
  const fromEnv = (name: string): Source => ({ kind: 'env', name });
  const dflt: Source = { kind: 'default' };
  const portOf = (name: string) => {
    const p = envPort(env, name);
    return p === undefined ? undefined : loopback(p);
  };
  return {
    kind: 'local',
    dataDir,
    state: lookup,
    dynamodb: pick(
      [opts.dynamodbPort === undefined ? undefined : loopback(opts.dynamodbPort), flag('--dynamodb-port')],
      [portOf('OC_DYNAMODB_PORT'), fromEnv('OC_DYNAMODB_PORT')],
      [running?.dynamodb_endpoint, fromState],
      [loopback(LOCAL_DEFAULTS.dynamodbPort), dflt],
    ),
    sqs: pick(
      [portOf('OC_AWS_PORT'), fromEnv('OC_AWS_PORT')],
      [running?.sqs_endpoint, fromState],
      [loopback(LOCAL_DEFAULTS.sqsPort), dflt],
    ),
    s3: pick(
      [portOf('OC_S3_PORT'), fromEnv('OC_S3_PORT')],
      [running?.s3_endpoint, fromState],
      [loopback(LOCAL_DEFAULTS.s3Port), dflt],
    ),
    api: pick(
      [
        envPort(env, 'PORT') === undefined ? undefined : `http://localhost:${envPort(env, 'PORT')}`,
        fromEnv('PORT'),
      ],
      [running?.url, fromState],
      [`http://localhost:${LOCAL_DEFAULTS.apiPort}`, dflt],
    ),
    table: pick(
      [opts.table, flag('--table')],
      [env.OC_TABLE_NAME, fromEnv('OC_TABLE_NAME')],
      [running?.table_name, fromState],
      [TABLE.defaultName, dflt],
    ),
    bucket: pick(
      [env.OC_EVIDENCE_BUCKET, fromEnv('OC_EVIDENCE_BUCKET')],
      [running?.evidence_bucket, fromState],
      [LOCAL_DEFAULTS.bucket, dflt],
    ),
  };
}

/**
 * A local endpoint a command is about to use. A default that stands in for a state file whose
 * stack is gone would silently point at nothing (or at another stack): say so instead.
 */
export function localEndpoint(target: LocalTarget, which: LocalEndpoint): string {
  const setting = target[which];
  if (setting.source.kind === 'default') {
    const lookup = target.state;
    if (lookup.kind === 'stale')
      throw new CliError(
        `the local stack recorded in ${lookup.file} (pid ${lookup.state.pid}, started ${lookup.state.started_at}) is not running. ` +
          `Start it with \`npm start\` (it rewrites the file), or ${MOVE[which]}.`,
      );
    if (lookup.kind === 'invalid')
      throw new CliError(
        `${lookup.file} is not a stack state file (${lookup.problem}). Remove it and restart the stack with \`npm start\`, or ${MOVE[which]}.`,
      );
  }
  return setting.value;
}

const sourceName = (source: Source, variable: string, flagName?: string): string => {
  switch (source.kind) {
    case 'flag':
      return source.name;
    case 'env':
      return source.name;
    case 'state':
      return source.file;
    case 'cloudformation':
      return `the outputs of stack ${source.stack}`;
    case 'default':
      return `the default (set ${variable}${flagName ? ` or ${flagName}` : ''} to change it)`;
  }
};

/** What to do when the local DynamoDB does not answer, depending on where its address came from. */
function unreachableHint(target: LocalTarget): string {
  const { value, source } = target.dynamodb;
  switch (source.kind) {
    case 'flag':
      return `Is a local stack running with OC_DYNAMODB_PORT=${new URL(value).port}? Check ${source.name}.`;
    case 'env':
      return `Is a local stack running with ${source.name}=${new URL(value).port}? Start one with \`${source.name}=${new URL(value).port} npm start\`, or unset ${source.name}.`;
    case 'state':
      return `The stack recorded in ${source.file} (pid ${source.pid}) does not answer; restart it with \`npm start\`.`;
    default:
      return 'Is the local stack running? Start it with `npm start`, or set OC_DYNAMODB_PORT / use --aws.';
  }
}

/** The failure context for a command that uses the table: where it is and how to move it. */
export function tableContext(target: Target): NonNullable<FailureContext['dynamo']> {
  const tableHint = `(table name from ${sourceName(target.table.source, 'OC_TABLE_NAME', '--table')}.)`;
  if (target.kind === 'aws')
    return {
      where: `DynamoDB in ${target.region}`,
      hint: 'Check your network, proxy and AWS_REGION.',
      table: target.table.value,
      tableHint: `Is the stack deployed in ${target.region}? ${tableHint}`,
    };
  return {
    where: `DynamoDB at ${target.dynamodb.value}`,
    hint: unreachableHint(target),
    table: target.table.value,
    tableHint:
      target.table.source.kind === 'default'
        ? `Is this the stack you meant? ${tableHint}`
        : `Check the name ${tableHint}`,
  };
}

export interface OpenTable {
  target: Target;
  doc: DynamoDBDocumentClient;
  table: string;
}

/** A document client on the target's table. The caller destroys `doc` when done. */
export async function openTable(opts: TargetOptions, env: NodeJS.ProcessEnv): Promise<OpenTable> {
  if (!opts.aws) {
    const target = resolveLocalTarget(opts, env);
    const endpoint = localEndpoint(target, 'dynamodb');
    const doc = createDocumentClient({
      endpoint,
      // The emulators accept any region and credentials; the operator's AWS profile is not needed.
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      requestHandler: { connectionTimeout: 5_000 },
    });
    return { target, doc, table: target.table.value };
  }
  const doc = createDocumentClient({});
  let region: string;
  try {
    region = await doc.config.region();
  } catch {
    doc.destroy();
    throw new CliError(
      'no AWS region is configured for --aws. Set AWS_REGION (or a region in your AWS profile), or drop --aws to use the local stack.',
    );
  }
  try {
    const table: Setting<string> = opts.table
      ? { value: opts.table, source: { kind: 'flag', name: '--table' } }
      : await tableFromStacks(region);
    return { target: { kind: 'aws', region, table }, doc, table: table.value };
  } catch (error) {
    doc.destroy();
    throw error;
  }
}

/** The TableName output of the data stack (or, failing that, of the app stack). */
async function tableFromStacks(region: string): Promise<Setting<string>> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const cfn = new CloudFormationClient({ region });
  try {
    for (const stack of [STACKS.data, STACKS.app]) {
      let outputs;
      try {
        outputs = (await cfn.send(new DescribeStacksCommand({ StackName: stack }))).Stacks?.[0]?.Outputs;
      } catch (error) {
        if (/does not exist/.test((error as Error).message)) continue;
        throw new RemoteError(`CloudFormation in ${region}`, error);
      }
      const table = outputs?.find((o) => o.OutputKey === STACKS.outputs.tableName)?.OutputValue;
      if (table) return { value: table, source: { kind: 'cloudformation', stack } };
    }
  } finally {
    cfn.destroy();
  }
  throw new CliError(
    `no deployed OpenClause stack in ${region}: neither ${STACKS.data} nor ${STACKS.app} has a ${STACKS.outputs.tableName} output. ` +
      'Deploy with `npx cdk deploy --all`, set AWS_REGION to where it is, or pass --table.',
  );
}

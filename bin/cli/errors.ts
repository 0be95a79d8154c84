/**
 * The CLI's typed errors and the one mapping from any error to what the operator sees: one line
 * (what failed, why, what to do) and an exit code (2: the command was used wrongly, 1: it failed).
 * Commands throw; they never catch to print.
 */
import { CommanderError } from 'commander';
import { AppError, StorageError } from '../../functions/shared/errors.js';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** The command failed; `message` is the whole line the operator reads (without the `oc: ` prefix). */
export class CliError extends Error {
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The command was used wrongly (a flag, an argument, a variable): nothing was touched. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A call to a remote service (CloudFormation, S3, ...) failed; `service` says which and where. */
export class RemoteError extends Error {
  constructor(
    readonly service: string,
    override readonly cause: unknown,
  ) {
    super(`${service} call failed`);
    this.name = 'RemoteError';
  }
}

/** What the mapper needs to know about the command that failed. */
export interface FailureContext {
  /** What the command was doing, e.g. `verify tenant1's chain`. */
  doing?: string;
  /** Where DynamoDB is, and how the operator would move it (for StorageError). */
  dynamo?: { where: string; hint: string; table: string; tableHint: string };
  /** The command path for usage hints, e.g. `oc verify`. */
  commandPath?: string;
}

export interface Failure {
  line: string;
  exitCode: number;
}

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
};

const CREDENTIAL_ERRORS = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'ExpiredToken',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
]);

/** The error and its causes, outermost first (the SDK's own error is usually the last). */
function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && chain.length < 10) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

const nameOf = (e: unknown) => String((e as { name?: unknown })?.name ?? '');
const codeOf = (e: unknown) => String((e as { code?: unknown })?.code ?? '');
const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Why a remote call failed, and what to do, from the deepest error that says. */
function remoteReason(
  error: unknown,
  where: string,
  hint: string,
  table?: { name: string; hint: string },
): string {
  const chain = causeChain(error);
  const network = chain.find((e) => NETWORK_CODES[codeOf(e)] !== undefined);
  if (network) return `cannot reach ${where} (${NETWORK_CODES[codeOf(network)]}). ${hint}`;
  if (chain.some((e) => nameOf(e) === 'TimeoutError')) return `cannot reach ${where} (timed out). ${hint}`;
  if (table && chain.some((e) => nameOf(e) === 'ResourceNotFoundException'))
    return `table ${table.name} does not exist in ${where}. ${table.hint}`;
  const missing = chain.find((e) => nameOf(e) === 'CredentialsProviderError');
  if (missing)
    return `no AWS credentials for ${where} (${messageOf(missing)}). Set AWS_PROFILE or the AWS_* credential variables, or drop --aws to use the local stack.`;
  const refused = chain.find((e) => CREDENTIAL_ERRORS.has(nameOf(e)));
  if (refused)
    return `${where} refused the AWS credentials (${messageOf(refused)}). Set AWS_PROFILE or the AWS_* credential variables, or drop --aws to use the local stack.`;
  if (chain.some((e) => /region is missing/i.test(messageOf(e))))
    return `no AWS region is configured for ${where}. Set AWS_REGION (or a region in your AWS profile).`;
  const denied = chain.find((e) => /AccessDenied/.test(nameOf(e)));
  if (denied)
    return `${where} denied the request (${messageOf(denied)}). Use credentials allowed to read the OpenClause stack.`;
  const deepest = chain.at(-1);
  return `${where} failed: ${messageOf(deepest)}. Run again with --debug for details.`;
}

function commanderLine(error: CommanderError, commandPath: string | undefined): string {
  // Commander words its errors "error: ..." and may add "(Did you mean ...?)" on a second line.
  const text = error.message
    .replace(/^error: /, '')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  const help = commandPath ? ` See \`${commandPath} --help\`.` : '';
  return `${text.replace(/\.$/, '')}.${help}`;
}

/**
 * The one error-to-message mapping. Commander's own errors (unknown option, missing option, bad
 * argument) are usage errors; storage and remote failures name the endpoint and how to fix it.
 */
export function toFailure(error: unknown, context: FailureContext = {}): Failure {
  const prefix = context.doing ? `cannot ${context.doing}: ` : '';
  if (error instanceof CommanderError)
    return { line: commanderLine(error, context.commandPath), exitCode: EXIT.usage };
  if (error instanceof UsageError) {
    const help = context.commandPath ? ` See \`${context.commandPath} --help\`.` : '';
    return { line: `${error.message}${help}`, exitCode: EXIT.usage };
  }
  if (error instanceof CliError) return { line: error.message, exitCode: EXIT.failure };
  if (error instanceof RemoteError)
    return {
      line: remoteReason(error.cause, error.service, 'Check your network and AWS_REGION.'),
      exitCode: EXIT.failure,
    };
  if (error instanceof AppError) {
    // Domain refusals (not found, already decided, ...): the store changed nothing.
    const advice =
      error.status === 404
        ? ' Check the ids and --tenant.'
        : error.status === 409
          ? ' Nothing was changed.'
          : '';
    return { line: `${prefix}${error.message} (${error.code}).${advice}`, exitCode: EXIT.failure };
  }
  // A store's StorageError, or an SDK error (it carries $metadata) a store let through unwrapped.
  const fromStorage =
    error instanceof StorageError || causeChain(error).some((e) => (e as { $metadata?: unknown }).$metadata);
  if (fromStorage && context.dynamo) {
    const { where, hint, table, tableHint } = context.dynamo;
    return {
      line: remoteReason(error, where, hint, { name: table, hint: tableHint }),
      exitCode: EXIT.failure,
    };
  }
  return {
    line: `${prefix}${messageOf(error)}. This is unexpected: run again with --debug and report the stack trace.`,
    exitCode: EXIT.failure,
  };
}

/** The stack trace of the error and of each of its causes (for --debug). */
export function debugTrace(error: unknown): string {
  return causeChain(error)
    .map(
      (e, i) => `${i === 0 ? '' : 'caused by: '}${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    )
    .join('\n');
}

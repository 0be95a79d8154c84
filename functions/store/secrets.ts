/**
 * Operators' credentials by the identifier CDK hands a function: an SSM SecureString parameter's
 * ARN (`arn:<partition>:ssm:<region>:<account>:parameter/<path>`, the default: no monthly charge)
 * or a Secrets Manager secret's ARN or name (`-c secretStore=secretsmanager`, $0.40 a month each).
 * SSM is read with one SigV4-signed `GetParameter` (`mcp-state-keys.ts`'s `ssmCall`: no
 * `@aws-sdk/client-ssm` in the bundles), Secrets Manager through Powertools Parameters. Both cache
 * in module scope, so one Lambda instance reads a credential at its cold start and then at most
 * once every `SECRET_MAX_AGE_SEC`, however many invocations it serves.
 */
import { ParameterNotFoundError } from '@aws-lambda-powertools/parameters';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { fromEnv } from '@aws-sdk/credential-provider-env';
import { ssmCall, SsmError, type SsmAccess } from './mcp-state-keys.js';

/** How long a fetched value is served from the cache (a re-put secret is picked up within this). */
export const SECRET_MAX_AGE_SEC = 300;

/** A secret that cannot be used. The message names the secret and the reason, never the value. */
export class SecretUnavailableError extends Error {
  constructor(
    readonly secretId: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`secret ${secretId} ${reason}`, options);
    this.name = 'SecretUnavailableError';
  }
}

/** The parameter ARN's region and name (`/path`); undefined for anything that is not one. */
export function ssmParameterOf(secretId: string): { region: string; name: string } | undefined {
  const m = /^arn:[a-z-]+:ssm:([a-z0-9-]+):\d{12}:parameter(\/[A-Za-z0-9_./-]+)$/.exec(secretId);
  return m ? { region: m[1]!, name: m[2]! } : undefined;
}

export interface SecretReaderOptions {
  /** How SSM is reached: default the function's own credentials and the parameter's region. */
  ssm?: Partial<SsmAccess>;
  now?: () => number;
}

/**
 * A reader of secret ids (`connectors/config.ts`'s `SecretReader`): an SSM parameter ARN is read
 * from SSM, anything else from Secrets Manager. Errors name the secret, never its value; a failed
 * read is not cached (fail closed now, try again on the next call).
 */
export function secretReader(options: SecretReaderOptions = {}): (secretId: string) => Promise<string> {
  const now = options.now ?? Date.now;
  const cache = new Map<string, { at: number; value: Promise<string> }>();
  // The function's role credentials, which Lambda puts in its environment (all the SDK clients of a
  // bundle read, shared/lambda-credentials.ts). Only CDK hands out parameter ARNs: only Lambda reads one.
  let credentials: SsmAccess['credentials'] | undefined = options.ssm?.credentials;
  const readParameter = async (secretId: string, parameter: { region: string; name: string }) => {
    credentials ??= fromEnv();
    const access: SsmAccess = {
      region: options.ssm?.region ?? (() => Promise.resolve(parameter.region)),
      credentials,
      // As the SDK's clients do: a service endpoint from the environment (AWS_ENDPOINT_URL_SSM).
      ...((options.ssm?.endpoint ?? process.env.AWS_ENDPOINT_URL_SSM)
        ? { endpoint: options.ssm?.endpoint ?? process.env.AWS_ENDPOINT_URL_SSM }
        : {}),
    };
    let out: { Parameter?: { Value?: unknown } };
    try {
      out = await ssmCall(access, 'GetParameter', { Name: parameter.name, WithDecryption: true });
    } catch (error) {
      if (error instanceof SsmError && error.type === 'ParameterNotFound')
        throw new SecretUnavailableError(secretId, 'was not found or has no value', { cause: error });
      // SSM's error type and message (AccessDeniedException: ...) cannot hold the value, which never arrived.
      const detail =
        error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : 'unknown error';
      throw new SecretUnavailableError(secretId, `could not be read (${detail})`, { cause: error });
    }
    const value = out.Parameter?.Value;
    if (typeof value !== 'string' || value === '')
      throw new SecretUnavailableError(secretId, 'was not found or has no value');
    return value;
  };
  return (secretId) => {
    const parameter = ssmParameterOf(secretId);
    if (!parameter) return readSecretsManager(secretId);
    const hit = cache.get(secretId);
    if (hit && now() - hit.at < SECRET_MAX_AGE_SEC * 1000) return hit.value;
    const value = readParameter(secretId, parameter);
    cache.set(secretId, { at: now(), value });
    value.catch(() => {
      if (cache.get(secretId)?.value === value) cache.delete(secretId);
    });
    return value;
  };
}

/** The credential's current value; the reader every handler uses (one cache per Lambda instance). */
export const readSecretString = secretReader();

/** The secret's current `SecretString` from Secrets Manager. */
async function readSecretsManager(secretId: string): Promise<string> {
  let value: string | Uint8Array | undefined;
  try {
    value = await getSecret(secretId, { maxAge: SECRET_MAX_AGE_SEC, throwOnMissing: true });
  } catch (error) {
    if (error instanceof ParameterNotFoundError) {
      throw new SecretUnavailableError(secretId, 'was not found or has no value', { cause: error });
    }
    // Powertools wraps the SDK error. The SDK's name and message (AccessDeniedException: User ...
    // is not authorized ...) help the operator and cannot hold the value, which never arrived.
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const detail = cause instanceof Error ? `${cause.name}: ${cause.message}`.slice(0, 300) : 'unknown error';
    throw new SecretUnavailableError(secretId, `could not be read (${detail})`, { cause: error });
  }
  if (typeof value !== 'string') {
    throw new SecretUnavailableError(secretId, 'holds binary data; expected a JSON string');
  }
  return value;
}

/**
 * Secrets Manager through Powertools Parameters. The cache lives in module scope, so one Lambda
 * instance calls GetSecretValue for a secret at its cold start and then at most once every
 * `SECRET_MAX_AGE_SEC`, however many invocations it serves.
 */
import { ParameterNotFoundError } from '@aws-lambda-powertools/parameters';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';

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

/** The secret's current `SecretString`; a `SecretReader` (see `connectors/config.ts`). */
export async function readSecretString(secretId: string): Promise<string> {
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

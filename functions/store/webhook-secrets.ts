/**
 * Webhook signing secrets by `secret_ref` (SPEC §5). Locally from `OC_WEBHOOK_SECRETS`
 * (`ref=whsec_...,ref2=whsec_...`); in AWS from the credential `<prefix><ref>` (an SSM parameter
 * ARN prefix by default, a Secrets Manager name prefix with `-c secretStore=secretsmanager`; read
 * and cached by `store/secrets.ts`), whose value is the `whsec_` string itself or JSON
 * `{"secret": "<base64>"}` (what CDK generates). A secret that is missing or not a `whsec_`
 * secret is unresolvable: the delivery fails for good, it is never sent unsigned.
 */
import { isWebhookSecret } from '../core/notifications.js';
import { readSecretString, SecretUnavailableError } from './secrets.js';

export interface WebhookSecrets {
  /** The `whsec_` secret; throws SecretUnavailableError naming the ref (never the value). */
  resolve(ref: string): Promise<string>;
}

/** `ref=secret,...`: split on `,`, each on its first `=`, both sides trimmed and non-empty. */
export function parseSecretList(value: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of value.split(',')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const ref = part.slice(0, at).trim();
    const secret = part.slice(at + 1).trim();
    if (ref && secret) out.set(ref, secret);
  }
  return out;
}

function checked(ref: string, secret: string | undefined): string {
  if (secret === undefined)
    throw new SecretUnavailableError(`webhook secret_ref ${ref}`, 'is not configured');
  if (!isWebhookSecret(secret))
    throw new SecretUnavailableError(
      `webhook secret_ref ${ref}`,
      'is not a whsec_<base64> secret of 16 bytes or more',
    );
  return secret;
}

export function envWebhookSecrets(list: string): WebhookSecrets {
  const secrets = parseSecretList(list);
  return { resolve: async (ref) => checked(ref, secrets.get(ref)) };
}

export function secretsManagerWebhookSecrets(
  prefix: string,
  read: (secretId: string) => Promise<string> = readSecretString,
): WebhookSecrets {
  return {
    async resolve(ref) {
      if (!/^[A-Za-z0-9/_+=.@-]{1,128}$/.test(ref))
        throw new SecretUnavailableError(`webhook secret_ref ${ref}`, 'is not a valid secret name');
      const raw = (await read(`${prefix}${ref}`)).trim();
      if (raw.startsWith('{')) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch {
          throw new SecretUnavailableError(`webhook secret_ref ${ref}`, 'holds JSON that does not parse');
        }
        const value = (parsed as { secret?: unknown }).secret;
        return checked(
          ref,
          typeof value === 'string' ? (value.startsWith('whsec_') ? value : `whsec_${value}`) : undefined,
        );
      }
      return checked(ref, raw);
    },
  };
}

/**
 * What the Lambda bundles take for `@aws-sdk/credential-provider-node` (an esbuild alias,
 * lib/function.ts): in Lambda the function's role credentials are in its environment, which is
 * the default chain's first link and the only one Lambda uses. The rest of the chain (profiles,
 * SSO, login, web identity, the container and instance metadata endpoints, with the STS and SSO
 * clients they carry) is about 90 KB of every bundle that a Lambda never runs, parsed at every
 * cold start. Local runs and tests do not bundle: they keep the whole chain.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';
import type { AwsCredentialIdentity } from '@smithy/types';

type FromEnvInit = Parameters<typeof fromEnv>[0];

export const defaultProvider = (init: FromEnvInit = {}) => fromEnv(init);

/** As the package defines them (its other exports). */
export const credentialsWillNeedRefresh = (credentials?: AwsCredentialIdentity) =>
  credentials?.expiration !== undefined;
export const credentialsTreatedAsExpired = (credentials?: AwsCredentialIdentity) =>
  credentials?.expiration !== undefined && credentials.expiration.getTime() - Date.now() < 300_000;

/** Runtime configuration from the environment, validated once; a bad value fails the cold start. */
import * as z from 'zod';
import { DEV_JWT, ENV, SLACK, TABLE } from './constants.js';

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** How approver JWTs are verified: `dev` (HS256, local only), `oidc` (issuer + JWKS), `none` (all refused). */
export const JWT_MODES = ['dev', 'oidc', 'none'] as const;
export type JwtMode = (typeof JWT_MODES)[number];

/** Where an OIDC issuer's keys are when `OC_JWT_JWKS_URL` is not set (Cognito's layout). */
export function defaultJwksUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`;
}

/** https, or http to a loopback host (a local test issuer). */
function isAcceptableKeyUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/**
 * A comma-separated list of OAuth issuers, each `<issuer>` or `<issuer>|<jwks_uri>` (default
 * `<issuer>/.well-known/jwks.json`), https (http only for a loopback host).
 */
const oauthIssuerList = (name: string) =>
  z
    .string()
    .optional()
    .transform((s, ctx) => {
      const issuers = (s ?? '')
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean)
        .map((entry) => {
          const [issuer = '', jwks] = entry.split('|').map((p) => p.trim());
          return { issuer, jwksUrl: jwks || defaultJwksUrl(issuer) };
        });
      for (const { issuer, jwksUrl } of issuers)
        if (!isAcceptableKeyUrl(issuer) || !isAcceptableKeyUrl(jwksUrl))
          ctx.addIssue({
            code: 'custom',
            message: `${name}: issuer and JWKS URL must be https (http only for a loopback host): ${issuer}`,
          });
      return issuers;
    });

const ConfigSchema = z
  .object({
    tableName: z.string().min(1).default(TABLE.defaultName),
    policyDir: z.string().min(1).optional(),
    policyValidatedAtBuild: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    policyShadowDir: z.string().min(1).optional(),
    policyShadow: z.enum(['on', 'off']).default('on'),
    connectorsMode: z.enum(['mock', 'live']).default('live'),
    connectorFunctions: z
      .string()
      .optional()
      .transform((s, ctx) => {
        if (!s) return {} as Record<string, string>;
        try {
          return z.record(z.string(), z.string()).parse(JSON.parse(s));
        } catch {
          ctx.addIssue({
            code: 'custom',
            message: `${ENV.connectorFunctions} must be a JSON object of tool -> function name`,
          });
          return z.NEVER;
        }
      }),
    publicBaseUrl: z.url().default('http://localhost:3000'),
    rateLimitPerSec: positiveInt(100),
    rateLimitBurst: positiveInt(200),
    connectorTimeoutMs: positiveInt(10_000),
    dynamodbEndpoint: z.url().optional(),
    jwtMode: z.enum(JWT_MODES).default('none'),
    devJwtSecret: z.string().min(1).default(DEV_JWT.defaultSecret),
    jwtIssuer: z.string().min(1).optional(),
    jwtAudience: z.string().min(1).optional(),
    jwtJwksUrl: z.url().optional(),
    jwtTenantClaim: z.string().min(1).default('tenant_id'),
    consoleDir: z.string().min(1).optional(),
    consoleClientId: z.string().min(1).optional(),
    consoleScope: z.string().min(1).default('openid email profile'),
    consoleConnectOrigins: z
      .string()
      .optional()
      .transform((s, ctx) => {
        const origins = (s ?? '')
          .split(',')
          .map((o) => o.trim())
          .filter(Boolean);
        for (const o of origins)
          if (!isAcceptableKeyUrl(o) || new URL(o).origin !== o)
            ctx.addIssue({
              code: 'custom',
              message: `${ENV.consoleConnectOrigins}: not an https origin: ${o}`,
            });
        return origins;
      }),
    slackSigningSecret: z.string().min(1).default(SLACK.defaultSigningSecret),
    slackSigningSecretArn: z.string().min(1).optional(),
    slackApiUrl: z.url().optional(),
    mcpStateKeyParameter: z.string().min(1).optional(),
    mcpStateKeyFile: z.string().min(1).optional(),
    mcpOAuthIssuers: oauthIssuerList(ENV.mcpOAuthIssuers),
    mcpOAuthCognitoIssuers: oauthIssuerList(ENV.mcpOAuthCognitoIssuers),
    mcpOAuthScope: z
      .string()
      .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'one scope token (RFC 6749 §3.3)')
      .default('mcp:tools'),
  })
  .superRefine((c, ctx) => {
    // One profile per issuer: a Cognito pool listed as an RFC 9068 issuer too would be ambiguous.
    const rfc9068 = new Set(c.mcpOAuthIssuers.map((i) => i.issuer));
    for (const { issuer } of c.mcpOAuthCognitoIssuers)
      if (rfc9068.has(issuer))
        ctx.addIssue({
          code: 'custom',
          path: ['mcpOAuthCognitoIssuers'],
          message: `${issuer} is in both ${ENV.mcpOAuthIssuers} and ${ENV.mcpOAuthCognitoIssuers}: list it once`,
        });
    if (c.jwtMode !== 'oidc') return;
    if (!c.jwtIssuer)
      ctx.addIssue({
        code: 'custom',
        path: ['jwtIssuer'],
        message: `${ENV.jwtIssuer} is required when ${ENV.jwtMode}=oidc`,
      });
    if (!c.jwtAudience)
      ctx.addIssue({
        code: 'custom',
        path: ['jwtAudience'],
        message: `${ENV.jwtAudience} is required when ${ENV.jwtMode}=oidc`,
      });
    const jwks = c.jwtJwksUrl ?? (c.jwtIssuer ? defaultJwksUrl(c.jwtIssuer) : undefined);
    if (jwks !== undefined && !isAcceptableKeyUrl(jwks))
      ctx.addIssue({
        code: 'custom',
        path: ['jwtJwksUrl'],
        message: `the JWKS URL (${ENV.jwtJwksUrl}, default <${ENV.jwtIssuer}>/.well-known/jwks.json) must be https (http only for a loopback host): ${jwks}`,
      });
  });
export type Config = z.infer<typeof ConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = ConfigSchema.safeParse({
    tableName: env[ENV.tableName] || undefined,
    policyDir: env[ENV.policyDir] || undefined,
    policyValidatedAtBuild: env[ENV.policyValidatedAtBuild] || undefined,
    policyShadowDir: env[ENV.policyShadowDir] || undefined,
    policyShadow: env[ENV.policyShadow] || undefined,
    connectorsMode: env[ENV.connectorsMode] || undefined,
    connectorFunctions: env[ENV.connectorFunctions] || undefined,
    publicBaseUrl: env[ENV.publicBaseUrl] || undefined,
    rateLimitPerSec: env[ENV.rateLimitPerSec] || undefined,
    rateLimitBurst: env[ENV.rateLimitBurst] || undefined,
    connectorTimeoutMs: env[ENV.connectorTimeoutMs] || undefined,
    dynamodbEndpoint: env[ENV.dynamodbEndpoint] || undefined,
    jwtMode: env[ENV.jwtMode] || undefined,
    devJwtSecret: env[ENV.devJwtSecret] || undefined,
    jwtIssuer: env[ENV.jwtIssuer] || undefined,
    jwtAudience: env[ENV.jwtAudience] || undefined,
    jwtJwksUrl: env[ENV.jwtJwksUrl] || undefined,
    jwtTenantClaim: env[ENV.jwtTenantClaim] || undefined,
    consoleDir: env[ENV.consoleDir] || undefined,
    consoleClientId: env[ENV.consoleClientId] || undefined,
    consoleScope: env[ENV.consoleScope] || undefined,
    consoleConnectOrigins: env[ENV.consoleConnectOrigins] || undefined,
    slackSigningSecret: env[ENV.slackSigningSecret] || undefined,
    slackSigningSecretArn: env[ENV.slackSigningSecretArn] || undefined,
    slackApiUrl: env[ENV.slackApiUrl] || undefined,
    mcpStateKeyParameter: env[ENV.mcpStateKeyParameter] || undefined,
    mcpStateKeyFile: env[ENV.mcpStateKeyFile] || undefined,
    mcpOAuthIssuers: env[ENV.mcpOAuthIssuers] || undefined,
    mcpOAuthCognitoIssuers: env[ENV.mcpOAuthCognitoIssuers] || undefined,
    mcpOAuthScope: env[ENV.mcpOAuthScope] || undefined,
  });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  // A shared HS256 secret (with a published default) must never authenticate approvers in AWS.
  if (parsed.data.jwtMode === 'dev' && env.AWS_LAMBDA_FUNCTION_NAME)
    throw new Error(
      `invalid configuration: jwtMode: ${ENV.jwtMode}=dev is for the local stack only; use oidc or none`,
    );
  return parsed.data;
}

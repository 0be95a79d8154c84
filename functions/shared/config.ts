/** Runtime configuration from the environment, validated once; a bad value fails the cold start. */
import { z } from 'zod';
import { ENV, TABLE } from './constants.js';

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const ConfigSchema = z.object({
  tableName: z.string().min(1).default(TABLE.defaultName),
  policyDir: z.string().min(1).optional(),
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
});
export type Config = z.infer<typeof ConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = ConfigSchema.safeParse({
    tableName: env[ENV.tableName] || undefined,
    policyDir: env[ENV.policyDir] || undefined,
    connectorsMode: env[ENV.connectorsMode] || undefined,
    connectorFunctions: env[ENV.connectorFunctions] || undefined,
    publicBaseUrl: env[ENV.publicBaseUrl] || undefined,
    rateLimitPerSec: env[ENV.rateLimitPerSec] || undefined,
    rateLimitBurst: env[ENV.rateLimitBurst] || undefined,
    connectorTimeoutMs: env[ENV.connectorTimeoutMs] || undefined,
    dynamodbEndpoint: env[ENV.dynamodbEndpoint] || undefined,
  });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  return parsed.data;
}

/** Configuration of the notification path (SPEC §5), validated once; a bad value fails the cold start. */
import * as z from 'zod';
import { ENV, NOTIFICATIONS } from './constants.js';

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const NotifySchema = z.object({
  queueUrl: z.string().min(1).optional(),
  dlqUrl: z.string().min(1).optional(),
  sqsEndpoint: z.url().optional(),
  eventSource: z.string().min(1).max(512).default(NOTIFICATIONS.defaultEventSource),
  webhookSecrets: z.string().optional(),
  webhookSecretPrefix: z.string().max(256).default('oc/webhooks/'),
  allowPrivateWebhooks: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  webhookTimeoutMs: positiveInt(10_000),
  retryBaseSec: positiveInt(2),
  retryCapSec: positiveInt(900),
  summarizer: z.string().min(1).optional(),
});
export type NotifyConfig = z.infer<typeof NotifySchema>;

export function loadNotifyConfig(env: NodeJS.ProcessEnv = process.env): NotifyConfig {
  const parsed = NotifySchema.safeParse({
    queueUrl: env[ENV.notifyQueueUrl] || undefined,
    dlqUrl: env[ENV.notifyDlqUrl] || undefined,
    sqsEndpoint: env[ENV.sqsEndpoint] || undefined,
    eventSource: env[ENV.eventSource] || undefined,
    webhookSecrets: env[ENV.webhookSecrets] || undefined,
    webhookSecretPrefix: env[ENV.webhookSecretPrefix] || undefined,
    allowPrivateWebhooks: env[ENV.allowPrivateWebhooks] || undefined,
    webhookTimeoutMs: env[ENV.webhookTimeoutMs] || undefined,
    retryBaseSec: env[ENV.webhookRetryBaseSec] || undefined,
    retryCapSec: env[ENV.webhookRetryCapSec] || undefined,
    summarizer: env[ENV.summarizer] || undefined,
  });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid notification configuration: ${problems}`);
  }
  // Private addresses are for a laptop: a Lambda that may reach them could reach the VPC and metadata.
  if (parsed.data.allowPrivateWebhooks && env.AWS_LAMBDA_FUNCTION_NAME)
    throw new Error(
      `invalid notification configuration: ${ENV.allowPrivateWebhooks}=true is for the local stack only`,
    );
  return parsed.data;
}

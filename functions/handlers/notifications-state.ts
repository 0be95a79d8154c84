/**
 * What the notification handlers share (outbox, delivery worker, deliveries route): the delivery
 * records, the queue, the webhook secrets, the senders by route kind and the summarizer, built once
 * per container from the notification configuration. The local host and tests build their own.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { RouteSender } from '../core/notifications.js';
import type { Summarizer } from '../core/summary.js';
import { loadNotifyConfig, type NotifyConfig } from '../shared/notify-config.js';
import { logger, metrics } from '../shared/powertools.js';
import { DeliveryStore } from '../store/deliveries.js';
import { NotifyQueue } from '../store/notify-queue.js';
import type { PostOptions } from '../store/webhook-http.js';
import {
  envWebhookSecrets,
  secretsManagerWebhookSecrets,
  type WebhookSecrets,
} from '../store/webhook-secrets.js';
import { WebhookSender } from '../store/webhook-sender.js';
import { SlackSender } from '../store/slack-sender.js';
import type { AppState } from './app-state.js';
import { defaultPolicyDir, loadTenants } from '../store/policy-files.js';
import type { TenantsFile } from '../core/policy-data.js';
import { connectorsFor } from './connectors-state.js';

export interface NotifyState {
  config: NotifyConfig;
  deliveries: DeliveryStore;
  /** Undefined when no queue is configured (the deliveries route needs none). */
  queue?: NotifyQueue;
  secrets: WebhookSecrets;
  /** Senders by route kind; a kind without one is not enqueued. */
  senders: Map<string, RouteSender>;
  /** The `OC_SUMMARIZER` extension, loaded on first use (undefined: the deterministic summary). */
  summarizer(): Promise<Summarizer | undefined>;
  /** The jitter source of the backoff. */
  random: () => number;
}

export interface NotifyOverrides {
  sqs?: SQSClient;
  /** The delivery records' client (tests inject faults here); default the app's. */
  doc?: DynamoDBDocumentClient;
  secrets?: WebhookSecrets;
  resolve?: PostOptions['resolve'];
  random?: () => number;
  senders?: RouteSender[];
  summarizer?: Summarizer;
}

export function createNotifyState(
  app: AppState,
  config: NotifyConfig,
  overrides: NotifyOverrides = {},
): NotifyState {
  const sqs =
    overrides.sqs ??
    (config.queueUrl ? new SQSClient(config.sqsEndpoint ? { endpoint: config.sqsEndpoint } : {}) : undefined);
  const secrets =
    overrides.secrets ??
    (config.webhookSecrets !== undefined || !process.env.AWS_LAMBDA_FUNCTION_NAME
      ? envWebhookSecrets(config.webhookSecrets ?? '')
      : secretsManagerWebhookSecrets(config.webhookSecretPrefix));
  const senders = new Map<string, RouteSender>();
  senders.set(
    'webhook',
    new WebhookSender({
      secrets,
      eventSource: config.eventSource,
      allowPrivate: config.allowPrivateWebhooks,
      timeoutMs: config.webhookTimeoutMs,
      ...(overrides.resolve ? { resolve: overrides.resolve } : {}),
      onSecretUnavailable: (ref, error) => {
        logger.error('webhook secret unavailable: delivery failed for good, nothing sent', {
          secretRef: ref,
          error: error.message,
        });
        metrics.addMetric('webhook_secret_unavailable', MetricUnit.Count, 1);
      },
    }),
  );
  const deliveries = new DeliveryStore(overrides.doc ?? app.doc, app.config.tableName);
  let tenants: TenantsFile | undefined;
  senders.set(
    'slack',
    new SlackSender({
      connectors: () => connectorsFor(app),
      deliveries,
      timeoutMs: config.webhookTimeoutMs,
      // The tenant's policy data (the bundle's policy/, read once, on the first Slack message):
      // which workflow buttons a pending request's message offers.
      // Unreadable policy data offers nothing more: Approve and Deny are still posted.
      tenant: (id) => {
        try {
          tenants ??= loadTenants(app.config.policyDir ?? defaultPolicyDir());
        } catch (error) {
          logger.warn('policy data unreadable: Slack messages offer no workflow buttons', {
            error: (error as Error).message,
          });
          return undefined;
        }
        return Object.hasOwn(tenants, id) ? tenants[id] : undefined;
      },
    }),
  );
  for (const sender of overrides.senders ?? []) senders.set(sender.kind, sender);
  let summarizer: Promise<Summarizer | undefined> | undefined;
  return {
    config,
    deliveries,
    ...(sqs && config.queueUrl ? { queue: new NotifyQueue(sqs, config.queueUrl, config.dlqUrl) } : {}),
    secrets,
    senders,
    summarizer: () =>
      (summarizer ??= overrides.summarizer
        ? Promise.resolve(overrides.summarizer)
        : loadSummarizer(config.summarizer)),
    random: overrides.random ?? Math.random,
  };
}

/** The extension module's default export (or `summarizer` export), if it is a Summarizer. */
async function loadSummarizer(specifier: string | undefined): Promise<Summarizer | undefined> {
  if (!specifier) return undefined;
  try {
    const mod = (await import(specifier)) as { default?: unknown; summarizer?: unknown };
    const candidate = (mod.default ?? mod.summarizer) as Summarizer | undefined;
    if (candidate && typeof candidate.summarize === 'function') return candidate;
    logger.error('OC_SUMMARIZER does not export a summarizer: using the deterministic summary', {
      specifier,
    });
  } catch (error) {
    logger.error('OC_SUMMARIZER could not be loaded: using the deterministic summary', {
      specifier,
      error: (error as Error).message,
    });
  }
  return undefined;
}

const built = new WeakMap<AppState, NotifyState>();

/** The container's notification state, from the environment. */
export function notifyState(app: AppState): NotifyState {
  let state = built.get(app);
  if (!state) {
    state = createNotifyState(app, loadNotifyConfig());
    built.set(app, state);
  }
  return state;
}

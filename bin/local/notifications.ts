/**
 * The local notification path: the queue and its DLQ on fauxqs (created as CDK declares them:
 * redrive policy, visibility), the delivery worker on a queue poller, and, on start, every pending
 * delivery re-enqueued from its DynamoDB record (fauxqs keeps messages in memory only; the records
 * are the durable truth, so a restart of `npm start` loses no notification).
 */
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import type { AppState } from '../../functions/handlers/app-state.js';
import { deliver } from '../../functions/handlers/deliver-notifications.js';
import {
  createNotifyState,
  type NotifyOverrides,
  type NotifyState,
} from '../../functions/handlers/notifications-state.js';
import { requeuePending } from '../../functions/handlers/outbox.js';
import type { DeliveryMessage, RouteSender } from '../../functions/core/notifications.js';
import { NOTIFICATIONS } from '../../functions/shared/constants.js';
import type { NotifyConfig } from '../../functions/shared/notify-config.js';
import { logger } from '../../functions/shared/powertools.js';
import { FailureLog, type Clock } from './backoff.js';
import { QueuePoller } from './queue-poller.js';

export interface LocalNotificationsOptions {
  /** Notification settings; queue URLs are filled in here. */
  config: NotifyConfig;
  sqsEndpoint: string;
  /** Queue name prefix (the table name, so test stacks do not share queues). */
  queuePrefix: string;
  overrides?: NotifyOverrides;
  /** @default 4 */
  workers?: number;
  log?: (line: string) => void;
  /** How often a destination that keeps failing is summarized; @default 300 000 (5 min). */
  failureSummaryEveryMs?: number;
  clock?: Clock;
}

/** Where a delivery goes, as the log names it. */
const destination = (route: DeliveryMessage['route']): string =>
  route.kind === 'webhook' ? route.url : `slack ${route.channel}`;

/**
 * The senders, each outcome also told to a rate-limited log per destination: an unreachable
 * receiver (the demo webhook with nobody listening) is said once, then summarized every few
 * minutes, and its recovery said, instead of one WARN line per attempt of every delivery.
 */
function observedSenders(
  senders: Map<string, RouteSender>,
  failuresOf: (destination: string) => FailureLog,
): void {
  for (const [kind, sender] of senders)
    senders.set(kind, {
      kind: sender.kind,
      async send(delivery, ctx) {
        const outcome = await sender.send(delivery, ctx);
        const failures = failuresOf(destination(delivery.route));
        if (outcome.kind === 'delivered') failures.success();
        else if (outcome.kind === 'retry') failures.failure(`${outcome.error} (retried with backoff)`);
        return outcome;
      },
    });
}

export interface LocalNotifications {
  queueUrl: string;
  dlqUrl: string;
  sqs: SQSClient;
  /** The notification state of an app state (one per table incarnation). */
  stateFor(app: AppState): NotifyState;
  /** Re-enqueues pending deliveries (done once by start()). */
  requeue(app: AppState): Promise<number>;
  start(
    app: () => AppState,
    /** Runs one invocation in its own scope (its logs name its function), with its context. */
    timed: <T>(name: string, run: (context: Context) => Promise<T>) => Promise<T>,
  ): void;
  stop(): Promise<void>;
  readonly poller?: QueuePoller;
}

/** The local queues' names: the table's name first, so that stacks side by side (and test stacks) never share them. */
export function localQueueNames(tableName: string): { queue: string; dlq: string } {
  const name = (base: string) => `${tableName}-${base}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 80);
  return { queue: name(NOTIFICATIONS.queueName), dlq: name(NOTIFICATIONS.dlqName) };
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  const arn = out.Attributes?.QueueArn;
  if (!arn) throw new Error(`queue ${url} has no ARN`);
  return arn;
}

export async function setUpLocalNotifications(
  options: LocalNotificationsOptions,
): Promise<LocalNotifications> {
  // One client for the handlers and the poller (so that a counting or faulty one sees every request).
  const sqs = options.overrides?.sqs ?? new SQSClient({ endpoint: options.sqsEndpoint });
  const names = localQueueNames(options.queuePrefix);
  const dlq = await sqs.send(
    new CreateQueueCommand({
      QueueName: names.dlq,
      Attributes: { MessageRetentionPeriod: String(14 * 86_400) },
    }),
  );
  const dlqUrl = dlq.QueueUrl!;
  const leaseSec = Math.ceil(options.config.webhookTimeoutMs / 1000) + 5;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: names.queue,
      Attributes: {
        VisibilityTimeout: String(leaseSec * 2),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: await queueArn(sqs, dlqUrl),
          maxReceiveCount: NOTIFICATIONS.maxReceiveCount,
        }),
      },
    }),
  );
  const queueUrl = queue.QueueUrl!;
  const config: NotifyConfig = { ...options.config, queueUrl, dlqUrl };
  const log = options.log ?? ((line: string) => console.error(line));
  const failureLogs = new Map<string, FailureLog>();
  const failuresOf = (to: string) => {
    let failures = failureLogs.get(to);
    if (!failures) {
      failures = new FailureLog({
        what: `[oc] notifications to ${to}`,
        log,
        summaryEveryMs: options.failureSummaryEveryMs ?? 300_000,
        ...(options.clock ? { clock: options.clock } : {}),
      });
      failureLogs.set(to, failures);
    }
    return failures;
  };
  const states = new WeakMap<AppState, NotifyState>();
  const stateFor = (app: AppState) => {
    let s = states.get(app);
    if (!s) {
      s = createNotifyState(app, config, { sqs, ...options.overrides });
      observedSenders(s.senders, failuresOf);
      states.set(app, s);
    }
    return s;
  };
  let poller: QueuePoller | undefined;
  return {
    queueUrl,
    dlqUrl,
    sqs,
    stateFor,
    requeue: (app) => requeuePending(app, stateFor(app)),
    start(app, timed) {
      const run = deliver(app, stateFor);
      const handler = NOTIFICATIONS.deliveryHandler;
      poller = new QueuePoller({
        sqs,
        queueUrl,
        queueArn: queueUrl,
        batchSize: NOTIFICATIONS.batchSize,
        workers: options.workers,
        handler: (event) =>
          timed(handler, (context) => {
            // At the default level (WARN) the retries are the rate-limited lines above; a delivery
            // that fails for good still logs its ERROR. INFO or DEBUG shows every attempt.
            if (logger.getLevelName() === 'WARN') logger.setLogLevel('ERROR');
            return run(event, context);
          }),
        log: options.log,
      });
      poller.start();
    },
    async stop() {
      await poller?.stop();
      sqs.destroy();
    },
    get poller() {
      return poller;
    },
  };
}

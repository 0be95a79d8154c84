import path from 'node:path';
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV, NOTIFICATIONS, STREAM_CONSUMERS } from '../functions/shared/constants.js';
import { loadTenants } from '../functions/store/policy-files.js';
import { Credential, parameterPrefixArn, secretStoreOf } from './credentials.js';
import { OcFunction, REPO_ROOT } from './function.js';
import { gatewayMetric } from './observability.js';
import { StreamConsumer } from './stream-consumer.js';

export interface NotificationsProps {
  readonly table: ITable;
  /** Base URL of the approval links in the events (the API's, unless a console domain is given). */
  readonly publicBaseUrl: string;
  /**
   * Secrets Manager name prefix of the webhook secrets, `<prefix><secret_ref>`, with
   * `-c secretStore=secretsmanager`; in SSM (the default) they are `/openclause/<stack>/webhooks/<secret_ref>`.
   * @default 'oc/webhooks/'
   */
  readonly secretPrefix?: string;
  /**
   * Retention of the log groups.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * Approval notifications (SPEC §5, ARCHITECTURE "AWS shape"): the outbox on the table's stream
 * (its second reader beside the sequencer: two Lambda readers per shard is AWS's limit without
 * throttling, so a third need must reuse one of them), the notification queue with its DLQ (SSE,
 * redrive policy), the delivery Lambda on it (partial batch responses), one credential per
 * `secret_ref` of the policy data (lib/credentials.ts), and an alarm on deliveries that failed for good or were
 * dead-lettered. Private webhook addresses are never allowed here (`OC_ALLOW_PRIVATE_WEBHOOKS`
 * is not set, and the runtime refuses it in Lambda).
 */
export class Notifications extends Construct {
  readonly outbox: OcFunction;
  readonly delivery: OcFunction;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  /** The outbox's stream on-failure destination. */
  readonly outboxDeadLetterQueue: Queue;
  private readonly environment: Record<string, string>;
  readonly secrets: Credential[] = [];
  readonly failureAlarm: Alarm;

  constructor(scope: Construct, id: string, props: NotificationsProps) {
    super(scope, id);
    const ssm = secretStoreOf(this) === 'ssm';
    const secretPrefix = props.secretPrefix ?? 'oc/webhooks/';
    // What the delivery worker prepends to a secret_ref: a parameter ARN prefix, or a secret name prefix.
    const prefix = ssm ? parameterPrefixArn(Stack.of(this), 'webhooks') : secretPrefix;
    const webhookTimeoutSec = 10;
    // A batch is delivered side by side: one webhook timeout plus the record writes, with room to spare.
    const deliveryTimeout = Duration.seconds(60);

    this.deadLetterQueue = new Queue(this, 'Dlq', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const dlqReason =
      'The notification DLQ is the end of the line: it holds deliveries whose attempts are exhausted until `oc webhooks redrive` moves them back; its depth raises an alarm.';
    Validations.of(this.deadLetterQueue).acknowledge(
      { id: 'AwsSolutions-SQS3', reason: dlqReason },
      { id: 'Serverless-SQSRedrivePolicy', reason: dlqReason },
    );
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Lambda's guidance: at least six times the function timeout.
      visibilityTimeout: Duration.seconds(deliveryTimeout.toSeconds() * 6),
      // The longest a delivery can wait (attempts over about 17 minutes, a redrive later): kept like the DLQs.
      retentionPeriod: Duration.days(14),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: NOTIFICATIONS.maxReceiveCount },
    });

    const outboxDef = STREAM_CONSUMERS.find((c) => c.handler === 'outbox');
    if (!outboxDef) throw new Error('STREAM_CONSUMERS has no outbox entry');
    const outbox = new StreamConsumer(this, 'Outbox', {
      table: props.table,
      consumer: outboxDef,
      access: 'readwrite',
      logRetention: props.logRetention,
      timeout: Duration.seconds(30),
    });
    this.outbox = outbox.function;
    this.outboxDeadLetterQueue = outbox.deadLetterQueue;

    this.delivery = new OcFunction(this, 'Delivery', {
      handlerName: NOTIFICATIONS.deliveryHandler,
      invocation: 'event-source-mapping',
      timeout: deliveryTimeout,
      logRetention: props.logRetention,
    }).bindTable(props.table, 'readwrite');
    this.delivery.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: NOTIFICATIONS.batchSize,
        reportBatchItemFailures: true,
        maxBatchingWindow: Duration.seconds(0),
      }),
    );
    Validations.of(this.delivery).acknowledge({
      id: 'Serverless-LambdaEventSourceMappingDestination',
      reason:
        'An SQS event source has no on-failure destination: a failed message returns to the queue, is retried with backoff set by the handler, and goes to the notification DLQ (redrive policy, plus the handler itself after the last attempt), whose depth raises an alarm.',
    });

    const environment: Record<string, string> = {
      [ENV.notifyQueueUrl]: this.queue.queueUrl,
      [ENV.notifyDlqUrl]: this.deadLetterQueue.queueUrl,
      [ENV.publicBaseUrl]: props.publicBaseUrl,
      [ENV.webhookSecretPrefix]: prefix,
      [ENV.webhookTimeoutMs]: String(webhookTimeoutSec * 1000),
    };
    this.environment = environment;
    for (const fn of [this.outbox, this.delivery])
      for (const [k, v] of Object.entries(environment)) fn.addEnvironment(k, v);
    this.queue.grantSendMessages(this.outbox);
    this.queue.grantSendMessages(this.delivery);
    this.deadLetterQueue.grantSendMessages(this.delivery);

    // One credential per secret_ref the policy data names. In SSM the operator puts the whsec_
    // value (until then deliveries on that route fail for good, counted by the alarm below); a
    // created secret holds a generated one from the first deploy.
    const refs = new Set<string>();
    for (const tenant of Object.values(loadTenants(path.join(REPO_ROOT, 'policy'))))
      for (const route of tenant.notify) if (route.kind === 'webhook') refs.add(route.secret_ref);
    for (const ref of [...refs].sort()) {
      if (ssm && !/^[A-Za-z0-9_./-]{1,128}$/.test(ref))
        throw new Error(
          `webhook secret_ref "${ref}" cannot name an SSM parameter (letters, digits, _ . - / only): rename it or deploy with -c secretStore=secretsmanager`,
        );
      const secret = new Credential(this, `Secret${ref.replace(/[^A-Za-z0-9]/g, '')}`, {
        path: `webhooks/${ref}`,
        secretName: `${secretPrefix}${ref}`,
        description: `OpenClause webhook signing secret for secret_ref ${ref}: a whsec_<base64> string, or the generated JSON {"secret": "<base64>"}`,
        // 44 letters and digits are valid base64 (33 bytes): a usable secret from the first deploy.
        generateSecretString: {
          secretStringTemplate: '{}',
          generateStringKey: 'secret',
          excludePunctuation: true,
          includeSpace: false,
          passwordLength: 44,
        },
        noRotationReason: `The webhook secret ${ref} is shared with the receiver, which must change its verifier in step; operators rotate it by putting a new value (docs/operators.md "Notifications"), picked up within 5 minutes.`,
      });
      secret.grantRead(this.delivery);
      this.secrets.push(secret);
    }
    // One alarm metric (billed per metric): the worker counts failed-for-good and dead-lettered
    // notifications (an unresolvable secret among them) under one name.
    this.failureAlarm = new Alarm(this, 'DeliveryFailures', {
      metric: gatewayMetric('notifications_failed_for_good', 'Sum', Duration.minutes(5)),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription:
        'A notification failed for good (410, an unresolvable signing secret, a refused URL) or exhausted its attempts (in the DLQ).',
    });
  }

  /**
   * release-parked hands parked outbox records and deliveries back to the queue: it needs the
   * outbox's configuration and the right to send.
   */
  allowRelease(fn: OcFunction): void {
    for (const [k, v] of Object.entries(this.environment)) fn.addEnvironment(k, v);
    this.queue.grantSendMessages(fn);
  }
}

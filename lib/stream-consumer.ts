import { Duration, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { FilterCriteria, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { STREAM_CONSUMERS } from '../functions/shared/constants.js';
import { OcFunction, type TableAccess } from './function.js';

export type StreamConsumerDef = (typeof STREAM_CONSUMERS)[number];

export interface StreamConsumerProps {
  readonly table: ITable;
  /** The consumer's entry in STREAM_CONSUMERS: handler, event filter, batch size. */
  readonly consumer: StreamConsumerDef;
  /** The consumer's access to the table. */
  readonly access: TableAccess;
  /**
   * Retries of a failing batch (halved each time by bisection) before its metadata goes to the DLQ.
   * @default 10
   */
  readonly retryAttempts?: number;
  /**
   * Records older than this go to the DLQ instead of being retried (the stream keeps 24 h).
   * @default Duration.hours(6)
   */
  readonly maxRecordAge?: Duration;
  /**
   * @default Duration.seconds(60)
   */
  readonly timeout?: Duration;
  /**
   * Retention of the consumer's log group.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * A Lambda on the table's stream, as ARCHITECTURE describes the outbox and the sequencer: the
 * STREAM_CONSUMERS filter, in order per shard, partial batch failures reported by the handler,
 * bisection and bounded retries, and an encrypted SQS on-failure destination for what is left.
 */
export class StreamConsumer extends Construct {
  readonly function: OcFunction;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: StreamConsumerProps) {
    super(scope, id);
    const { consumer } = props;

    this.deadLetterQueue = new Queue(this, 'Dlq', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const reason = `${consumer.handler}'s stream on-failure destination: it receives the metadata of batches that exhausted their retries and is itself the end of the line (its depth raises an alarm).`;
    Validations.of(this.deadLetterQueue).acknowledge(
      { id: 'AwsSolutions-SQS3', reason },
      { id: 'Serverless-SQSRedrivePolicy', reason },
    );

    this.function = new OcFunction(this, 'Function', {
      handlerName: consumer.handler,
      invocation: 'event-source-mapping',
      timeout: props.timeout ?? Duration.seconds(60),
      logRetention: props.logRetention,
    }).bindTable(props.table, props.access);

    this.function.addEventSource(
      new DynamoEventSource(props.table, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: consumer.batchSize,
        // One batch at a time per shard keeps each tenant's facts in stream order.
        parallelizationFactor: 1,
        filters: [FilterCriteria.filter(consumer.filter as Record<string, unknown>)],
        reportBatchItemFailures: true,
        bisectBatchOnError: true,
        retryAttempts: props.retryAttempts ?? 10,
        maxRecordAge: props.maxRecordAge ?? Duration.hours(6),
        onFailure: new SqsDlq(this.deadLetterQueue),
      }),
    );
    Validations.of(this.function.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'dynamodb:ListStreams (needed by the stream event source) and X-Ray trace upload (with tracing on) have no resource-level permissions.',
    });
  }
}

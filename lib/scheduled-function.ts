import { Duration, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { SCHEDULES } from '../functions/shared/constants.js';
import { OcFunction, type TableAccess } from './function.js';

/** An entry of SCHEDULES, or a schedule whose rate comes from context (the evidence archiver). */
export type ScheduleDef = (typeof SCHEDULES)[number] | { handler: string; rateMinutes: number };

export interface ScheduledFunctionProps {
  readonly table: ITable;
  /** The entry in SCHEDULES: handler and rate in minutes. */
  readonly schedule: ScheduleDef;
  /** The function's access to the table. */
  readonly access: TableAccess;
  /**
   * Retention of the function's log group.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * A Lambda run every `rateMinutes` by an EventBridge rule. Each run redoes all due work, so nothing
 * is retried past the next run: EventBridge retries delivery at most twice within one interval,
 * Lambda does not retry a failed run, and both kinds of failure land in one encrypted SQS DLQ
 * (whose depth raises an alarm, as do the function's errors).
 */
export class ScheduledFunction extends Construct {
  readonly function: OcFunction;
  readonly rule: Rule;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: ScheduledFunctionProps) {
    super(scope, id);
    const { handler, rateMinutes } = props.schedule;
    if (!Number.isInteger(rateMinutes) || rateMinutes < 1)
      throw new Error(`SCHEDULES ${handler}: rateMinutes must be a positive integer, got ${rateMinutes}`);
    const interval = Duration.minutes(rateMinutes);

    this.deadLetterQueue = new Queue(this, 'Dlq', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const reason = `${handler}'s DLQ: it receives schedule events EventBridge could not deliver and records of failed runs; it is the end of the line (the next run redoes the work, its depth raises an alarm).`;
    Validations.of(this.deadLetterQueue).acknowledge(
      { id: 'AwsSolutions-SQS3', reason },
      { id: 'Serverless-SQSRedrivePolicy', reason },
    );

    this.function = new OcFunction(this, 'Function', {
      handlerName: handler,
      invocation: 'schedule',
      // Finish well within one interval so runs do not pile up.
      timeout: Duration.seconds(Math.min(rateMinutes * 60 - 10, 300)),
      logRetention: props.logRetention,
    }).bindTable(props.table, props.access);
    this.function.configureAsyncInvoke({
      retryAttempts: 0,
      maxEventAge: interval,
      onFailure: new SqsDestination(this.deadLetterQueue),
    });

    this.rule = new Rule(this, 'Rule', {
      description: `OpenClause ${handler}, every ${interval.toHumanString()}`,
      schedule: Schedule.rate(interval),
      targets: [
        new LambdaFunction(this.function, {
          retryAttempts: 2,
          maxEventAge: interval,
          deadLetterQueue: this.deadLetterQueue,
        }),
      ],
    });
  }
}

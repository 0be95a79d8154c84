import { Duration } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  Metric,
  TextWidget,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { OBSERVABILITY, RECORDS_PARKED_METRIC } from '../functions/shared/constants.js';
import { constructIdFor, type OcFunction } from './function.js';

/**
 * How Lambda failures raise an alarm (context `errorAlarms`, docs/operators.md "Alarms"):
 * `account`, one alarm on AWS/Lambda `Errors` with no dimension (every function of the account
 * and region: $0.10 a month however many functions the app has); `per-function`, one alarm per
 * function ($0.10 each), for an account shared with other Lambdas whose errors must not page.
 */
export type ErrorAlarms = 'account' | 'per-function';
export const ERROR_ALARMS: readonly ErrorAlarms[] = ['account', 'per-function'];

export interface ObservabilityProps {
  readonly httpApi: HttpApi;
  /** Every function of the app, on the dashboard (and alarmed on, see `errorAlarms`). */
  readonly functions: readonly OcFunction[];
  /**
   * One alarm on the account's Lambda errors, or one per function.
   * @default 'account'
   */
  readonly errorAlarms?: ErrorAlarms;
  /**
   * Functions alarmed on (see `errorAlarms`) but with no lines on the dashboard, which stays within
   * CloudWatch's free 50 metrics (each dashboard function costs 3: errors, duration, throttles).
   * @default - none
   */
  readonly alarmOnlyFunctions?: readonly OcFunction[];
  /** The sequencer: its stream iterator age says how far sealing lags behind writes. */
  readonly sequencer: OcFunction;
  /** Dead-letter queues: any message in one is an alarm. */
  readonly deadLetterQueues: readonly IQueue[];
  /**
   * Sequencer lag (stream iterator age) that raises the alarm; facts normally seal within ~1 s.
   * @default Duration.minutes(1)
   */
  readonly maxSealingLag?: Duration;
  /**
   * Dashboard name.
   * @default - generated
   */
  readonly dashboardName?: string;
}

/** A metric the gateway's code emits (EMF, Powertools: our namespace, the service dimension). */
export function gatewayMetric(metricName: string, statistic: string, period: Duration): Metric {
  return new Metric({
    namespace: OBSERVABILITY.metricsNamespace,
    metricName,
    dimensionsMap: { service: OBSERVABILITY.serviceName },
    statistic,
    period,
  });
}

/**
 * Alarms (API 5xx, Lambda errors, sequencer lag, parked records and held chains, DLQ depth) and one
 * dashboard. Where alarms notify is wired once per stack (lib/alarms.ts), not here.
 */
export class Observability extends Construct {
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;
  readonly throttlesDashboard: Dashboard;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const fiveMinutes = Duration.minutes(5);

    const api5xx = props.httpApi.metricServerError({ period: fiveMinutes, statistic: 'Sum' });
    this.alarm('Api5xx', api5xx, 1, 'The API answered 5xx (INTERNAL_ERROR or an integration failure).');

    // An alarm is billed per metric it reads (a metric-math sum of N functions is N): the account's
    // own Errors metric, which Lambda publishes with no dimension, is one metric for every function.
    // The dashboard below says which function failed.
    if ((props.errorAlarms ?? 'account') === 'account')
      this.alarm(
        'LambdaErrors',
        LambdaFunction.metricAllErrors({ period: fiveMinutes, statistic: 'Sum' }),
        1,
        'A Lambda function of this account and region failed (unhandled error, timeout or init failure); the dashboard\'s "Lambda errors" widget, or the Errors metric by FunctionName, names it.',
      );
    else
      for (const fn of [...props.functions, ...(props.alarmOnlyFunctions ?? [])]) {
        this.alarm(
          `${constructIdFor(fn.handlerName)}Errors`,
          fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
          1,
          `Lambda ${fn.handlerName} failed (unhandled error, timeout or init failure).`,
        );
      }

    const iteratorAge = props.sequencer.metric('IteratorAge', {
      period: Duration.minutes(1),
      statistic: 'Maximum',
    });
    const maxLag = props.maxSealingLag ?? Duration.minutes(1);
    this.alarm(
      'SequencerIteratorAge',
      iteratorAge,
      maxLag.toMilliseconds(),
      `Facts wait more than ${maxLag.toHumanString()} to be sealed into the evidence chain.`,
      3,
    );

    // One metric, no dimension per consumer (an alarm metric is billed per metric): records parked
    // by the outbox, the delivery worker or the archiver and chains held by the sequencer, counted
    // when parked and reported by release-parked on every run while any waits.
    const recordsParked = gatewayMetric(RECORDS_PARKED_METRIC, 'Maximum', fiveMinutes);
    this.alarm(
      'RecordsParked',
      recordsParked,
      1,
      "A record could not be processed and was parked in its tenant's partition (the log line 'record parked' or 'evidence chains held' names it); the other tenants go on, release-parked retries it.",
    );

    props.deadLetterQueues.forEach((queue, i) => {
      const depth = queue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      });
      this.alarm(`Dlq${i + 1}Depth`, depth, 1, `A dead-letter queue holds failed work (${queue.node.path}).`);
    });

    const decisions = (['allow', 'deny', 'approve'] as const).map((d) =>
      gatewayMetric(`decision_${d}`, 'Sum', fiveMinutes),
    );
    const byFunction = (m: (fn: OcFunction) => IMetric) => props.functions.map(m);
    this.dashboard = new Dashboard(this, 'Dashboard', { dashboardName: props.dashboardName });
    this.dashboard.addWidgets(
      new TextWidget({ markdown: '# OpenClause gateway', width: 24, height: 1 }),
      new GraphWidget({
        title: 'API requests and errors',
        left: [
          props.httpApi.metricCount({ period: fiveMinutes, statistic: 'Sum' }),
          props.httpApi.metricClientError({ period: fiveMinutes, statistic: 'Sum' }),
          api5xx,
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'API latency (p99)',
        left: [
          props.httpApi.metricLatency({ period: fiveMinutes, statistic: 'p99' }),
          props.httpApi.metricIntegrationLatency({ period: fiveMinutes, statistic: 'p99' }),
        ],
        width: 8,
      }),
      new GraphWidget({ title: 'Policy decisions', left: decisions, width: 8 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Lambda errors',
        left: byFunction((fn) =>
          fn.metricErrors({ period: fiveMinutes, statistic: 'Sum', label: fn.handlerName }),
        ),
        width: 8,
      }),
      new GraphWidget({
        title: 'Lambda duration (p99)',
        left: byFunction((fn) =>
          fn.metricDuration({ period: fiveMinutes, statistic: 'p99', label: fn.handlerName }),
        ),
        width: 8,
      }),
    );
    // A dashboard is free up to 50 metrics (three per account): the throttles, one metric per
    // function, have their own, so that the main one stays within 50 as functions are added.
    this.throttlesDashboard = new Dashboard(this, 'ThrottlesDashboard', {
      dashboardName: props.dashboardName ? `${props.dashboardName}-throttles` : undefined,
    });
    this.throttlesDashboard.addWidgets(
      new GraphWidget({
        title: 'Lambda throttles',
        left: byFunction((fn) =>
          fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum', label: fn.handlerName }),
        ),
        width: 24,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Sequencer lag (stream iterator age, ms)', left: [iteratorAge], width: 8 }),
      new GraphWidget({ title: 'Parked records and held chains', left: [recordsParked], width: 8 }),
      new GraphWidget({
        title: 'Dead-letter queue depth',
        left: props.deadLetterQueues.map((q) =>
          q.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        ),
        width: 8,
      }),
    );
  }

  private alarm(
    id: string,
    metric: IMetric,
    threshold: number,
    description: string,
    evaluationPeriods = 1,
  ): Alarm {
    const alarm = new Alarm(this, id, {
      metric,
      threshold,
      evaluationPeriods,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    this.alarms.push(alarm);
    return alarm;
  }
}

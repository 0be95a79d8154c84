/**
 * Cost model of the gateway (issue "Benchmarks, cost model and load"): the cost per million calls
 * of a path from counted requests, configured memory and measured durations, and the stack's
 * fixed monthly cost with zero traffic, read from the synthesized CloudFormation templates.
 * Every figure comes with the arithmetic that produced it.
 *
 *   npx tsx bench/cost.ts                 # idle cost of the current app (synthesized, no bundling)
 *   npx tsx bench/cost.ts --from cdk.out  # idle cost of the templates `npm run synth` wrote
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * us-east-1 (N. Virginia) on-demand list prices in USD, as published on the AWS pricing pages named
 * in each comment, assumed as of November 2025. Free tiers are ignored everywhere (the Lambda
 * 1M requests / 400k GB-s, DynamoDB 25 GB, SQS 1M requests, KMS 20k requests, X-Ray 100k traces,
 * CloudWatch 10 alarms / 5 GB logs), except the 3 free CloudWatch dashboards, which the idle cost
 * applies (see `IdleOptions.freeDashboards`). Volume tiers are ignored too: the first tier applies.
 */
export const PRICES = {
  asOf: '2025-11 (assumed; AWS pricing pages, us-east-1)',
  /** "Amazon API Gateway pricing", HTTP APIs: $1.00/M for the first 300M requests a month ($0.90 beyond); metered per 512 KB. */
  httpApi: { perMillionRequests: 1.0 },
  /** "AWS Lambda pricing": duration per GB-second (first 6B GB-s tier), billed per 1 ms; $0.20/M requests. */
  lambda: { arm64PerGbSecond: 0.0000133334, x86PerGbSecond: 0.0000166667, perMillionRequests: 0.2 },
  /**
   * "Amazon DynamoDB pricing for on-demand capacity" (after the 1 Nov 2024 cut), Standard table class.
   * Units: a standard write ≤1 KB = 1 WRU, transactional = 2 WRU; a strongly consistent read ≤4 KB =
   * 1 RRU, eventually consistent 0.5, transactional 2; every GSI write the item projects into costs
   * WRUs of its own. GetRecords on the stream by Lambda triggers is free.
   */
  dynamodb: {
    perMillionWriteUnits: 0.625,
    perMillionReadUnits: 0.125,
    storagePerGbMonth: 0.25,
    pitrPerGbMonth: 0.2,
  },
  /**
   * "AWS Key Management Service pricing": $1/month per customer-managed key; automatic rotation adds
   * $1/month for each of the first two rotations (then capped: $3/month); $0.03 per 10,000 requests.
   * DynamoDB with a customer-managed key caches the table key it gets from KMS (re-fetched about every
   * 5 minutes per connection), so per-request KMS calls are negligible and priced at 0 per call.
   */
  kms: { perKeyMonth: 1.0, perRotationMonth: 1.0, maxBilledRotations: 2, per10kRequests: 0.03 },
  /** "Amazon SQS pricing", standard queues: $0.40/M requests, each 64 KB chunk is one request. */
  sqs: { perMillionRequests: 0.4 },
  /** "Amazon S3 pricing", S3 Standard: PUT/COPY/POST/LIST $0.005 per 1,000, GET $0.0004 per 1,000, $0.023/GB-month. */
  s3: { perThousandPuts: 0.005, perThousandGets: 0.0004, storagePerGbMonth: 0.023 },
  /**
   * "Amazon CloudWatch pricing": $0.10 per standard-resolution alarm metric a month ($0.30 high
   * resolution, $0.50 per composite alarm; a metric-math alarm with N metrics is N alarm metrics,
   * an anomaly-detection alarm 3); $3 per dashboard a month beyond the first 3 (up to 50 metrics
   * each); logs ingestion $0.50/GB and storage $0.03/GB-month (Standard class); custom metrics
   * $0.30 per metric a month, prorated by the hour a metric is published.
   */
  cloudwatch: {
    alarmMetricMonth: 0.1,
    highResolutionAlarmMetricMonth: 0.3,
    compositeAlarmMonth: 0.5,
    dashboardMonth: 3.0,
    freeDashboardsPerAccount: 3,
    freeDashboardMetrics: 50,
    logsIngestionPerGb: 0.5,
    logsStoragePerGbMonth: 0.03,
    customMetricMonth: 0.3,
  },
  /** "AWS Secrets Manager pricing": $0.40 per secret a month, $0.05 per 10,000 API calls. */
  secretsManager: { perSecretMonth: 0.4, per10kApiCalls: 0.05 },
  /** "AWS X-Ray pricing": $5.00 per million traces recorded. */
  xray: { perMillionTraces: 5.0 },
  /**
   * "Amazon Cognito pricing", machine-to-machine (client-credentials) authorization, billed since
   * May 2024 (existing users from May 2025): $6.00 per app client a month (prorated by the second;
   * AWS's cost guide says *active* app clients) and $2.25 per 1,000 successful token requests (the
   * first tier; graduated beyond). As of 2026-12, from the AWS announcement of 9 May 2024 as quoted
   * by the CUR line-item reference (vantage, `CUPM2MTokenRequestsFull`, updated 27 Apr 2025) and a
   * May 2025 bill analysis (Rhythmic Technologies): the AWS pricing page itself renders its prices
   * by script and could not be read here. A pool with no users bills no MAU; its domain and
   * resource servers are free; a user-sign-in app client costs nothing of its own (MAUs do).
   */
  cognito: { m2mAppClientMonth: 6.0, m2mPerThousandTokenRequests: 2.25 },
  /** "Amazon EventBridge pricing": scheduled rules on the default bus are free. */
  eventbridge: { scheduledRuleEvents: 0 },
  /** Fixed monthly prices of resource types this app does not create today (730 h a month). */
  other: {
    'AWS::EC2::NatGateway': 0.045 * 730,
    'AWS::WAFv2::WebACL': 5.0,
    'AWS::Route53::HostedZone': 0.5,
  } as Record<string, number>,
} as const;

/** One line of a cost table: what, how it was computed, how much. */
export interface CostLine {
  item: string;
  arithmetic: string;
  usd: number;
}

const MILLION = 1_000_000;
const GIB = 1024 ** 3;
/** A 30-day month: 43,200 minutes. */
export const MINUTES_PER_MONTH = 30 * 24 * 60;

// ---------------------------------------------------------------------------------------------
// Formatting

const round = (x: number): number => Math.round(x * 1e9) / 1e9;

/** `$7.50`, `$0.80`, `$0.1333`, `$0.00864`: two decimals from $1, four significant digits below. */
export function usd(x: number): string {
  if (Math.abs(x) >= 1 || x === 0) return `$${x.toFixed(2)}`;
  return money(Number(x.toPrecision(4)));
}

/** At least two decimals, and every digit the number has (`$0.80`, `$0.0000133334`). */
const money = (x: number): string => {
  const s = x.toString();
  const decimals = s.includes('.') ? s.split('.')[1]!.length : 0;
  return `$${decimals >= 2 ? s : x.toFixed(2)}`;
};

/** Plain numbers: thousands separators, at most 6 decimals. */
const num = (x: number): string => x.toLocaleString('en-US', { maximumFractionDigits: 6 });

/** A unit price with its real precision (`$0.0000133334`, `$0.625`, `$0.20`). */
const price = money;

const line = (item: string, arithmetic: string, value: number): CostLine => ({
  item,
  arithmetic: `${arithmetic} = ${usd(value)}`,
  usd: round(value),
});

const plural = (n: number, one: string, many = `${one}s`): string => `${num(n)} ${n === 1 ? one : many}`;

// ---------------------------------------------------------------------------------------------
// DynamoDB capacity units

export type DynamoOp =
  | 'GetItem'
  | 'Query'
  | 'PutItem'
  | 'UpdateItem'
  | 'TransactWriteItems'
  | 'TransactGetItems'
  | 'BatchGetItem'
  | 'BatchWriteItem';

export interface DynamoRequest {
  op: DynamoOp;
  /** Items the request reads or writes (for Query: items read, before any filter). */
  items: number;
  /** Size of each item in KB (for UpdateItem: the larger of before and after). */
  itemKb: number;
  /** Strongly consistent read (GetItem, BatchGetItem, Query on the table). Default false. */
  consistent?: boolean;
  /**
   * GSI writes per item written: 1 when the item projects into one index, 2 when an update moves it
   * within that index (delete + put), 0 when it has no index key. Sized like the item (the table's
   * one GSI projects ALL). Default 0.
   */
  gsiWrites?: number;
}

const WRITE_OPS = new Set<DynamoOp>(['PutItem', 'UpdateItem', 'TransactWriteItems', 'BatchWriteItem']);

/**
 * Capacity units of counted requests, by DynamoDB's rules: writes round each item up to 1 KB,
 * reads to 4 KB (a Query sums the items it reads, then rounds, minimum one unit); eventually
 * consistent reads cost half; transactions cost double; each GSI write costs the item's WRUs.
 * A ConditionCheck inside TransactWriteItems counts as one of its items.
 */
export function dynamoUnits(requests: readonly DynamoRequest[]): { writeUnits: number; readUnits: number } {
  let writeUnits = 0;
  let readUnits = 0;
  for (const r of requests) {
    if (!(r.items >= 0) || !(r.itemKb >= 0)) throw new Error(`dynamoUnits: bad request ${JSON.stringify(r)}`);
    if (WRITE_OPS.has(r.op)) {
      const perItem = Math.max(1, Math.ceil(r.itemKb));
      const factor = r.op === 'TransactWriteItems' ? 2 : 1;
      writeUnits += r.items * perItem * factor + r.items * (r.gsiWrites ?? 0) * perItem;
      continue;
    }
    const blocks = (kb: number) => Math.max(1, Math.ceil(kb / 4));
    const consistency = r.consistent ? 1 : 0.5;
    switch (r.op) {
      case 'TransactGetItems':
        readUnits += r.items * blocks(r.itemKb) * 2;
        break;
      case 'Query':
        readUnits += blocks(r.items * r.itemKb) * consistency;
        break;
      default: // GetItem, BatchGetItem: each item on its own (an absent item still costs one block)
        readUnits += r.items * blocks(r.itemKb) * consistency;
    }
  }
  return { writeUnits: round(writeUnits), readUnits: round(readUnits) };
}

// ---------------------------------------------------------------------------------------------
// Cost per million calls

export interface LambdaInvocation {
  /** Function (handler) name, for the line. */
  fn: string;
  memoryMb: number;
  /** Measured handler duration in ms; billed rounded up to the next 1 ms. */
  durationMs: number;
  /**
   * Invocations per call: 1 for the request path; a share for a batch consumer (the sequencer
   * seals many calls' facts per invocation). Default 1.
   */
  perCall?: number;
  /** X-Ray active tracing on this function (its invocations are sampled). Default false. */
  traced?: boolean;
  /** Default 'arm64'. */
  architecture?: 'arm64' | 'x86_64';
}

/** What one call of a path costs, counted; every field is per call. */
export interface CallCounts {
  path: string;
  httpRequests: number;
  lambdaInvocations: LambdaInvocation[];
  dynamo: { writeUnits: number; readUnits: number };
  sqsRequests?: number;
  /** Bytes written to CloudWatch Logs (platform START/END/REPORT lines, app logs, EMF). */
  logBytes?: number;
  s3?: { puts?: number; gets?: number };
  /**
   * X-Ray traces recorded per call. Default: 0.05 per invocation of a traced function, the default
   * sampling rule's 5% beyond its 1/s reservoir; an upper bound, since a Lambda invoked through the
   * SDK joins its caller's trace.
   */
  xrayTraces?: number;
  /** KMS requests per call. Default 0: DynamoDB caches the table key (see PRICES.kms). */
  kmsRequests?: number;
}

export interface PathCost {
  path: string;
  usdPerMillion: number;
  lines: CostLine[];
}

export function costPerMillion(input: CallCounts): PathCost {
  const P = PRICES;
  const lines: CostLine[] = [];
  const per = (n: number, unit: string, unitPrice: number, item: string, units = `${unit}s`) =>
    lines.push(line(item, `${plural(n, unit, units)} × ${price(unitPrice)}/M`, n * unitPrice));

  per(input.httpRequests, 'request', P.httpApi.perMillionRequests, 'HTTP API requests');

  const invocations = input.lambdaInvocations;
  const count = (inv: LambdaInvocation) => inv.perCall ?? 1;
  const totalInvocations = round(invocations.reduce((a, inv) => a + count(inv), 0));
  lines.push(
    line(
      'Lambda requests',
      `${invocations.map((inv) => `${inv.fn} ${num(round(count(inv)))}`).join(' + ')} = ${plural(totalInvocations, 'invocation')} × ${price(P.lambda.perMillionRequests)}/M`,
      totalInvocations * P.lambda.perMillionRequests,
    ),
  );
  for (const inv of invocations) {
    const arm = (inv.architecture ?? 'arm64') === 'arm64';
    const gbSecondPrice = arm ? P.lambda.arm64PerGbSecond : P.lambda.x86PerGbSecond;
    const billedMs = Math.max(1, Math.ceil(inv.durationMs));
    const gbSeconds = (inv.memoryMb / 1024) * (billedMs / 1000) * count(inv);
    const rounded = billedMs === inv.durationMs ? '' : ` (${num(inv.durationMs)} ms billed as ${billedMs})`;
    const share = count(inv) === 1 ? '' : ` × ${num(round(count(inv)))} per call`;
    lines.push(
      line(
        `Lambda ${inv.fn} duration`,
        `${inv.memoryMb} MB × ${billedMs} ms${rounded}${share} = ${num(round(gbSeconds))} GB-s × 1M × ${price(gbSecondPrice)}/GB-s${arm ? '' : ' (x86_64)'}`,
        gbSeconds * MILLION * gbSecondPrice,
      ),
    );
  }

  per(input.dynamo.writeUnits, 'WRU', P.dynamodb.perMillionWriteUnits, 'DynamoDB writes', 'WRU');
  per(input.dynamo.readUnits, 'RRU', P.dynamodb.perMillionReadUnits, 'DynamoDB reads', 'RRU');

  const kms = input.kmsRequests ?? 0;
  lines.push(
    line(
      'KMS requests',
      `${plural(kms, 'request')} × ${price(P.kms.per10kRequests)}/10k × 100` +
        (input.kmsRequests === undefined
          ? ' (DynamoDB caches the table key from the customer-managed key: no KMS call per request)'
          : ''),
      kms * 100 * P.kms.per10kRequests,
    ),
  );

  if (input.sqsRequests) per(input.sqsRequests, 'request', P.sqs.perMillionRequests, 'SQS requests');
  if (input.s3?.puts)
    lines.push(
      line(
        'S3 PUTs',
        `${plural(input.s3.puts, 'PUT')} × ${price(P.s3.perThousandPuts)}/1k × 1,000`,
        input.s3.puts * 1000 * P.s3.perThousandPuts,
      ),
    );
  if (input.s3?.gets)
    lines.push(
      line(
        'S3 GETs',
        `${plural(input.s3.gets, 'GET')} × ${price(P.s3.perThousandGets)}/1k × 1,000`,
        input.s3.gets * 1000 * P.s3.perThousandGets,
      ),
    );

  const tracedInvocations = round(
    invocations.filter((inv) => inv.traced).reduce((a, inv) => a + count(inv), 0),
  );
  const traces = input.xrayTraces ?? 0.05 * tracedInvocations;
  if (traces > 0)
    lines.push(
      line(
        'X-Ray traces',
        (input.xrayTraces === undefined
          ? `${num(tracedInvocations)} traced invocations × 5% sampled = `
          : '') + `${plural(traces, 'trace')} × ${price(P.xray.perMillionTraces)}/M`,
        traces * P.xray.perMillionTraces,
      ),
    );

  if (input.logBytes) {
    const gb = (input.logBytes * MILLION) / GIB;
    lines.push(
      line(
        'CloudWatch Logs ingestion',
        `${num(input.logBytes)} B × 1M = ${num(gb)} GB × ${price(P.cloudwatch.logsIngestionPerGb)}/GB`,
        gb * P.cloudwatch.logsIngestionPerGb,
      ),
    );
  }

  return { path: input.path, usdPerMillion: round(lines.reduce((s, l) => s + l.usd, 0)), lines };
}

// ---------------------------------------------------------------------------------------------
// Idle cost per month

type Props = Record<string, unknown>;
type Resource = { Type: string; Properties?: Props };
type CfnTemplate = { Resources?: Record<string, Resource> };

export interface IdleOptions {
  /**
   * RRUs a scheduled run consumes when there is nothing to do. Default 2: expire-approvals
   * queries the tenant registry, each configured tenant's pending approvals on the GSI (two
   * tenants) and the due reminders (issue 21: one Query of the sparse `REMINDERS` partition,
   * whatever the number of tenants), eventually consistent, empty: 4 Queries × 0.5 RRU.
   */
  readUnitsPerRun?: number;
  /** Duration of a scheduled run with nothing to do, in ms. Default 50 (assumed). */
  durationMsPerRun?: number;
  /** Log bytes a run writes (Lambda START/END/REPORT lines, Powertools' empty-metrics warning). Default 500. */
  logBytesPerRun?: number;
  /**
   * Hours a month a scheduled function publishes its Powertools ColdStart metric (a custom metric,
   * prorated by the hour). Default 180: about 6 cold starts a day, each in its own hour.
   */
  coldStartMetricHoursPerMonth?: number;
  /** Dashboards the account gets free. Default 3 (assumes the account has no other dashboards). */
  freeDashboards?: number;
  /** Yearly rotations each KMS key with rotation has had (0 in year one; billed up to 2). Default 0. */
  keyRotations?: number;
}

export interface IdleCost {
  usdPerMonth: number;
  lines: CostLine[];
}

/** Resources with no charge at zero traffic (pay per request, or free). */
const PAY_PER_USE = new Set([
  'AWS::Lambda::Function',
  'AWS::Lambda::Permission',
  // A Function URL costs nothing of its own: its requests are Lambda invocations.
  'AWS::Lambda::Url',
  'AWS::Lambda::EventInvokeConfig',
  'AWS::Lambda::EventSourceMapping',
  'AWS::IAM::Role',
  'AWS::IAM::Policy',
  'AWS::Logs::LogGroup',
  'AWS::ApiGatewayV2::Api',
  'AWS::ApiGatewayV2::Integration',
  'AWS::ApiGatewayV2::Route',
  'AWS::ApiGatewayV2::Authorizer',
  'AWS::ApiGatewayV2::Stage',
  'AWS::SQS::Queue',
  'AWS::SQS::QueuePolicy',
  'AWS::S3::Bucket',
  'AWS::S3::BucketPolicy',
  // The alarm topic: $0.50 per million publishes beyond the first million, and email beyond the
  // first 1,000 a month: alarms that fire a few times a month cost nothing.
  'AWS::SNS::Topic',
  'AWS::SNS::TopicPolicy',
  'AWS::SNS::Subscription',
  'AWS::Events::Rule',
  'AWS::DynamoDB::Table',
  'AWS::CDK::Metadata',
]);

/** The referenced logical id of `{Ref}` or `{Fn::GetAtt}`. */
function refOf(x: unknown): string | undefined {
  if (!x || typeof x !== 'object') return undefined;
  const o = x as Record<string, unknown>;
  if (typeof o.Ref === 'string') return o.Ref;
  const att = o['Fn::GetAtt'];
  if (Array.isArray(att) && typeof att[0] === 'string') return att[0];
  if (typeof att === 'string') return att.split('.')[0];
  return undefined;
}

/** Runs a month of `rate(N unit)`; undefined for cron expressions. */
export function runsPerMonth(expression: string): number | undefined {
  const m = /^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const minutes = m[2]!.startsWith('minute') ? n : m[2]!.startsWith('hour') ? n * 60 : n * 1440;
  return MINUTES_PER_MONTH / minutes;
}

/** Alarm metrics an alarm is billed for, and whether at high resolution. */
function alarmMetrics(props: Props): { metrics: number; highResolution: boolean } {
  if (Array.isArray(props.Metrics)) {
    const queries = props.Metrics as Array<{ Expression?: unknown; MetricStat?: { Period?: unknown } }>;
    const stats = queries.filter((q) => q.MetricStat);
    const anomaly = queries.some(
      (q) => typeof q.Expression === 'string' && /ANOMALY_DETECTION_BAND/i.test(q.Expression),
    );
    const highResolution = stats.some((q) => Number(q.MetricStat?.Period) < 60) || Number(props.Period) < 60;
    return { metrics: anomaly ? Math.max(stats.length, 1) * 3 : stats.length, highResolution };
  }
  return { metrics: 1, highResolution: Number(props.Period) < 60 };
}

/** Metric count of a dashboard body (an `Fn::Join` of strings and tokens); undefined if unreadable. */
function dashboardMetricCount(body: unknown): number | undefined {
  const flatten = (x: unknown): string => {
    if (typeof x === 'string') return x;
    const join = (x as Record<string, unknown> | null)?.['Fn::Join'];
    if (Array.isArray(join) && Array.isArray(join[1]))
      return (join[1] as unknown[]).map(flatten).join(String(join[0]));
    return 'TOKEN';
  };
  try {
    const parsed = JSON.parse(flatten(body)) as { widgets?: Array<{ properties?: { metrics?: unknown[] } }> };
    return (parsed.widgets ?? []).reduce((n, w) => n + (w.properties?.metrics?.length ?? 0), 0);
  } catch {
    return undefined;
  }
}

/**
 * The fixed monthly cost of the stacks with zero traffic, from their synthesized templates:
 * KMS keys, secrets, alarms, dashboards, anything else with an hourly or monthly charge, and the
 * runs of scheduled Lambdas (which happen whether or not anyone calls the API).
 */
export function idleCostPerMonth(templates: readonly object[], options: IdleOptions = {}): IdleCost {
  const P = PRICES;
  const readUnitsPerRun = options.readUnitsPerRun ?? 2;
  const durationMs = options.durationMsPerRun ?? 50;
  const logBytesPerRun = options.logBytesPerRun ?? 500;
  const coldStartHours = options.coldStartMetricHoursPerMonth ?? 180;
  const freeDashboards = options.freeDashboards ?? P.cloudwatch.freeDashboardsPerAccount;
  const rotations = Math.min(options.keyRotations ?? 0, P.kms.maxBilledRotations);

  const resources: Array<[string, Resource, CfnTemplate]> = [];
  for (const t of templates as CfnTemplate[])
    for (const [id, r] of Object.entries(t.Resources ?? {})) resources.push([id, r, t]);
  const ofType = (type: string) => resources.filter(([, r]) => r.Type === type);
  const lines: CostLine[] = [];
  const priced = new Set<string>();

  // Cognito (agents' OAuth, approvers' pool): only client-credentials app clients cost money idle.
  const pools = ofType('AWS::Cognito::UserPool');
  const cognitoFree = [
    'AWS::Cognito::UserPoolDomain',
    'AWS::Cognito::UserPoolResourceServer',
    'AWS::Cognito::UserPoolUICustomizationAttachment',
  ];
  for (const t of ['AWS::Cognito::UserPool', 'AWS::Cognito::UserPoolClient', ...cognitoFree]) priced.add(t);
  const appClients = ofType('AWS::Cognito::UserPoolClient');
  const m2m = appClients.filter(([, r]) =>
    ((r.Properties?.AllowedOAuthFlows as string[] | undefined) ?? []).includes('client_credentials'),
  );
  if (pools.length || appClients.length)
    lines.push(
      line(
        'Cognito user pools',
        `${plural(pools.length, 'pool')}, ${plural(appClients.length - m2m.length, 'user sign-in client')}: billed per monthly active user, none at zero traffic; domains and resource servers free`,
        0,
      ),
    );
  if (m2m.length)
    lines.push(
      line(
        'Cognito M2M app clients',
        `${plural(m2m.length, 'client-credentials app client')} × ${usd(P.cognito.m2mAppClientMonth)}/month (billed while it exists; $0 if AWS bills only clients active in the month)`,
        m2m.length * P.cognito.m2mAppClientMonth,
      ),
    );

  // KMS keys
  const keys = ofType('AWS::KMS::Key');
  priced.add('AWS::KMS::Key');
  if (keys.length) {
    const rotating = keys.filter(([, r]) => r.Properties?.EnableKeyRotation === true).length;
    const perKey = P.kms.perKeyMonth;
    const rotationCost = rotating * rotations * P.kms.perRotationMonth;
    lines.push(
      line(
        'KMS customer-managed keys',
        `${plural(keys.length, 'key')} × ${usd(perKey)}` +
          (rotating
            ? ` + ${rotating} rotating × ${rotations} rotation(s) so far × ${usd(P.kms.perRotationMonth)}` +
              ` (each of the first 2 yearly rotations adds ${usd(P.kms.perRotationMonth)}/month:` +
              ` ${usd(perKey + P.kms.maxBilledRotations * P.kms.perRotationMonth)}/key from year 3)`
            : ''),
        keys.length * perKey + rotationCost,
      ),
    );
  }

  // Secrets
  const secrets = ofType('AWS::SecretsManager::Secret');
  priced.add('AWS::SecretsManager::Secret');
  if (secrets.length)
    lines.push(
      line(
        'Secrets Manager secrets',
        `${plural(secrets.length, 'secret')} × ${usd(P.secretsManager.perSecretMonth)} (no API calls at zero traffic)`,
        secrets.length * P.secretsManager.perSecretMonth,
      ),
    );

  // Alarms
  const alarms = ofType('AWS::CloudWatch::Alarm');
  priced.add('AWS::CloudWatch::Alarm');
  if (alarms.length) {
    let standard = 0;
    let high = 0;
    for (const [, r] of alarms) {
      const { metrics, highResolution } = alarmMetrics(r.Properties ?? {});
      if (highResolution) high += metrics;
      else standard += metrics;
    }
    const parts = [`${plural(standard, 'standard alarm metric')} × ${usd(P.cloudwatch.alarmMetricMonth)}`];
    if (high)
      parts.push(
        `${plural(high, 'high-resolution alarm metric')} × ${usd(P.cloudwatch.highResolutionAlarmMetricMonth)}`,
      );
    lines.push(
      line(
        'CloudWatch alarms',
        `${plural(alarms.length, 'alarm')}: ${parts.join(' + ')}`,
        standard * P.cloudwatch.alarmMetricMonth + high * P.cloudwatch.highResolutionAlarmMetricMonth,
      ),
    );
  }
  const composite = ofType('AWS::CloudWatch::CompositeAlarm');
  priced.add('AWS::CloudWatch::CompositeAlarm');
  if (composite.length)
    lines.push(
      line(
        'CloudWatch composite alarms',
        `${plural(composite.length, 'composite alarm')} × ${usd(P.cloudwatch.compositeAlarmMonth)}`,
        composite.length * P.cloudwatch.compositeAlarmMonth,
      ),
    );

  // Dashboards
  const dashboards = ofType('AWS::CloudWatch::Dashboard');
  priced.add('AWS::CloudWatch::Dashboard');
  if (dashboards.length) {
    const counts = dashboards.map(([, r]) => dashboardMetricCount(r.Properties?.DashboardBody));
    const overLimit = counts.filter((c) => c !== undefined && c > P.cloudwatch.freeDashboardMetrics).length;
    const billable = Math.max(0, dashboards.length - freeDashboards) + Math.min(overLimit, freeDashboards);
    const metricNote = counts.map((c) => (c === undefined ? '?' : String(c))).join(', ');
    lines.push(
      line(
        'CloudWatch dashboards',
        `${plural(dashboards.length, 'dashboard')} (${metricNote} metrics; first ${freeDashboards} free per account ` +
          `up to ${P.cloudwatch.freeDashboardMetrics} metrics each, assuming the account has no other dashboards) → ` +
          `${billable} × ${usd(P.cloudwatch.dashboardMonth)}`,
        billable * P.cloudwatch.dashboardMonth,
      ),
    );
  }

  // Other resource types with a fixed charge
  for (const [type, monthly] of Object.entries(P.other)) {
    const found = ofType(type);
    priced.add(type);
    if (found.length)
      lines.push(
        line(type, `${plural(found.length, 'resource')} × ${usd(monthly)}/month`, found.length * monthly),
      );
  }
  for (const [id, r] of ofType('AWS::Lambda::Alias').concat(ofType('AWS::Lambda::Version'))) {
    const pc = r.Properties?.ProvisionedConcurrencyConfig as
      { ProvisionedConcurrentExecutions?: number } | undefined;
    if (pc?.ProvisionedConcurrentExecutions)
      throw new Error(`idleCostPerMonth: ${id} has provisioned concurrency, which this model does not price`);
  }

  // Scheduled Lambdas: their runs are fixed cost.
  if (ofType('AWS::Events::Rule').every(([, r]) => r.Properties?.ScheduleExpression))
    priced.add('AWS::Events::Rule');
  for (const [ruleId, rule, template] of ofType('AWS::Events::Rule')) {
    const expression = rule.Properties?.ScheduleExpression as string | undefined;
    if (!expression || rule.Properties?.State === 'DISABLED') continue;
    for (const target of (rule.Properties?.Targets ?? []) as Array<{ Arn?: unknown }>) {
      const fnId = refOf(target.Arn);
      const fn = fnId ? template.Resources?.[fnId] : undefined;
      if (!fn || fn.Type !== 'AWS::Lambda::Function') continue;
      const props = fn.Properties ?? {};
      const name = String(props.Description ?? fnId).replace(/^OpenClause /, '');
      const runs = runsPerMonth(expression);
      if (runs === undefined) {
        lines.push(line(`${name} (${ruleId})`, `${expression}: cron schedules are not priced`, 0));
        continue;
      }
      const memoryMb = Number(props.MemorySize ?? 128);
      const arm = ((props.Architectures as string[] | undefined) ?? ['x86_64']).includes('arm64');
      const gbPrice = arm ? P.lambda.arm64PerGbSecond : P.lambda.x86PerGbSecond;
      const gbSeconds = runs * (memoryMb / 1024) * (Math.ceil(durationMs) / 1000);
      const every = `${expression}: ${num(runs)} runs/month`;
      lines.push(
        line(`${name} schedule`, `EventBridge rule ${expression}: scheduled rules are free`, 0),
        line(
          `${name} runs (Lambda requests)`,
          `${every} × ${price(P.lambda.perMillionRequests)}/M`,
          (runs / MILLION) * P.lambda.perMillionRequests,
        ),
        line(
          `${name} duration`,
          `${num(runs)} × ${memoryMb} MB × ${Math.ceil(durationMs)} ms (assumed) = ${num(gbSeconds)} GB-s × ${price(gbPrice)}/GB-s`,
          gbSeconds * gbPrice,
        ),
      );
      if (readUnitsPerRun > 0)
        lines.push(
          line(
            `${name} DynamoDB reads`,
            `${num(runs)} × ${num(readUnitsPerRun)} RRU = ${num(runs * readUnitsPerRun)} RRU × ${price(P.dynamodb.perMillionReadUnits)}/M`,
            ((runs * readUnitsPerRun) / MILLION) * P.dynamodb.perMillionReadUnits,
          ),
        );
      if ((props.TracingConfig as { Mode?: string } | undefined)?.Mode === 'Active')
        lines.push(
          line(
            `${name} X-Ray traces`,
            `${num(runs)} traces (1/min is within the 1/s sampling reservoir: all recorded) × ${price(P.xray.perMillionTraces)}/M`,
            (runs / MILLION) * P.xray.perMillionTraces,
          ),
        );
      if (logBytesPerRun > 0) {
        const gb = (runs * logBytesPerRun) / GIB;
        lines.push(
          line(
            `${name} logs`,
            `${num(runs)} × ${logBytesPerRun} B (assumed) = ${num(gb)} GB × (${price(P.cloudwatch.logsIngestionPerGb)} ingestion + ${price(P.cloudwatch.logsStoragePerGbMonth)} storage)/GB`,
            gb * (P.cloudwatch.logsIngestionPerGb + P.cloudwatch.logsStoragePerGbMonth),
          ),
        );
      }
      const env = (props.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
      if (env.POWERTOOLS_METRICS_NAMESPACE && coldStartHours > 0)
        lines.push(
          line(
            `${name} ColdStart custom metric`,
            `1 metric × ${coldStartHours} h published (assumed) / 730 h × ${usd(P.cloudwatch.customMetricMonth)}`,
            (coldStartHours / 730) * P.cloudwatch.customMetricMonth,
          ),
        );
    }
  }

  // Zero at zero traffic, said explicitly.
  for (const t of ['AWS::DynamoDB::Table', 'AWS::SQS::Queue', 'AWS::S3::Bucket']) priced.add(t);
  const tables = ofType('AWS::DynamoDB::Table');
  if (tables.length) {
    const pitr = tables.filter(
      ([, r]) =>
        (r.Properties?.PointInTimeRecoverySpecification as Props | undefined)?.PointInTimeRecoveryEnabled,
    ).length;
    const streams = tables.filter(([, r]) => r.Properties?.StreamSpecification).length;
    lines.push(
      line(
        'DynamoDB tables (empty)',
        `${plural(tables.length, 'table')}, ${pitr} with PITR, ${streams} with a stream: 0 GB × (${price(P.dynamodb.storagePerGbMonth)} storage + ${price(P.dynamodb.pitrPerGbMonth)} PITR)/GB-month; stream reads by Lambda triggers are free`,
        0,
      ),
    );
  }
  const queues = ofType('AWS::SQS::Queue');
  const buckets = ofType('AWS::S3::Bucket');
  const sqsPolled = ofType('AWS::Lambda::EventSourceMapping').filter(([, r]) => {
    const source = refOf(r.Properties?.EventSourceArn);
    return resources.some(([id, q]) => id === source && q.Type === 'AWS::SQS::Queue');
  });
  if (sqsPolled.length) {
    // Lambda long-polls an idle queue with ~5 pollers, a ReceiveMessage per 20 s each.
    const requests = sqsPolled.length * 5 * 3 * MINUTES_PER_MONTH;
    lines.push(
      line(
        'SQS polling by Lambda (idle)',
        `${sqsPolled.length} event source(s) × 5 pollers × 3 long polls/min × ${num(MINUTES_PER_MONTH)} min = ${num(requests)} requests × ${price(P.sqs.perMillionRequests)}/M`,
        (requests / MILLION) * P.sqs.perMillionRequests,
      ),
    );
  }
  if (queues.length || buckets.length)
    lines.push(
      line(
        'SQS queues and S3 buckets',
        `${plural(queues.length, 'queue')}, ${plural(buckets.length, 'bucket')}: no requests, no storage at zero traffic`,
        0,
      ),
    );

  const unpriced = new Map<string, number>();
  for (const [, r] of resources)
    if (!priced.has(r.Type)) unpriced.set(r.Type, (unpriced.get(r.Type) ?? 0) + 1);
  const unknown = [...unpriced.keys()].filter((t) => !PAY_PER_USE.has(t));
  if (unknown.length)
    throw new Error(
      `idleCostPerMonth: no idle price known for ${unknown.join(', ')}; add it to bench/cost.ts`,
    );
  if (unpriced.size)
    lines.push(
      line(
        'Pay-per-use resources',
        [...unpriced].map(([t, n]) => `${n} ${t.replace(/^AWS::/, '')}`).join(', ') +
          ': no charge without traffic',
        0,
      ),
    );

  return { usdPerMonth: round(lines.reduce((s, l) => s + l.usd, 0)), lines };
}

// ---------------------------------------------------------------------------------------------
// Agents' OAuth through Cognito (issue 22, `-c mcpOAuth=cognito`)

export interface CognitoM2mOptions {
  /** Client-credentials app clients (one per agent). */
  clients: number;
  /**
   * Tokens each client gets a month. An agent that keeps its token for its lifetime (1 h, the
   * deployed validity and the verifier's cap) and runs all month asks for 720; one that asks per
   * call pays per call.
   */
  tokensPerClientPerMonth: number;
}

/** What Cognito bills for agents' tokens a month (first price tier; the gateway's own side is unchanged). */
export function cognitoM2mCostPerMonth(options: CognitoM2mOptions): IdleCost {
  const P = PRICES.cognito;
  const tokens = options.clients * options.tokensPerClientPerMonth;
  const lines = [
    line(
      'Cognito M2M app clients',
      `${plural(options.clients, 'client')} × ${usd(P.m2mAppClientMonth)}/month`,
      options.clients * P.m2mAppClientMonth,
    ),
    line(
      'Cognito token requests',
      `${num(options.clients)} × ${num(options.tokensPerClientPerMonth)} = ${num(tokens)} tokens × ${usd(P.m2mPerThousandTokenRequests)}/1,000`,
      (tokens / 1000) * P.m2mPerThousandTokenRequests,
    ),
    line(
      'Verifying a token on /mcp',
      "in the mcp Lambda's request (a signature check, the pool's JWKS cached 10 min): no request of its own",
      0,
    ),
  ];
  return { usdPerMonth: round(lines.reduce((s, l) => s + l.usd, 0)), lines };
}

// ---------------------------------------------------------------------------------------------
// The archive's Merkle log (issue 23)

export interface ArchiveLogOptions {
  /** Tenants with new entries in every archiver run (the worst case: a run every period). */
  activeTenants: number;
  /** Tenants with an archive but no new entries (each run only checks what it published). */
  idleTenants: number;
  /** Archiver runs a month. Default 8,640 (the default rate, every 5 minutes). */
  runsPerMonth?: number;
  /** Entries archived a month per active tenant (one full tile per 256, plus one per 65,536, …). */
  entriesPerMonth?: number;
  /** Months every object is kept (Object Lock retention; default 84, the default 2,555 days). */
  retentionMonths?: number;
}

/**
 * What the log adds to the archive per month, at steady state (every object kept for the whole
 * retention: Object Lock, no expiry). An active tenant's run writes its partial tiles (level 0
 * ≤ 8 KB, level 1 mostly small: 4.5 KB on average, assumed) and its checkpoint (≈ 300 B), each a
 * new object version kept for the retention; full tiles are 8 KB each. Every run, each tenant
 * with an archive reads its checkpoint (1 GET), checks the newest full tile and bundle (2 HEADs,
 * priced as GETs) and reads its checkpoint item once more (1 strongly consistent RRU). The log is
 * under `log/`, which the storage-class transitions leave out: S3 Standard, no 128 KB minimum.
 */
export function archiveLogCostPerMonth(options: ArchiveLogOptions): IdleCost {
  const P = PRICES;
  const runs = options.runsPerMonth ?? 8_640;
  const entries = options.entriesPerMonth ?? 0;
  const retention = options.retentionMonths ?? 84;
  const tenants = options.activeTenants + options.idleTenants;
  const fullTiles = options.activeTenants * (entries / 256 + entries / 65_536);
  const perRunPuts = options.activeTenants * runs * 3; // two partial tiles and the checkpoint
  const puts = perRunPuts + fullTiles;
  const gets = tenants * runs * 3;
  const rru = tenants * runs;
  const gbAddedPerMonth = (options.activeTenants * runs * (4.5 * 1024 + 300) + fullTiles * 8192) / GIB;
  const storedGb = gbAddedPerMonth * retention;
  const lines = [
    line(
      'log PUTs (partial tiles, checkpoint, full tiles)',
      `${num(options.activeTenants)} active tenant(s) × ${num(runs)} runs × 3 + ${num(round(fullTiles))} full tiles = ${num(round(puts))} PUTs × ${price(P.s3.perThousandPuts)}/1k`,
      (puts / 1000) * P.s3.perThousandPuts,
    ),
    line(
      'log checks (checkpoint GET, tile and bundle HEADs)',
      `${num(tenants)} tenant(s) × ${num(runs)} runs × 3 = ${num(gets)} GETs × ${price(P.s3.perThousandGets)}/1k`,
      (gets / 1000) * P.s3.perThousandGets,
    ),
    line(
      'log checkpoint item read',
      `${num(tenants)} tenant(s) × ${num(runs)} runs × 1 RRU = ${num(rru)} RRU × ${price(P.dynamodb.perMillionReadUnits)}/M`,
      (rru / MILLION) * P.dynamodb.perMillionReadUnits,
    ),
    line(
      'log storage (steady state, S3 Standard)',
      `${num(round(gbAddedPerMonth))} GB a month kept ${retention} months = ${num(round(storedGb))} GB × ${price(P.s3.storagePerGbMonth)}/GB-month`,
      storedGb * P.s3.storagePerGbMonth,
    ),
  ];
  return { usdPerMonth: round(lines.reduce((a, l) => a + l.usd, 0)), lines };
}

// ---------------------------------------------------------------------------------------------
// Tables and the command line

/** A cost table as text: item, arithmetic, USD, and the total. */
export function formatCostTable(
  title: string,
  lines: readonly CostLine[],
  total: number,
  unit: string,
): string {
  const width = Math.max(...lines.map((l) => l.item.length), 5);
  const rows = lines.map((l) => `  ${l.item.padEnd(width)}  ${l.arithmetic}`);
  return [title, ...rows, `  ${'TOTAL'.padEnd(width)}  ${usd(total)} ${unit}`].join('\n');
}

/**
 * The current app's templates, synthesized in-process without bundling the Lambdas (the same
 * `aws:cdk:bundling-stacks: []` context the infra tests use). Loads aws-cdk-lib only when called.
 */
export async function synthesizeTemplates(
  props: import('../lib/openclause.js').OpenClauseProps = {},
): Promise<object[]> {
  const [{ App }, { Template }, { createOpenClause }] = await Promise.all([
    import('aws-cdk-lib'),
    import('aws-cdk-lib/assertions'),
    import('../lib/openclause.js'),
  ]);
  // Template.fromStack synthesizes into a folder of its own: make it one that is removed after.
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'oc-cost-'));
  try {
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
    const stacks = createOpenClause(app, props);
    return [Template.fromStack(stacks.data).toJSON(), Template.fromStack(stacks.app).toJSON()];
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/**
 * The witness stack's template (lib/witness-stack.ts), priced apart: it is not part of the default
 * deployment, and in production it runs in another account. A placeholder log vkey stands in.
 */
export async function synthesizeWitnessTemplate(): Promise<object> {
  const [{ App }, { Template }, { OcWitnessStack, WITNESS_STACK }] = await Promise.all([
    import('aws-cdk-lib'),
    import('aws-cdk-lib/assertions'),
    import('../lib/witness-stack.js'),
  ]);
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'oc-cost-'));
  try {
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new OcWitnessStack(app, WITNESS_STACK, {
      witnessName: 'witness.example/oc',
      logs: ['OpenClauseData+00000000+AQ=='],
    });
    return Template.fromStack(stack).toJSON();
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** The `*.template.json` files of a cloud assembly folder (what `npm run synth` wrote). */
export function readTemplates(dir: string): object[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.template.json'))
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as object);
}

async function main(argv: string[]): Promise<void> {
  const from = argv.indexOf('--from');
  const templates = from >= 0 ? readTemplates(argv[from + 1] ?? 'cdk.out') : await synthesizeTemplates();
  const idle = idleCostPerMonth(templates);
  console.log(
    formatCostTable(
      `Idle cost per month, zero traffic (us-east-1 list prices, ${PRICES.asOf})`,
      idle.lines,
      idle.usdPerMonth,
      'per month',
    ),
  );
  // A rotating customer key bills its first two yearly rotations ($1 a month each, then capped):
  // the goal (≤ $5, issue 26) holds only if it holds from year 3 too.
  const year3 = (t: object[]) => idleCostPerMonth(t, { keyRotations: PRICES.kms.maxBilledRotations });
  const rotated = year3(templates);
  console.log(
    `  From year 3 (every rotating key rotated twice)  ${usd(rotated.usdPerMonth)} per month (${usd(rotated.usdPerMonth - idle.usdPerMonth)} more than year 1)`,
  );
  // The context options that change the idle cost (issue 26): what each adds or saves, in year 1
  // and from year 3, and the line it changes.
  const delta = (a: number, b: number) => `${a >= b ? '+' : '-'}${usd(Math.abs(a - b))}`;
  if (from < 0)
    for (const [title, props, item] of [
      [
        '-c errorAlarms=per-function (one Lambda error alarm per function)',
        { errorAlarms: 'per-function' },
        'CloudWatch alarms',
      ],
      [
        '-c secretStore=secretsmanager (credentials as Secrets Manager secrets)',
        { secretStore: 'secretsmanager' },
        'Secrets Manager secrets',
      ],
      [
        '-c tableKey=customer (a customer-managed rotating table key, also on the archive and the alarm topic)',
        { tableKey: 'customer' },
        'KMS customer-managed keys',
      ],
    ] as const) {
      const optionTemplates = await synthesizeTemplates(props);
      const option = idleCostPerMonth(optionTemplates);
      const option3 = year3(optionTemplates);
      console.log(
        formatCostTable(
          `With ${title}, idle per month: ${delta(option.usdPerMonth, idle.usdPerMonth)} against the default in year 1, ${delta(option3.usdPerMonth, rotated.usdPerMonth)} from year 3 (${usd(option3.usdPerMonth)})`,
          option.lines.filter((l) => l.item === item),
          option.usdPerMonth,
          'per month',
        ),
      );
    }
  // Agents' OAuth (issue 22): nothing by default; `-c mcpOAuth=cognito` with its one default client.
  if (from < 0) {
    const withCognito = idleCostPerMonth(await synthesizeTemplates({ mcpOAuth: 'cognito' }));
    console.log(
      formatCostTable(
        `With -c mcpOAuth=cognito (one agent client), idle per month: +${usd(withCognito.usdPerMonth - idle.usdPerMonth)} over the default`,
        withCognito.lines.filter((l) => l.item.startsWith('Cognito')),
        withCognito.usdPerMonth - idle.usdPerMonth,
        'per month more',
      ),
    );
  }
  for (const [title, o] of [
    ['one agent renewing its 1 h token all month', { clients: 1, tokensPerClientPerMonth: 720 }],
    ['ten agents, a token an hour each', { clients: 10, tokensPerClientPerMonth: 720 }],
    ['one agent asking a token per call, 100,000 calls', { clients: 1, tokensPerClientPerMonth: 100_000 }],
  ] as const) {
    const c = cognitoM2mCostPerMonth(o);
    console.log(formatCostTable(`Cognito M2M per month: ${title}`, c.lines, c.usdPerMonth, 'per month'));
  }
  // The witness stack (issue 23), priced apart from the default deployment.
  const witness = idleCostPerMonth([await synthesizeWitnessTemplate()]);
  console.log(
    formatCostTable(
      'Witness stack (OcWitness) idle per month',
      witness.lines,
      witness.usdPerMonth,
      'per month',
    ),
  );
  // The Merkle log (issue 23): nothing at zero traffic and no tenant; per idle and active tenant.
  for (const [title, o] of [
    ['one tenant with an archive, idle', { activeTenants: 0, idleTenants: 1 }],
    [
      'one tenant archiving every run, 1,000,000 entries a month',
      { activeTenants: 1, idleTenants: 0, entriesPerMonth: 1_000_000 },
    ],
  ] as const) {
    const c = archiveLogCostPerMonth(o);
    console.log(formatCostTable(`Archive log per month: ${title}`, c.lines, c.usdPerMonth, 'per month'));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

/** The cost model (bench/cost.ts): known-answer arithmetic, and the idle cost of the real app. */
import {
  PRICES,
  archiveLogCostPerMonth,
  cognitoM2mCostPerMonth,
  costPerMillion,
  dynamoUnits,
  idleCostPerMonth,
  runsPerMonth,
  usd,
} from '../../bench/cost.js';
import { synthesize } from '../infra/synth.js';

const close = (actual: number, expected: number) => expect(actual).toBeCloseTo(expected, 9);
const lineOf = (lines: Array<{ item: string; arithmetic: string; usd: number }>, item: string | RegExp) => {
  const found = lines.filter((l) => (typeof item === 'string' ? l.item === item : item.test(l.item)));
  expect(found).toHaveLength(1);
  return found[0]!;
};

describe('PRICES', () => {
  test('us-east-1 list prices, late 2025', () => {
    expect(PRICES.httpApi.perMillionRequests).toBe(1.0);
    expect(PRICES.lambda.arm64PerGbSecond).toBe(0.0000133334);
    expect(PRICES.lambda.perMillionRequests).toBe(0.2);
    expect(PRICES.dynamodb.perMillionWriteUnits).toBe(0.625);
    expect(PRICES.dynamodb.perMillionReadUnits).toBe(0.125);
    expect(PRICES.kms.perKeyMonth).toBe(1);
    expect(PRICES.kms.per10kRequests).toBe(0.03);
    expect(PRICES.sqs.perMillionRequests).toBe(0.4);
    expect(PRICES.cloudwatch.alarmMetricMonth).toBe(0.1);
    expect(PRICES.cloudwatch.dashboardMonth).toBe(3);
    expect(PRICES.secretsManager.perSecretMonth).toBe(0.4);
    expect(PRICES.cloudwatch.logsIngestionPerGb).toBe(0.5);
  });

  test('Cognito machine-to-machine: per app client and per 1,000 tokens', () => {
    expect(PRICES.cognito.m2mAppClientMonth).toBe(6);
    expect(PRICES.cognito.m2mPerThousandTokenRequests).toBe(2.25);
  });

  test('usd() formats dollars and fractions of a cent', () => {
    expect(usd(7.5)).toBe('$7.50');
    expect(usd(0.8)).toBe('$0.80');
    expect(usd(0.133334)).toBe('$0.1333');
    expect(usd(0.00864)).toBe('$0.00864');
    expect(usd(0)).toBe('$0.00');
  });
});

describe('dynamoUnits', () => {
  test('a transactional write of 3 items of 1 KB is 6 WRU', () => {
    expect(dynamoUnits([{ op: 'TransactWriteItems', items: 3, itemKb: 1 }])).toEqual({
      writeUnits: 6,
      readUnits: 0,
    });
  });

  test('a 5 KB strongly consistent GetItem is 2 RRU; eventually consistent, 1', () => {
    expect(dynamoUnits([{ op: 'GetItem', items: 1, itemKb: 5, consistent: true }]).readUnits).toBe(2);
    expect(dynamoUnits([{ op: 'GetItem', items: 1, itemKb: 5 }]).readUnits).toBe(1);
  });

  test('writes round each item up to 1 KB, and GSI writes cost the item again', () => {
    expect(dynamoUnits([{ op: 'PutItem', items: 1, itemKb: 1.5 }]).writeUnits).toBe(2);
    expect(dynamoUnits([{ op: 'PutItem', items: 1, itemKb: 1.5, gsiWrites: 1 }]).writeUnits).toBe(4);
    // Transactional base write ×2; the index write is a standard one.
    expect(dynamoUnits([{ op: 'TransactWriteItems', items: 1, itemKb: 0.3, gsiWrites: 1 }]).writeUnits).toBe(
      3,
    );
    // An update that moves the item within the index: delete + put in the GSI.
    expect(dynamoUnits([{ op: 'UpdateItem', items: 1, itemKb: 2.1, gsiWrites: 2 }]).writeUnits).toBe(9);
    expect(dynamoUnits([{ op: 'BatchWriteItem', items: 25, itemKb: 0.5 }]).writeUnits).toBe(25);
  });

  test('a Query sums its items before rounding to 4 KB; an empty one still costs a block', () => {
    expect(dynamoUnits([{ op: 'Query', items: 10, itemKb: 1 }]).readUnits).toBe(1.5);
    expect(dynamoUnits([{ op: 'Query', items: 10, itemKb: 1, consistent: true }]).readUnits).toBe(3);
    expect(dynamoUnits([{ op: 'Query', items: 0, itemKb: 0 }]).readUnits).toBe(0.5);
  });

  test('transactional and batch reads', () => {
    expect(dynamoUnits([{ op: 'TransactGetItems', items: 2, itemKb: 1 }]).readUnits).toBe(4);
    expect(dynamoUnits([{ op: 'TransactGetItems', items: 1, itemKb: 4.5 }]).readUnits).toBe(4);
    expect(dynamoUnits([{ op: 'BatchGetItem', items: 3, itemKb: 1, consistent: true }]).readUnits).toBe(3);
  });

  test('sums a mix of requests', () => {
    expect(
      dynamoUnits([
        { op: 'GetItem', items: 1, itemKb: 1, consistent: true },
        { op: 'TransactWriteItems', items: 2, itemKb: 2, gsiWrites: 1 },
        { op: 'Query', items: 3, itemKb: 2 },
      ]),
    ).toEqual({ writeUnits: 12, readUnits: 2 });
  });

  test('refuses negative counts', () => {
    expect(() => dynamoUnits([{ op: 'GetItem', items: -1, itemKb: 1 }])).toThrow(/bad request/);
  });
});

describe('costPerMillion', () => {
  test('the Lambda line for 512 MB × 20 ms', () => {
    const r = costPerMillion({
      path: 'allow',
      httpRequests: 0,
      lambdaInvocations: [{ fn: 'submit-toolcall', memoryMb: 512, durationMs: 20 }],
      dynamo: { writeUnits: 0, readUnits: 0 },
      xrayTraces: 0,
    });
    const l = lineOf(r.lines, 'Lambda submit-toolcall duration');
    // 0.5 GB × 0.020 s = 0.01 GB-s per call; × 1M calls × $0.0000133334.
    close(l.usd, 0.133334);
    expect(l.arithmetic).toBe('512 MB × 20 ms = 0.01 GB-s × 1M × $0.0000133334/GB-s = $0.1333');
  });

  test('each invocation is billed rounded up to the next 1 ms', () => {
    const r = costPerMillion({
      path: 'p',
      httpRequests: 0,
      lambdaInvocations: [{ fn: 'f', memoryMb: 1024, durationMs: 20.2 }],
      dynamo: { writeUnits: 0, readUnits: 0 },
    });
    const l = lineOf(r.lines, 'Lambda f duration');
    close(l.usd, 1 * 0.021 * 1e6 * 0.0000133334);
    expect(l.arithmetic).toContain('20.2 ms billed as 21');
  });

  test('a whole path, line by line, with the total', () => {
    const r = costPerMillion({
      path: 'allow',
      httpRequests: 1,
      lambdaInvocations: [
        { fn: 'authorizer', memoryMb: 512, durationMs: 5, traced: true },
        { fn: 'submit-toolcall', memoryMb: 512, durationMs: 40, traced: true },
      ],
      dynamo: { writeUnits: 12, readUnits: 4 },
      sqsRequests: 1,
      logBytes: 1024,
    });
    expect(r.path).toBe('allow');
    expect(lineOf(r.lines, 'DynamoDB writes').arithmetic).toBe('12 WRU × $0.625/M = $7.50');
    expect(lineOf(r.lines, 'DynamoDB reads').arithmetic).toBe('4 RRU × $0.125/M = $0.50');
    expect(lineOf(r.lines, 'HTTP API requests').arithmetic).toBe('1 request × $1.00/M = $1.00');
    expect(lineOf(r.lines, 'Lambda requests').arithmetic).toBe(
      'authorizer 1 + submit-toolcall 1 = 2 invocations × $0.20/M = $0.40',
    );
    expect(lineOf(r.lines, 'KMS requests').usd).toBe(0);
    expect(lineOf(r.lines, 'KMS requests').arithmetic).toMatch(/caches the table key/);
    close(lineOf(r.lines, 'SQS requests').usd, 0.4);
    close(lineOf(r.lines, 'X-Ray traces').usd, 0.1 * 5); // 2 invocations × 5% × $5/M
    close(lineOf(r.lines, 'CloudWatch Logs ingestion').usd, ((1024 * 1e6) / 1024 ** 3) * 0.5);
    const lambda = 0.5 * (0.005 + 0.04) * 1e6 * 0.0000133334;
    const expected = 1 + 0.4 + lambda + 7.5 + 0.5 + 0.4 + 0.5 + ((1024 * 1e6) / 1024 ** 3) * 0.5;
    close(r.usdPerMillion, expected);
    close(
      r.lines.reduce((s, l) => s + l.usd, 0),
      r.usdPerMillion,
    );
  });

  test('a batch consumer pays its share per call; untraced functions record no traces', () => {
    const r = costPerMillion({
      path: 'allow',
      httpRequests: 1,
      lambdaInvocations: [
        { fn: 'submit-toolcall', memoryMb: 512, durationMs: 10 },
        { fn: 'sequencer', memoryMb: 512, durationMs: 20, perCall: 0.25 },
      ],
      dynamo: { writeUnits: 0, readUnits: 0 },
    });
    expect(lineOf(r.lines, 'Lambda requests').arithmetic).toBe(
      'submit-toolcall 1 + sequencer 0.25 = 1.25 invocations × $0.20/M = $0.25',
    );
    close(lineOf(r.lines, 'Lambda sequencer duration').usd, 0.5 * 0.02 * 0.25 * 1e6 * 0.0000133334);
    expect(lineOf(r.lines, 'Lambda sequencer duration').arithmetic).toContain('× 0.25 per call');
    expect(r.lines.find((l) => l.item === 'X-Ray traces')).toBeUndefined();
  });

  test('counts from dynamoUnits feed straight in', () => {
    const dynamo = dynamoUnits([{ op: 'TransactWriteItems', items: 3, itemKb: 1 }]);
    const r = costPerMillion({ path: 'p', httpRequests: 0, lambdaInvocations: [], dynamo });
    close(lineOf(r.lines, 'DynamoDB writes').usd, 6 * 0.625);
  });
});

describe('idleCostPerMonth', () => {
  test('runsPerMonth of rate expressions (30-day month)', () => {
    expect(runsPerMonth('rate(1 minute)')).toBe(43_200);
    expect(runsPerMonth('rate(5 minutes)')).toBe(8_640);
    expect(runsPerMonth('rate(2 hours)')).toBe(360);
    expect(runsPerMonth('rate(1 day)')).toBe(30);
    expect(runsPerMonth('cron(0 12 * * ? *)')).toBeUndefined();
  });

  const tiny = {
    Resources: {
      Key: { Type: 'AWS::KMS::Key', Properties: { EnableKeyRotation: true } },
      S1: { Type: 'AWS::SecretsManager::Secret', Properties: {} },
      S2: { Type: 'AWS::SecretsManager::Secret', Properties: {} },
      Simple: { Type: 'AWS::CloudWatch::Alarm', Properties: { MetricName: 'Errors', Period: 300 } },
      MetricMath: {
        Type: 'AWS::CloudWatch::Alarm',
        Properties: {
          Metrics: [
            { Id: 'e', Expression: 'a+b+c' },
            { Id: 'a', MetricStat: { Period: 60 } },
            { Id: 'b', MetricStat: { Period: 60 } },
            { Id: 'c', MetricStat: { Period: 60 } },
          ],
        },
      },
      D1: { Type: 'AWS::CloudWatch::Dashboard', Properties: { DashboardBody: '{"widgets":[]}' } },
      D2: { Type: 'AWS::CloudWatch::Dashboard', Properties: { DashboardBody: '{"widgets":[]}' } },
      D3: { Type: 'AWS::CloudWatch::Dashboard', Properties: { DashboardBody: '{"widgets":[]}' } },
      D4: { Type: 'AWS::CloudWatch::Dashboard', Properties: { DashboardBody: '{"widgets":[]}' } },
      Fn: {
        Type: 'AWS::Lambda::Function',
        Properties: { Description: 'sweeper', MemorySize: 1024, Architectures: ['arm64'] },
      },
      Rule: {
        Type: 'AWS::Events::Rule',
        Properties: {
          ScheduleExpression: 'rate(5 minutes)',
          Targets: [{ Arn: { 'Fn::GetAtt': ['Fn', 'Arn'] } }],
        },
      },
      Queue: { Type: 'AWS::SQS::Queue', Properties: {} },
      Table: {
        Type: 'AWS::DynamoDB::Table',
        Properties: { PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } },
      },
    },
  };

  test('a hand-written template, item by item', () => {
    const r = idleCostPerMonth([tiny], { readUnitsPerRun: 2, logBytesPerRun: 0 });
    close(lineOf(r.lines, 'KMS customer-managed keys').usd, 1);
    close(lineOf(r.lines, 'Secrets Manager secrets').usd, 0.8);
    const alarms = lineOf(r.lines, 'CloudWatch alarms');
    expect(alarms.arithmetic).toBe('2 alarms: 4 standard alarm metrics × $0.10 = $0.40'); // 1 + 3 (metric math)
    const dashboards = lineOf(r.lines, 'CloudWatch dashboards');
    close(dashboards.usd, 3); // 4 dashboards, 3 free
    // rate(5 minutes): 8,640 runs × 1 GB × 50 ms = 432 GB-s.
    close(lineOf(r.lines, 'sweeper runs (Lambda requests)').usd, 8640 * 0.2e-6);
    close(lineOf(r.lines, 'sweeper duration').usd, 432 * 0.0000133334);
    close(lineOf(r.lines, 'sweeper DynamoDB reads').usd, 17_280 * 0.125e-6);
    expect(r.lines.some((l) => /X-Ray|ColdStart|logs/.test(l.item))).toBe(false); // no tracing, no Powertools, 0 B
    close(lineOf(r.lines, 'DynamoDB tables (empty)').usd, 0);
    close(r.usdPerMonth, 1 + 0.8 + 0.4 + 3 + 8640 * 0.2e-6 + 432 * 0.0000133334 + 17_280 * 0.125e-6);
  });

  test('options: key rotations, free dashboards', () => {
    const r = idleCostPerMonth([tiny], { keyRotations: 5, freeDashboards: 0 });
    close(lineOf(r.lines, 'KMS customer-managed keys').usd, 3); // rotations billed up to 2
    close(lineOf(r.lines, 'CloudWatch dashboards').usd, 12);
  });

  test('a resource type with no known idle price is refused, not priced at $0', () => {
    expect(() => idleCostPerMonth([{ Resources: { X: { Type: 'AWS::EC2::VPCEndpoint' } } }])).toThrow(
      /no idle price known for AWS::EC2::VPCEndpoint/,
    );
    const nat = idleCostPerMonth([{ Resources: { N: { Type: 'AWS::EC2::NatGateway' } } }]);
    close(nat.usdPerMonth, 0.045 * 730);
  });

  describe('the current app (synthesized, unbundled)', () => {
    let templates: Array<Record<string, any>>;
    let r: ReturnType<typeof idleCostPerMonth>;
    beforeAll(() => {
      const s = synthesize();
      templates = [s.dataTemplate.toJSON(), s.appTemplate.toJSON()];
      r = idleCostPerMonth(templates);
    });

    const count = (type: string) =>
      templates.reduce(
        (n, t) => n + Object.values<any>(t.Resources).filter((x) => x.Type === type).length,
        0,
      );

    test('prices every key, secret and alarm the templates declare', () => {
      close(lineOf(r.lines, 'KMS customer-managed keys').usd, count('AWS::KMS::Key') * 1);
      // Credentials are SSM SecureStrings by default (no monthly charge): no secret to price.
      expect(count('AWS::SecretsManager::Secret')).toBe(0);
      expect(r.lines.filter((l) => l.item === 'Secrets Manager secrets')).toEqual([]);
      expect(lineOf(r.lines, 'CloudWatch alarms').arithmetic).toContain(
        `${count('AWS::CloudWatch::Alarm')} alarms`,
      );
      expect(lineOf(r.lines, 'CloudWatch dashboards').arithmetic).toMatch(/first 3 free per account/);
    });

    test('keeps both dashboards within the 50 metrics of a free one (a 51st costs $3 a month)', () => {
      const line = lineOf(r.lines, 'CloudWatch dashboards');
      const counts = /\((\d+), (\d+) metrics;/.exec(line.arithmetic);
      expect(counts).not.toBeNull();
      expect(Number(counts![1])).toBeLessThanOrEqual(50);
      expect(Number(counts![2])).toBeLessThanOrEqual(50);
      close(line.usd, 0);
    });

    test('lists the alarm topic (and its email subscription) as free without traffic', () => {
      expect(lineOf(r.lines, 'Pay-per-use resources').arithmetic).toContain('1 SNS::Topic');
      const withEmail = synthesize({ alarmEmail: 'ops@example.com' });
      const e = idleCostPerMonth([withEmail.dataTemplate.toJSON(), withEmail.appTemplate.toJSON()]);
      expect(lineOf(e.lines, 'Pay-per-use resources').arithmetic).toContain('1 SNS::Subscription');
      close(e.usdPerMonth, r.usdPerMonth);
    });

    test('the every-minute expire-approvals run is fixed cost', () => {
      expect(lineOf(r.lines, 'expire-approvals runs (Lambda requests)').arithmetic).toContain(
        '43,200 runs/month',
      );
      expect(lineOf(r.lines, 'expire-approvals duration').arithmetic).toContain('512 MB × 50 ms');
      expect(lineOf(r.lines, 'expire-approvals DynamoDB reads').usd).toBeGreaterThan(0);
    });

    test("has no Cognito by default: agents' OAuth (issue 22) adds nothing idle unless deployed", () => {
      expect(count('AWS::Cognito::UserPool') + count('AWS::Cognito::UserPoolClient')).toBe(0);
      expect(r.lines.filter((l) => l.item.startsWith('Cognito'))).toEqual([]);
    });

    test('adds up', () => {
      expect(r.usdPerMonth).toBeGreaterThan(0);
      close(
        r.lines.reduce((s, l) => s + l.usd, 0),
        r.usdPerMonth,
      );
    });

    test('meets the idle goal: at most $5 a month for the default deployment (issue 26)', () => {
      // The signing key ($1), the alarms (one metric each), SQS polling and the schedules' runs.
      expect(r.usdPerMonth).toBeLessThanOrEqual(5);
      close(lineOf(r.lines, 'KMS customer-managed keys').usd, 1);
      // 5xx, the account's Lambda errors, sealing lag, parked records, notifications failed for
      // good, 6 DLQs, 5 archive alarms: 16, none per function (functions added later add none).
      expect(lineOf(r.lines, 'CloudWatch alarms').arithmetic).toContain('16 standard alarm metrics');
    });

    test('meets it every year, not only the first: no key of the default rotates at a charge', () => {
      // A rotating customer key bills its first two yearly rotations: the year-3 figure is the
      // one that lasts (with the customer table key it was $2 more, over $5).
      const year3 = idleCostPerMonth(templates, { keyRotations: 2 });
      expect(year3.usdPerMonth).toBeLessThanOrEqual(5);
      close(year3.usdPerMonth, r.usdPerMonth);
    });

    test('prices the costlier options: per-function error alarms, Secrets Manager, the customer table key', () => {
      const o = synthesize({
        errorAlarms: 'per-function',
        secretStore: 'secretsmanager',
        tableKey: 'customer',
      });
      const oTemplates = [o.dataTemplate.toJSON(), o.appTemplate.toJSON()];
      const options = idleCostPerMonth(oTemplates);
      // The connectors', the Slack signing secret, one webhook secret (policy/tenants.json).
      close(lineOf(options.lines, 'Secrets Manager secrets').usd, 4 * 0.4);
      const alarms = /(\d+) standard alarm metrics/.exec(
        lineOf(options.lines, 'CloudWatch alarms').arithmetic,
      );
      // Every Lambda but the two notification ones, instead of the one account alarm.
      expect(Number(alarms![1])).toBeGreaterThan(16 + 15);
      // The table key: $1 a month in year 1, and $1 more for each of its first two rotations.
      const options3 = idleCostPerMonth(oTemplates, { keyRotations: 2 });
      const rest = 4 * 0.4 + (Number(alarms![1]) - 16) * 0.1;
      close(options.usdPerMonth - r.usdPerMonth, rest + 1);
      close(options3.usdPerMonth - r.usdPerMonth, rest + 3);
    });
  });
});

describe('Cognito for agents (issue 22, -c mcpOAuth=cognito)', () => {
  const pool = {
    Resources: {
      Pool: { Type: 'AWS::Cognito::UserPool', Properties: {} },
      Domain: { Type: 'AWS::Cognito::UserPoolDomain', Properties: {} },
      Server: { Type: 'AWS::Cognito::UserPoolResourceServer', Properties: {} },
      AgentA: {
        Type: 'AWS::Cognito::UserPoolClient',
        Properties: { AllowedOAuthFlows: ['client_credentials'] },
      },
      AgentB: {
        Type: 'AWS::Cognito::UserPoolClient',
        Properties: { AllowedOAuthFlows: ['client_credentials'] },
      },
      Console: { Type: 'AWS::Cognito::UserPoolClient', Properties: { AllowedOAuthFlows: ['code'] } },
    },
  };

  test('idle: each client-credentials app client, nothing else of the pool', () => {
    const r = idleCostPerMonth([pool]);
    close(r.usdPerMonth, 12);
    close(lineOf(r.lines, 'Cognito M2M app clients').usd, 12);
    expect(lineOf(r.lines, 'Cognito user pools').arithmetic).toContain('1 user sign-in client');
    close(lineOf(r.lines, 'Cognito user pools').usd, 0);
  });

  test('in use: one agent renewing an hour-long token all month, and one asking per call', () => {
    const hourly = cognitoM2mCostPerMonth({ clients: 1, tokensPerClientPerMonth: 720 });
    close(hourly.usdPerMonth, 6 + 1.62);
    expect(lineOf(hourly.lines, 'Cognito token requests').arithmetic).toBe(
      '1 × 720 = 720 tokens × $2.25/1,000 = $1.62',
    );
    close(cognitoM2mCostPerMonth({ clients: 1, tokensPerClientPerMonth: 100_000 }).usdPerMonth, 6 + 225);
  });
});

describe('archiveLogCostPerMonth (issue 23)', () => {
  test('an idle tenant: three reads of S3 and one of DynamoDB per run, nothing written', () => {
    const r = archiveLogCostPerMonth({ activeTenants: 0, idleTenants: 1 });
    close(r.usdPerMonth, ((8640 * 3) / 1000) * 0.0004 + (8640 / 1e6) * 0.125);
    expect(lineOf(r.lines, /^log PUTs/).usd).toBe(0);
    expect(lineOf(r.lines, /^log storage/).usd).toBe(0);
  });

  test('an active tenant: three PUTs per run plus its full tiles, every version kept for the retention', () => {
    const r = archiveLogCostPerMonth({
      activeTenants: 1,
      idleTenants: 0,
      entriesPerMonth: 65_536,
      retentionMonths: 1,
    });
    const tiles = 65_536 / 256 + 1;
    close(lineOf(r.lines, /^log PUTs/).usd, ((8640 * 3 + tiles) / 1000) * 0.005);
    close(
      lineOf(r.lines, /^log storage/).usd,
      ((8640 * (4.5 * 1024 + 300) + tiles * 8192) / 1024 ** 3) * 0.023,
    );
  });
});

import { Runtime } from 'aws-cdk-lib/aws-lambda';
import { Validations, type Stack } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks, type NagPack } from 'cdk-nag';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import {
  CONNECTOR_INVOKERS,
  CONNECTORS,
  ENV,
  NOTIFICATIONS,
  OBSERVABILITY,
  FUNCTION_URLS,
  ROUTES,
  lambdaOf,
  SCHEDULES,
  STACKS,
  STREAM_CONSUMERS,
  TABLE,
  ARCHIVER,
  RECORDS_PARKED_METRIC,
} from '../../functions/shared/constants.js';
import { UPSTREAM_CONNECTOR } from '../../functions/core/upstream-types.js';
import { LAMBDA_POLICY_DIR, NODE_RUNTIME, constructIdFor } from '../../lib/function.js';
import { asArray, lambdaFor, roleOf, statementsOfRole, synthesize, type Synthesized } from './synth.js';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

const ALL_HANDLERS = [
  // One Lambda per handler (the console's two routes share one), plus the Function URLs'.
  ...new Set(ROUTES.map((r) => lambdaOf(r.handler))),
  ...FUNCTION_URLS.map((f) => f.handler),
  ...CONNECTORS.map((c) => `connector-${c}`),
  `connector-${UPSTREAM_CONNECTOR}`,
  ...STREAM_CONSUMERS.map((c) => c.handler),
  ...SCHEDULES.map((c) => c.handler),
  ARCHIVER.handler,
  NOTIFICATIONS.deliveryHandler,
];
/** The notification functions: alarmed through their DLQs and the failure metric instead of Lambda Errors. */
const NOTIFICATION_HANDLERS: string[] = ['outbox', NOTIFICATIONS.deliveryHandler];
/** Functions that read an SSM parameter of their own (credentials, upstream credentials). */
const CREDENTIAL_READERS: string[] = [
  ...CONNECTORS.map((c) => `connector-${c}`),
  `connector-${UPSTREAM_CONNECTOR}`,
  'slack-interactions',
  NOTIFICATIONS.deliveryHandler,
];
/** Every ENV name of approver JWT settings. */
const JWT_ENV = [
  ENV.jwtMode,
  ENV.devJwtSecret,
  ENV.jwtIssuer,
  ENV.jwtAudience,
  ENV.jwtJwksUrl,
  ENV.jwtTenantClaim,
];

describe('the stateful stack', () => {
  it('keeps one table with generic keys, on-demand, PITR, TTL, a NEW_IMAGE stream and deletion protection', () => {
    s.dataTemplate.resourceCountIs('AWS::DynamoDB::Table', 1);
    s.dataTemplate.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        KeySchema: [
          { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
        StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
        DeletionProtectionEnabled: true,
      }),
    });
  });

  it('encrypts the table with the AWS-managed aws/dynamodb key by default, and creates no table key', () => {
    // KMS encryption under aws/dynamodb: no key id, no monthly fee, rotated by AWS, logged in
    // CloudTrail (a customer key with -c tableKey=customer: test/infra/table-key.test.ts).
    const table = Object.values(s.dataTemplate.findResources('AWS::DynamoDB::Table'))[0]!;
    expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS' });
    // The one KMS key left is the checkpoint signing key (asymmetric: never rotated, never billed for it).
    const keys = Object.values(s.dataTemplate.findResources('AWS::KMS::Key'));
    expect(keys.map((k) => k.Properties.KeyUsage)).toEqual(['SIGN_VERIFY']);
    expect(keys[0]!.Properties.EnableKeyRotation).toBeUndefined();
    s.appTemplate.resourceCountIs('AWS::KMS::Key', 0);
  });

  it('has the listing GSI gsi1 on gsi1pk/gsi1sk', () => {
    s.dataTemplate.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: [
        {
          IndexName: TABLE.gsi1.name,
          KeySchema: [
            { AttributeName: TABLE.gsi1.partitionKey, KeyType: 'HASH' },
            { AttributeName: TABLE.gsi1.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...TABLE.gsi1.projectedAttributes] },
        },
      ],
    });
  });
});

describe('the HTTP API', () => {
  it('is one HTTP API without a Lambda authorizer: each route authenticates in its own Lambda', () => {
    s.appTemplate.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    s.appTemplate.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    s.appTemplate.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
  });

  it.each(ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))(
    'routes %s to its own Lambda, which authenticates the caller',
    (_key, route) => {
      const fn = lambdaFor(s.appTemplate, route.handler);
      const integrations = s.appTemplate.findResources('AWS::ApiGatewayV2::Integration', {
        Properties: { IntegrationUri: { 'Fn::GetAtt': [fn.id, 'Arn'] }, PayloadFormatVersion: '2.0' },
      });
      expect(Object.keys(integrations)).toHaveLength(1);
      s.appTemplate.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: `${route.method} ${route.path}`,
        Target: { 'Fn::Join': ['', ['integrations/', { Ref: Object.keys(integrations)[0] }]] },
        AuthorizationType: 'NONE',
      });
    },
  );

  it.each([
    ['POST /v1/toolcalls/{event_id}/execute', 'execute-toolcall'],
    ['GET /v1/approvals', 'list-approvals'],
    ['GET /v1/approvals/{approval_id}', 'get-approval'],
    ['POST /v1/approvals/{approval_id}/approve', 'approve-approval'],
    ['POST /v1/approvals/{approval_id}/deny', 'deny-approval'],
    ['POST /v1/approvals/{approval_id}/edit', 'edit-approval'],
    ['POST /v1/approvals/batch', 'batch-approvals'],
  ])('serves %s with %s', (routeKey, handler) => {
    const fn = lambdaFor(s.appTemplate, handler);
    const [integrationId] = Object.keys(
      s.appTemplate.findResources('AWS::ApiGatewayV2::Integration', {
        Properties: { IntegrationUri: { 'Fn::GetAtt': [fn.id, 'Arn'] } },
      }),
    );
    s.appTemplate.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: routeKey,
      Target: { 'Fn::Join': ['', ['integrations/', { Ref: integrationId }]] },
    });
    // API Gateway may invoke the handler.
    s.appTemplate.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'apigateway.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [fn.id, 'Arn'] },
    });
  });

  it('has exactly the routes of ROUTES', () => {
    s.appTemplate.resourceCountIs('AWS::ApiGatewayV2::Route', ROUTES.length);
  });

  it('logs every request as JSON to a log group with retention and throttles the stage', () => {
    const stage = Object.values(s.appTemplate.findResources('AWS::ApiGatewayV2::Stage'));
    expect(stage).toHaveLength(1);
    const props = stage[0]!.Properties;
    expect(props).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 },
    });
    const format = JSON.parse(props.AccessLogSettings.Format as string) as Record<string, string>;
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      status: '$context.status',
      routeKey: '$context.routeKey',
    });
    const logGroupId = props.AccessLogSettings.DestinationArn['Fn::GetAtt'][0] as string;
    s.appTemplate.hasResource('AWS::Logs::LogGroup', { Properties: { RetentionInDays: 30 } });
    expect(s.appTemplate.findResources('AWS::Logs::LogGroup')[logGroupId]?.Properties.RetentionInDays).toBe(
      30,
    );
  });
});

describe('every Lambda', () => {
  it('uses the newest Node.js runtime aws-cdk-lib knows', () => {
    const newest = Runtime.ALL.filter((r) => /^nodejs\d+\.x$/.test(r.name))
      .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }))
      .at(-1);
    expect(NODE_RUNTIME.name).toBe(newest?.name);
  });

  it.each(ALL_HANDLERS)(
    '%s: arm64, newest runtime, no X-Ray or source maps by default, 512 MB, ESM index.handler, common env, own log group',
    (handler) => {
      const { resource } = lambdaFor(s.appTemplate, handler);
      expect(resource.Properties).toMatchObject({
        Runtime: NODE_RUNTIME.name,
        Architectures: ['arm64'],
        MemorySize: 512,
        Handler: 'index.handler',
        Environment: {
          Variables: expect.objectContaining({
            [ENV.policyDir]: LAMBDA_POLICY_DIR,
            POWERTOOLS_SERVICE_NAME: OBSERVABILITY.serviceName,
            POWERTOOLS_METRICS_NAMESPACE: 'OpenClause',
            POWERTOOLS_TRACE_ENABLED: 'false',
          }),
        },
      });
      expect(resource.Properties.TracingConfig).toBeUndefined();
      expect(resource.Properties.Environment.Variables.NODE_OPTIONS).toBeUndefined();
      expect(resource.Properties.Timeout).toEqual(expect.any(Number));
      const logGroupId = resource.Properties.LoggingConfig.LogGroup.Ref as string;
      expect(s.appTemplate.findResources('AWS::Logs::LogGroup')[logGroupId]?.Properties.RetentionInDays).toBe(
        30,
      );
    },
  );

  it('tracing: true turns on X-Ray active tracing and the Powertools tracer on every Lambda', () => {
    const traced = synthesize({ tracing: true });
    for (const handler of ALL_HANDLERS) {
      const { resource } = lambdaFor(traced.appTemplate, handler);
      expect(resource.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(resource.Properties.Environment.Variables.POWERTOOLS_TRACE_ENABLED).toBe('true');
    }
  });

  it('sourceMaps: true maps stack traces to the sources on every Lambda', () => {
    const mapped = synthesize({ sourceMaps: true });
    for (const handler of ALL_HANDLERS) {
      const { resource } = lambdaFor(mapped.appTemplate, handler);
      expect(resource.Properties.Environment.Variables.NODE_OPTIONS).toBe('--enable-source-maps');
    }
  });

  it('only ships functions the constants name', () => {
    s.appTemplate.resourceCountIs('AWS::Lambda::Function', ALL_HANDLERS.length);
  });
});

describe('table access', () => {
  const tableActions = (handler: string) =>
    statementsOfRole(s.appTemplate, roleOf(lambdaFor(s.appTemplate, handler).resource))
      .flatMap((st) => asArray(st.Action as string | string[]))
      .filter((a) => a.startsWith('dynamodb:'));

  // The console serves files: it reads no table at all (below). A handler with a POST route too
  // (MCP) is a writer.
  // A Lambda that serves routes of other handlers (ROUTE_LAMBDAS) writes if any of them does.
  const writers = new Set(ROUTES.filter((r) => r.method !== 'GET').map((r) => lambdaOf(r.handler)));
  const tableReaders = [
    ...new Set(
      ROUTES.filter(
        (r) => r.method === 'GET' && r.handler !== 'console' && !writers.has(lambdaOf(r.handler)),
      ).map((r) => r.handler),
    ),
  ];

  it.each(tableReaders)('%s can only read', (handler) => {
    const actions = tableActions(handler);
    expect(actions).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:Query']));
    expect(actions.filter((a) => /Put|Update|Delete|Write/.test(a))).toEqual([]);
    // aws/dynamodb is used through DynamoDB alone: no KMS grant (the customer key's: table-key.test.ts).
    const keyActions = statementsOfRole(s.appTemplate, roleOf(lambdaFor(s.appTemplate, handler).resource))
      .flatMap((st) => asArray(st.Action as string | string[]))
      .filter((a) => a.startsWith('kms:'));
    expect(keyActions).toEqual([]);
  });

  it.each([
    ...ROUTES.filter((r) => r.method !== 'GET').map((r) => r.handler),
    'sequencer',
    ...SCHEDULES.map((c) => c.handler),
  ])('%s can write', (handler) => {
    expect(tableActions(handler)).toEqual(
      expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem']),
    );
  });

  it('console can reach no table and is not told one', () => {
    expect(tableActions('console')).toEqual([]);
    const vars = lambdaFor(s.appTemplate, 'console').resource.Properties.Environment.Variables;
    expect(vars[ENV.tableName]).toBeUndefined();
    expect(vars[ENV.consoleDir]).toBe('/var/task/console');
  });

  it('slack-interactions can write (the decision, the replay guard)', () => {
    expect(tableActions('slack-interactions')).toEqual(
      expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem']),
    );
  });

  it.each(ALL_HANDLERS.filter((h) => !h.startsWith('connector-') && h !== 'console'))(
    '%s is told the table name',
    (handler) => {
      const vars = lambdaFor(s.appTemplate, handler).resource.Properties.Environment.Variables;
      expect(vars[ENV.tableName]).toEqual({ 'Fn::ImportValue': expect.stringContaining(STACKS.data) });
    },
  );
});

describe('the MCP state key ring', () => {
  it('is one SSM parameter per stack, named to the MCP function only, which alone may read and create it', () => {
    const mcp = lambdaFor(s.appTemplate, 'mcp');
    const name = mcp.resource.Properties.Environment.Variables[ENV.mcpStateKeyParameter] as string;
    expect(name).toMatch(/^\/openclause\/[A-Za-z0-9-]+\/mcp-state-keys$/);
    const ssm = statementsOfRole(s.appTemplate, roleOf(mcp.resource)).filter((st) =>
      asArray(st.Action as string | string[]).some((a) => a.startsWith('ssm:')),
    );
    expect(ssm).toHaveLength(1);
    expect(asArray(ssm[0]!.Action as string | string[]).sort()).toEqual([
      'ssm:GetParameter',
      'ssm:PutParameter',
    ]);
    expect(JSON.stringify(ssm[0]!.Resource)).toContain(`:parameter${name}`);
    expect(JSON.stringify(ssm[0]!.Resource)).not.toContain('*');
    for (const handler of ALL_HANDLERS.filter((h) => h !== 'mcp')) {
      const fn = lambdaFor(s.appTemplate, handler);
      const vars = fn.resource.Properties.Environment?.Variables ?? {};
      expect({ handler, name: vars[ENV.mcpStateKeyParameter] }).toEqual({ handler, name: undefined });
      const statements = statementsOfRole(s.appTemplate, roleOf(fn.resource)).filter((st) =>
        asArray(st.Action as string | string[]).some((a) => a.startsWith('ssm:')),
      );
      // The upstream MCP connector reads upstream credentials under their own prefix, nothing else.
      // The upstream MCP connector reads upstream credentials under their own prefix, the
      // credential readers their own parameters (test/infra/connector-secrets.test.ts): nothing else.
      if (CREDENTIAL_READERS.includes(handler)) {
        expect(JSON.stringify(statements)).not.toContain('mcp-state-keys');
        expect(statements.flatMap((st) => asArray(st.Action as string | string[]))).toEqual(
          statements.map(() => 'ssm:GetParameter'),
        );
        continue;
      }
      expect({ handler, ssm: statements.length > 0 }).toEqual({ handler, ssm: false });
    }
  });
});

describe('connectors', () => {
  const connectorIds = () => CONNECTORS.map((c) => lambdaFor(s.appTemplate, `connector-${c}`).id);
  // One handler may serve several routes (MCP: POST and GET /mcp).
  const routeExecutors = [
    ...new Set(ROUTES.filter((r) => CONNECTOR_INVOKERS.includes(r.handler)).map((r) => r.handler)),
  ];
  // The delivery worker too: a Slack route posts and updates approval messages through the Slack connector.
  const executors = [...routeExecutors, NOTIFICATIONS.deliveryHandler];

  it('has exactly submit-toolcall, execute-toolcall and mcp as route executors', () => {
    expect(routeExecutors.sort()).toEqual(['execute-toolcall', 'mcp', 'submit-toolcall']);
  });

  it("grants lambda:InvokeFunction to the executors' roles only, anywhere in the stack", () => {
    const executorRoles = executors.map((h) => roleOf(lambdaFor(s.appTemplate, h).resource)).sort();
    const invokers = Object.values(s.appTemplate.findResources('AWS::IAM::Policy'))
      .filter((p) =>
        (p.Properties.PolicyDocument.Statement as Array<Record<string, any>>).some((st) =>
          asArray(st.Action as string | string[]).some((a) => a.startsWith('lambda:')),
        ),
      )
      .flatMap((p) => (p.Properties.Roles as Array<{ Ref: string }>).map((r) => r.Ref))
      .sort();
    expect(invokers).toEqual(executorRoles);
  });

  it('tells no other function the connector function names', () => {
    for (const handler of ALL_HANDLERS.filter((h) => !executors.includes(h))) {
      const vars = lambdaFor(s.appTemplate, handler).resource.Properties.Environment?.Variables ?? {};
      expect({ handler, names: vars[ENV.connectorFunctions] }).toEqual({ handler, names: undefined });
    }
  });

  it.each(executors)('%s may invoke exactly the connector functions, by unqualified ARN', (handler) => {
    const fn = lambdaFor(s.appTemplate, handler);
    const invoke = statementsOfRole(s.appTemplate, roleOf(fn.resource)).filter((st) =>
      asArray(st.Action as string | string[]).some((a) => a.startsWith('lambda:')),
    );
    // The upstream MCP connector for the functions that run agents' calls, not the delivery worker.
    const upstream =
      handler === NOTIFICATIONS.deliveryHandler
        ? []
        : [lambdaFor(s.appTemplate, `connector-${UPSTREAM_CONNECTOR}`).id];
    expect(invoke).toEqual([
      {
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: [...connectorIds(), ...upstream].map((id) => ({ 'Fn::GetAtt': [id, 'Arn'] })),
      },
    ]);
  });

  it.each(executors)('%s gets the connector function names as JSON and the connector timeout', (handler) => {
    const vars = lambdaFor(s.appTemplate, handler).resource.Properties.Environment.Variables;
    const joined = JSON.stringify(vars[ENV.connectorFunctions]);
    for (const [i, c] of CONNECTORS.entries()) {
      expect(joined).toContain(`\\"${c}\\":\\"`);
      expect(joined).toContain(JSON.stringify({ Ref: connectorIds()[i] }));
    }
    expect(vars[ENV.connectorTimeoutMs]).toBe('10000');
  });

  it('lets no other function invoke Lambdas', () => {
    const others = ALL_HANDLERS.filter((h) => !executors.includes(h));
    for (const handler of others) {
      const statements = statementsOfRole(s.appTemplate, roleOf(lambdaFor(s.appTemplate, handler).resource));
      expect(
        statements
          .flatMap((st) => asArray(st.Action as string | string[]))
          .filter((a) => a.startsWith('lambda:Invoke')),
      ).toEqual([]);
    }
  });

  it.each(CONNECTORS)('connector-%s runs in live mode by default', (c) => {
    const vars = lambdaFor(s.appTemplate, `connector-${c}`).resource.Properties.Environment.Variables;
    expect(vars[ENV.connectorsMode]).toBe('live');
  });
});

describe('the sequencer', () => {
  const consumer = STREAM_CONSUMERS.find((c) => c.handler === 'sequencer')!;

  it('consumes fact INSERTs from the table stream in order, reporting partial failures, with bounded retries and a DLQ', () => {
    const fn = lambdaFor(s.appTemplate, 'sequencer');
    const queues = s.appTemplate.findResources('AWS::SQS::Queue');
    const queueId = Object.keys(queues).find((id) => id.startsWith('EvidenceSequencer'))!;
    expect(queueId).toBeDefined();
    // The stream consumers (sequencer, outbox) and the notification queue's delivery worker.
    s.appTemplate.resourceCountIs('AWS::Lambda::EventSourceMapping', STREAM_CONSUMERS.length + 1);
    s.appTemplate.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fn.id },
      EventSourceArn: { 'Fn::ImportValue': Match.stringLikeRegexp(STACKS.data) },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: consumer.batchSize,
      ParallelizationFactor: 1,
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify(consumer.filter) }] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 6 * 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
  });

  it('has an encrypted DLQ that refuses non-TLS requests (as does every queue)', () => {
    const queues = s.appTemplate.findResources('AWS::SQS::Queue');
    // A DLQ per stream consumer and schedule and the archiver's, plus the notification queue and its DLQ.
    expect(Object.keys(queues)).toHaveLength(STREAM_CONSUMERS.length + SCHEDULES.length + 3);
    for (const [queueId, queue] of Object.entries(queues)) {
      expect(queue.Properties).toMatchObject({
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 14 * 24 * 3600,
      });
      s.appTemplate.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queueId }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });
});

describe.each(SCHEDULES.map((c) => [c.handler, c] as const))('the %s schedule', (handler, schedule) => {
  const fn = () => lambdaFor(s.appTemplate, handler);
  const dlqId = () => {
    const ids = Object.keys(s.appTemplate.findResources('AWS::SQS::Queue')).filter((q) =>
      q.startsWith(`Schedules${constructIdFor(handler)}Dlq`),
    );
    expect(ids).toHaveLength(1);
    return ids[0]!;
  };
  const rate = `rate(${schedule.rateMinutes} minute${schedule.rateMinutes === 1 ? '' : 's'})`;

  it(`runs ${handler} on an EventBridge ${rate} rule, bounded retries and a DLQ`, () => {
    const rules = s.appTemplate.findResources('AWS::Events::Rule', {
      Properties: { ScheduleExpression: rate, State: 'ENABLED' },
    });
    const matching = Object.entries(rules).filter(([, r]) =>
      (r.Properties.Targets as Array<Record<string, any>>).some(
        (t) => JSON.stringify(t.Arn) === JSON.stringify({ 'Fn::GetAtt': [fn().id, 'Arn'] }),
      ),
    );
    expect(matching).toHaveLength(1);
    const [ruleId, rule] = matching[0]!;
    expect(rule.Properties.Targets).toEqual([
      {
        Id: expect.any(String),
        Arn: { 'Fn::GetAtt': [fn().id, 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: schedule.rateMinutes * 60 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlqId(), 'Arn'] } },
      },
    ]);
    // EventBridge, from this rule only, may invoke the function and fill the DLQ.
    s.appTemplate.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [fn().id, 'Arn'] },
      SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
    s.appTemplate.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: dlqId() }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'events.amazonaws.com' },
            Action: 'sqs:SendMessage',
            Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [ruleId, 'Arn'] } } },
          }),
        ]),
      },
    });
  });

  it('does not retry a failed run (the next one redoes the work) and records it in the DLQ', () => {
    s.appTemplate.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fn().id },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: schedule.rateMinutes * 60,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [dlqId(), 'Arn'] } } },
    });
    expect(fn().resource.Properties.Timeout).toBeLessThan(schedule.rateMinutes * 60);
  });

  it("alarms on its DLQ depth (its errors: the account's Lambda errors alarm)", () => {
    s.appTemplate.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId(), 'QueueName'] } }],
      Threshold: 1,
    });
  });
});

describe('approver JWTs without an identity provider', () => {
  // Routes an approver may call: the approver routes, and the reads an agent or an approver makes.
  // One function per handler (the approve function also serves withdraw-vote, issue 21).
  const approverRoutes = [
    ...new Set(ROUTES.filter((r) => r.auth === 'jwt' || r.auth === 'api_key_or_jwt').map((r) => r.handler)),
  ];

  it.each(approverRoutes)('puts %s in mode none (every approver token refused), never dev', (handler) => {
    const vars = lambdaFor(s.appTemplate, handler).resource.Properties.Environment.Variables;
    expect(vars[ENV.jwtMode]).toBe('none');
    for (const name of JWT_ENV.filter((n) => n !== ENV.jwtMode)) expect(vars[name]).toBeUndefined();
  });

  it('tells no other function anything about approver JWTs', () => {
    expect(approverRoutes).toEqual(
      [
        'list-approvals',
        'batch-approvals',
        'get-approval',
        'approve-approval',
        'deny-approval',
        'edit-approval',
        'get-approval-deliveries',
        'extend-approval',
        'create-standing-grant',
        'list-grants',
        'get-grant',
        'revoke-grant',
        'get-toolcall-proof',
      ].sort((a, b) => approverRoutes.indexOf(a) - approverRoutes.indexOf(b)),
    );
    for (const handler of ALL_HANDLERS.filter(
      (h) => !approverRoutes.map(lambdaOf).includes(h) && h !== 'console',
    )) {
      const vars = lambdaFor(s.appTemplate, handler).resource.Properties.Environment?.Variables ?? {};
      expect({ handler, jwt: JWT_ENV.filter((n) => n in vars) }).toEqual({ handler, jwt: [] });
    }
    // The console tells the browser how to sign in (here: that it cannot); never a secret.
    const vars = lambdaFor(s.appTemplate, 'console').resource.Properties.Environment.Variables;
    expect(JWT_ENV.filter((n) => n in vars)).toEqual([ENV.jwtMode]);
    expect(vars[ENV.jwtMode]).toBe('none');
  });

  it('warns at synthesis that approvals cannot be decided', () => {
    const stack = s.app.node.findChild(STACKS.app) as Stack;
    Annotations.fromStack(stack).hasWarning(
      '/OpenClauseApp/Api',
      Match.stringLikeRegexp('No approver identity provider.*approverIssuer.*approverAudience'),
    );
  });
});

describe("the optional approvers' Cognito user pool (approverUserPoolDomain)", () => {
  let pooled: Synthesized;
  let nagErrors: string[];
  beforeAll(() => {
    let packs: NagPack[] = [];
    pooled = synthesize(
      { approverUserPoolDomain: 'acme-approvals', publicBaseUrl: 'https://oc.example' },
      (a) => {
        packs = [new AwsSolutionsChecks(a), new ServerlessChecks(a)];
        Validations.of(a).addPlugins(...packs);
      },
    );
    nagErrors = packs.flatMap((pack) =>
      pack
        .validateScope(pooled.app)
        .violations.filter((v) => v.severity === 'error' || v.severity === 'warning')
        .flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`))
        .filter((at) => at.includes('ApproverUserPool')),
    );
  });

  it('lets the app client read the tenant claim but never write it (nor the email)', () => {
    const [client] = Object.values(pooled.appTemplate.findResources('AWS::Cognito::UserPoolClient'));
    expect(client?.Properties.ReadAttributes).toEqual(expect.arrayContaining(['custom:tenant_id', 'email']));
    expect(client?.Properties.WriteAttributes).toBeDefined();
    expect(client?.Properties.WriteAttributes).not.toContain('custom:tenant_id');
    expect(client?.Properties.WriteAttributes).not.toContain('email');
    expect(client?.Properties).toMatchObject({
      GenerateSecret: false,
      AllowedOAuthFlows: ['code'],
      CallbackURLs: ['https://oc.example/console/callback'],
    });
    pooled.appTemplate.hasResourceProperties('AWS::Cognito::UserPool', {
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
      AutoVerifiedAttributes: ['email'],
    });
  });

  it('points the approver routes at the pool, with the tenant in custom:tenant_id', () => {
    const vars = lambdaFor(pooled.appTemplate, 'approve-approval').resource.Properties.Environment.Variables;
    expect(vars[ENV.jwtMode]).toBe('oidc');
    expect(vars[ENV.jwtTenantClaim]).toBe('custom:tenant_id');
    // https://cognito-idp.<region>.<suffix>/<pool id>, as the pool's tokens say `iss`.
    const issuer = JSON.stringify(vars[ENV.jwtIssuer]);
    expect(issuer).toContain('https://cognito-idp.');
    expect(issuer).toMatch(/"Ref":"ApproverUserPool[0-9A-F]+"/);
    expect(JSON.stringify(vars[ENV.jwtAudience])).toMatch(/"Ref":"ApproverUserPoolConsole[0-9A-F]+"/);
  });

  it("passes cdk-nag, and refuses a provider of the operator's own beside it", () => {
    expect(nagErrors).toEqual([]);
    expect(() =>
      synthesize({
        approverUserPoolDomain: 'x',
        approverIssuer: 'https://idp.example',
        approverAudience: 'a',
      }),
    ).toThrow(/drop approverIssuer, approverAudience/);
  });
});

describe('observability', () => {
  it('alarms on API 5xx, on any Lambda failing, on sealing lag, on a held chain and on DLQ depth', () => {
    const dlqs = STREAM_CONSUMERS.length + SCHEDULES.length + 1 + 1; // + the notifications' and the archiver's
    const archiveAlarms = 5; // chain break, archive failure, archive lag, log missing, log refused (test/infra/archive.test.ts)
    // 5xx, the account's Lambda errors (one alarm for every function), sealing lag, parked records
    // (held chains among them), each DLQ, notifications failed for good, the archive's.
    s.appTemplate.resourceCountIs('AWS::CloudWatch::Alarm', 1 + 1 + 1 + 1 + dlqs + 1 + archiveAlarms);
    // One metric with no dimension per consumer, one alarm: every parked record and held chain.
    const parked = s.appTemplate.findResources('AWS::CloudWatch::Alarm', {
      Properties: { Namespace: 'OpenClause', MetricName: RECORDS_PARKED_METRIC },
    });
    expect(Object.values(parked).map((a) => a.Properties)).toEqual([
      expect.objectContaining({
        Threshold: 1,
        Statistic: 'Maximum',
        Dimensions: [{ Name: 'service', Value: OBSERVABILITY.serviceName }],
      }),
    ]);
    s.appTemplate.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    // Lambda's own Errors with no dimension: every function of the account and region, however many
    // the app has (one alarm metric, $0.10 a month); none per function.
    const errors = Object.values(
      s.appTemplate.findResources('AWS::CloudWatch::Alarm', {
        Properties: { Namespace: 'AWS/Lambda', MetricName: 'Errors' },
      }),
    ).map((a) => a.Properties);
    expect(errors).toEqual([
      expect.objectContaining({
        Statistic: 'Sum',
        Period: 300,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      }),
    ]);
    expect(errors[0]!.Dimensions).toBeUndefined();
    expect(errors[0]!.Metrics).toBeUndefined();
    s.appTemplate.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Statistic: 'Maximum',
      Threshold: 60_000,
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: lambdaFor(s.appTemplate, 'sequencer').id } }],
    });
    s.appTemplate.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 1,
    });
  });

  it('with -c errorAlarms=per-function, alarms on each Lambda failing instead (an account shared with other Lambdas)', () => {
    const p = synthesize({ errorAlarms: 'per-function' });
    const errors = Object.values(
      p.appTemplate.findResources('AWS::CloudWatch::Alarm', {
        Properties: { Namespace: 'AWS/Lambda', MetricName: 'Errors' },
      }),
    ).map((a) => a.Properties);
    // Each Lambda but the notification ones (their failures are per record, never Lambda Errors).
    const handlers = ALL_HANDLERS.filter((h) => !NOTIFICATION_HANDLERS.includes(h));
    expect(errors).toHaveLength(handlers.length);
    for (const handler of handlers)
      p.appTemplate.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: lambdaFor(p.appTemplate, handler).id } }],
      });
  });

  it('has a dashboard', () => {
    // The main one and the throttles (each within the 50 metrics of a free dashboard).
    s.appTemplate.resourceCountIs('AWS::CloudWatch::Dashboard', 2);
  });
});

describe('outputs', () => {
  it('publishes the API URL and the table name', () => {
    s.appTemplate.hasOutput(STACKS.outputs.apiUrl, {
      Value: { 'Fn::GetAtt': [Match.anyValue(), 'ApiEndpoint'] },
    });
    s.appTemplate.hasOutput(STACKS.outputs.tableName, { Value: { 'Fn::ImportValue': Match.anyValue() } });
    s.dataTemplate.hasOutput(STACKS.outputs.tableName, { Value: { Ref: Match.anyValue() } });
  });

  it('hands out links on the API endpoint unless told otherwise, with the default rate limits', () => {
    const vars = lambdaFor(s.appTemplate, 'submit-toolcall').resource.Properties.Environment.Variables;
    expect(vars[ENV.publicBaseUrl]).toEqual({ 'Fn::GetAtt': [expect.any(String), 'ApiEndpoint'] });
    expect(vars[ENV.rateLimitPerSec]).toBe('100');
    expect(vars[ENV.rateLimitBurst]).toBe('200');
    expect(vars[ENV.connectorsMode]).toBe('live');
  });
});

describe('notifications', () => {
  it('runs the outbox on the stream with the approval filter, beside the sequencer (two readers)', () => {
    const outboxDef = STREAM_CONSUMERS.find((c) => c.handler === 'outbox')!;
    const fn = lambdaFor(s.appTemplate, 'outbox');
    s.appTemplate.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fn.id },
      EventSourceArn: { 'Fn::ImportValue': Match.stringLikeRegexp(STACKS.data) },
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify(outboxDef.filter) }] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
    });
    const streamReaders = Object.values(
      s.appTemplate.findResources('AWS::Lambda::EventSourceMapping'),
    ).filter((m) => m.Properties.StartingPosition !== undefined);
    expect(streamReaders).toHaveLength(2);
  });

  it('delivers from an encrypted queue with a redrive policy, partial batch responses, and never allows private webhooks', () => {
    const fn = lambdaFor(s.appTemplate, NOTIFICATIONS.deliveryHandler);
    const queues = s.appTemplate.findResources('AWS::SQS::Queue');
    const queueId = Object.keys(queues).find((id) => id.startsWith('NotificationsQueue'))!;
    const dlqId = Object.keys(queues).find((id) => id.startsWith('NotificationsDlq'))!;
    expect(queues[queueId]!.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 360,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] },
        maxReceiveCount: NOTIFICATIONS.maxReceiveCount,
      },
    });
    s.appTemplate.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fn.id },
      EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
      BatchSize: NOTIFICATIONS.batchSize,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const vars = fn.resource.Properties.Environment.Variables;
    expect(vars).toMatchObject({
      [ENV.notifyQueueUrl]: { Ref: queueId },
      [ENV.notifyDlqUrl]: { Ref: dlqId },
    });
    // The ARN prefix of the secret_refs' SSM parameters (test/infra/connector-secrets.test.ts).
    expect(JSON.stringify(vars[ENV.webhookSecretPrefix])).toContain(
      `:parameter/openclause/${STACKS.app}/webhooks/`,
    );
    for (const handler of ALL_HANDLERS) {
      const env = lambdaFor(s.appTemplate, handler).resource.Properties.Environment?.Variables ?? {};
      expect({ handler, allow: env[ENV.allowPrivateWebhooks] }).toEqual({ handler, allow: undefined });
    }
    // release-parked hands parked records back to the queue: the outbox's settings, the right to send.
    const releaser = lambdaFor(s.appTemplate, 'release-parked');
    expect(releaser.resource.Properties.Environment.Variables).toMatchObject({
      [ENV.notifyQueueUrl]: { Ref: queueId },
    });
    const senders = Object.values(s.appTemplate.findResources('AWS::IAM::Policy')).filter((p) =>
      p.Properties.PolicyDocument.Statement.some(
        (st: { Action: string | string[]; Resource: unknown }) =>
          [st.Action].flat().includes('sqs:SendMessage') &&
          JSON.stringify(st.Resource) === JSON.stringify({ 'Fn::GetAtt': [queueId, 'Arn'] }),
      ),
    );
    expect(senders.flatMap((p) => p.Properties.Roles.map((r: { Ref: string }) => r.Ref))).toContain(
      roleOf(releaser.resource),
    );
  });

  it('alarms on notifications that failed for good or were dead-lettered', () => {
    s.appTemplate.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: OBSERVABILITY.metricsNamespace,
      MetricName: 'notifications_failed_for_good',
      Threshold: 1,
    });
  });
});

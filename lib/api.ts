import { Duration, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
  type ThrottleSettings,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaAuthorizer, HttpLambdaResponseType } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  CONNECTOR_INVOKERS,
  ENV,
  ROUTES,
  type ConnectorsMode,
  type RouteDef,
} from '../functions/shared/constants.js';
import type { Connectors } from './connectors.js';
import { OcFunction, constructIdFor, type TableAccess } from './function.js';

export interface ApiProps {
  readonly table: ITable;
  readonly connectors: Connectors;
  /**
   * Base URL of links the gateway hands out (`approval.url` opens `<base>/console/...`).
   * @default - the HTTP API's own endpoint
   */
  readonly publicBaseUrl?: string;
  /**
   * Per-tenant submissions per second, shared by all Lambda instances (SPEC §2).
   * @default 100
   */
  readonly rateLimitPerSec?: number;
  /**
   * Per-tenant burst above the rate.
   * @default 200
   */
  readonly rateLimitBurst?: number;
  /**
   * Connector mode the handlers run with (`mock` runs connectors in process).
   * @default 'live'
   */
  readonly connectorsMode?: ConnectorsMode;
  /**
   * API-wide throttle on the stage: a safety net for the account and the table, above the sum of
   * what tenants normally send; the per-tenant limit is enforced by the handlers.
   * @default { rateLimit: 1000, burstLimit: 2000 }
   */
  readonly throttle?: ThrottleSettings;
  /**
   * Retention of the access log and the handlers' logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * The HTTP API (API Gateway v2, payload 2.0): one Lambda per entry of ROUTES behind a Lambda
 * REQUEST authorizer, JSON access logs, stage throttling.
 */
export class Api extends Construct {
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;
  readonly authorizerFunction: OcFunction;
  /** Route handlers by handler name. */
  readonly routeFunctions: ReadonlyMap<string, OcFunction>;
  readonly accessLogs: LogGroup;
  /** The base URL clients call (no trailing slash). */
  readonly url: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;

    this.httpApi = new HttpApi(this, 'HttpApi', {
      description: 'OpenClause governed tool-call gateway',
      createDefaultStage: false,
    });
    this.url = this.httpApi.apiEndpoint;

    this.accessLogs = new LogGroup(this, 'AccessLogs', { retention: logRetention });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle ?? { rateLimit: 1000, burstLimit: 2000 },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });

    const environment = {
      [ENV.publicBaseUrl]: props.publicBaseUrl ?? this.url,
      [ENV.rateLimitPerSec]: String(props.rateLimitPerSec ?? 100),
      [ENV.rateLimitBurst]: String(props.rateLimitBurst ?? 200),
      [ENV.connectorsMode]: props.connectorsMode ?? 'live',
    };

    this.authorizerFunction = new OcFunction(this, 'Authorizer', {
      handlerName: 'authorizer',
      invocation: 'authorizer',
      logRetention,
      environment,
    }).bindTable(props.table, 'read');
    const authorizer = new HttpLambdaAuthorizer('AgentKeyAuthorizer', this.authorizerFunction, {
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      // Agents send X-API-Key OR Authorization; identity sources would demand all of them, and the
      // handlers answer 401 themselves (SPEC §1 body), so every request reaches the authorizer
      // and nothing can be cached by API Gateway.
      identitySource: [],
      resultsCacheTtl: Duration.seconds(0),
    });

    const routeFunctions = new Map<string, OcFunction>();
    for (const route of ROUTES) {
      const invokesConnectors = CONNECTOR_INVOKERS.includes(route.handler);
      const fn = new OcFunction(this, constructIdFor(route.handler), {
        handlerName: route.handler,
        invocation: 'api',
        // The HTTP API gives up after 30 s; executors wait for a connector, the others should not.
        timeout: invokesConnectors ? Duration.seconds(29) : Duration.seconds(10),
        logRetention,
        environment,
      }).bindTable(props.table, tableAccessFor(route));
      if (invokesConnectors) props.connectors.allowInvoke(fn);

      const [routeConstruct] = this.httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${constructIdFor(route.handler)}Integration`, fn),
        ...(route.auth === 'api_key' ? { authorizer } : {}),
      });
      if (route.auth === 'none' && routeConstruct) {
        Validations.of(routeConstruct).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason: `${route.method} ${route.path} is public by contract (ROUTES auth: none).`,
        });
      }
      routeFunctions.set(route.handler, fn);
    }
    this.routeFunctions = routeFunctions;
  }
}

/** GET routes are safe by HTTP semantics, so their Lambdas only read; every other route writes. */
export function tableAccessFor(route: RouteDef): TableAccess {
  return route.method === 'GET' ? 'read' : 'readwrite';
}

/** JSON access log: one object per request (structured, queryable in Logs Insights). */
const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  sourceIp: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  method: '$context.httpMethod',
  routeKey: '$context.routeKey',
  path: '$context.path',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  authorizerError: '$context.authorizer.error',
};

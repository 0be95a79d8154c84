import { Annotations, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
  type ThrottleSettings,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  CONNECTOR_INVOKERS,
  ENV,
  POLICY_DECIDERS,
  ROUTES,
  lambdaOf,
  type ConnectorsMode,
  type RouteDef,
} from '../functions/shared/constants.js';
import type { Connectors } from './connectors.js';
import { builtConsoleDir } from '../console/build.js';
import { OcFunction, constructIdFor, type TableAccess } from './function.js';

/** Where the console Lambda's bundle carries the console's built files. */
export const LAMBDA_CONSOLE_DIR = '/var/task/console';

export interface ApiProps {
  readonly table: ITable;
  readonly connectors: Connectors;
  /**
   * Shadow mode's candidate policy folder, packaged into the functions that decide (POLICY_DECIDERS).
   * @default - none
   */
  readonly shadowPolicyDir?: string;
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
  /**
   * The OIDC provider whose JWTs human approvers present on the approval routes.
   * @default - none: every approver token is refused (synthesis warns)
   */
  readonly approvers?: ApproverIdentityProps;
}

/** The OIDC identity provider of human approvers (Cognito user pool, Okta, Entra ID, ...). */
export interface ApproverIdentityProps {
  /**
   * Expected `iss` of approver JWTs, an https URL, e.g.
   * `https://cognito-idp.<region>.amazonaws.com/<user pool id>`.
   * @default - no approver identity provider (with `audience` unset too)
   */
  readonly issuer?: string;
  /**
   * Expected `aud` (for Cognito: the app client id).
   * @default - no approver identity provider (with `issuer` unset too)
   */
  readonly audience?: string;
  /**
   * Where the provider publishes its signing keys (https).
   * @default - `<issuer>/.well-known/jwks.json` (Cognito's layout; Okta and Entra ID need it set)
   */
  readonly jwksUrl?: string;
  /**
   * The claim that names the approver's tenant (Cognito custom attributes: `custom:tenant_id`).
   * @default 'tenant_id'
   */
  readonly tenantClaim?: string;
  /**
   * The web console's OIDC client id (a public client: authorization code + PKCE, no secret),
   * whose redirect URI is `<publicBaseUrl>/console/callback`.
   * @default - `audience` (Cognito: the app client id is the ID token's audience)
   */
  readonly consoleClientId?: string;
  /**
   * Scopes the console asks for.
   * @default 'openid email profile'
   */
  readonly consoleScope?: string;
  /**
   * More https origins the console may call for sign-in besides the issuer's, e.g. Cognito's
   * hosted-UI domain (`https://<domain>.auth.<region>.amazoncognito.com`), where its token endpoint is.
   * @default - none
   */
  readonly consoleOrigins?: readonly string[];
}

/**
 * The HTTP API (API Gateway v2, payload 2.0): one Lambda per entry of ROUTES, each authenticating
 * its caller itself (an agent's API key or an approver's JWT, `handlers/authentication.ts`), JSON
 * access logs, stage throttling. There is no Lambda authorizer: an HTTP API cannot shape a denying
 * authorizer's response (SPEC §1 requires our error body) nor, without identity sources, cache its
 * answers, so one would only add an invocation and a hop to every request.
 */
export class Api extends Construct {
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;
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

    const jwt = approverJwtEnvironment(props.approvers);
    if (jwt[ENV.jwtMode] === 'none') {
      Annotations.of(this).addWarningV2(
        '@openclause/no-approver-identity-provider',
        'No approver identity provider (approverIssuer and approverAudience): every approver JWT is ' +
          'refused, so approvals can be neither listed nor decided. Deploy with ' +
          '-c approverIssuer=https://... -c approverAudience=... to enable them.',
      );
    }
    const routeFunctions = new Map<string, OcFunction>();
    const integrations = new Map<string, HttpLambdaIntegration>();
    for (const route of ROUTES) {
      const invokesConnectors = CONNECTOR_INVOKERS.includes(route.handler);
      // One Lambda per handler: the console's two routes (`/console`, `/console/{path+}`) share one,
      // and ROUTE_LAMBDAS groups a few rare routes into one Lambda (`lambdaOf`).
      const lambdaName = lambdaOf(route.handler);
      const group = ROUTES.filter((r) => lambdaOf(r.handler) === lambdaName);
      const existing = routeFunctions.get(lambdaName);
      const fn =
        existing ??
        (route.handler === CONSOLE_HANDLER
          ? consoleFunction(this, { logRetention, approvers: props.approvers, jwt })
          : new OcFunction(this, constructIdFor(lambdaName), {
              handlerName: lambdaName,
              invocation: 'api',
              // The HTTP API gives up after 30 s; executors wait for a connector, the others should not.
              timeout: invokesConnectors ? Duration.seconds(29) : Duration.seconds(10),
              logRetention,
              // Only the approver routes verify JWTs, so only they are told the provider.
              environment: group.some((r) => r.auth === 'jwt' || r.auth === 'api_key_or_jwt')
                ? { ...environment, ...jwt }
                : environment,
              ...(POLICY_DECIDERS.includes(route.handler) ? { shadowPolicyDir: props.shadowPolicyDir } : {}),
            }).bindTable(
              props.table,
              group.some((r) => tableAccessFor(r) === 'readwrite') ? 'readwrite' : 'read',
            ));
      if (invokesConnectors && !existing) props.connectors.allowInvoke(fn);

      const [routeConstruct] = this.httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration:
          integrations.get(lambdaName) ??
          integrations
            .set(lambdaName, new HttpLambdaIntegration(`${constructIdFor(lambdaName)}Integration`, fn))
            .get(lambdaName)!,
      });
      if (routeConstruct) {
        Validations.of(routeConstruct).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason:
            route.auth === 'none'
              ? `${route.method} ${route.path} is public by contract (ROUTES auth: none).`
              : `${route.method} ${route.path} authenticates in its Lambda (${route.auth === 'jwt' ? 'approver JWT' : route.auth === 'api_key_or_jwt' ? 'API key or approver JWT' : 'API key'}) before anything else, answering 401 with the SPEC error body, which an HTTP API Lambda authorizer cannot shape.`,
        });
      }
      routeFunctions.set(lambdaName, fn);
    }
    this.routeFunctions = routeFunctions;
    const mcp = routeFunctions.get(MCP_HANDLER);
    if (mcp) grantMcpStateKeys(mcp);
  }
}

const MCP_HANDLER = 'mcp';

/** Where the MCP function's state key ring lives: one SSM parameter per stack. */
export const mcpStateKeyParameterName = (stackName: string) => `/openclause/${stackName}/mcp-state-keys`;

/**
 * The MCP function signs its session ids and requestStates with a key ring in an SSM SecureString
 * (standard tier: no monthly charge; the account's `aws/ssm` key encrypts it). CloudFormation
 * cannot create a SecureString, and a generated value must not pass through the template, so the
 * function creates it on first use (`PutParameter` without overwrite: create-if-absent) and reads
 * it; an operator rotates it (docs/agents.md, MCP state keys). Only this function may read or write it.
 */
function grantMcpStateKeys(fn: OcFunction): void {
  const stack = Stack.of(fn);
  const name = mcpStateKeyParameterName(stack.stackName);
  fn.addEnvironment(ENV.mcpStateKeyParameter, name);
  fn.addToRolePolicy(
    new PolicyStatement({
      actions: ['ssm:GetParameter', 'ssm:PutParameter'],
      resources: [
        stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: name.replace(/^\//, '') }),
      ],
    }),
  );
}

/** The console's files and sign-in settings; it reads no table (its page calls the API). */
const CONSOLE_HANDLER = 'console';

function consoleFunction(
  scope: Construct,
  props: { logRetention: RetentionDays; approvers?: ApproverIdentityProps; jwt: Record<string, string> },
): OcFunction {
  const { consoleClientId, consoleScope, consoleOrigins } = props.approvers ?? {};
  for (const origin of consoleOrigins ?? []) assertHttpsUrl('approverConsoleOrigins', origin);
  // The page is told the provider (issuer, client id, tenant claim), never a secret: there is none.
  const { [ENV.jwtJwksUrl]: _jwks, ...jwt } = props.jwt;
  return new OcFunction(scope, constructIdFor(CONSOLE_HANDLER), {
    handlerName: CONSOLE_HANDLER,
    invocation: 'api',
    timeout: Duration.seconds(5),
    logRetention: props.logRetention,
    environment: {
      [ENV.consoleDir]: LAMBDA_CONSOLE_DIR,
      ...jwt,
      ...(consoleClientId ? { [ENV.consoleClientId]: consoleClientId } : {}),
      ...(consoleScope ? { [ENV.consoleScope]: consoleScope } : {}),
      ...(consoleOrigins?.length ? { [ENV.consoleConnectOrigins]: consoleOrigins.join(',') } : {}),
    },
    // Built at synth from console/ (esbuild), shipped as files: nothing builds at request time.
    assets: [{ from: builtConsoleDir(), to: 'console' }],
  });
}

/**
 * The approver routes' JWT settings: `oidc` with the provider when issuer and audience are
 * given, `none` (every approver token refused) when neither is. `dev` (a shared HS256 secret) is
 * for the local host only and never set here. Throws on settings that cannot work.
 */
export function approverJwtEnvironment(approvers: ApproverIdentityProps = {}): Record<string, string> {
  const { issuer, audience, jwksUrl, tenantClaim } = approvers;
  if (issuer !== undefined) assertHttpsUrl('approverIssuer', issuer);
  if (audience !== undefined && !Token.isUnresolved(audience) && audience.trim() === '')
    throw new Error(
      'approverAudience must not be empty (the app client id or API identifier approver JWTs carry in aud)',
    );
  if (jwksUrl !== undefined) assertHttpsUrl('approverJwksUrl', jwksUrl);
  if (tenantClaim !== undefined && !Token.isUnresolved(tenantClaim) && tenantClaim.trim() === '')
    throw new Error("approverTenantClaim must not be empty (the JWT claim naming the approver's tenant)");
  if ((issuer === undefined) !== (audience === undefined)) {
    throw new Error(
      `approverIssuer and approverAudience go together: got only ${issuer === undefined ? 'approverAudience' : 'approverIssuer'}`,
    );
  }
  if (issuer === undefined || audience === undefined) {
    if (jwksUrl !== undefined || tenantClaim !== undefined)
      throw new Error('approverJwksUrl and approverTenantClaim need approverIssuer and approverAudience');
    return { [ENV.jwtMode]: 'none' };
  }
  return {
    [ENV.jwtMode]: 'oidc',
    [ENV.jwtIssuer]: issuer,
    [ENV.jwtAudience]: audience,
    ...(jwksUrl !== undefined ? { [ENV.jwtJwksUrl]: jwksUrl } : {}),
    [ENV.jwtTenantClaim]: tenantClaim ?? 'tenant_id',
  };
}

function assertHttpsUrl(name: string, value: string): void {
  if (Token.isUnresolved(value)) return;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || !url.hostname) {
    throw new Error(
      `${name} must be an https URL (e.g. https://cognito-idp.<region>.amazonaws.com/<pool id>), got "${value}"`,
    );
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
};

import { existsSync } from 'node:fs';
import path from 'node:path';
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Topic, type ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import {
  ROUTE_LAMBDAS,
  SCHEDULES,
  STACKS,
  type ConnectorName,
  type ConnectorsMode,
} from '../functions/shared/constants.js';
import { notifyOnEveryAlarm } from './alarms.js';
import { Api } from './api.js';
import { ApproverUserPool, USER_POOL_TENANT_CLAIM } from './approver-user-pool.js';
import { Connectors, connectorSecretOutputKey } from './connectors.js';
import type { UpstreamVpc } from './upstream-connector.js';
import { Evidence } from './evidence.js';
import { EvidenceArchiver, type EvidenceVault } from './evidence-archive.js';
import { McpOAuth, mcpOAuthRequested, validateMcpOAuthProps } from './mcp-oauth.js';
import { Notifications } from './notifications.js';
import { SHADOW_POLICY_SUBDIR } from '../functions/store/policy-files.js';
import {
  compiledPolicyFile,
  constructIdFor,
  REPO_ROOT,
  SOURCE_MAPS_CONTEXT,
  TRACING_CONTEXT,
} from './function.js';
import { SECRET_STORE_CONTEXT, type SecretStore } from './credentials.js';
import { Observability, type ErrorAlarms } from './observability.js';
import { ScheduledFunction } from './scheduled-function.js';
import { SlackInteractions } from './slack.js';

/** API Lambdas alarmed on but kept off the dashboard (the console, and ROUTE_LAMBDAS groups of rare routes). */
// Kept off the main dashboard (alarmed all the same) so that it stays within CloudWatch's free 50
// metrics (a 51st makes it a $3/month dashboard): the console, the shared approval-workflow Lambda,
// and the rare calls: an agent withdrawing a request, an approver deciding a batch.
const OFF_DASHBOARD: ReadonlySet<string> = new Set([
  'console',
  'withdraw-toolcall',
  'batch-approvals',
  ...Object.values(ROUTE_LAMBDAS),
]);

export interface OcAppStackProps extends StackProps {
  /** The table from the stateful stack (with its stream and key). */
  readonly table: ITable;
  /**
   * The evidence archive's bucket and keys from the stateful stack: the archiver runs on them.
   * @default - no archiver
   */
  readonly evidenceVault?: Pick<EvidenceVault, 'bucketArnExport' | 'bucketKey' | 'signingKey'>;
  /**
   * Base URL of the links the gateway hands out (`approval.url`).
   * @default - the HTTP API's own endpoint
   */
  readonly publicBaseUrl?: string;
  /**
   * Per-tenant submissions per second, shared across Lambda instances (SPEC §2).
   * @default 100
   */
  readonly rateLimitPerSec?: number;
  /**
   * Per-tenant burst.
   * @default 200
   */
  readonly rateLimitBurst?: number;
  /**
   * `live` connectors call Slack and Jira; `mock` ones answer without leaving AWS.
   * @default 'live'
   */
  readonly connectorsMode?: ConnectorsMode;
  /**
   * Also deploy the template connector (docs/connectors.md "Add a connector in four steps").
   * @default false
   */
  readonly templateConnector?: boolean;
  /**
   * Runs the upstream MCP connector in these subnets to reach private upstreams (context
   * `upstreamVpc`, docs/connectors.md "Private upstreams").
   * @default - not in a VPC: public https upstreams only
   */
  readonly upstreamVpc?: UpstreamVpc;
  /**
   * API-wide stage throttle (a safety net above the per-tenant limit).
   * @default { rateLimit: 1000, burstLimit: 2000 }
   */
  readonly apiThrottle?: ThrottleSettings;
  /**
   * The topic every alarm of the stack notifies (raised and back to OK): the data stack's.
   * @default - the topic `alarmTopicArn` names
   */
  readonly alarmTopic?: ITopic;
  /**
   * SNS topic ARN that alarms notify (context `alarmTopicArn`), when `alarmTopic` is not given.
   * One of the two is required: an alarm that notifies nobody is not deployed.
   */
  readonly alarmTopicArn?: string;
  /**
   * Where operators put the credentials the functions read (connectors, the Slack signing secret,
   * webhook secrets; context `secretStore`): SSM SecureString parameters (no monthly charge) or
   * Secrets Manager secrets ($0.40 a month each); lib/credentials.ts.
   * @default 'ssm'
   */
  readonly secretStore?: SecretStore;
  /**
   * How Lambda failures raise an alarm (context `errorAlarms`): one alarm on the account's Lambda
   * errors ($0.10 a month), or one per function ($0.10 each), for an account shared with other
   * Lambdas (docs/operators.md "Alarms").
   * @default 'account'
   */
  readonly errorAlarms?: ErrorAlarms;
  /**
   * Retention of every log group of the app.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Issuer (`iss`) of the OIDC provider whose JWTs human approvers present, an https URL: a Cognito
   * user pool (`https://cognito-idp.<region>.amazonaws.com/<pool id>`), Okta, Entra ID, ...
   * Give it with `approverAudience`.
   * @default - none: every approver token is refused (synthesis warns)
   */
  readonly approverIssuer?: string;
  /**
   * Audience (`aud`) approver JWTs must carry (for Cognito: the app client id).
   * @default - none: every approver token is refused (synthesis warns)
   */
  readonly approverAudience?: string;
  /**
   * The provider's JWKS URL (https).
   * @default - `<approverIssuer>/.well-known/jwks.json` (Cognito's layout; Okta and Entra ID need it set)
   */
  readonly approverJwksUrl?: string;
  /**
   * The JWT claim that names the approver's tenant (Cognito: `custom:tenant_id`).
   * @default 'tenant_id'
   */
  readonly approverTenantClaim?: string;
  /**
   * Creates a Cognito user pool for approvers with this hosted-UI domain prefix, and uses it as
   * the approvers' provider (instead of `approverIssuer`/`approverAudience`): ID tokens name the
   * tenant in `custom:tenant_id`, which its app client can read but not write.
   * @default - none: bring your own provider with `approverIssuer`
   */
  readonly approverUserPoolDomain?: string;
  /**
   * The web console's OIDC client id (public client, code + PKCE; redirect URI
   * `<publicBaseUrl>/console/callback`).
   * @default - approverAudience
   */
  readonly approverConsoleClientId?: string;
  /**
   * Scopes the console asks the provider for.
   * @default 'openid email profile'
   */
  readonly approverConsoleScope?: string;
  /**
   * More https origins the console may call to sign in (Cognito: the hosted-UI domain).
   * @default - only the issuer's
   */
  readonly approverConsoleOrigins?: readonly string[];
  /**
   * AWS X-Ray active tracing on every Lambda (5% of invocations beyond 1/s sampled, $5 per million
   * traces: about $0.50 per million allowed calls across submit and connector).
   * @default false - structured logs, EMF metrics, alarms and the dashboard are always on
   */
  readonly tracing?: boolean;
  /**
   * Stack traces in the logs mapped to the TypeScript sources (`--enable-source-maps`). Every
   * bundle ships its source map either way, so a minified trace can be decoded offline.
   * @default false - Node parses the map at load: about 25 ms of every cold start
   */
  readonly sourceMaps?: boolean;
  /**
   * Shadow mode (issue 24): deploy the candidate policy in `policyShadowDir` beside the live one,
   * evaluated on every decision and never enforced. Off: no candidate is packaged or loaded.
   * @default true - on when the folder exists
   */
  readonly policyShadow?: boolean;
  /**
   * The candidate policy folder (the four files of `policy/`).
   * @default - `policy/shadow/` in the repository, when it exists
   */
  readonly policyShadowDir?: string;
  /**
   * OAuth for agents on `/mcp` (beside API keys): `cognito` creates a Cognito user pool (or uses
   * `mcpOAuthUserPoolId`), a resource server for the canonical `/mcp` URI and client-credentials
   * app clients (`lib/mcp-oauth.ts`). Cognito bills each app client and token request.
   * @default - none: `/mcp` takes API keys only
   */
  readonly mcpOAuth?: 'cognito';
  /**
   * An existing user pool for `mcpOAuth=cognito`.
   * @default - a new pool
   */
  readonly mcpOAuthUserPoolId?: string;
  /**
   * The new pool's hosted domain prefix.
   * @default - `<stack name>-mcp-<account id>`
   */
  readonly mcpOAuthDomainPrefix?: string;
  /**
   * The app clients `mcpOAuth=cognito` creates, one per agent.
   * @default ['agent']
   */
  readonly mcpOAuthClients?: readonly string[];
  /**
   * An external RFC 9068 authorization server's issuer (https), instead of Cognito.
   * @default - none
   */
  readonly mcpOAuthIssuer?: string;
  /**
   * Its JWKS URL.
   * @default - `<mcpOAuthIssuer>/.well-known/jwks.json`
   */
  readonly mcpOAuthJwksUrl?: string;
  /**
   * The scope agents' tokens must carry (with Cognito, as `<canonical /mcp URI>/<scope>`).
   * @default 'mcp:tools'
   */
  readonly mcpOAuthScope?: string;
}

/**
 * The candidate folder shadow mode deploys, if any, validated and compiled now: an invalid
 * candidate fails `cdk synth` (deploy with `-c policyShadow=off` to leave it out). A folder named
 * by the prop must exist; the repository's `policy/shadow/` is used when it does.
 */
function shadowPolicyDirOf(props: OcAppStackProps): string | undefined {
  if (props.policyShadow === false) return undefined;
  const dir = props.policyShadowDir ?? path.join(REPO_ROOT, 'policy', SHADOW_POLICY_SUBDIR);
  if (!existsSync(dir)) {
    if (props.policyShadowDir !== undefined) throw new Error(`policyShadowDir ${dir} does not exist`);
    return undefined;
  }
  compiledPolicyFile(dir);
  return dir;
}

/** The app part: API, connectors, sequencer, schedules, alarms and dashboard. Replaceable at will. */
export class OcAppStack extends Stack {
  readonly api: Api;
  readonly connectors: Connectors;
  readonly evidence: Evidence;
  /** One per entry of SCHEDULES. */
  readonly schedules: readonly ScheduledFunction[];
  readonly observability: Observability;
  /** The evidence archiver (when the stateful stack has the archive). */
  readonly archiver?: EvidenceArchiver;
  readonly notifications: Notifications;
  /** POST /slack/interactions on its Function URL. */
  readonly slack: SlackInteractions;
  /** Agents' OAuth on `/mcp`, when asked for. */
  readonly mcpOAuth?: McpOAuth;

  constructor(scope: Construct, id: string, props: OcAppStackProps) {
    super(scope, id, {
      description: 'OpenClause gateway: API, connectors, sequencer, observability',
      ...props,
    });
    // Read by every OcFunction below (context is inherited by the constructs of this stack).
    this.node.setContext(TRACING_CONTEXT, props.tracing ?? false);
    this.node.setContext(SOURCE_MAPS_CONTEXT, props.sourceMaps ?? false);
    this.node.setContext(SECRET_STORE_CONTEXT, props.secretStore ?? 'ssm');
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const connectorsMode = props.connectorsMode ?? 'live';

    this.connectors = new Connectors(this, 'Connectors', {
      mode: connectorsMode,
      logRetention,
      template: props.templateConnector,
      upstream: { table: props.table, vpc: props.upstreamVpc },
    });
    const mcpOAuthProps = {
      provider: props.mcpOAuth,
      userPoolId: props.mcpOAuthUserPoolId,
      domainPrefix: props.mcpOAuthDomainPrefix,
      clients: props.mcpOAuthClients,
      issuer: props.mcpOAuthIssuer,
      jwksUrl: props.mcpOAuthJwksUrl,
      scope: props.mcpOAuthScope,
    };
    // Settings that cannot work fail before anything is built.
    validateMcpOAuthProps(mcpOAuthProps);
    const userPool = props.approverUserPoolDomain
      ? this.approverUserPool(props, props.approverUserPoolDomain)
      : undefined;
    this.api = new Api(this, 'Api', {
      table: props.table,
      shadowPolicyDir: shadowPolicyDirOf(props),
      connectors: this.connectors,
      publicBaseUrl: props.publicBaseUrl,
      rateLimitPerSec: props.rateLimitPerSec,
      rateLimitBurst: props.rateLimitBurst,
      connectorsMode,
      throttle: props.apiThrottle,
      logRetention,
      approvers: userPool
        ? {
            issuer: userPool.issuer,
            audience: userPool.client.userPoolClientId,
            tenantClaim: USER_POOL_TENANT_CLAIM,
            consoleScope: props.approverConsoleScope,
            // The hosted UI holds the token endpoint the console calls.
            consoleOrigins: [userPool.domain.baseUrl(), ...(props.approverConsoleOrigins ?? [])],
          }
        : {
            issuer: props.approverIssuer,
            audience: props.approverAudience,
            jwksUrl: props.approverJwksUrl,
            tenantClaim: props.approverTenantClaim,
            consoleClientId: props.approverConsoleClientId,
            consoleScope: props.approverConsoleScope,
            consoleOrigins: props.approverConsoleOrigins,
          },
    });
    userPool?.setCallbackUrl(`${props.publicBaseUrl ?? this.api.url}/console/callback`);
    const mcpFunction = this.api.routeFunctions.get('mcp');
    if (mcpOAuthRequested(mcpOAuthProps)) {
      if (!mcpFunction) throw new Error('mcpOAuth needs the mcp route, which ROUTES lacks');
      this.mcpOAuth = new McpOAuth(this, 'McpOAuth', {
        ...mcpOAuthProps,
        mcpFunction,
        publicBaseUrl: props.publicBaseUrl ?? this.api.url,
      });
    }
    const slackBotToken = this.connectors.secrets.slack;
    // Slack is one of CONNECTORS, which always get a secret; the type allows optional connectors.
    if (!slackBotToken) throw new Error('the Slack connector has no secret');
    this.slack = new SlackInteractions(this, 'SlackInteractions', {
      table: props.table,
      publicBaseUrl: props.publicBaseUrl ?? this.api.url,
      connectorsMode,
      botTokenSecret: slackBotToken,
      logRetention,
    });
    this.evidence = new Evidence(this, 'Evidence', { table: props.table, logRetention });
    this.notifications = new Notifications(this, 'Notifications', {
      table: props.table,
      publicBaseUrl: props.publicBaseUrl ?? this.api.url,
      logRetention,
    });
    // The Slack route posts and updates approval messages through the Slack connector.
    // It posts approval messages through Slack: it never runs an agent's call, so no upstream.
    this.connectors.allowInvoke(this.notifications.delivery, { upstream: false });
    const schedules = new Construct(this, 'Schedules');
    this.schedules = SCHEDULES.map(
      (schedule) =>
        new ScheduledFunction(schedules, constructIdFor(schedule.handler), {
          table: props.table,
          schedule,
          access: 'readwrite',
          logRetention,
        }),
    );
    const releaser = this.schedules.find((s) => s.function.handlerName === 'release-parked');
    if (!releaser) throw new Error('SCHEDULES has no release-parked entry');
    this.notifications.allowRelease(releaser.function);
    const alarmTopic =
      props.alarmTopic ??
      (props.alarmTopicArn ? Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn) : undefined);
    if (!alarmTopic)
      throw new Error('OcAppStack needs alarmTopic or alarmTopicArn: its alarms must notify someone');
    // Every alarm of this stack, those below and any added later, notifies the topic.
    notifyOnEveryAlarm(this, alarmTopic);
    if (props.evidenceVault)
      this.archiver = new EvidenceArchiver(this, 'EvidenceArchiver', {
        table: props.table,
        bucketArnExport: props.evidenceVault.bucketArnExport,
        bucketKey: props.evidenceVault.bucketKey,
        signingKey: props.evidenceVault.signingKey,
        logRetention,
      });
    const proofRoute = this.api.routeFunctions.get('get-toolcall-proof');
    if (this.archiver && proofRoute) this.archiver.grantLogReads(proofRoute);
    this.observability = new Observability(this, 'Observability', {
      httpApi: this.api.httpApi,
      functions: [
        ...[...this.api.routeFunctions.values()].filter((fn) => !OFF_DASHBOARD.has(fn.handlerName)),
        ...Object.values(this.connectors.functions),
        this.evidence.sequencer,
        // Not the notification functions: they report failures per record (partial batch
        // responses), which Lambda's Errors metric never sees; their DLQs and the failure alarm do.
        ...this.schedules.map((s) => s.function),
      ],
      // The console serves files (the API's 5xx alarm covers it too), Slack's clicks and issue 21's
      // extensions and standing grants are few: alarmed on, kept off the dashboard, which stays
      // within CloudWatch's free 50 metrics.
      alarmOnlyFunctions: [
        ...[...this.api.routeFunctions.values()].filter((fn) => OFF_DASHBOARD.has(fn.handlerName)),
        this.slack.function,
        // Its Errors count only its own crashes and Lambda timeouts (an upstream's failures and
        // hangs are answers, within its 9 s deadline): a gateway fault worth $0.10 a month.
        ...(this.connectors.upstream ? [this.connectors.upstream] : []),
        // Its own alarms watch what it archives; its crashes are everyone's (an extra line would
        // take the dashboard past 50 metrics).
        ...(this.archiver ? [this.archiver.schedule.function] : []),
      ],
      errorAlarms: props.errorAlarms,
      sequencer: this.evidence.sequencer,
      deadLetterQueues: [
        this.evidence.deadLetterQueue,
        ...this.schedules.map((s) => s.deadLetterQueue),
        this.notifications.deadLetterQueue,
        this.notifications.outboxDeadLetterQueue,
      ],
    });
    new CfnOutput(this, STACKS.outputs.notifyQueueUrl, {
      value: this.notifications.queue.queueUrl,
      description: 'The approval notification queue',
    });
    new CfnOutput(this, STACKS.outputs.notifyDlqUrl, {
      value: this.notifications.deadLetterQueue.queueUrl,
      description: 'Its dead-letter queue (oc webhooks redrive --aws moves it back)',
    });

    new CfnOutput(this, STACKS.outputs.apiUrl, {
      value: this.api.url,
      description: 'Base URL of the gateway API',
    });
    new CfnOutput(this, STACKS.outputs.tableName, {
      value: props.table.tableName,
      description: 'The single DynamoDB table',
    });
    for (const [name, secret] of Object.entries(this.connectors.secrets)) {
      new CfnOutput(this, connectorSecretOutputKey(name as ConnectorName), {
        value: secret.name,
        description: `Fill with the ${name} connector's credentials: ${secret.putCommand('<json>')}`,
      });
    }
  }

  /** The optional approvers' user pool; refused beside a provider of the operator's own. */
  private approverUserPool(props: OcAppStackProps, domainPrefix: string): ApproverUserPool {
    const own = (
      [
        'approverIssuer',
        'approverAudience',
        'approverJwksUrl',
        'approverTenantClaim',
        'approverConsoleClientId',
      ] as const
    ).filter((k) => props[k] !== undefined);
    if (own.length > 0)
      throw new Error(`approverUserPoolDomain creates the approvers' provider: drop ${own.join(', ')}`);
    const userPool = new ApproverUserPool(this, 'ApproverUserPool', { domainPrefix });
    new CfnOutput(this, 'ApproverUserPoolId', {
      value: userPool.pool.userPoolId,
      description:
        "The approvers' Cognito user pool: create approvers with admin-create-user and set custom:tenant_id",
    });
    new CfnOutput(this, 'ApproverConsoleClientId', {
      value: userPool.client.userPoolClientId,
      description: "The console's app client of the approvers' user pool",
    });
    return userPool;
  }
}

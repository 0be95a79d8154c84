import { Duration, Stack } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  CONNECTOR_SECRET_ENV,
  CONNECTORS,
  ENV,
  OPTIONAL_CONNECTORS,
  type ConnectorName,
  type ConnectorsMode,
} from '../functions/shared/constants.js';
import { UPSTREAM_CONNECTOR } from '../functions/core/upstream-types.js';
import { Credential } from './credentials.js';
import { OcFunction, constructIdFor } from './function.js';
import { UpstreamConnector, type UpstreamVpc } from './upstream-connector.js';

export interface ConnectorsProps {
  /**
   * `live` calls the real tools (Slack, Jira); `mock` answers without leaving AWS.
   * @default 'live'
   */
  readonly mode?: ConnectorsMode;
  /**
   * Time a connector may run; executors are told the same bound (`ENV.connectorTimeoutMs`).
   * @default Duration.seconds(10)
   */
  readonly timeout?: Duration;
  /**
   * Retention of the connectors' log groups.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Also deploy the template connector (`OPTIONAL_CONNECTORS`): to try the connector SDK end to end.
   * @default false
   */
  readonly template?: boolean;
  /**
   * The upstream MCP connector (issue 25), invoked as `mcp-upstream`: the table it reads the
   * tenants' upstream catalog from, and optionally the VPC subnets it runs in.
   * @default - not deployed
   */
  readonly upstream?: { table: ITable; vpc?: UpstreamVpc };
}

/** What the operator puts into each connector's secret (JSON; see docs/operators.md "Connector credentials"). */
export const CONNECTOR_SECRET_SHAPE: Readonly<Record<ConnectorName, string>> = {
  slack: '{"bot_token": "xoxb-..."}',
  jira: '{"base_url": "https://<site>.atlassian.net", "email": "...", "api_token": "..."}',
  template: '{"base_url": "https://...", "api_token": "..."}',
};

/** Who issues each connector's credential (it is rotated there, not by a rotation Lambda). */
const CREDENTIAL_ISSUER: Readonly<Record<ConnectorName, string>> = {
  slack: 'Slack',
  jira: 'Jira (Atlassian)',
  template: "the template's upstream service",
};

/**
 * One Lambda per connector (`functions/handlers/connector-<name>.ts`). Executors invoke them with
 * the Lambda SDK; IAM (not a shared token) decides who may. Each connector has its own credential
 * (an SSM SecureString, or a Secrets Manager secret: lib/credentials.ts), readable by that
 * connector's role only; the Lambda gets its ARN (never its value) in `CONNECTOR_SECRET_ENV[name]`.
 */
export class Connectors extends Construct {
  readonly functions: Readonly<Partial<Record<ConnectorName, OcFunction>>>;
  /** The credential of each connector; operators fill them (`Credential.putCommand`). */
  readonly secrets: Readonly<Partial<Record<ConnectorName, Credential>>>;
  readonly timeout: Duration;
  /** The upstream MCP connector's function, when deployed. */
  readonly upstream?: OcFunction;

  constructor(scope: Construct, id: string, props: ConnectorsProps = {}) {
    super(scope, id);
    this.timeout = props.timeout ?? Duration.seconds(10);
    const functions: Partial<Record<ConnectorName, OcFunction>> = {};
    const secrets: Partial<Record<ConnectorName, Credential>> = {};
    const deployed: readonly ConnectorName[] = [
      ...CONNECTORS,
      ...(props.template ? OPTIONAL_CONNECTORS : []),
    ];
    for (const name of deployed) {
      // Until the operator puts the JSON, the cold start fails naming the credential (a missing
      // parameter, or the placeholder a created secret holds: "not valid JSON").
      const secret = new Credential(this, `${constructIdFor(name)}Secret`, {
        path: `connectors/${name}`,
        description: `OpenClause connector-${name} credentials, JSON ${CONNECTOR_SECRET_SHAPE[name]}`,
        noRotationReason: `The ${name} credential is a third-party API token that only ${CREDENTIAL_ISSUER[name]} can issue, so no rotation Lambda can rotate it here; operators rotate it there and re-put the secret (docs/operators.md "Connector credentials"), picked up within 5 minutes.`,
      });
      const fn = new OcFunction(this, constructIdFor(name), {
        handlerName: `connector-${name}`,
        invocation: 'lambda-sync',
        timeout: this.timeout,
        logRetention: props.logRetention,
        environment: {
          [ENV.connectorsMode]: props.mode ?? 'live',
          [CONNECTOR_SECRET_ENV[name]]: secret.id,
        },
      });
      secret.grantRead(fn);
      functions[name] = fn;
      secrets[name] = secret;
    }
    this.functions = functions;
    this.secrets = secrets;
    if (props.upstream)
      this.upstream = new UpstreamConnector(this, 'Upstream', {
        table: props.upstream.table,
        vpc: props.upstream.vpc,
        timeout: this.timeout,
        logRetention: props.logRetention,
      }).function;
  }

  /**
   * Lets `executor` invoke the connectors (the upstream MCP connector unless `upstream: false`), and nothing else: `lambda:InvokeFunction` on exactly
   * these function ARNs (unqualified, no `:*`), their names as JSON in `ENV.connectorFunctions`.
   */
  allowInvoke(executor: OcFunction, options: { upstream?: boolean } = {}): void {
    // The upstream MCP connector only for the functions that run agents' tool calls.
    const upstream = (options.upstream ?? true) ? this.upstream : undefined;
    const fns = [...Object.values<OcFunction>(this.functions), ...(upstream ? [upstream] : [])];
    executor.addToRolePolicy(
      new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: fns.map((fn) => fn.functionArn) }),
    );
    const names = Object.fromEntries([
      ...Object.entries(this.functions).map(([tool, fn]) => [tool, fn.functionName]),
      ...(upstream ? [[UPSTREAM_CONNECTOR, upstream.functionName]] : []),
    ]);
    executor.addEnvironment(ENV.connectorFunctions, Stack.of(this).toJsonString(names));
    executor.addEnvironment(ENV.connectorTimeoutMs, String(this.timeout.toMilliseconds()));
  }
}

/** The app stack's output key naming a connector's secret: `SlackSecretName`, `JiraSecretName`. */
export const connectorSecretOutputKey = (name: ConnectorName): string => `${constructIdFor(name)}SecretName`;

import { Duration, Stack } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { CONNECTORS, ENV, type ConnectorName, type ConnectorsMode } from '../functions/shared/constants.js';
import { OcFunction, constructIdFor } from './function.js';

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
}

/**
 * One Lambda per connector (`functions/handlers/connector-<name>.ts`). Executors invoke them with
 * the Lambda SDK; IAM (not a shared token) decides who may.
 */
export class Connectors extends Construct {
  readonly functions: Readonly<Record<ConnectorName, OcFunction>>;
  readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: ConnectorsProps = {}) {
    super(scope, id);
    this.timeout = props.timeout ?? Duration.seconds(10);
    const functions = {} as Record<ConnectorName, OcFunction>;
    for (const name of CONNECTORS) {
      functions[name] = new OcFunction(this, constructIdFor(name), {
        handlerName: `connector-${name}`,
        invocation: 'lambda-sync',
        timeout: this.timeout,
        logRetention: props.logRetention,
        environment: { [ENV.connectorsMode]: props.mode ?? 'live' },
      });
    }
    this.functions = functions;
  }

  /**
   * Lets `executor` invoke the connectors, and nothing else: `lambda:InvokeFunction` on exactly
   * these function ARNs (unqualified, no `:*`), their names as JSON in `ENV.connectorFunctions`.
   */
  allowInvoke(executor: OcFunction): void {
    const fns = Object.values<OcFunction>(this.functions);
    executor.addToRolePolicy(
      new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: fns.map((fn) => fn.functionArn) }),
    );
    const names = Object.fromEntries(
      Object.entries(this.functions).map(([tool, fn]) => [tool, fn.functionName]),
    );
    executor.addEnvironment(ENV.connectorFunctions, Stack.of(this).toJsonString(names));
    executor.addEnvironment(ENV.connectorTimeoutMs, String(this.timeout.toMilliseconds()));
  }
}

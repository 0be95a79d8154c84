import type { App, Environment } from 'aws-cdk-lib';
import { STACKS } from '../functions/shared/constants.js';
import { OcAppStack, type OcAppStackProps } from './app-stack.js';
import { OcDataStack } from './data-stack.js';
import type { TableKey } from './data.js';

export interface OpenClauseProps extends Omit<
  OcAppStackProps,
  'table' | 'env' | 'evidenceVault' | 'alarmTopic'
> {
  /**
   * Account and region.
   * @default - environment-agnostic (synthesizes offline, deploys to the CLI's account and region)
   */
  readonly env?: Environment;
  /**
   * Email address subscribed to the alarm topic (context `alarmEmail`); it must confirm by mail.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * The table's key (context `tableKey`): the AWS-managed `aws/dynamodb` (the archive under SSE-S3,
   * the alarm topic without a key), or a customer-managed one that also encrypts the archive and
   * the topic (docs/operators.md "Idle cost").
   * @default 'aws-managed'
   */
  readonly tableKey?: TableKey;
}

const CROSS_STACK_REFERENCES = '@aws-cdk/core:defaultCrossStackReferences';

/** Both stacks, wired: the app stack takes the table and the alarm topic from the stateful one. */
export function createOpenClause(
  app: App,
  props: OpenClauseProps = {},
): { data: OcDataStack; app: OcAppStack } {
  // Strong references (exports) keep the stateful stack from being deleted under the app.
  if (app.node.tryGetContext(CROSS_STACK_REFERENCES) === undefined)
    app.node.setContext(CROSS_STACK_REFERENCES, 'strong');
  const { env, alarmTopicArn, alarmEmail, tableKey, ...appProps } = props;
  const data = new OcDataStack(app, STACKS.data, { env, alarmTopicArn, alarmEmail, tableKey });
  const appStack = new OcAppStack(app, STACKS.app, {
    env,
    ...appProps,
    alarmTopic: data.alarmTopic,
    table: data.data.table,
    evidenceVault: data.evidence,
  });
  return { data, app: appStack };
}

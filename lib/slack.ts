import { CfnOutput, Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { FunctionUrlAuthType, InvokeMode, type FunctionUrl } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { CONNECTOR_SECRET_ENV, ENV, type ConnectorsMode } from '../functions/shared/constants.js';
import { Credential } from './credentials.js';
import { OcFunction } from './function.js';

export interface SlackInteractionsProps {
  readonly table: ITable;
  /** Base URL of the console links in replaced messages (`approval.url`). */
  readonly publicBaseUrl: string;
  /**
   * In `live` mode the handler asks Slack (`users.info`, with the Slack connector's bot token)
   * for the clicker's email, for separation of duties.
   * @default 'live'
   */
  readonly connectorsMode?: ConnectorsMode;
  /** The Slack connector's bot-token secret (`{"bot_token"}`), read in live mode only. */
  readonly botTokenSecret: Credential;
  /**
   * Retention of the handler's log group.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/** What the operator puts into the signing-secret secret (docs/approvers.md "Slack app setup"). */
export const SLACK_SIGNING_SECRET_SHAPE = '{"signing_secret": "<Signing Secret from Basic Information>"}';

/** Stack output keys (docs/approvers.md "Slack app setup"). */
export const SLACK_OUTPUTS = {
  interactionsUrl: 'SlackInteractionsUrl',
  signingSecretName: 'SlackSigningSecretName',
} as const;

/**
 * Slack interactivity (SPEC §9): the `slack-interactions` Lambda behind its own Function URL
 * (auth NONE: Slack cannot sign with IAM; the handler verifies Slack's v0 signature with the
 * signing secret, refuses replays and stale requests, and decides through the approvals core).
 * The signing secret is a credential of its own (lib/credentials.ts), readable by this function only.
 */
export class SlackInteractions extends Construct {
  readonly function: OcFunction;
  readonly url: FunctionUrl;
  readonly signingSecret: Credential;

  constructor(scope: Construct, id: string, props: SlackInteractionsProps) {
    super(scope, id);
    const live = (props.connectorsMode ?? 'live') === 'live';
    // Until the operator puts the JSON every interaction is refused and the cold start logs why.
    this.signingSecret = new Credential(this, 'SigningSecret', {
      path: 'slack/signing-secret',
      description: `OpenClause Slack app signing secret, JSON ${SLACK_SIGNING_SECRET_SHAPE}`,
      noRotationReason:
        'The Slack signing secret is issued by Slack (app settings, "Regenerate"); no rotation Lambda can rotate it here. Operators regenerate it in Slack and re-put the secret, picked up within 5 minutes.',
    });

    this.function = new OcFunction(this, 'Function', {
      handlerName: 'slack-interactions',
      invocation: 'function-url',
      // Slack gives up after 3 s; the handler's own calls are bounded well inside that.
      timeout: Duration.seconds(5),
      logRetention: props.logRetention,
      environment: {
        [ENV.publicBaseUrl]: props.publicBaseUrl,
        [ENV.connectorsMode]: props.connectorsMode ?? 'live',
        [ENV.slackSigningSecretArn]: this.signingSecret.id,
        ...(live ? { [CONNECTOR_SECRET_ENV.slack]: props.botTokenSecret.id } : {}),
      },
    }).bindTable(props.table, 'readwrite');
    this.signingSecret.grantRead(this.function);
    if (live) props.botTokenSecret.grantRead(this.function);

    this.url = this.function.addFunctionUrl({
      authType: FunctionUrlAuthType.NONE,
      invokeMode: InvokeMode.BUFFERED,
    });

    new CfnOutput(this, SLACK_OUTPUTS.interactionsUrl, {
      key: SLACK_OUTPUTS.interactionsUrl,
      value: `${this.url.url}slack/interactions`,
      description: 'Slack app: Interactivity & Shortcuts > Request URL',
    });
    new CfnOutput(this, SLACK_OUTPUTS.signingSecretName, {
      key: SLACK_OUTPUTS.signingSecretName,
      value: this.signingSecret.name,
      description: `Fill with the Slack app's signing secret, JSON ${SLACK_SIGNING_SECRET_SHAPE}: ${this.signingSecret.putCommand('<json>')}`,
    });
  }
}

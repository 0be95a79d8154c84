/**
 * Slack connector Lambda, invoked by the executor with the Lambda SDK (RequestResponse) and a
 * `ConnectorRequest` payload; answers a `ConnectorResponse`. In AWS the bot token comes from the
 * connector's own secret (`OC_SLACK_SECRET_ARN`), locally from `SLACK_BOT_TOKEN`. Config is read
 * at cold start, so a live deployment without a usable token fails to initialise instead of
 * failing per call.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { slackConfigSource, type ConfigSourceOptions } from '../connectors/config.js';
import { createConfiguredConnector } from '../connectors/configured.js';
import { createSlackConnector, type SlackConnectorOptions } from '../connectors/slack.js';
import { logger } from '../shared/powertools.js';
import { readSecretString } from '../store/secrets.js';

export type ConnectorSlackOptions = ConfigSourceOptions &
  Pick<SlackConnectorOptions, 'fetch' | 'apiBaseUrl' | 'timeoutMs'>;

/** Builds the entry point (tests inject the env, the secret reader and the Slack base URL). */
export function createConnectorSlack(options: ConnectorSlackOptions = {}) {
  const { env, readSecret = readSecretString, ...connectorOptions } = options;
  return createConfiguredConnector(slackConfigSource({ env, readSecret }), (config) =>
    createSlackConnector({ config, ...connectorOptions }),
  );
}

/** Bare entry point: tests and the local in-process invoker call it directly. */
export const connectorSlack = await createConnectorSlack();

export const handler = middy(connectorSlack).use(injectLambdaContext(logger, { resetKeys: true }));

/**
 * Slack connector Lambda, invoked by the executor with the Lambda SDK (RequestResponse) and a
 * `ConnectorRequest` payload; answers a `ConnectorResponse`. Config is read at cold start, so a
 * live deployment without `SLACK_BOT_TOKEN` fails to initialise instead of failing per call.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { loadSlackConfig } from '../connectors/config.js';
import { serveConnector } from '../connectors/sdk.js';
import { createSlackConnector } from '../connectors/slack.js';
import { logger } from '../shared/powertools.js';

/** Bare entry point: tests and the local in-process invoker call it directly. */
export const connectorSlack = serveConnector(createSlackConnector({ config: loadSlackConfig() }));

export const handler = middy(connectorSlack).use(injectLambdaContext(logger, { resetKeys: true }));

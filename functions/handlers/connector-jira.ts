/**
 * Jira connector Lambda, invoked by the executor with the Lambda SDK (RequestResponse) and a
 * `ConnectorRequest` payload; answers a `ConnectorResponse`. Config is read at cold start, so a
 * live deployment without Jira credentials fails to initialise instead of failing per call.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { loadJiraConfig } from '../connectors/config.js';
import { createJiraConnector } from '../connectors/jira.js';
import { serveConnector } from '../connectors/sdk.js';
import { logger } from '../shared/powertools.js';

/** Bare entry point: tests and the local in-process invoker call it directly. */
export const connectorJira = serveConnector(createJiraConnector({ config: loadJiraConfig() }));

export const handler = middy(connectorJira).use(injectLambdaContext(logger, { resetKeys: true }));

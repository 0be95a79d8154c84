/**
 * Jira connector Lambda, invoked by the executor with the Lambda SDK (RequestResponse) and a
 * `ConnectorRequest` payload; answers a `ConnectorResponse`. In AWS the credentials come from the
 * connector's own secret (`OC_JIRA_SECRET_ARN`), locally from the `JIRA_*` variables. Config is
 * read at cold start, so a live deployment without usable credentials fails to initialise
 * instead of failing per call.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { jiraConfigSource, type ConfigSourceOptions } from '../connectors/config.js';
import { createConfiguredConnector } from '../connectors/configured.js';
import { createJiraConnector, type JiraConnectorOptions } from '../connectors/jira.js';
import { logger } from '../shared/powertools.js';
import { readSecretString } from '../store/secrets.js';

export type ConnectorJiraOptions = ConfigSourceOptions & Pick<JiraConnectorOptions, 'fetch' | 'timeoutMs'>;

/** Builds the entry point (tests inject the env and the secret reader). */
export function createConnectorJira(options: ConnectorJiraOptions = {}) {
  const { env, readSecret = readSecretString, ...connectorOptions } = options;
  return createConfiguredConnector(jiraConfigSource({ env, readSecret }), (config) =>
    createJiraConnector({ config, ...connectorOptions }),
  );
}

/** Bare entry point: tests and the local in-process invoker call it directly. */
export const connectorJira = await createConnectorJira();

export const handler = middy(connectorJira).use(injectLambdaContext(logger, { resetKeys: true }));

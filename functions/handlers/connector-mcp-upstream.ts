/**
 * The generic MCP-client connector's Lambda (issue 25), invoked by the executors with a
 * `ConnectorRequest` whose `tool` is an upstream server and `action` its MCP tool. The payload is
 * validated like every connector's (`serveConnector`); the target (URL, credentials, pinned
 * schemas) comes from the tenant's upstream catalog through `catalogResolver`.
 *
 * `OC_UPSTREAM_ALLOW_PRIVATE=true` is set by CDK only with `-c upstreamVpc=...` (the function then
 * runs in the operator's VPC to reach private upstreams); otherwise an upstream must be https on
 * a public address.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { createMcpUpstreamConnector } from '../connectors/mcp-upstream.js';
import { serveConnector } from '../connectors/sdk.js';
import { ENV, TABLE } from '../shared/constants.js';
import { logger } from '../shared/powertools.js';
import { createDocumentClient } from '../store/dynamo.js';
import { catalogResolver } from './upstream-state.js';

export const handler = middy(
  serveConnector(
    createMcpUpstreamConnector({
      resolve: catalogResolver(createDocumentClient(), process.env[ENV.tableName] || TABLE.defaultName, {
        local: false,
      }),
      allowPrivate: process.env[ENV.upstreamAllowPrivate] === 'true',
    }),
  ),
).use(injectLambdaContext(logger, { resetKeys: true }));

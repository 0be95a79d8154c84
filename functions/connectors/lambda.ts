/**
 * A connector's Lambda entry point: the payload validated as a `ConnectorRequest`
 * (`serveConnector`), the Powertools context injected, and credentials read by name from the
 * connector's own secret (`OC_<TOOL>_SECRET_ARN`, through the cached Secrets Manager reader).
 *
 *   export const handler = lambdaHandler(templateConnector, {});
 *
 * Apart from the SDK (`./sdk.ts`) so that the gateway's deciding functions, which read connector
 * definitions only for their specs, bundle neither this edge nor the Secrets Manager client.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { logger } from '../shared/powertools.js';
import { readSecretString } from '../store/secrets.js';
import { secretsFromEnvironment, serveConnector, type Connectors, type RuntimeOptions } from './sdk.js';
import type { ConnectorResponse } from './types.js';

export function lambdaHandler<O>(
  connectors: Connectors<O>,
  options: O,
  runtime: RuntimeOptions = {},
): middy.MiddyfiedHandler<unknown, ConnectorResponse> {
  const secrets = runtime.secrets ?? secretsFromEnvironment(connectors.tool, process.env, readSecretString);
  return middy(serveConnector(connectors.create(options, { secrets }))).use(
    injectLambdaContext(logger, { resetKeys: true }),
  );
}

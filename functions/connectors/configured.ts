/**
 * A connector Lambda's entry point built from a `ConfigSource`: the config is loaded once at cold
 * start (a missing or malformed secret fails initialisation, like a missing variable), and a
 * secret-backed config is loaded again before each call so a re-put token is picked up. The
 * reader's cache (5 minutes in AWS) bounds how often that reaches Secrets Manager.
 */
import { logger } from '../shared/powertools.js';
import type { ConfigSource } from './config.js';
import { serveConnector } from './sdk.js';
import type { Connector, ConnectorResponse } from './types.js';

export type ConnectorEntryPoint = (event: unknown) => Promise<ConnectorResponse>;

export async function createConfiguredConnector<C>(
  source: ConfigSource<C>,
  build: (config: C) => Connector,
): Promise<ConnectorEntryPoint> {
  let config = await source.load();
  let connector = build(config);
  if (!source.fromSecret) return serveConnector(connector);

  return serveConnector(async (request) => {
    try {
      // Same object while the secret's value is unchanged: the connector is rebuilt only on a change.
      const next = await source.load();
      if (next !== config) {
        config = next;
        connector = build(next);
        logger.info('connector credentials reloaded', { tool: request.tool });
      }
    } catch (error) {
      // A failed refresh (throttling, a bad re-put) must not take down a working connector; the
      // message names the secret, never its value.
      logger.error('connector credentials refresh failed; using the last good ones', {
        tool: request.tool,
        error: error as Error,
      });
    }
    return connector(request);
  });
}

/**
 * The in-process connector registry (local stack and tests) and the static capability list that
 * lets the gateway refuse to approve what no connector can run (W11).
 */
import type { ConnectorName } from '../shared/constants.js';
import { loadJiraConfig, loadSlackConfig } from './config.js';
import { createJiraConnector, JIRA_ACTIONS, JIRA_TOOL } from './jira.js';
import { serveConnector } from './sdk.js';
import { createSlackConnector, SLACK_ACTIONS, SLACK_TOOL } from './slack.js';
import type { Connector, ConnectorRegistry } from './types.js';

/** Supported actions per tool, without the tool prefix. Kept equal to the connectors by a test. */
export const CONNECTOR_ACTIONS: Readonly<Record<ConnectorName, readonly string[]>> = {
  [SLACK_TOOL]: SLACK_ACTIONS,
  [JIRA_TOOL]: JIRA_ACTIONS,
};

/** True when a registered connector implements `tool.action`. */
export function isSupportedAction(tool: string, action: string): boolean {
  return Object.hasOwn(CONNECTOR_ACTIONS, tool) && CONNECTOR_ACTIONS[tool as ConnectorName].includes(action);
}

export interface ConnectorRegistryOptions {
  /** Defaults to `process.env`; mode and credentials come from it (see config.ts). */
  env?: Readonly<Record<string, string | undefined>>;
  now?: () => Date;
  fetch?: typeof fetch;
  slackApiBaseUrl?: string;
  upstreamTimeoutMs?: number;
}

/**
 * Every connector, wrapped exactly like its Lambda entry point (payload validated first).
 * Throws `ConnectorConfigError` in live mode when a credential is missing.
 */
export function createConnectorRegistry(options: ConnectorRegistryOptions = {}): ConnectorRegistry {
  const env = options.env ?? process.env;
  const registry: Record<ConnectorName, Connector> = {
    slack: serveConnector(
      createSlackConnector({
        config: loadSlackConfig(env),
        now: options.now,
        fetch: options.fetch,
        apiBaseUrl: options.slackApiBaseUrl,
        timeoutMs: options.upstreamTimeoutMs,
      }),
    ),
    jira: serveConnector(
      createJiraConnector({
        config: loadJiraConfig(env),
        fetch: options.fetch,
        timeoutMs: options.upstreamTimeoutMs,
      }),
    ),
  };
  return Object.freeze(registry);
}

/** Alias used by the composition root (`functions/handlers/app-state.ts`). */
export const connectorRegistry = createConnectorRegistry;

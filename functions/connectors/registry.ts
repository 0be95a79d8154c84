/**
 * The gateway's registry, built from the connector definitions: the in-process connectors (local
 * stack and tests), which actions exist (policy data is reconciled with it by a test, W11) and
 * each action's risk floor (W4).
 */
import type { ConnectorName } from '../shared/constants.js';
import { loadConnectorsMode, loadJiraConfig, loadSlackConfig } from './config.js';
import { jiraConnector } from './jira.js';
import { secretsFromEnvironment, serveConnector, type ActionSpec } from './sdk.js';
import { slackConnector } from './slack.js';
import { templateConnector } from './template.js';
import type { Connector, ConnectorRegistry } from './types.js';

/** Every connector definition the gateway routes to, by tool. */
export const CONNECTOR_DEFINITIONS = {
  slack: slackConnector,
  jira: jiraConnector,
  template: templateConnector,
} as const satisfies Record<ConnectorName, { tool: string; specs: readonly ActionSpec[] }>;

/** Supported actions per tool, without the tool prefix. */
export const CONNECTOR_ACTIONS: Readonly<Record<ConnectorName, readonly string[]>> = {
  slack: slackConnector.specs.map((spec) => spec.action),
  jira: jiraConnector.specs.map((spec) => spec.action),
  template: templateConnector.specs.map((spec) => spec.action),
};

/** Every implemented action's spec (name `tool.action`, risk floor, timeout). */
export const ACTION_SPECS: readonly ActionSpec[] = Object.values(CONNECTOR_DEFINITIONS).flatMap(
  (definition) => definition.specs,
);

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
      slackConnector.create({
        config: loadSlackConfig(env),
        now: options.now,
        fetch: options.fetch,
        apiBaseUrl: options.slackApiBaseUrl,
        timeoutMs: options.upstreamTimeoutMs,
      }),
    ),
    jira: serveConnector(
      jiraConnector.create({
        config: loadJiraConfig(env),
        fetch: options.fetch,
        timeoutMs: options.upstreamTimeoutMs,
      }),
    ),
    // Credentials are read by name when a call needs them (TEMPLATE_* variables locally).
    template: serveConnector(
      templateConnector.create(
        { mode: loadConnectorsMode(env), fetch: options.fetch },
        { secrets: secretsFromEnvironment('template', env) },
      ),
    ),
  };
  return Object.freeze(registry);
}

/** Alias used by the composition root (`functions/handlers/app-state.ts`). */
export const connectorRegistry = createConnectorRegistry;

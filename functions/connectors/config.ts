/**
 * Connector configuration, validated with zod. Live credentials come from the connector's own
 * Secrets Manager secret when its ARN variable is set (AWS; `CONNECTOR_SECRET_ENV`), otherwise
 * from environment variables (local live runs). A missing or malformed credential throws at cold
 * start (the Lambda fails to initialise) with a message naming the variable or the secret and
 * its fields; values never appear in the message.
 */
import * as z from 'zod';
import { CONNECTOR_SECRET_ENV, ENV } from '../shared/constants.js';

export const ConnectorsMode = z.enum(['mock', 'live']);
export type ConnectorsMode = z.infer<typeof ConnectorsMode>;

export type SlackConfig = { mode: 'mock' } | { mode: 'live'; botToken: string };
export type JiraConfig =
  { mode: 'mock' } | { mode: 'live'; baseUrl: string; email: string; apiToken: string };

export class ConnectorConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConnectorConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Empty and whitespace-only values count as missing. */
const present = (value: string | undefined) =>
  value === undefined || value.trim() === '' ? undefined : value.trim();

const secret = z.string().regex(/^\S{1,4096}$/, 'must be a single token without whitespace');

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** https only (credentials travel in a header); plain http is tolerated for loopback test servers. */
const jiraBaseUrl = z
  .string()
  .refine((value) => URL.canParse(value), 'must be an absolute URL')
  .transform((value) => new URL(value))
  .refine(
    (url) => url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)),
    'must use https',
  )
  .refine(
    (url) => !url.username && !url.password && !url.search && !url.hash,
    'must not carry credentials, a query or a fragment',
  )
  .transform((url) => url.toString().replace(/\/+$/, ''));

const SlackCredentials = z.object({ botToken: secret });
const JiraCredentials = z.object({
  baseUrl: z.string().pipe(jiraBaseUrl),
  email: z.string().regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address'),
  apiToken: secret,
});

/** Short messages that never quote the input (a credential). */
const credentialErrorMap: z.core.$ZodErrorMap = (issue) =>
  issue.code === 'invalid_type'
    ? issue.input === undefined
      ? 'is required'
      : `must be a ${issue.expected}`
    : undefined;

/** Validates credentials; on failure throws one message naming every bad field (`names` maps keys to what the operator sets). */
function parseCredentials<S extends z.ZodType>(
  schema: S,
  input: Record<string, unknown>,
  prefix: string,
  names: Record<string, string>,
): z.output<S> {
  const parsed = schema.safeParse(input, { error: credentialErrorMap });
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    return `${names[key] ?? key} ${issue.message}`;
  });
  throw new ConnectorConfigError(`${prefix}${problems.join('; ')}`);
}

const envPrefix = (connector: string) => `${connector} connector: ${ENV.connectorsMode}=live but `;

/**
 * `OC_CONNECTORS_MODE`: `live` (the default, as in the original and `shared/config.ts`, so an
 * unconfigured deployment fails on missing credentials instead of silently faking side effects)
 * or `mock` (what the local stack and tests set). Anything else fails fast.
 */
export function loadConnectorsMode(env: Env = process.env): ConnectorsMode {
  const raw = present(env[ENV.connectorsMode]) ?? 'live';
  const parsed = ConnectorsMode.safeParse(raw);
  if (!parsed.success) {
    throw new ConnectorConfigError(`${ENV.connectorsMode} must be "mock" or "live"`);
  }
  return parsed.data;
}

export function loadSlackConfig(env: Env = process.env): SlackConfig {
  if (loadConnectorsMode(env) === 'mock') return { mode: 'mock' };
  const credentials = parseCredentials(
    SlackCredentials,
    { botToken: present(env[ENV.slackBotToken]) },
    envPrefix('slack'),
    { botToken: ENV.slackBotToken },
  );
  return { mode: 'live', ...credentials };
}

export function loadJiraConfig(env: Env = process.env): JiraConfig {
  if (loadConnectorsMode(env) === 'mock') return { mode: 'mock' };
  const credentials = parseCredentials(
    JiraCredentials,
    {
      baseUrl: present(env[ENV.jiraBaseUrl]),
      email: present(env[ENV.jiraEmail]),
      apiToken: present(env[ENV.jiraApiToken]),
    },
    envPrefix('jira'),
    { baseUrl: ENV.jiraBaseUrl, email: ENV.jiraEmail, apiToken: ENV.jiraApiToken },
  );
  return { mode: 'live', ...credentials };
}

/**
 * Reads a secret's current string value by ARN (Secrets Manager with a cache in AWS,
 * `store/secrets.ts`; a fake in tests). It throws errors that name the secret, never its value.
 */
export type SecretReader = (secretId: string) => Promise<string>;

export interface ConfigSourceOptions {
  /** Defaults to `process.env`: the mode and either the secret ARN or the credential variables. */
  env?: Env;
  /** Required when the connector's secret ARN variable is set. */
  readSecret?: SecretReader;
}

/** Where a connector's config comes from. `load` runs at cold start and again before each call. */
export interface ConfigSource<C> {
  load(): Promise<C>;
  /**
   * True when `load` reads a secret whose value may change (rotated in Slack/Jira and re-put);
   * false for mock mode and environment variables, which are fixed for the instance's life.
   */
  readonly fromSecret: boolean;
}

/** The JSON keys of each connector's secret, by credential field. */
export const SECRET_KEYS = {
  slack: { botToken: 'bot_token' },
  jira: { baseUrl: 'base_url', email: 'email', apiToken: 'api_token' },
} as const satisfies Record<string, Record<string, string>>;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const trimmed = (value: unknown) => (typeof value === 'string' ? present(value) : value);

/**
 * A source that reads `secretId` and validates it as `{ <json key>: string }`. Parsing happens
 * again only when the secret's value changed, so `load` returns the same object while the reader
 * serves its cache.
 */
function secretSource<C extends object>(
  connector: 'slack' | 'jira',
  secretId: string,
  readSecret: SecretReader,
  schema: z.ZodType<C>,
): ConfigSource<{ mode: 'live' } & C> {
  const keys: Record<string, string> = SECRET_KEYS[connector];
  const prefix = `${connector} connector: secret ${secretId}`;
  let last: { raw: string; config: { mode: 'live' } & C } | undefined;
  return {
    fromSecret: true,
    load: async () => {
      let raw: string;
      try {
        raw = await readSecret(secretId);
      } catch (error) {
        // Readers name the secret in their messages; anything else gets a generic one.
        const reason = error instanceof Error ? error.message : `secret ${secretId} could not be read`;
        throw new ConnectorConfigError(`${connector} connector: ${reason}`, { cause: error });
      }
      if (last?.raw === raw) return last.config;
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        // Never the SyntaxError's message: it quotes the start of the value.
        throw new ConnectorConfigError(`${prefix} is not valid JSON; expected ${secretShape(connector)}`);
      }
      if (!isObject(json)) {
        throw new ConnectorConfigError(`${prefix} is not a JSON object; expected ${secretShape(connector)}`);
      }
      const input = Object.fromEntries(
        Object.entries(keys).map(([field, key]) => [field, trimmed(json[key])]),
      );
      const credentials = parseCredentials(schema, input, `${prefix}: `, keys);
      last = { raw, config: { mode: 'live', ...credentials } };
      return last.config;
    },
  };
}

/** `{"bot_token": "..."}`: what the operator puts into the secret. */
export const secretShape = (connector: 'slack' | 'jira'): string =>
  `{${Object.values(SECRET_KEYS[connector])
    .map((key) => `"${key}": "..."`)
    .join(', ')}}`;

function configSource<C>(
  connector: 'slack' | 'jira',
  options: ConfigSourceOptions,
  fromEnv: (env: Env) => C,
  fromSecret: (secretId: string, readSecret: SecretReader) => ConfigSource<C>,
): ConfigSource<C> {
  const env = options.env ?? process.env;
  const secretId = present(env[CONNECTOR_SECRET_ENV[connector]]);
  if (loadConnectorsMode(env) === 'live' && secretId !== undefined) {
    if (!options.readSecret) {
      throw new ConnectorConfigError(
        `${connector} connector: ${CONNECTOR_SECRET_ENV[connector]} is set but no secret reader was given`,
      );
    }
    return fromSecret(secretId, options.readSecret);
  }
  const config = fromEnv(env);
  return { fromSecret: false, load: async () => config };
}

/** Slack config: mock, the secret named by `OC_SLACK_SECRET_ARN`, or `SLACK_BOT_TOKEN`. */
export function slackConfigSource(options: ConfigSourceOptions = {}): ConfigSource<SlackConfig> {
  return configSource('slack', options, loadSlackConfig, (secretId, readSecret) =>
    secretSource('slack', secretId, readSecret, SlackCredentials),
  );
}

/** Jira config: mock, the secret named by `OC_JIRA_SECRET_ARN`, or the `JIRA_*` variables. */
export function jiraConfigSource(options: ConfigSourceOptions = {}): ConfigSource<JiraConfig> {
  return configSource('jira', options, loadJiraConfig, (secretId, readSecret) =>
    secretSource('jira', secretId, readSecret, JiraCredentials),
  );
}

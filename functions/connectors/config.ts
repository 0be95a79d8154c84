/**
 * Connector configuration, read once from the environment and validated with zod.
 * In live mode a missing or malformed credential throws at cold start (the Lambda fails to
 * initialise) with a message naming the variables; values never appear in the message.
 */
import { z } from 'zod';
import { ENV } from '../shared/constants.js';

export const ConnectorsMode = z.enum(['mock', 'live']);
export type ConnectorsMode = z.infer<typeof ConnectorsMode>;

export type SlackConfig = { mode: 'mock' } | { mode: 'live'; botToken: string };
export type JiraConfig =
  { mode: 'mock' } | { mode: 'live'; baseUrl: string; email: string; apiToken: string };

export class ConnectorConfigError extends Error {
  constructor(message: string) {
    super(message);
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

function fail(connector: string, issues: z.core.$ZodIssue[], names: Record<string, string>): never {
  const problems = issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    const name = names[key] ?? key;
    return issue.code === 'invalid_type' ? `${name} is required` : `${name} ${issue.message}`;
  });
  throw new ConnectorConfigError(
    `${connector} connector: ${ENV.connectorsMode}=live but ${problems.join('; ')}`,
  );
}

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
  const schema = z.object({ botToken: secret });
  const parsed = schema.safeParse({ botToken: present(env[ENV.slackBotToken]) });
  if (!parsed.success) fail('slack', parsed.error.issues, { botToken: ENV.slackBotToken });
  return { mode: 'live', ...parsed.data };
}

export function loadJiraConfig(env: Env = process.env): JiraConfig {
  if (loadConnectorsMode(env) === 'mock') return { mode: 'mock' };
  const schema = z.object({
    baseUrl: z.string().pipe(jiraBaseUrl),
    email: z.string().regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address'),
    apiToken: secret,
  });
  const parsed = schema.safeParse({
    baseUrl: present(env[ENV.jiraBaseUrl]),
    email: present(env[ENV.jiraEmail]),
    apiToken: present(env[ENV.jiraApiToken]),
  });
  if (!parsed.success) {
    fail('jira', parsed.error.issues, {
      baseUrl: ENV.jiraBaseUrl,
      email: ENV.jiraEmail,
      apiToken: ENV.jiraApiToken,
    });
  }
  return { mode: 'live', ...parsed.data };
}

/**
 * Jira connector: `jira.issue.create`, `jira.issue.list`.
 *
 * Mock mode reproduces the original's outputs byte for byte. Live mode calls Jira Cloud REST v3
 * with Basic auth (email:API token). `jira.issue.delete` is deliberately not supported: policy
 * routes it to approval, and callers should check `isSupportedAction` before granting (W11).
 */
import * as z from 'zod';
import type { JiraConfig } from './config.js';
import {
  callUpstream,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  type HttpReply,
} from './http.js';
import { defineConnector, UpstreamError, type ConnectorOutput, type DefinedConnector } from './sdk.js';

export const JIRA_TOOL = 'jira';
export const JIRA_ACTIONS = ['issue.create', 'issue.list'] as const;

export interface JiraConnectorOptions {
  config: JiraConfig;
  fetch?: typeof fetch;
  timeoutMs?: number;
  maxResponseBytes?: number;
}

export const IssueCreateParams = z.object({
  project: z.string().min(1).max(64),
  summary: z.string().min(1).max(255),
  description: z.string().max(32_000).optional(),
  // The original defaults both an absent and an empty issue_type to Task.
  issue_type: z
    .string()
    .max(64)
    .optional()
    .transform((value) => value || 'Task'),
});
export type IssueCreateParams = z.infer<typeof IssueCreateParams>;

/** The original ignores params; `project` is an optional, strictly shaped filter for live mode. */
export const IssueListParams = z.object({
  project: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be a Jira project key')
    .optional(),
});
export type IssueListParams = z.infer<typeof IssueListParams>;

interface JiraBackend {
  createIssue(params: IssueCreateParams): Promise<ConnectorOutput>;
  listIssues(params: IssueListParams): Promise<ConnectorOutput>;
}

const MOCK_ISSUES = [
  { id: '10001', key: 'OPS-1', summary: 'Mock issue 1' },
  { id: '10002', key: 'OPS-2', summary: 'Mock issue 2' },
];

const mockJira: JiraBackend = {
  createIssue: async ({ project }) => ({
    id: '10001',
    key: `${project}-42`,
    mock: true,
    self: 'https://mock.atlassian.net/rest/api/3/issue/10001',
  }),
  listIssues: async () => ({ issues: MOCK_ISSUES.map((issue) => ({ ...issue })), mock: true, total: 2 }),
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Names of the fields Jira rejected (keys of `errors`), never its messages. */
function rejectedFields(json: unknown): string[] {
  if (!isObject(json) || !isObject(json.errors)) return [];
  return Object.keys(json.errors)
    .filter((key) => /^[A-Za-z0-9_.-]{1,64}$/.test(key))
    .slice(0, 5);
}

function jiraBody(reply: HttpReply): Record<string, unknown> {
  if (reply.status < 200 || reply.status > 299) {
    const fields = rejectedFields(reply.json);
    const suffix = fields.length > 0 ? ` (rejected fields: ${fields.join(', ')})` : '';
    throw new UpstreamError(`jira: HTTP ${reply.status}${suffix}`, { http_status: reply.status });
  }
  if (!isObject(reply.json)) {
    throw new UpstreamError('jira: invalid response body', { http_status: reply.status });
  }
  return reply.json;
}

/** Atlassian Document Format: one paragraph, one text node (as the original). */
const adfParagraph = (text: string) => ({
  type: 'doc',
  version: 1,
  content: [{ type: 'paragraph', content: [{ type: 'text', text }] }],
});

function liveJira(config: Extract<JiraConfig, { mode: 'live' }>, options: JiraConnectorOptions): JiraBackend {
  const authorization = `Basic ${Buffer.from(`${config.email}:${config.apiToken}`).toString('base64')}`;
  const call = (method: 'GET' | 'POST', path: string, body?: unknown) =>
    callUpstream({
      service: JIRA_TOOL,
      method,
      url: `${config.baseUrl}${path}`,
      headers: { authorization },
      body,
      timeoutMs: options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      fetch: options.fetch ?? globalThis.fetch,
    });

  return {
    createIssue: async ({ project, summary, description, issue_type }) => {
      const fields: Record<string, unknown> = {
        project: { key: project },
        summary,
        issuetype: { name: issue_type },
      };
      if (description) fields.description = adfParagraph(description);
      return jiraBody(await call('POST', '/rest/api/3/issue', { fields }));
    },
    listIssues: async ({ project }) => {
      // The enhanced search endpoint (the original's /rest/api/3/search is gone) rejects
      // unbounded JQL; `project` is a validated key, so no JQL injection.
      const jql = project
        ? `project = "${project}" ORDER BY created DESC`
        : 'created >= -30d ORDER BY created DESC';
      const query = new URLSearchParams({ jql, maxResults: '20', fields: 'summary' });
      const body = jiraBody(await call('GET', `/rest/api/3/search/jql?${query.toString()}`));
      // Same shape as the mock and bounded; `total` is the number returned (the API reports none).
      const issues = (Array.isArray(body.issues) ? body.issues : []).filter(isObject).map((issue) => ({
        id: String(issue.id ?? ''),
        key: String(issue.key ?? ''),
        summary:
          isObject(issue.fields) && typeof issue.fields.summary === 'string' ? issue.fields.summary : '',
      }));
      return { issues, total: issues.length };
    },
  };
}

export function createJiraConnector(options: JiraConnectorOptions): DefinedConnector {
  const backend = options.config.mode === 'live' ? liveJira(options.config, options) : mockJira;
  return defineConnector({
    tool: JIRA_TOOL,
    actions: {
      'issue.create': { params: IssueCreateParams, run: (params) => backend.createIssue(params) },
      'issue.list': { params: IssueListParams, run: (params) => backend.listIssues(params) },
    },
  });
}

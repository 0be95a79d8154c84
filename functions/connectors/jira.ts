/**
 * Jira connector: `jira.issue.create`, `jira.issue.list`, `jira.issue.delete` (destructive: policy
 * gates it behind approval, and now a granted delete runs instead of failing, W11).
 *
 * Mock mode reproduces the original's outputs byte for byte (delete, which the original lacked,
 * answers deterministically). Live mode calls Jira Cloud REST v3 with Basic auth (email:API token).
 */
import * as z from 'zod';
import type { JiraConfig } from './config.js';
import {
  callUpstream,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  retryAfterSeconds,
  type HttpReply,
} from './http.js';
import { defineConnector, UpstreamError, type ConnectorOutput, type DefinedConnector } from './sdk.js';

export const JIRA_TOOL = 'jira';

export interface JiraConnectorOptions {
  config: JiraConfig;
  fetch?: typeof fetch;
  timeoutMs?: number;
  maxResponseBytes?: number;
}

/** A Jira project key; its canonical form is upper case (`ops` and `OPS` are one project). */
const PROJECT_KEY = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

export const IssueCreateParams = z.strictObject({
  project: z.string().regex(PROJECT_KEY, 'must be a Jira project key'),
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
/** Jira's enhanced search refuses larger pages for most fields; the connector never asks for more. */
export const JIRA_MAX_PAGE_SIZE = 50;

/**
 * The original ignores params. Now: `jql` (bounded; Jira parses it, so no injection into anything
 * but the agent's own query), or `project` (a validated key) to list its newest issues, a page
 * size up to 50 (default 20) and `next_page_token` to continue.
 */
export const IssueListParams = z.strictObject({
  jql: z.string().min(1).max(2000).optional(),
  project: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be a Jira project key')
    .optional(),
  max_results: z.number().int().min(1).max(JIRA_MAX_PAGE_SIZE).default(20),
  next_page_token: z.string().min(1).max(2048).optional(),
});
export type IssueListParams = z.infer<typeof IssueListParams>;

/**
 * `OPS-42`: goes into the URL path, so nothing else. A numeric id names the same issue as its key,
 * and a rule on `PROD-*` would not see it: issues are named by key only (the gateway cannot
 * resolve an id to its key before policy without calling Jira). Lower case is accepted and made
 * upper case, the canonical form.
 */
const ISSUE_KEY = /^[A-Za-z][A-Za-z0-9_]{0,63}-[1-9][0-9]{0,12}$/;

/** The action's target: the gateway fills it from the request's `resource` when absent. */
export const IssueDeleteParams = z.strictObject({
  issue: z
    .string()
    .refine((value) => !/^[0-9]+$/.test(value), {
      message: 'is a numeric issue id: use the issue key (such as OPS-42), the name policy and approvers see',
      abort: true,
    })
    .regex(ISSUE_KEY, 'must be an issue key such as OPS-42'),
  delete_subtasks: z.boolean().default(false),
});

/** Jira keys are case-insensitive; the canonical form is upper case. */
const upperCase = (value: string) => ({ ok: true as const, value: value.toUpperCase() });
export type IssueDeleteParams = z.infer<typeof IssueDeleteParams>;

export const IssueCreateOutput = z.looseObject({ id: z.string(), key: z.string(), self: z.string() });
export const IssueListOutput = z.object({
  issues: z.array(z.object({ id: z.string(), key: z.string(), summary: z.string() })),
  mock: z.literal(true).optional(),
  total: z.number().int(),
  next_page_token: z.string().optional(),
});
export const IssueDeleteOutput = z.object({
  deleted: z.literal(true),
  issue: z.string(),
  mock: z.literal(true).optional(),
});

interface JiraBackend {
  createIssue(params: IssueCreateParams, signal: AbortSignal): Promise<ConnectorOutput>;
  listIssues(params: IssueListParams, signal: AbortSignal): Promise<ConnectorOutput>;
  deleteIssue(
    params: { issue: string; delete_subtasks: boolean },
    signal: AbortSignal,
  ): Promise<ConnectorOutput>;
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
  // Deterministic: the mock has no state, so deleting any well-formed key "succeeds".
  deleteIssue: async ({ issue }) => ({ deleted: true, issue, mock: true }),
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

function jiraBody(reply: HttpReply, options: { empty?: boolean } = {}): Record<string, unknown> {
  if (reply.status === 429) {
    const after = retryAfterSeconds(reply.headers['retry-after']);
    throw new UpstreamError(`jira: rate limited${after === undefined ? '' : `, retry after ${after} s`}`, {
      http_status: 429,
      retry_after_sec: after,
    });
  }
  if (reply.status < 200 || reply.status > 299) {
    const fields = rejectedFields(reply.json);
    const suffix = fields.length > 0 ? ` (rejected fields: ${fields.join(', ')})` : '';
    throw new UpstreamError(`jira: HTTP ${reply.status}${suffix}`, { http_status: reply.status });
  }
  if (options.empty) return {};
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
  const call = (method: 'GET' | 'POST' | 'DELETE', path: string, signal: AbortSignal, body?: unknown) =>
    callUpstream({
      signal,
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
    createIssue: async ({ project, summary, description, issue_type }, signal) => {
      const fields: Record<string, unknown> = {
        project: { key: project },
        summary,
        issuetype: { name: issue_type },
      };
      if (description) fields.description = adfParagraph(description);
      return jiraBody(await call('POST', '/rest/api/3/issue', signal, { fields }));
    },
    listIssues: async ({ jql, project, max_results, next_page_token }, signal) => {
      // The enhanced search endpoint (the original's /rest/api/3/search is gone) rejects
      // unbounded JQL; `project` is a validated key, so no JQL injection.
      const query = new URLSearchParams({
        jql:
          jql ??
          (project
            ? `project = "${project}" ORDER BY created DESC`
            : 'created >= -30d ORDER BY created DESC'),
        maxResults: String(max_results),
        fields: 'summary',
      });
      if (next_page_token) query.set('nextPageToken', next_page_token);
      const body = jiraBody(await call('GET', `/rest/api/3/search/jql?${query.toString()}`, signal));
      // Same shape as the mock and bounded; `total` is the number returned (the API reports none).
      const issues = (Array.isArray(body.issues) ? body.issues : []).filter(isObject).map((issue) => ({
        id: String(issue.id ?? ''),
        key: String(issue.key ?? ''),
        summary:
          isObject(issue.fields) && typeof issue.fields.summary === 'string' ? issue.fields.summary : '',
      }));
      const next =
        typeof body.nextPageToken === 'string' && body.nextPageToken ? body.nextPageToken : undefined;
      return { issues, total: issues.length, ...(next ? { next_page_token: next } : {}) };
    },
    deleteIssue: async ({ issue, delete_subtasks }, signal) => {
      const query = new URLSearchParams({ deleteSubtasks: String(delete_subtasks) });
      jiraBody(
        await call('DELETE', `/rest/api/3/issue/${encodeURIComponent(issue)}?${query.toString()}`, signal),
        {
          empty: true,
        },
      );
      return { deleted: true, issue };
    },
  };
}

/** The Jira connector's definition: its actions, floors and timeouts (also read by the gateway). */
export const jiraConnector = defineConnector({
  tool: JIRA_TOOL,
  client: (options: JiraConnectorOptions): JiraBackend =>
    options.config.mode === 'live' ? liveJira(options.config, options) : mockJira,
  actions: {
    'issue.create': {
      input: IssueCreateParams,
      // The project the issue is created in: what a rule on `resource` judges.
      target: 'project',
      canonicalTarget: upperCase,
      output: IssueCreateOutput,
      timeoutMs: 8_000,
      risk: 0,
      run: (params, { client, signal }) => client.createIssue(params, signal),
    },
    'issue.list': {
      input: IssueListParams,
      target: null,
      output: IssueListOutput,
      timeoutMs: 8_000,
      risk: 0,
      run: (params, { client, signal }) => client.listIssues(params, signal),
    },
    // Destructive: policy sends it to approval whatever the risk; its floor keeps a self-reported
    // 0 from being recorded (and read by any tenant policy) as harmless (W4).
    'issue.delete': {
      input: IssueDeleteParams,
      target: 'issue',
      canonicalTarget: upperCase,
      output: IssueDeleteOutput,
      timeoutMs: 8_000,
      risk: 6,
      run: (params, { client, signal }) => client.deleteIssue(params, signal),
    },
  },
});

export const JIRA_ACTIONS = jiraConnector.specs.map((spec) => spec.action);

export function createJiraConnector(options: JiraConnectorOptions): DefinedConnector {
  return jiraConnector.create(options);
}

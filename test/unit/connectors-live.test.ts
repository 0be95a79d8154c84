import { jest } from '@jest/globals';
import { createJiraConnector } from '../../functions/connectors/jira.js';
import { createSlackConnector } from '../../functions/connectors/slack.js';
import type { ConnectorRequest, ConnectorResponse } from '../../functions/connectors/types.js';
import { logger } from '../../functions/shared/powertools.js';
import { json, startUpstream, type UpstreamServer } from '../fixtures/connectors/upstream-server.js';

const SLACK_TOKEN = 'xoxb-test-secret-token-123';
const JIRA_EMAIL = 'bot@example.com';
const JIRA_TOKEN = 'jira-test-secret-token-456';
const LEAKY_BODY = 'Traceback at /srv/internal/app.py line 42 password=hunter2';

const request = (tool: string, action: string, params: Record<string, unknown> = {}): ConnectorRequest => ({
  event_id: 'evt-1',
  tenant_id: 'tenant1',
  agent_id: 'agent-1',
  tool,
  action,
  params,
  resource: '',
});

let upstream: UpstreamServer;

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream.close();
});

beforeEach(() => {
  upstream.requests.length = 0;
});

/** Nothing from the upstream side (body, address, credentials) may reach the agent. */
function expectNoLeak(response: ConnectorResponse) {
  const text = JSON.stringify(response);
  for (const secret of [SLACK_TOKEN, JIRA_TOKEN, '127.0.0.1', 'http://', 'Traceback', 'hunter2', 'stack']) {
    expect(text).not.toContain(secret);
  }
}

describe('slack connector (live)', () => {
  const slack = () =>
    createSlackConnector({
      config: { mode: 'live', botToken: SLACK_TOKEN },
      apiBaseUrl: `${upstream.baseUrl}/api`,
      timeoutMs: 300,
      maxResponseBytes: 4096,
    });

  it('posts with chat.postMessage and returns Slack’s body', async () => {
    const body = { ok: true, channel: 'C123', ts: '1700000000.000100', message: { text: 'Hello' } };
    upstream.respond(json(200, body));

    const response = await slack()(request('slack', 'msg.post', { channel: 'C123', text: 'Hello' }));

    expect(response).toEqual({ status: 'success', output: body });
    expect(upstream.requests).toHaveLength(1);
    const [sent] = upstream.requests;
    expect(sent?.method).toBe('POST');
    expect(sent?.url).toBe('/api/chat.postMessage');
    expect(sent?.headers.authorization).toBe(`Bearer ${SLACK_TOKEN}`);
    // @slack/web-api's encoding: form fields, as Slack documents for every method.
    expect(sent?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(sent?.body ?? ''))).toEqual({
      channel: 'C123',
      text: 'Hello',
    });
  });

  it('lists channels with conversations.list in the mock’s shape', async () => {
    upstream.respond(
      json(200, {
        ok: true,
        channels: [
          { id: 'C1', name: 'general', is_private: false, purpose: { value: 'long text' } },
          { id: 'C2', name: 'random' },
        ],
        response_metadata: { next_cursor: '' },
      }),
    );

    const response = await slack()(request('slack', 'channel.list'));

    expect(response).toEqual({
      status: 'success',
      output: {
        channels: [
          { id: 'C1', name: 'general' },
          { id: 'C2', name: 'random' },
        ],
        ok: true,
      },
    });
    expect(upstream.requests[0]?.method).toBe('POST');
    expect(upstream.requests[0]?.url).toBe('/api/conversations.list');
    expect(upstream.requests[0]?.headers.authorization).toBe(`Bearer ${SLACK_TOKEN}`);
    expect(Object.fromEntries(new URLSearchParams(upstream.requests[0]?.body ?? ''))).toEqual({
      limit: '200',
      exclude_archived: 'true',
    });
  });

  it('follows conversations.list cursors up to the limit and hands back the next cursor', async () => {
    const page = (ids: string[], next: string) =>
      json(200, {
        ok: true,
        channels: ids.map((id) => ({ id, name: `n-${id}` })),
        response_metadata: { next_cursor: next },
      });
    const pages = [page(['C1', 'C2'], 'dXNlcjpVMDYxTkZUVDI='), page(['C3'], 'bmV4dA==')];
    upstream.respond((req, res) => pages[upstream.requests.length - 1]!(req, res));

    const response = await slack()(request('slack', 'channel.list', { limit: 3 }));

    expect(response).toEqual({
      status: 'success',
      output: {
        channels: [
          { id: 'C1', name: 'n-C1' },
          { id: 'C2', name: 'n-C2' },
          { id: 'C3', name: 'n-C3' },
        ],
        ok: true,
        next_cursor: 'bmV4dA==',
      },
    });
    const sent = upstream.requests.map((r) => Object.fromEntries(new URLSearchParams(r.body ?? '')));
    expect(sent).toEqual([
      { limit: '3', exclude_archived: 'true' },
      { limit: '1', exclude_archived: 'true', cursor: 'dXNlcjpVMDYxTkZUVDI=' },
    ]);
  });

  it('starts at the given cursor', async () => {
    upstream.respond(json(200, { ok: true, channels: [], response_metadata: { next_cursor: '' } }));

    const response = await slack()(request('slack', 'channel.list', { cursor: 'abc' }));

    expect(response).toEqual({ status: 'success', output: { channels: [], ok: true } });
    expect(new URLSearchParams(upstream.requests[0]?.body ?? '').get('cursor')).toBe('abc');
  });

  it('refuses a 429 at once (no retry of a post) with Slack’s Retry-After', async () => {
    upstream.respond((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '30' });
      res.end(JSON.stringify({ ok: false, error: 'ratelimited' }));
    });

    const response = await slack()(request('slack', 'msg.post', { channel: 'C1', text: 'x' }));

    expect(response).toEqual({
      status: 'error',
      error: { code: 'UPSTREAM_ERROR', message: 'slack: rate limited, retry after 30 s' },
    });
    expect(upstream.requests).toHaveLength(1);
  });

  it('reports invalid_auth (a revoked token) as Slack’s error code, without the token', async () => {
    upstream.respond(json(200, { ok: false, error: 'invalid_auth' }));

    const response = await slack()(request('slack', 'channel.list'));

    expect(response.error).toEqual({ code: 'UPSTREAM_ERROR', message: 'slack: invalid_auth' });
    expectNoLeak(response);
  });

  it('treats ok:false as an upstream error naming only Slack’s error code', async () => {
    upstream.respond(json(200, { ok: false, error: 'channel_not_found', warning: LEAKY_BODY }));

    const response = await slack()(request('slack', 'msg.post', { channel: 'C404', text: 'Hello' }));

    expect(response).toEqual({
      status: 'error',
      error: { code: 'UPSTREAM_ERROR', message: 'slack: channel_not_found' },
    });
    expectNoLeak(response);
  });

  it('checks ok on conversations.list too (the original did not)', async () => {
    upstream.respond(json(200, { ok: false, error: 'missing_scope' }));

    const response = await slack()(request('slack', 'channel.list'));

    expect(response.error).toEqual({ code: 'UPSTREAM_ERROR', message: 'slack: missing_scope' });
  });

  it('does not echo an error field that is not a Slack error code', async () => {
    upstream.respond(json(200, { ok: false, error: `<!channel> ${LEAKY_BODY}` }));

    const response = await slack()(request('slack', 'msg.post', { channel: 'C1', text: 'x' }));

    expect(response.error).toEqual({ code: 'UPSTREAM_ERROR', message: 'slack: unknown_error' });
    expectNoLeak(response);
  });

  it('reports a non-200 answer by status only, and logs the detail', async () => {
    const warn = jest.spyOn(logger, 'warn');
    upstream.respond(json(503, LEAKY_BODY));

    const response = await slack()(request('slack', 'msg.post', { channel: 'C1', text: 'x' }));

    expect(response).toEqual({
      status: 'error',
      error: { code: 'UPSTREAM_ERROR', message: 'slack: HTTP 503' },
    });
    expectNoLeak(response);
    expect(warn).toHaveBeenCalledWith(
      'connector action failed',
      expect.objectContaining({ http_status: 503 }),
    );
    expect(JSON.stringify(warn.mock.calls)).not.toContain(SLACK_TOKEN);
    warn.mockRestore();
  });

  it('reports an unparsable 200 body as invalid', async () => {
    upstream.respond(json(200, `not json ${LEAKY_BODY}`));

    const response = await slack()(request('slack', 'msg.post', { channel: 'C1', text: 'x' }));

    expect(response.error).toEqual({ code: 'UPSTREAM_ERROR', message: 'slack: invalid response body' });
    expectNoLeak(response);
  });

  it('gives up after its timeout when Slack never answers', async () => {
    upstream.respond(() => undefined);

    const started = Date.now();
    const response = await slack()(request('slack', 'msg.post', { channel: 'C1', text: 'x' }));

    expect(response).toEqual({
      status: 'error',
      error: { code: 'UPSTREAM_ERROR', message: 'slack: request timed out' },
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expectNoLeak(response);
  });

  it('refuses to follow redirects', async () => {
    upstream.respond((_req, res) => {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    });

    const response = await slack()(request('slack', 'msg.post', { channel: 'C1', text: 'x' }));

    expect(response.error).toEqual({ code: 'UPSTREAM_ERROR', message: 'slack: request failed' });
    expect(upstream.requests).toHaveLength(1);
    expect(JSON.stringify(response)).not.toContain('169.254');
  });

  it('caps the response size, declared or streamed', async () => {
    const big = JSON.stringify({ ok: true, padding: 'x'.repeat(10_000) });
    upstream.respond(json(200, big));
    const declared = await slack()(request('slack', 'msg.post', { channel: 'C1', text: 'x' }));

    upstream.respond((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no content-length
      res.write(big.slice(0, 5000));
      res.end(big.slice(5000));
    });
    const streamed = await slack()(request('slack', 'msg.post', { channel: 'C1', text: 'x' }));

    for (const response of [declared, streamed]) {
      expect(response.error).toEqual({ code: 'UPSTREAM_ERROR', message: 'slack: response too large' });
    }
  });

  it('reports a refused connection without the address', async () => {
    const closed = await startUpstream();
    const baseUrl = closed.baseUrl;
    await closed.close();
    const connector = createSlackConnector({
      config: { mode: 'live', botToken: SLACK_TOKEN },
      apiBaseUrl: baseUrl,
    });

    const response = await connector(request('slack', 'msg.post', { channel: 'C1', text: 'x' }));

    expect(response.error).toEqual({ code: 'UPSTREAM_ERROR', message: 'slack: request failed' });
    expectNoLeak(response);
  });
});

describe('jira connector (live)', () => {
  const jira = () =>
    createJiraConnector({
      config: { mode: 'live', baseUrl: upstream.baseUrl, email: JIRA_EMAIL, apiToken: JIRA_TOKEN },
      timeoutMs: 300,
    });
  const basic = `Basic ${Buffer.from(`${JIRA_EMAIL}:${JIRA_TOKEN}`).toString('base64')}`;

  it('creates an issue with Basic auth, default type Task and an ADF description', async () => {
    const created = { id: '10100', key: 'OPS-7', self: `${upstream.baseUrl}/rest/api/3/issue/10100` };
    upstream.respond(json(201, created));

    const response = await jira()(
      request('jira', 'issue.create', { project: 'OPS', summary: 'Disk full', description: 'db-1 at 95%' }),
    );

    expect(response).toEqual({ status: 'success', output: created });
    const [sent] = upstream.requests;
    expect(sent?.method).toBe('POST');
    expect(sent?.url).toBe('/rest/api/3/issue');
    expect(sent?.headers.authorization).toBe(basic);
    expect(JSON.parse(sent?.body ?? '')).toEqual({
      fields: {
        project: { key: 'OPS' },
        summary: 'Disk full',
        issuetype: { name: 'Task' },
        description: {
          type: 'doc',
          version: 1,
          content: [{ type: 'paragraph', content: [{ type: 'text', text: 'db-1 at 95%' }] }],
        },
      },
    });
  });

  it('sends the given issue type and no description when none is given', async () => {
    upstream.respond(json(201, { id: '1', key: 'OPS-1', self: 'x' }));

    await jira()(request('jira', 'issue.create', { project: 'OPS', summary: 's', issue_type: 'Bug' }));

    expect(JSON.parse(upstream.requests[0]?.body ?? '')).toEqual({
      fields: { project: { key: 'OPS' }, summary: 's', issuetype: { name: 'Bug' } },
    });
  });

  it('reports a rejected create by status and field names only', async () => {
    upstream.respond(
      json(400, {
        errorMessages: [LEAKY_BODY],
        errors: { project: `valid project is required ${LEAKY_BODY}` },
      }),
    );

    const response = await jira()(request('jira', 'issue.create', { project: 'NOPE', summary: 's' }));

    expect(response.error).toEqual({
      code: 'UPSTREAM_ERROR',
      message: 'jira: HTTP 400 (rejected fields: project)',
    });
    expectNoLeak(response);
  });

  it('lists issues with the enhanced JQL search in the mock’s shape', async () => {
    upstream.respond(
      json(200, {
        issues: [
          { id: '10001', key: 'OPS-1', fields: { summary: 'First' } },
          { id: '10002', key: 'OPS-2', fields: { summary: 'Second' } },
        ],
        isLast: true,
      }),
    );

    const response = await jira()(request('jira', 'issue.list', { project: 'OPS' }));

    expect(response).toEqual({
      status: 'success',
      output: {
        issues: [
          { id: '10001', key: 'OPS-1', summary: 'First' },
          { id: '10002', key: 'OPS-2', summary: 'Second' },
        ],
        total: 2,
      },
    });
    const url = new URL(upstream.requests[0]?.url ?? '', upstream.baseUrl);
    expect(url.pathname).toBe('/rest/api/3/search/jql');
    expect(url.searchParams.get('jql')).toBe('project = "OPS" ORDER BY created DESC');
    expect(url.searchParams.get('maxResults')).toBe('20');
    expect(upstream.requests[0]?.headers.authorization).toBe(basic);
  });

  it('refuses a project filter that is not a project key (no JQL injection)', async () => {
    const response = await jira()(request('jira', 'issue.list', { project: 'OPS" OR project != "X' }));

    expect(response.error).toEqual({
      code: 'INVALID_PARAMS',
      message: 'invalid params: project must be a Jira project key',
    });
    expect(upstream.requests).toHaveLength(0);
  });

  it('times out when Jira never answers', async () => {
    upstream.respond(() => undefined);

    const response = await jira()(request('jira', 'issue.list'));

    expect(response.error).toEqual({ code: 'UPSTREAM_ERROR', message: 'jira: request timed out' });
  });

  it('searches by the agent’s JQL with a bounded page size and continues with nextPageToken', async () => {
    upstream.respond(
      json(200, { issues: [{ id: '7', key: 'OPS-7', fields: { summary: 'S' } }], nextPageToken: 'tok-2' }),
    );

    const response = await jira()(
      request('jira', 'issue.list', {
        jql: 'assignee = currentUser()',
        max_results: 50,
        next_page_token: 'tok-1',
      }),
    );

    expect(response).toEqual({
      status: 'success',
      output: { issues: [{ id: '7', key: 'OPS-7', summary: 'S' }], total: 1, next_page_token: 'tok-2' },
    });
    const url = new URL(upstream.requests[0]?.url ?? '', upstream.baseUrl);
    expect(url.searchParams.get('jql')).toBe('assignee = currentUser()');
    expect(url.searchParams.get('maxResults')).toBe('50');
    expect(url.searchParams.get('nextPageToken')).toBe('tok-1');
  });

  it('refuses a page size above 50 before calling Jira', async () => {
    const response = await jira()(request('jira', 'issue.list', { max_results: 51 }));

    expect(response.error?.code).toBe('INVALID_PARAMS');
    expect(upstream.requests).toHaveLength(0);
  });

  it('deletes an issue with DELETE /rest/api/3/issue/{key} and Basic auth (204)', async () => {
    upstream.respond((_req, res) => {
      res.writeHead(204);
      res.end();
    });

    const response = await jira()(request('jira', 'issue.delete', { issue: 'OPS-7' }));

    expect(response).toEqual({ status: 'success', output: { deleted: true, issue: 'OPS-7' } });
    const [sent] = upstream.requests;
    expect(sent?.method).toBe('DELETE');
    expect(sent?.url).toBe('/rest/api/3/issue/OPS-7?deleteSubtasks=false');
    expect(sent?.headers.authorization).toBe(basic);
    expect(sent?.body).toBe('');
  });

  it.each([
    [
      404,
      { errorMessages: ['Issue does not exist or you do not have permission to see it.'] },
      'jira: HTTP 404',
    ],
    [401, LEAKY_BODY, 'jira: HTTP 401'],
    [503, LEAKY_BODY, 'jira: HTTP 503'],
  ])('reports HTTP %i on delete by status only', async (status, body, message) => {
    upstream.respond(json(status, body));

    const response = await jira()(request('jira', 'issue.delete', { issue: 'OPS-404' }));

    expect(response).toEqual({ status: 'error', error: { code: 'UPSTREAM_ERROR', message } });
    expectNoLeak(response);
  });

  it('reports a 429 with Jira’s Retry-After', async () => {
    upstream.respond((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '12' });
      res.end(JSON.stringify({ errorMessages: ['Rate limit exceeded'] }));
    });

    const response = await jira()(request('jira', 'issue.create', { project: 'OPS', summary: 's' }));

    expect(response.error).toEqual({
      code: 'UPSTREAM_ERROR',
      message: 'jira: rate limited, retry after 12 s',
    });
    expect(upstream.requests).toHaveLength(1);
  });
});

/**
 * Every API JSON answer, success or error, from a handler or from the host, says
 * `Cache-Control: no-store` (answers name tenants' calls and approvals: no shared cache, no
 * browser history may keep them) and `X-Content-Type-Options: nosniff` (an answer is never read
 * as another type than the one it declares) (issue 20).
 */
import { tokenFor } from '../support/approvers.js';
import { startTestStack, toolCall, type TestResponse, type TestStack } from '../support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** `no-store` among the Cache-Control directives (the MCP SDK's stream answers add others). */
const expectApiHeaders = (label: string, r: TestResponse) => {
  const directives = (r.headers['cache-control'] ?? '').split(',').map((d) => d.trim());
  expect([label, directives.includes('no-store'), r.headers['x-content-type-options']]).toEqual([
    label,
    true,
    'nosniff',
  ]);
};

it('on success answers', async () => {
  const submitted = await stack.post('/v1/toolcalls', toolCall());
  expect(submitted.status).toBe(200);
  expectApiHeaders('POST /v1/toolcalls 200', submitted);
  const read = await stack.request('GET', `/v1/toolcalls/${submitted.json.event_id}`);
  expect(read.status).toBe(200);
  expectApiHeaders('GET /v1/toolcalls/{id} 200', read);
  const approvals = await stack.request('GET', '/v1/approvals', { token: await tokenFor('alice') });
  expect(approvals.status).toBe(200);
  expectApiHeaders('GET /v1/approvals 200', approvals);
  const mcp = await stack.request('POST', '/mcp', {
    headers: { Accept: 'application/json, text/event-stream' },
    body: {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    },
  });
  expect(mcp.status).toBe(200);
  expectApiHeaders('POST /mcp 200', mcp);
  const health = await stack.request('GET', '/healthz', { key: null });
  expect(health.status).toBe(200);
  expectApiHeaders('GET /healthz 200', health);
});

it('on error answers, from handlers and from the host', async () => {
  const cases: [string, () => Promise<TestResponse>, number][] = [
    ['401 missing key', () => stack.post('/v1/toolcalls', toolCall(), null), 401],
    ['400 malformed JSON', () => stack.post('/v1/toolcalls', '{"a":'), 400],
    ['422 unknown field', () => stack.post('/v1/toolcalls', toolCall({ surprise: 1 })), 422],
    [
      '404 unknown event',
      () => stack.request('GET', '/v1/toolcalls/7c9e6679-7425-40de-944b-e07fc1f90ae7'),
      404,
    ],
    // The host answers these before any handler runs.
    ['404 no such route', () => stack.request('GET', '/v1/nothing', { contract: false }), 404],
    ['413 body too large', () => stack.post('/v1/toolcalls', 'x'.repeat(1_100_000)), 413],
    ['401 on /mcp', () => stack.request('POST', '/mcp', { key: null, body: {} }), 401],
  ];
  for (const [label, send, status] of cases) {
    const r = await send();
    expect([label, r.status]).toEqual([label, status]);
    expectApiHeaders(label, r);
  }
});

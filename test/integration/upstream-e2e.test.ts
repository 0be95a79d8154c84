/**
 * An upstream MCP server behind the local stack end to end (issue 25's "done when"), with no
 * connector stand-in: the stack's own connectors (bin/local/host.ts) run the generic
 * `mcp-upstream` connector over the tenant's catalog in DynamoDB Local, with the credential from a
 * local variable, against a real upstream on the official SDK over loopback. A read policy allows
 * runs at once; a destructive one is parked, approved through the console's API, and runs exactly
 * once on the upstream; another tenant cannot reach the tool.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACTION_SPECS } from '../../functions/connectors/registry.js';
import { GATEWAY_TOOLS, mcpToolName } from '../../functions/core/mcp.js';
import { syncUpstream } from '../../functions/store/upstream-catalog.js';
import { UpstreamStore } from '../../functions/store/upstreams.js';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { tokenFor } from '../support/approvers.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { startUpstreamFixture, type UpstreamFixture } from '../support/upstream-fixture.js';

const TOKEN = 'upstream-e2e-token';
const VARIABLE = 'OC_TEST_UPSTREAM_E2E_TOKEN';
let stack: TestStack;
let upstream: UpstreamFixture;

beforeAll(async () => {
  process.env[VARIABLE] = TOKEN;
  upstream = await startUpstreamFixture({
    token: TOKEN,
    tools: [
      {
        name: 'search',
        description: 'Search the wiki.',
        inputSchema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
      },
      {
        name: 'delete_page',
        description: 'Delete a page.',
        inputSchema: {
          type: 'object',
          properties: { page: { type: 'integer' } },
          required: ['page'],
          additionalProperties: false,
        },
      },
    ],
  });
  const dir = mkdtempSync(join(process.env.OC_TEST_TMP ?? tmpdir(), 'oc-upstream-e2e-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  const path = join(dir, 'actions.json');
  const actions = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string[]>;
  writeFileSync(
    path,
    JSON.stringify({
      ...actions,
      read: [...actions.read!, 'wiki.search'],
      destructive: [...actions.destructive!, 'wiki.delete_page'],
      targets: { 'wiki.delete_page': 'page' },
    }),
  );
  stack = await startTestStack({ env: { OC_POLICY_DIR: dir } });
  // What `oc upstream add` and `oc upstream sync` do (the CLI path has its own test).
  const store = new UpstreamStore(stack.state.doc, stack.config.tableName);
  await store.putServer({
    tenantId: 'tenant1',
    server: 'wiki',
    url: upstream.url,
    auth: { kind: 'env', ref: VARIABLE },
    ttlMs: 300_000,
    allowKeywords: [],
    createdAt: new Date().toISOString(),
  });
  await syncUpstream(
    {
      store,
      readers: { env: process.env },
      nativeMcpNames: new Set([
        ...ACTION_SPECS.map((s) => mcpToolName(s.name)),
        ...GATEWAY_TOOLS.map((t) => t.name),
      ]),
      now: () => new Date(),
    },
    'tenant1',
    'wiki',
  );
}, 30_000);
afterAll(async () => {
  await stack.stop();
  await upstream.close();
  delete process.env[VARIABLE];
});

describe('an upstream MCP server behind the local stack', () => {
  it('runs an allowed read on the upstream itself, with the credential, and records its answer', async () => {
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'wiki', action: 'search', params: { q: 'cedar' } }),
    );
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ decision: 'allow', result: { status: 'success' } });
    expect(JSON.stringify(r.json.result.output)).toContain('{\\"called\\":\\"search\\"}');
    expect(upstream.calls).toEqual([{ name: 'search', arguments: { q: 'cedar' } }]);
    expect(upstream.authorizations.every((a) => a === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('parks a destructive call, and runs it exactly once after an approval in the console', async () => {
    upstream.calls.splice(0);
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'wiki', action: 'delete_page', params: { page: 7 }, risk_score: 0 }),
    );
    expect(r.json).toMatchObject({ decision: 'approve' });
    expect(upstream.calls).toEqual([]);
    const token = await tokenFor('alice');
    const shown = await stack.request('GET', `/v1/approvals/${r.json.approval.id}`, { token });
    const approved = await stack.request('POST', `/v1/approvals/${r.json.approval.id}/approve`, {
      token,
      body: { view_hash: shown.json.view.hash },
    });
    expect(approved.status).toBe(200);
    const [first, second] = await Promise.all([
      stack.post(`/v1/toolcalls/${r.json.event_id}/execute`, ''),
      stack.post(`/v1/toolcalls/${r.json.event_id}/execute`, ''),
    ]);
    const done = [first, second].filter((x) => x.status === 200);
    expect(done.length).toBeGreaterThanOrEqual(1);
    expect(done[0]!.json.result).toMatchObject({ status: 'success' });
    const again = await stack.post(`/v1/toolcalls/${r.json.event_id}/execute`, '');
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(upstream.calls).toEqual([{ name: 'delete_page', arguments: { page: 7 } }]);
  });

  it("is not another tenant's: tenant2 calling the same name reaches nothing", async () => {
    upstream.calls.splice(0);
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'wiki', action: 'search', params: { q: 'x' } }),
      KEYS.tenant2,
    );
    expect(r.json.decision).toBe('deny');
    expect(upstream.calls).toEqual([]);
  });
});

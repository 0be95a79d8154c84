/**
 * OAuth for agents on `/mcp`, end to end: a loopback authorization server built from
 * `oidc-provider` (client credentials, RFC 8707 resource indicators, RFC 9068 JWT access tokens)
 * and the official 2.x MCP client's `ClientCredentialsProvider`, which finds the issuer through
 * the 401's `resource_metadata` and the RFC 9728 document. The gateway's answers go through the
 * tests' gateway client (checked against api/openapi.yaml); the issuer's are plain fetches.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import {
  Client,
  ClientCredentialsProvider,
  StreamableHTTPClientTransport,
} from '@modelcontextprotocol/client';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { countingInvoker, type CountingInvoker } from '../support/connectors.js';
import { startOAuthIssuer, type OAuthIssuer } from '../support/oauth-issuer.js';
import { contractFetch } from '../support/sdk-fetch.js';
import { KEYS, startTestStack, type TestStack } from '../support/stack.js';

const CLIENTS = {
  /** tenant1's agent `agent-oauth` */
  a: { clientId: 'agent-a-client', clientSecret: 'secret-a' },
  /** tenant2, the whole tenant */
  b: { clientId: 'tenant2-client', clientSecret: 'secret-b' },
  /** registered at the issuer, listed by no tenant */
  stray: { clientId: 'stray-client', clientSecret: 'secret-c' },
};
const ELSEWHERE = 'https://elsewhere.example/mcp';
const SCOPE = 'mcp:tools';

let stack: TestStack;
let issuer: OAuthIssuer;
let connector: CountingInvoker;
let dir: string;
let resource: string;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

beforeAll(async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  resource = `${base}/mcp`;
  issuer = await startOAuthIssuer({
    clients: Object.values(CLIENTS),
    resources: [resource, ELSEWHERE],
    scope: SCOPE,
  });
  dir = mkdtempSync(join(process.env.OC_TEST_TMP!, 'oc-mcp-oauth-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  const tenantsPath = join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(tenantsPath, 'utf8')) as Record<string, Record<string, unknown>>;
  tenants.tenant1!.oauth_clients = [
    { issuer: issuer.issuer, client_id: CLIENTS.a.clientId, agent_id: 'agent-oauth' },
  ];
  tenants.tenant2!.oauth_clients = [{ issuer: issuer.issuer, client_id: CLIENTS.b.clientId }];
  writeFileSync(tenantsPath, JSON.stringify(tenants));
  connector = countingInvoker();
  stack = await startTestStack({
    port,
    env: {
      OC_POLICY_DIR: dir,
      OC_PUBLIC_BASE_URL: base,
      OC_MCP_OAUTH_ISSUERS: issuer.issuer,
      OC_MCP_OAUTH_SCOPE: SCOPE,
    },
    overrides: { connectors: connector },
  });
});
afterAll(async () => {
  await stack?.stop();
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The gateway's answers through the contract-checking client; the issuer's straight. */
const routedFetch = () => issuer.routed(stack.url, contractFetch(stack));

async function oauthClient(credentials: { clientId: string; clientSecret: string }) {
  const client = new Client({ name: 'oauth-agent', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(resource), {
      authProvider: new ClientCredentialsProvider({ ...credentials, expectedIssuer: issuer.issuer }),
      fetch: routedFetch(),
    }),
  );
  return client;
}

/** A token straight from the issuer's token endpoint (what the provider does, with chosen inputs). */
async function tokenFrom(
  credentials: { clientId: string; clientSecret: string },
  form: Record<string, string>,
): Promise<string> {
  const r = await issuer.token(credentials, form);
  expect(r.status).toBe(200);
  return ((await r.json()) as { access_token: string }).access_token;
}

const initialize = (token: string) =>
  stack.request('POST', '/mcp', {
    key: null,
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json, text/event-stream' },
    body: {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
    },
  });

describe('MCP over OAuth (RFC 9728 / 9068 / 8707)', () => {
  it('serves protected resource metadata naming the resource, its issuer and scope; a 401 points at it', async () => {
    const meta = await stack.request('GET', '/.well-known/oauth-protected-resource/mcp', { key: null });
    expect(meta.status).toBe(200);
    expect(meta.json).toEqual({
      resource,
      authorization_servers: [issuer.issuer],
      scopes_supported: [SCOPE],
      bearer_methods_supported: ['header'],
      resource_name: 'OpenClause MCP',
    });
    const bare = await stack.request('POST', '/mcp', { key: null, body: {} });
    expect(bare.status).toBe(401);
    expect(bare.headers['www-authenticate']).toBe(
      `Bearer realm="openclause-mcp", resource_metadata="${stack.config.publicBaseUrl}/.well-known/oauth-protected-resource/mcp"`,
    );
  });

  it('the official 2.x client with client credentials lists tools and runs an allowed call as the agent policy data names', async () => {
    const client = await oauthClient(CLIENTS.a);
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain('slack_msg_post');
    const before = connector.calls.length;
    const r = await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: '#general', text: 'oauth' },
    });
    expect(r.isError).toBeFalsy();
    expect(connector.calls.length).toBe(before + 1);
    expect(connector.calls.at(-1)).toMatchObject({
      tool: 'slack',
      action: 'msg.post',
      agent_id: 'agent-oauth',
    });
    // Recorded for tenant1 (whose key reads it); tenant2 cannot see it (the wall).
    const eventId = (r._meta as Record<string, string>)['openclause/event_id']!;
    expect((await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant1)).status).toBe(200);
    expect((await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant2)).status).toBe(404);
    await client.close();
  });

  it("the tenant is policy data's, not the token's: tenant2's client acts for tenant2", async () => {
    const client = await oauthClient(CLIENTS.b);
    const before = connector.calls.length;
    const r = await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: '#general', text: 'b' },
    });
    const eventId = (r._meta as Record<string, string>)['openclause/event_id']!;
    expect((await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant2)).status).toBe(200);
    expect((await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant1)).status).toBe(404);
    expect(connector.calls.length).toBeGreaterThanOrEqual(before);
    await client.close();
  });

  it('refuses a token for another resource, of an unlisted client, or with a forged signature: 401 invalid_token, nothing run', async () => {
    const before = connector.calls.length;
    const other = await tokenFrom(CLIENTS.a, { resource: ELSEWHERE, scope: SCOPE });
    const stray = await tokenFrom(CLIENTS.stray, { resource, scope: SCOPE });
    const good = await tokenFrom(CLIENTS.a, { resource, scope: SCOPE });
    const [h, p, s] = good.split('.');
    const forged = `${h}.${p}.${s!.slice(0, -4)}${s!.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    for (const token of [other, stray, forged]) {
      const r = await initialize(token);
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/error="invalid_token"/);
      expect(r.headers['www-authenticate']).toMatch(/resource_metadata="/);
    }
    expect((await initialize(good)).status).toBe(200);
    expect(connector.calls.length).toBe(before);
  });

  it('a valid token without the scope is 403 insufficient_scope naming it', async () => {
    const token = await tokenFrom(CLIENTS.a, { resource });
    const r = await initialize(token);
    expect(r.status).toBe(403);
    expect(r.headers['www-authenticate']).toBe(
      `Bearer realm="openclause-mcp", resource_metadata="${stack.config.publicBaseUrl}/.well-known/oauth-protected-resource/mcp", error="insufficient_scope", scope="${SCOPE}"`,
    );
  });

  it('API keys keep working beside OAuth', async () => {
    const r = await stack.request('POST', '/mcp', {
      key: KEYS.tenant1,
      headers: { Accept: 'application/json, text/event-stream' },
      body: {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'raw', version: '0' },
        },
      },
    });
    expect(r.status).toBe(200);
  });
});

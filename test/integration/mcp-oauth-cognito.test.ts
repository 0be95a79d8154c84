/**
 * OAuth for agents on `/mcp` with a Cognito user pool as the issuer (`-c mcpOAuth=cognito`): the
 * gateway configured as the stack configures it (`OC_MCP_OAUTH_COGNITO_ISSUERS`, the full scope
 * name `<resource>/mcp:tools`), tokens shaped as a pool's client-credentials tokens (no `typ`, no
 * `aud`, `token_use`, scopes `<identifier>/<name>`) signed with a loopback JWKS: no Cognito runs
 * here and oidc-provider mints RFC 9068 tokens only. The official 2.x client sends the token as a
 * static bearer (what an agent that got it from the token endpoint does).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { countingInvoker, type CountingInvoker } from '../support/connectors.js';
import { contractFetch } from '../support/sdk-fetch.js';
import { KEYS, startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let connector: CountingInvoker;
let jwks: http.Server;
let privateKey: CryptoKey;
let dir: string;
let pool: string;
let resource: string;
let scope: string;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'pool-key', alg: 'RS256', use: 'sig' };
  jwks = http.createServer((req, res) => {
    if (req.url?.endsWith('/.well-known/jwks.json'))
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  pool = `http://127.0.0.1:${(jwks.address() as net.AddressInfo).port}/eu-west-1_TestPool`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  resource = `${base}/mcp`;
  scope = `${resource}/mcp:tools`;
  dir = mkdtempSync(join(process.env.OC_TEST_TMP!, 'oc-mcp-cognito-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  const tenantsPath = join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(tenantsPath, 'utf8')) as Record<string, Record<string, unknown>>;
  tenants.tenant1!.oauth_clients = [{ issuer: pool, client_id: 'buildbotclient', agent_id: 'agent-oauth' }];
  tenants.tenant2!.oauth_clients = [{ issuer: pool, client_id: 'tenant2client' }];
  writeFileSync(tenantsPath, JSON.stringify(tenants));
  connector = countingInvoker();
  stack = await startTestStack({
    port,
    env: {
      OC_POLICY_DIR: dir,
      OC_PUBLIC_BASE_URL: base,
      OC_MCP_OAUTH_COGNITO_ISSUERS: pool,
      OC_MCP_OAUTH_SCOPE: scope,
    },
    overrides: { connectors: connector },
  });
});
afterAll(async () => {
  await stack?.stop();
  await new Promise<void>((resolve) => (jwks ? jwks.close(() => resolve()) : resolve()));
  rmSync(dir, { recursive: true, force: true });
});

const now = () => Math.floor(Date.now() / 1000);

/** A pool's client-credentials access token (as Cognito shapes it), claims overridable. */
const poolToken = (clientId: string, claims: Record<string, unknown> = {}) =>
  new SignJWT({
    iss: pool,
    sub: clientId,
    client_id: clientId,
    token_use: 'access',
    scope,
    auth_time: now(),
    iat: now(),
    exp: now() + 3600,
    version: 2,
    jti: `jti-${Math.random()}`,
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'pool-key' })
    .sign(privateKey);

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

async function bearerClient(token: string): Promise<Client> {
  const gateway = contractFetch(stack);
  const client = new Client({ name: 'cognito-agent', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(resource), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
      fetch: (url, init) => gateway(new Request(url, init)),
    }),
  );
  return client;
}

describe('MCP over OAuth with a Cognito user pool (the Cognito profile)', () => {
  it('advertises the pool and the full scope name in the protected resource metadata', async () => {
    const meta = await stack.request('GET', '/.well-known/oauth-protected-resource/mcp', { key: null });
    expect(meta.status).toBe(200);
    expect(meta.json).toMatchObject({ resource, authorization_servers: [pool], scopes_supported: [scope] });
  });

  it("a pool token lists tools and runs an allowed call as the agent tenants.json names, behind tenant1's wall", async () => {
    const client = await bearerClient(await poolToken('buildbotclient'));
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('slack_msg_post');
    const before = connector.calls.length;
    const r = await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: '#general', text: 'cognito' },
    });
    expect(r.isError).toBeFalsy();
    expect(connector.calls.length).toBe(before + 1);
    expect(connector.calls.at(-1)).toMatchObject({
      tool: 'slack',
      action: 'msg.post',
      agent_id: 'agent-oauth',
    });
    const eventId = (r._meta as Record<string, string>)['openclause/event_id']!;
    expect((await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant1)).status).toBe(200);
    expect((await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant2)).status).toBe(404);
    await client.close();
  });

  it('another client of the same pool acts for the tenant that lists it (tenant2), not tenant1', async () => {
    const client = await bearerClient(await poolToken('tenant2client'));
    const r = await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: '#general', text: 't2' },
    });
    const eventId = (r._meta as Record<string, string>)['openclause/event_id']!;
    expect((await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant2)).status).toBe(200);
    expect((await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant1)).status).toBe(404);
    await client.close();
  });

  it("refuses the pool's ID tokens, users' access tokens, tokens for another API and unlisted clients: 401, nothing run", async () => {
    const before = connector.calls.length;
    const refused = [
      await poolToken('buildbotclient', { token_use: 'id', aud: 'buildbotclient' }),
      await poolToken('buildbotclient', { sub: '7f0c-user', username: 'alice' }),
      await poolToken('buildbotclient', { scope: 'https://other.example/api/mcp:tools' }),
      await poolToken('strayclient'),
    ];
    for (const token of refused) {
      const r = await initialize(token);
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    }
    expect(connector.calls.length).toBe(before);
  });

  it('a token of the /mcp resource server without the tools scope is 403 insufficient_scope naming it', async () => {
    const r = await initialize(await poolToken('buildbotclient', { scope: `${resource}/mcp:read` }));
    expect(r.status).toBe(403);
    expect(r.headers['www-authenticate']).toContain(`error="insufficient_scope", scope="${scope}"`);
  });
});

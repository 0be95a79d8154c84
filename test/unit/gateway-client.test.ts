/**
 * The tests' gateway client checks every response against api/openapi.yaml, and no integration
 * or e2e test talks to a gateway any other way.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gatewayClient, KEYS, type GatewayClient } from '../support/gateway-client.js';
import { json, startUpstream, type UpstreamServer } from '../fixtures/connectors/upstream-server.js';

const EVENT_ID = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
const ALLOW = {
  event_id: EVENT_ID,
  decision: 'allow',
  reason: 'write action on allowlist within tenant threshold',
  policy_version: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
  result: { status: 'success', output: { ok: true }, duration_ms: 1 },
};

/** A stand-in gateway on loopback: it answers what the test scripts, including what the real one never would. */
let fake: UpstreamServer;
let client: GatewayClient;
beforeAll(async () => {
  fake = await startUpstream();
  client = gatewayClient(fake.baseUrl);
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.requests.length = 0;
});

describe('gatewayClient', () => {
  it('returns a response the contract allows, parsed', async () => {
    fake.respond(json(200, ALLOW));
    const r = await client.post('/v1/toolcalls', { tool: 'slack' });
    expect(r).toMatchObject({ status: 200, json: ALLOW, text: JSON.stringify(ALLOW) });
    expect(r.headers['content-type']).toBe('application/json');
  });

  it('rejects a response that breaks the contract, naming method, path and status', async () => {
    fake.respond(json(200, { ...ALLOW, decision: 'maybe' }));
    await expect(client.post('/v1/toolcalls', {})).rejects.toThrow(
      /^POST \/v1\/toolcalls answered 200, which api\/openapi\.yaml does not allow: .*body\/decision/,
    );
    fake.respond(json(418, { code: 'TEAPOT', message: 'no', retryable: false, request_id: 'r' }));
    await expect(client.get(`/v1/toolcalls/${EVENT_ID}`)).rejects.toThrow(
      new RegExp(`^GET /v1/toolcalls/${EVENT_ID} answered 418, .*status 418 is not documented`),
    );
    fake.respond(json(429, { code: 'RATE_LIMITED', message: 'slow down', retryable: true, request_id: 'r' }));
    await expect(client.post('/v1/toolcalls', {})).rejects.toThrow(/required header Retry-After is missing/);
    fake.respond(json(200, ALLOW));
    await expect(client.request('DELETE', '/v1/toolcalls')).rejects.toThrow(
      /^DELETE \/v1\/toolcalls answered 200, .*no operation for DELETE \/v1\/toolcalls/,
    );
  });

  it('skips the check only when asked, and still answers', async () => {
    fake.respond(json(200, { ...ALLOW, decision: 'maybe' }));
    const r = await client.request('POST', '/v1/toolcalls', { body: {}, contract: false });
    expect(r.json.decision).toBe('maybe');
  });

  it('sends the path exactly as written, and the credentials asked for', async () => {
    fake.respond(json(404, { code: 'NOT_FOUND', message: 'no', retryable: false, request_id: 'r' }));
    await client.request('GET', '/v1/toolcalls/../%2e%2e//x?a=1', { contract: false });
    await client.request('GET', '/v1/approvals', { token: 'jwt-1', contract: false });
    await client.request('GET', '/v1/approvals', { key: null, contract: false });
    await client.post(`/v1/toolcalls/${EVENT_ID}/execute`, '', KEYS.tenant2);
    const [raw, approver, anonymous, execute] = fake.requests;
    expect(raw?.url).toBe('/v1/toolcalls/../%2e%2e//x?a=1');
    expect(raw?.headers['x-api-key']).toBe(KEYS.tenant1);
    expect(raw?.headers['content-type']).toBeUndefined();
    expect(approver?.headers).toMatchObject({ authorization: 'Bearer jwt-1' });
    expect(approver?.headers['x-api-key']).toBeUndefined();
    expect(anonymous?.headers['x-api-key']).toBeUndefined();
    expect(anonymous?.headers.authorization).toBeUndefined();
    expect(execute).toMatchObject({ method: 'POST', body: '' });
    expect(execute?.headers).toMatchObject({
      'x-api-key': KEYS.tenant2,
      'content-type': 'application/json',
      'content-length': '0',
    });
  });
});

/**
 * Calls that reach a server without the client. Aliases and dynamic imports can evade a scan;
 * this catches the plain ways a new test would do it.
 */
const DIRECT_HTTP: [RegExp, string][] = [
  [/\bfetch\s*\(/, 'fetch('],
  [/\bhttps?\s*\.\s*(request|get)\s*\(/, 'http.request( / http.get('],
  [
    /import\s*\{[^}]*\b(request|get)\b[^}]*\}\s*from\s*['"](node:)?https?['"]/,
    "request/get from 'node:http'",
  ],
  [/from\s*['"](undici|axios|supertest|got|node-fetch)['"]/, 'an HTTP client library'],
];
const GUARDED = ['test/integration', 'test/e2e', 'test/support'];
/**
 * The client itself is the one place that may send requests to the gateway; the witness (its own
 * service, a text protocol outside the gateway's contract) and the loopback OAuth authorization
 * server (tokens for agents) have their own small clients.
 */
const ALLOWED = new Set([
  'test/support/gateway-client.ts',
  'test/support/witness-http.ts',
  'test/support/oauth-issuer.ts',
]);

function directHttpCalls(source: string): string[] {
  return DIRECT_HTTP.filter(([pattern]) => pattern.test(source)).map(([, name]) => name);
}

function sourceFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return []; // test/e2e does not exist yet
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(c|m)?[jt]s$/.test(name) ? [path] : [];
  });
}

describe('no test talks to a gateway around the client', () => {
  it('recognizes the direct calls it forbids', () => {
    expect(directHttpCalls("const r = await fetch(stack.url + '/v1/approvals');")).toEqual(['fetch(']);
    expect(directHttpCalls('http.request({ port }, (res) => res.resume()).end();')).toHaveLength(1);
    expect(directHttpCalls("import { request } from 'node:http';")).toHaveLength(1);
    expect(directHttpCalls("import { fetch } from 'undici';")).toHaveLength(1);
    expect(directHttpCalls('await stack.request("GET", "/v1/approvals", { token });')).toEqual([]);
    expect(directHttpCalls('const prefetch = 1; // fetches nothing')).toEqual([]);
  });

  it('finds none in test/integration, test/e2e or test/support (but the client)', () => {
    const root = process.cwd();
    const files = GUARDED.flatMap((dir) => sourceFiles(join(root, dir)));
    expect(files.some((f) => f.includes('test/integration/'))).toBe(true);
    const offenders = files
      .map((f) => relative(root, f))
      .filter((f) => !ALLOWED.has(f))
      .map((f) => ({ file: f, calls: directHttpCalls(readFileSync(join(root, f), 'utf8')) }))
      .filter((o) => o.calls.length > 0);
    // Send requests through the stack's request/post/get (test/support/gateway-client.ts): it
    // checks every response against api/openapi.yaml.
    expect(offenders).toEqual([]);
  });
});

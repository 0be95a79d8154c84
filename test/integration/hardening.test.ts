/**
 * The findings of the hardening issue, each as it was reproduced against `npm start`: hostile
 * input that reached storage or a 500 now gets a 4xx with the error body and writes nothing.
 */
import net from 'node:net';
import { SignJWT } from 'jose';
import { startLocalHost, type LocalHost } from '../../bin/local/host.js';
import { DEV_JWT } from '../../functions/shared/constants.js';
import { tokenFor } from '../support/approvers.js';
import { openApiDocument } from '../support/contract.js';
import { tableSnapshot } from '../support/snapshot.js';
import { KEYS, startTestStack, testConfig, toolCall, type TestStack } from '../support/stack.js';
import { signDevToken } from '../../functions/store/approver-tokens.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack.stop();
});

const snapshot = async () => {
  await stack.poller?.drained();
  return tableSnapshot(stack.state.doc, stack.config.tableName);
};

/** A pending approval of tenant1, requested by `user_id`. */
async function pending(userId = 'requester@acme.example'): Promise<{ eventId: string; approvalId: string }> {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-1', params: {}, user_id: userId }),
  );
  expect(r.json.decision).toBe('approve');
  return { eventId: r.json.event_id, approvalId: r.json.approval.id };
}

const asApprover = (token: string, method: string, path: string, body?: string) =>
  stack.request(method, path, { token, ...(body === undefined ? {} : { body }) });

const expectErrorBody = (r: { json: unknown }, code: string) =>
  expect(r.json).toEqual({
    code,
    message: expect.any(String),
    retryable: expect.any(Boolean),
    request_id: expect.any(String),
    ...((r.json as { details?: unknown }).details ? { details: expect.any(Array) } : {}),
  });

describe('F1: a value the chain cannot seal is refused at the edge', () => {
  it.each([
    ['approve', '{"comment":"\\ud800"}'],
    ['deny', '{"reason":"\\udc00"}'],
    ['approve', '{"comment":"x\\udfffy"}'],
  ])('%s with %s is 422 and changes nothing', async (verb, body) => {
    const { approvalId } = await pending();
    const before = await snapshot();
    const r = await asApprover(await tokenFor('alice'), 'POST', `/v1/approvals/${approvalId}/${verb}`, body);
    expect(r.status).toBe(422);
    expectErrorBody(r, 'VALIDATION_ERROR');
    expect(await snapshot()).toEqual(before);
    const after = await asApprover(await tokenFor('alice'), 'GET', `/v1/approvals/${approvalId}`);
    expect(after.json.status).toBe('pending');
  });

  it('refuses a lone surrogate anywhere in a submitted body, even where no schema names it', async () => {
    const before = await snapshot();
    for (const body of [
      '{"agent_id":"a","tool":"slack","action":"msg.post","idempotency_key":"k\\ud800"}',
      '{"agent_id":"a\\udc00","tool":"slack","action":"msg.post","idempotency_key":"k1"}',
      '{"agent_id":"a","tool":"slack","action":"msg.post","idempotency_key":"k2","params":{"\\ud800":1}}',
    ]) {
      const r = await stack.post('/v1/toolcalls', body);
      expect([body, r.status]).toEqual([body, 422]);
    }
    expect(await snapshot()).toEqual(before);
  });

  it('refuses approver tokens whose claims break the string rules', async () => {
    for (const claims of [
      { sub: 'alice\ud800' },
      { sub: 'alice\u200b' },
      { email: 'alice@acme.example\u0000' },
      { tenantId: 'tenant1#APR#x' },
    ]) {
      const token = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example', ...claims });
      const r = await asApprover(token, 'GET', '/v1/approvals');
      expect([claims, r.status]).toEqual([claims, 401]);
    }
  });

  it('keeps sealing afterwards: the next fact is sealed', async () => {
    const r = await stack.post('/v1/toolcalls', toolCall());
    expect(r.status).toBe(200);
    await stack.poller?.drained();
    const ev = await stack.get(`/v1/toolcalls/${r.json.event_id}`);
    expect(ev.json.evidence.every((f: { status: string }) => f.status === 'sealed')).toBe(true);
  });
});

describe('F2: malformed percent-encoding in a path', () => {
  const bad = ['%ZZ', '%E0%A4%A', '%C0%AF', '%', '%ED%A0%80'];
  it.each(bad)('is a 400 with the error body on every route with a path parameter (%s)', async (seg) => {
    const token = await tokenFor('alice');
    const answers = [
      await stack.request('GET', `/v1/toolcalls/${seg}`),
      await stack.request('POST', `/v1/toolcalls/${seg}/execute`),
      await asApprover(token, 'GET', `/v1/approvals/${seg}`),
      await asApprover(token, 'POST', `/v1/approvals/${seg}/approve`),
      await asApprover(token, 'POST', `/v1/approvals/${seg}/deny`),
    ];
    for (const r of answers) {
      expect(r.status).toBe(400);
      expectErrorBody(r, 'BAD_REQUEST');
    }
  });
});

describe('F3: listing cursors', () => {
  const cursor = (key: unknown) => Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
  it.each([
    [
      'the reported forgery',
      { gsi1pk: 'T#tenant1#APR#pending', gsi1sk: '', pk: 'T#tenant1#APR#x', sk: 'APPROVAL' },
    ],
    [
      'a sort key without its approval',
      {
        gsi1pk: 'T#tenant1#APR#pending',
        gsi1sk: '2025-01-01T00:00:00.000Z#',
        pk: 'T#tenant1#APR#',
        sk: 'APPROVAL',
      },
    ],
    [
      'a key of another approval',
      {
        gsi1pk: 'T#tenant1#APR#pending',
        gsi1sk: '2025-01-01T00:00:00.000Z#0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
        pk: 'T#tenant1#APR#1e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
        sk: 'APPROVAL',
      },
    ],
    [
      'another tenant',
      {
        gsi1pk: 'T#tenant2#APR#pending',
        gsi1sk: '2025-01-01T00:00:00.000Z#0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
        pk: 'T#tenant2#APR#0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
        sk: 'APPROVAL',
      },
    ],
    ['not an object', [1, 2, 3, 4]],
  ])('%s is a 400', async (_what, key) => {
    const r = await asApprover(await tokenFor('alice'), 'GET', `/v1/approvals?cursor=${cursor(key)}`);
    expect(r.status).toBe(400);
    expectErrorBody(r, 'BAD_REQUEST');
  });

  it('a real cursor still pages', async () => {
    await pending();
    await pending();
    const token = await tokenFor('alice');
    const first = await asApprover(token, 'GET', '/v1/approvals?limit=1');
    expect(first.json.items).toHaveLength(1);
    const next = await asApprover(token, 'GET', `/v1/approvals?limit=1&cursor=${first.json.next_cursor}`);
    expect(next.status).toBe(200);
    expect(next.json.items[0].id).not.toBe(first.json.items[0].id);
  });
});

describe('F5: separation of duties on normalized identities', () => {
  it.each([
    ['a zero-width space', 'alice@acme.example\u200b'],
    ['a trailing NUL', 'alice@acme.example\u0000'],
    ['a leading RTL mark', '\u200falice@acme.example'],
    ['a soft hyphen', 'ali\u00adce@acme.example'],
  ])('a user_id with %s is refused at submit', async (_what, userId) => {
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', user_id: userId }),
    );
    expect(r.status).toBe(422);
    expect(r.json.details[0].path).toBe('/user_id');
  });

  it.each([
    ['a fullwidth @', 'alice＠acme.example'],
    ['fullwidth letters', 'ａｌｉｃｅ@acme.example'],
    ['another case', 'ALICE@Acme.Example'],
    ['surrounding spaces', ' alice@acme.example '],
  ])('a requester written with %s still cannot approve their own call', async (_what, userId) => {
    const { approvalId } = await pending(userId);
    const r = await asApprover(await tokenFor('alice'), 'POST', `/v1/approvals/${approvalId}/approve`);
    expect(r.status).toBe(403);
    expect(r.json.code).toBe('SELF_APPROVAL');
  });
});

describe('approver tokens: lifetime and clock', () => {
  const sign = async (iat: number | undefined, exp: number) => {
    const jwt = new SignJWT({ email: 'alice@acme.example', tenant_id: 'tenant1' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice@acme.example')
      .setIssuer(DEV_JWT.issuer)
      .setAudience(DEV_JWT.audience)
      .setExpirationTime(exp);
    if (iat !== undefined) jwt.setIssuedAt(iat);
    return jwt.sign(new TextEncoder().encode(DEV_JWT.defaultSecret));
  };
  const now = () => Math.floor(Date.now() / 1000);
  it.each([
    ['issued an hour in the future', () => sign(now() + 3600, now() + 7200)],
    ['valid until 9999', () => sign(now(), Date.parse('9999-01-01') / 1000)],
    ['living longer than a day', () => sign(now() - 60, now() + 25 * 3600)],
    ['issued more than a day ago', () => sign(now() - 25 * 3600, now() + 60)],
    ['without iat', () => sign(undefined, now() + 600)],
  ])('a token %s is 401', async (_what, token) => {
    const r = await asApprover(await token(), 'GET', '/v1/approvals');
    expect(r.status).toBe(401);
    expect(r.json.code).toBe('UNAUTHORIZED');
  });

  it('a token within the skew and lifetime bounds is accepted', async () => {
    const r = await asApprover(await sign(now() + 10, now() + 3600), 'GET', '/v1/approvals');
    expect(r.status).toBe(200);
  });
});

describe('no approval-id oracle', () => {
  it('an approver who may not see approvals gets the same answer for an existing and a missing id', async () => {
    const { approvalId } = await pending();
    const missing = '0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b';
    const mallory = await tokenFor('mallory');
    const strip = (r: { status: number; json: { request_id?: string } }) => ({
      ...r.json,
      request_id: '',
      status: r.status,
    });
    for (const [method, suffix] of [
      ['GET', ''],
      ['POST', '/approve'],
      ['POST', '/deny'],
    ] as const) {
      const existing = await asApprover(mallory, method, `/v1/approvals/${approvalId}${suffix}`);
      const absent = await asApprover(mallory, method, `/v1/approvals/${missing}${suffix}`);
      expect(strip(existing)).toEqual(strip(absent));
      expect(existing.status).toBe(method === 'GET' ? 404 : 403);
    }
    // Another tenant's approver: 404 like a missing id, on every route.
    const bob = await tokenFor('bob');
    expect((await asApprover(bob, 'GET', `/v1/approvals/${approvalId}`)).status).toBe(404);
    expect((await asApprover(bob, 'POST', `/v1/approvals/${approvalId}/approve`)).status).toBe(404);
  });
});

describe('request bodies', () => {
  it('refuses integers JSON cannot carry exactly, instead of recording them rounded', async () => {
    const before = await snapshot();
    const body = JSON.stringify(toolCall({ params: { id: 1 } })).replace(
      '"id":1',
      '"id":12345678901234567890',
    );
    const r = await stack.post('/v1/toolcalls', body);
    expect(r.status).toBe(422);
    // The contract's `details[].path` is a JSON Pointer (RFC 6901).
    expect(r.json.details[0]).toEqual({ path: '/params/id', message: expect.stringMatching(/2\^53/) });
    expect(await snapshot()).toEqual(before);
  });

  it.each([
    ['text/plain', 415],
    ['application/x-www-form-urlencoded', 415],
    ['application/json; charset=utf-16', 415],
    ['application/xml', 415],
    ['application/json; charset=UTF-8', 200],
    ['Application/JSON', 200],
  ])('Content-Type %s is answered %s', async (type, status) => {
    const r = await stack.post('/v1/toolcalls', toolCall(), KEYS.tenant1, { 'Content-Type': type });
    expect(r.status).toBe(status);
    if (status === 415) expectErrorBody(r, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('requires a JSON media type on decision bodies too, but not on an empty one', async () => {
    const { approvalId } = await pending();
    const token = await tokenFor('alice');
    const typed = await stack.request('POST', `/v1/approvals/${approvalId}/deny`, {
      token,
      body: '{"reason":"no"}',
      headers: { 'Content-Type': 'text/plain' },
    });
    expect(typed.status).toBe(415);
    const empty = await stack.request('POST', `/v1/approvals/${approvalId}/deny`, {
      token,
      body: '',
      headers: { 'Content-Type': 'text/plain' },
    });
    expect(empty.status).toBe(200);
  });
});

describe('the local server and misbehaving clients', () => {
  let host: LocalHost;
  beforeAll(async () => {
    host = await startLocalHost({
      config: testConfig(),
      port: 0,
      consumers: false,
      timeouts: { requestMs: 1000, headersMs: 1000, checkEveryMs: 200 },
    });
  });
  afterAll(async () => {
    await host.stop();
  });

  /** Writes raw bytes and reads until the server closes the connection. */
  const raw = (payload: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const { port } = new URL(host.url);
      const socket = net.connect(Number(port), '127.0.0.1');
      let answer = '';
      socket.on('data', (d) => (answer += d.toString()));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
      socket.write(payload);
    });
  const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

  it('answers a body shorter than its Content-Length with 408 and the error body, then closes', async () => {
    const answer = await raw(
      'POST /v1/toolcalls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(bodyOf(answer)).toMatchObject({
      code: 'REQUEST_TIMEOUT',
      retryable: true,
      request_id: expect.any(String),
    });
  });

  it('answers request headers beyond the limit with 431 and the error body (documented as a local-host answer)', async () => {
    const answer = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(answer)).toMatchObject({ code: 'BAD_REQUEST', message: 'request headers too large' });
    expect(openApiDocument().info).toMatchObject({
      description: expect.stringContaining('431 `BAD_REQUEST` ("request headers too'),
    });
  });

  it('answers malformed HTTP with 400 and the error body', async () => {
    const answer = await raw('NOT HTTP AT ALL\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(bodyOf(answer)).toMatchObject({ code: 'BAD_REQUEST', message: 'malformed HTTP request' });
  });

  it('answers a request target that is not a path with 400 and the error body', async () => {
    const answer = await raw('GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(bodyOf(answer).code).toBe('BAD_REQUEST');
  });
});

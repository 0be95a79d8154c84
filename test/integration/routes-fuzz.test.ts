/**
 * Property, for every route in ROUTES and FUNCTION_URLS, and the local host's dev sign-in (so a
 * route added later is fuzzed by construction): hostile
 * path parameters, query strings, headers, bodies and approver-token claims are each answered
 * with a 4xx and the SPEC §1 error body (or, for a read of something that exists, its 2xx), never
 * a 5xx; every answer matches the OpenAPI document (the client checks it); the table is unchanged
 * afterwards; and the sequencer still seals a fact submitted after the run.
 */
import { randomUUID } from 'node:crypto';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { DEV_SIGN_IN_PATH } from '../../bin/local/host.js';
import { FUNCTION_URLS, ROUTES, DEV_JWT, type RouteDef } from '../../functions/shared/constants.js';
import { signedHeaders } from '../support/slack.js';
import { tokenFor } from '../support/approvers.js';
import { tableSnapshot } from '../support/snapshot.js';
import { standingGrantItem } from '../../functions/store/grants.js';
import { startTestStack, toolCall, type TestStack } from '../support/stack.js';

let stack: TestStack;
/** Ids that exist (a pending approval and its event): hostile input must not change them. */
let existing: Record<string, string>;
let aliceToken: string;

beforeAll(async () => {
  stack = await startTestStack();
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-1', params: {} }),
  );
  // A standing grant of tenant1 (issue 21), stored as its creation writes it: hostile input to
  // the grant routes must neither read past the walls nor change it.
  const grantId = randomUUID();
  const at = new Date().toISOString();
  await stack.state.doc.send(
    new PutCommand({
      TableName: stack.config.tableName,
      Item: standingGrantItem({
        id: grantId,
        tenant_id: 'tenant1',
        agent_id: 'agent-1',
        tool: 'jira',
        action: 'issue.delete',
        target_pattern: 'OPS-*',
        max_uses: 3,
        uses_left: 3,
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
        created_by: 'alice@acme.example',
        created_at: at,
        approval_id: r.json.approval.id,
        event_id: r.json.event_id,
        status: 'active',
      }),
    }),
  );
  existing = {
    event_id: r.json.event_id,
    approval_id: r.json.approval.id,
    grant_id: grantId,
    // The console's greedy `{path+}`: the page `approval.url` opens.
    'path+': `approvals/${r.json.approval.id}`,
  };
  aliceToken = await tokenFor('alice');
});
afterAll(async () => {
  await stack.stop();
});

/** Percent-encodes every UTF-8 byte (a lone surrogate goes out as U+FFFD's bytes). */
const encodeAll = (s: string) =>
  [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

const pathParam: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('%ZZ', '%', '%E0%A4%A', '%C0%AF', '%ED%A0%80', '%00', '..', '%2e%2e', '%2F', 'x%0Ay'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }).map(encodeAll),
  fc.uuid(), // well formed but unknown (or the wrong version)
  fc.uuid().map((u) => u.toUpperCase()),
  fc.string({ minLength: 1, maxLength: 40 }).map((s) => encodeURIComponent(s)),
  fc.constant('a'.repeat(3000)),
);

const queryString: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc
    .dictionary(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 40 }), {
      maxKeys: 4,
    })
    .map((q) =>
      Object.entries(q)
        .map(([k, v]) => `${encodeAll(k)}=${encodeAll(v)}`)
        .join('&'),
    ),
  fc.constantFrom(
    'limit=-1',
    'limit=0',
    'limit=abc',
    'limit=1e400',
    'limit=101',
    'status=bogus',
    'status=pending&status=denied',
    'cursor=%ZZ',
    'cursor=' + 'A'.repeat(3000),
    'cursor=eyJnc2kxcGsiOiJUI3RlbmFudDEjQVBSI3BlbmRpbmciLCJnc2kxc2siOiIiLCJwayI6IlQjdGVuYW50MSNBUFIjeCIsInNrIjoiQVBQUk9WQUwifQ',
    'cursor=W10',
    'limit=5&unknown=1',
  ),
);

/** Bodies no route accepts: not JSON, not an object, fields nobody declared or of the wrong kind. */
const hostileBody: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    '',
    '{',
    'null',
    '[]',
    '"x"',
    '{"comment":"\\ud800"}',
    '{"reason":"\\udc00"}',
    '{"comment":1}',
    '{"reason":"a\\u202eb\\u0007"}',
    '{"comment":"' + 'x'.repeat(1001) + '"}',
    '{"n":12345678901234567890}',
    '{"__proto__":{"x":1}}',
  ),
  fc.object({ maxDepth: 3 }).map((o) => JSON.stringify({ ...o, unexpected_field: true })),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
);

/** Every edge: the API's routes, the Function URLs, and the local host's dev sign-in. */
const EDGES: readonly RouteDef[] = [
  ...ROUTES,
  ...FUNCTION_URLS,
  { handler: 'dev-sign-in', method: 'POST', path: DEV_SIGN_IN_PATH, auth: 'none' },
];

/**
 * Slack interactions are signed: a hostile body is signed with the right secret so that only the
 * parser stands between it and a decision (an unsigned one never gets past the 401). Half are
 * forms whose `payload` is itself hostile.
 */
const SLACK_HANDLER = 'slack-interactions';
const slackBody: fc.Arbitrary<string> = fc.oneof(
  hostileBody.map((b) => b ?? ''),
  hostileBody.map((b) => `payload=${encodeAll(b ?? '')}`),
  fc.constantFrom(
    'payload=' + encodeAll('{"type":"block_actions","user":{"id":"U123"},"actions":[]}'),
    'payload=' +
      encodeAll(
        '{"type":"block_actions","user":{"id":"U123\\ud800"},"response_url":"http://127.0.0.1:1/x","actions":[{"action_id":"oc_approve","value":"e30"}]}',
      ),
    // Issue 21's workflow buttons: an empty value, and a grant click whose value says approve.
    'payload=' +
      encodeAll(
        '{"type":"block_actions","user":{"id":"U123"},"team":{"id":"T0001"},"response_url":"http://127.0.0.1:1/x","actions":[{"action_id":"oc_extend","value":"e30"}]}',
      ),
    'payload=' +
      encodeAll(
        `{"type":"block_actions","user":{"id":"U123"},"team":{"id":"T0001"},"response_url":"http://127.0.0.1:1/x","actions":[{"action_id":"oc_grant","value":"${Buffer.from(JSON.stringify({ d: 'approve', r: '3f2504e0-4f89-41d3-9a0c-0305e82c3301', e: '3f2504e0-4f89-41d3-9a0c-0305e82c3301', t: 'tenant1' })).toString('base64url')}"}]}`,
      ),
    'payload=%ZZ',
    'payload=' + encodeAll('{"type":"url_verification","challenge":"x"}'),
  ),
);

const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'text/plain',
  'application/json; charset=utf-16',
  'multipart/form-data; boundary=x',
  '',
);

/** Approver tokens whose claims are hostile: signed with the right key, so only the claim rules stand between them and a decision. */
const hostileClaimToken: fc.Arbitrary<Promise<string>> = fc
  .record({
    sub: fc.oneof(fc.string({ unit: 'binary', maxLength: 600 }), fc.integer(), fc.constant(null)),
    email: fc.oneof(fc.string({ unit: 'binary', maxLength: 600 }), fc.constant(['alice@acme.example'])),
    tenant_id: fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.constant('tenant1\u200b'),
      fc.integer(),
    ),
    iat: fc.oneof(fc.constant(undefined), fc.integer({ min: -1e10, max: 1e11 })),
    exp: fc.oneof(fc.constant(undefined), fc.integer({ min: -1e10, max: 1e11 })),
  })
  .filter((c) => !(c.email === 'alice@acme.example' && c.tenant_id === 'tenant1'))
  .map(async (c) => {
    const claims: Record<string, unknown> = { email: c.email, tenant_id: c.tenant_id };
    if (c.sub !== null) claims.sub = c.sub;
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(DEV_JWT.issuer)
      .setAudience(DEV_JWT.audience);
    if (c.iat !== undefined) jwt.setIssuedAt(c.iat);
    if (c.exp !== undefined) jwt.setExpirationTime(c.exp);
    return jwt.sign(new TextEncoder().encode(DEV_JWT.defaultSecret));
  });

interface Attempt {
  params: Record<string, string>;
  query: string;
  body: string | undefined;
  contentType: string | undefined;
  token?: Promise<string>;
}

function attempts(route: RouteDef): fc.Arbitrary<Attempt> {
  const names = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string);
  for (const name of names)
    if (!(name in existing))
      throw new Error(`routes fuzz: no existing id for path parameter ${name}: add one`);
  if (
    route.auth !== 'api_key' &&
    route.auth !== 'jwt' &&
    route.auth !== 'api_key_or_jwt' &&
    route.auth !== 'api_key_or_oauth' &&
    route.auth !== 'none'
  )
    throw new Error(`routes fuzz: no credential strategy for auth ${route.auth}`);
  const params = fc.oneof(
    fc.record(Object.fromEntries(names.map((n) => [n, pathParam]))),
    // The ids that exist, with hostile everything else.
    fc.constant(Object.fromEntries(names.map((n) => [n, existing[n] as string]))),
  );
  if (route.handler === SLACK_HANDLER)
    return fc.record({
      params,
      query: queryString,
      body: slackBody,
      contentType: fc.constantFrom(
        undefined,
        'application/x-www-form-urlencoded',
        'application/json',
        'text/plain',
      ),
    }) as fc.Arbitrary<Attempt>;
  return fc.record({
    params,
    query: queryString,
    // An empty body is a valid decision: on the ids that exist it would decide, so POSTs get a body.
    body: route.method === 'POST' ? hostileBody.filter((b) => b !== undefined && b !== '') : hostileBody,
    contentType,
    // `api_key_or_oauth` (/mcp): a hostile JWT takes the OAuth path (a forged access token).
    ...(route.auth === 'jwt' || route.auth === 'api_key_or_jwt' || route.auth === 'api_key_or_oauth'
      ? { token: fc.option(hostileClaimToken, { nil: undefined }) }
      : {}),
  }) as fc.Arbitrary<Attempt>;
}

/** The MCP transport answers its own 4xx as JSON-RPC errors (MCP spec). */
const MCP_HANDLER = 'mcp';
const jsonRpcErrorShape = {
  jsonrpc: '2.0',
  error: { code: expect.any(Number), message: expect.any(String) },
};

const errorShape = {
  code: expect.stringMatching(/^[A-Z][A-Z0-9_]*$/),
  message: expect.any(String),
  retryable: expect.any(Boolean),
  request_id: expect.any(String),
};

describe('every route under hostile input', () => {
  let before: string[];
  beforeAll(async () => {
    await stack.poller?.drained();
    before = await tableSnapshot(stack.state.doc, stack.config.tableName);
  });

  it.each(EDGES.map((r) => [`${r.method} ${r.path}`, r] as const))(
    '%s: never a 5xx, always the error body',
    async (_name, route) => {
      let runs = 0;
      const statuses = new Set<number>();
      await fc.assert(
        fc.asyncProperty(attempts(route), async (a) => {
          runs += 1;
          const path =
            route.path.replace(/\{([^}]+)\}/g, (_m, n: string) => a.params[n] as string) +
            (a.query ? `?${a.query}` : '');
          const token = a.token ? await a.token : route.auth === 'jwt' ? aliceToken : undefined;
          const signed =
            route.handler === SLACK_HANDLER
              ? signedHeaders(a.body ?? '', a.contentType ? { contentType: a.contentType } : {})
              : undefined;
          const headers: Record<string, string> =
            signed ?? (a.contentType === undefined ? {} : { 'Content-Type': a.contentType });
          // MCP clients accept JSON and SSE: the hostile bodies reach the MCP transport's parser.
          if (route.handler === MCP_HANDLER) headers.Accept = 'application/json, text/event-stream';
          if (signed && a.contentType === undefined) delete headers['Content-Type'];
          const r = await stack.request(route.method, path, {
            ...(token ? { token } : {}),
            ...(route.auth === 'none' ? { key: null } : {}),
            ...(a.body === undefined ? {} : { body: a.body }),
            headers,
          });
          expect([path, r.status]).toEqual([path, expect.any(Number)]);
          expect(r.status).toBeLessThan(500);
          statuses.add(r.status);
          if (r.status >= 400)
            expect(r.json).toMatchObject(
              route.handler === MCP_HANDLER && r.json?.jsonrpc ? jsonRpcErrorShape : errorShape,
            );
          // Hostile input can read what exists, never change it (MCP: a notification is 202, a
          // ping 200; the table check below holds it to nothing written).
          else if (route.handler === MCP_HANDLER) expect([200, 202]).toContain(r.status);
          else expect(route.method).toBe('GET');
        }),
        { numRuns: 250 },
      );
      expect(runs).toBe(250);
      // The signature held: hostile Slack bodies reached the parser, not only the 401.
      if (route.handler === SLACK_HANDLER) expect([...statuses].filter((st) => st !== 401)).not.toEqual([]);
    },
    120_000,
  );

  it('left the table unchanged, and the sequencer still seals', async () => {
    await stack.poller?.drained();
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
    const r = await stack.post('/v1/toolcalls', toolCall());
    expect(r.status).toBe(200);
    await stack.poller?.drained();
    const ev = await stack.get(`/v1/toolcalls/${r.json.event_id}`);
    expect(ev.json.evidence.map((f: { status: string }) => f.status)).toEqual(['sealed', 'sealed']);
  });
});

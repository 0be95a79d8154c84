/**
 * POST /v1/toolcalls and GET /v1/toolcalls/{id} over HTTP on the local stack (real DynamoDB Local),
 * every response checked against api/openapi.yaml (by the stack's client).
 */
import { chainHash } from '../../functions/core/evidence.js';
import { eventIdFor } from '../../functions/core/toolcall.js';
import { tokenFor } from '../support/approvers.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack.stop();
});

const submit = (body: unknown, key?: string | null, headers?: Record<string, string>) =>
  stack.post('/v1/toolcalls', body, key, headers);
const fetchEvent = (id: string, key?: string | null) => stack.get(`/v1/toolcalls/${id}`, key);

async function sealed(eventId: string, facts: number) {
  for (let i = 0; i < 100; i++) {
    const r = await fetchEvent(eventId);
    const ev = r.json.evidence as { status: string }[];
    if (ev.length === facts && ev.every((f) => f.status === 'sealed')) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('facts were not sealed within 10 s');
}

describe('POST /v1/toolcalls', () => {
  it('allows a low-risk write, runs the mock connector and records decision then result', async () => {
    const r = await submit(toolCall());
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      decision: 'allow',
      reason: 'write action on allowlist within tenant threshold',
      result: { status: 'success', output: { channel: '#general', mock: true, ok: true } },
    });
    expect(r.json.policy_version).toMatch(/^sha256:[0-9a-f]{64}$/);
    const ev = await sealed(r.json.event_id, 2);
    expect(ev.json.status).toBe('completed');
    expect(ev.json.evidence.map((f: { kind: string }) => f.kind)).toEqual([
      'toolcall.decided',
      'toolcall.executed',
    ]);
    expect(ev.json.evidence[1].prev_hash).toBe(ev.json.evidence[0].hash);
    expect(ev.json.evidence[0].record).toMatchObject({
      v: 1,
      tenant_id: 'tenant1',
      decision: 'allow',
      seq: expect.any(Number),
    });
    // An auditor can recompute every hash from the GET output alone.
    for (const f of ev.json.evidence) expect(chainHash(f.prev_hash, f.record)).toBe(f.hash);
  });

  it('denies an unknown action with 200, runs nothing, records the decision', async () => {
    const r = await submit(toolCall({ tool: 'unknown', action: 'do.something', risk_score: 2 }));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ decision: 'deny', reason: 'action not in allowlist' });
    expect(r.json.result).toBeUndefined();
    const ev = await sealed(r.json.event_id, 1);
    expect(ev.json.status).toBe('decided');
  });

  it('parks a destructive action for approval with a pending approval and nothing run', async () => {
    const r = await submit(toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-1', params: {} }));
    expect(r.json).toMatchObject({ decision: 'approve', reason: 'destructive action requires approval' });
    expect(r.json.approval).toMatchObject({
      status: 'pending',
      url: `http://localhost:3000/console/approvals/${r.json.approval.id}`,
    });
    // The link opens the console's page for this approval (which signs the approver in).
    const opened = await stack.request('GET', new URL(r.json.approval.url).pathname);
    expect(opened.status).toBe(200);
    expect(opened.headers['content-type']).toMatch(/^text\/html/);
    expect(opened.text).toContain('/console/assets/app.js');
    // The API resource it reads is there for an approver of the tenant.
    const read = await stack.request('GET', `/v1/approvals/${r.json.approval.id}`, {
      token: await tokenFor('alice'),
    });
    expect(read.json).toMatchObject({ id: r.json.approval.id, status: 'pending' });
    const hours = (Date.parse(r.json.approval.expires_at) - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(23.9);
    expect(hours).toBeLessThanOrEqual(24);
    const ev = await fetchEvent(r.json.event_id);
    expect(ev.json).toMatchObject({
      decision: 'approve',
      status: 'decided',
      approval: { id: r.json.approval.id, status: 'pending' },
    });
    expect(ev.json.result).toBeUndefined();
    expect(JSON.stringify(ev.json)).not.toContain('secret_ref');
    expect(JSON.stringify(ev.json)).not.toContain('hooks/approvals');
  });

  it('replays the first response byte for byte, with Idempotent-Replayed, and writes nothing new', async () => {
    const body = toolCall();
    const first = await submit(body);
    const again = await submit(body);
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const ev = await sealed(first.json.event_id, 2);
    expect(ev.json.evidence).toHaveLength(2);
  });

  it('treats a normalized-identical body as the same request', async () => {
    const body = toolCall();
    const first = await submit(body);
    const again = await submit({ ...body, tool: ' SLACK ' });
    expect(again.text).toBe(first.text);
  });

  it('answers 422 IDEMPOTENCY_KEY_REUSED when the key comes back with another body', async () => {
    const body = toolCall();
    await submit(body);
    const r = await submit({ ...body, params: { channel: '#general', text: 'different' } });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED', retryable: false });
  });

  it('scopes idempotency keys per tenant', async () => {
    const body = toolCall();
    const a = await submit(body, KEYS.tenant1);
    const b = await submit(body, KEYS.tenant2);
    expect(b.status).toBe(200);
    expect(b.json.event_id).not.toBe(a.json.event_id);
  });

  it('accepts Authorization: Bearer and rejects missing or unknown keys with 401', async () => {
    const bearer = await submit(toolCall(), null, { Authorization: `Bearer ${KEYS.tenant1}` });
    expect(bearer.status).toBe(200);
    const missing = await submit(toolCall(), null);
    expect(missing.status).toBe(401);
    expect(missing.json).toMatchObject({ code: 'UNAUTHORIZED', message: 'missing API key' });
    const unknown = await submit(toolCall(), 'sk-nope');
    expect(unknown.json).toMatchObject({ code: 'UNAUTHORIZED', message: 'invalid API key' });
  });

  it('refuses a key until it exists, and accepts it within seconds once created (misses are cached briefly)', async () => {
    const fresh = `sk-late-${Date.now()}`;
    expect((await submit(toolCall(), fresh)).status).toBe(401);
    await stack.state.apiKeys.put(fresh, { tenantId: 'tenant1' });
    let status = 0;
    const started = Date.now();
    while (status !== 200 && Date.now() - started < 10_000) {
      status = (await submit(toolCall(), fresh)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 250));
    }
    // within 10 s: a miss is cached for 2 s, not for the 30 s a found key is
    expect(status).toBe(200);
  });

  it('answers 403 TENANT_MISMATCH for another tenant in the body and accepts its own', async () => {
    const mismatch = await submit(toolCall({ tenant_id: 'tenant2' }));
    expect(mismatch.status).toBe(403);
    expect(mismatch.json.code).toBe('TENANT_MISMATCH');
    const own = await submit(toolCall({ tenant_id: 'tenant1' }));
    expect(own.status).toBe(200);
  });

  it('answers 413 for bodies over 1 MiB', async () => {
    const r = await submit(JSON.stringify(toolCall({ params: { x: 'a'.repeat(1024 * 1024) } })));
    expect(r.status).toBe(413);
    expect(r.json.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it.each([
    ['malformed JSON', '{invalid json', 400, 'BAD_REQUEST'],
    ['an empty body', '', 400, 'BAD_REQUEST'],
    ['a JSON array', '[]', 422, 'VALIDATION_ERROR'],
    ['JSON null', 'null', 422, 'VALIDATION_ERROR'],
    ['a string', '"x"', 422, 'VALIDATION_ERROR'],
    ['only tenant_id', '{"tenant_id":"tenant1"}', 422, 'VALIDATION_ERROR'],
  ])('rejects %s', async (_name, body, status, code) => {
    const r = await submit(body);
    expect(r.status).toBe(status);
    expect(r.json.code).toBe(code);
  });

  it('explains validation failures with details', async () => {
    const r = await submit(toolCall({ risk_score: 11, unknown_field: true }));
    expect(r.status).toBe(422);
    expect(r.json.details).toEqual(
      expect.arrayContaining([
        { path: '/risk_score', message: expect.any(String) },
        { path: '', message: expect.stringContaining('unknown_field') },
      ]),
    );
  });
});

/** Nothing of a refused call is written: its key names no event. */
async function nothingRecorded(key: string) {
  const r = await fetchEvent(eventIdFor('tenant1', key));
  expect(r.status).toBe(404);
}

describe('POST /v1/toolcalls: one target, derived from the action’s target param', () => {
  const del = (overrides: Record<string, unknown>) =>
    toolCall({ tool: 'jira', action: 'issue.delete', params: {}, ...overrides });

  it('refuses a resource that names another object than the target param (422 naming both), recording nothing', async () => {
    const body = del({ resource: 'OPS-1', params: { issue: 'PROD-42' } });
    const r = await submit(body);
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'VALIDATION_ERROR', retryable: false });
    expect(r.json.message).toMatch(/resource/);
    expect(r.json.message).toMatch(/params\.issue/);
    expect(r.json.details).toEqual(
      expect.arrayContaining([
        { path: '/resource', message: expect.stringContaining('OPS-1') },
        { path: '/params/issue', message: expect.stringContaining('PROD-42') },
      ]),
    );
    await nothingRecorded(body.idempotency_key as string);
  });

  it('copies resource into an absent target param, and derives resource from a present one', async () => {
    const alice = await tokenFor('alice');
    const fromResource = await submit(del({ resource: 'OPS-1' }));
    const fromParams = await submit(del({ params: { issue: 'OPS-2' } }));
    expect(fromResource.json.decision).toBe('approve');
    expect(fromParams.json.decision).toBe('approve');
    const approval = async (id: string) =>
      (await stack.request('GET', `/v1/approvals/${id}`, { token: alice })).json;
    // Every surface reads the approval record: it holds one target, in both places.
    expect(await approval(fromResource.json.approval.id)).toMatchObject({
      resource: 'OPS-1',
      params: { issue: 'OPS-1' },
    });
    expect(await approval(fromParams.json.approval.id)).toMatchObject({
      resource: 'OPS-2',
      params: { issue: 'OPS-2' },
    });
    const ev = await fetchEvent(fromParams.json.event_id);
    expect(ev.json.evidence[0].record.request).toMatchObject({
      resource: 'OPS-2',
      params: { issue: 'OPS-2' },
    });

    // What was approved is what runs: the connector deletes the approved target.
    const approved = await stack.request('POST', `/v1/approvals/${fromResource.json.approval.id}/approve`, {
      token: alice,
      body: { comment: 'ok' },
    });
    expect(approved.status).toBe(200);
    const ran = await stack.post(`/v1/toolcalls/${fromResource.json.event_id}/execute`, '');
    expect(ran.json.result).toMatchObject({ status: 'success', output: { deleted: true, issue: 'OPS-1' } });
  });

  it('compares idempotency on the normalized request: the target sent either way is the same call', async () => {
    const key = `key-target-${Date.now()}`;
    const first = await submit(del({ resource: 'OPS-5', idempotency_key: key }));
    const again = await submit(del({ params: { issue: 'OPS-5' }, idempotency_key: key }));
    const both = await submit(del({ resource: 'OPS-5', params: { issue: 'OPS-5' }, idempotency_key: key }));
    expect(again.text).toBe(first.text);
    expect(both.text).toBe(first.text);
    expect(again.headers['idempotent-replayed']).toBe('true');
  });

  it('refuses a numeric Jira id for a destructive action before policy (a rule on the key would be sidestepped)', async () => {
    const body = del({ params: { issue: '10042' } });
    const r = await submit(body);
    expect(r.status).toBe(422);
    expect(r.json.details).toEqual([{ path: '/params/issue', message: expect.stringMatching(/issue key/) }]);
    await nothingRecorded(body.idempotency_key as string);
  });

  it('records targets in their canonical form: an issue key in upper case, a channel name with its #', async () => {
    const lower = await submit(del({ params: { issue: 'ops-3' } }));
    expect((await fetchEvent(lower.json.event_id)).json.evidence[0].record.request).toMatchObject({
      resource: 'OPS-3',
      params: { issue: 'OPS-3' },
    });
    const bare = await submit(toolCall({ params: { channel: 'general', text: 'Hello' } }));
    expect(bare.json.result).toMatchObject({ status: 'success', output: { channel: '#general' } });
    expect((await fetchEvent(bare.json.event_id)).json.evidence[0].record.request).toMatchObject({
      resource: '#general',
      params: { channel: '#general' },
    });
  });

  it.each([
    ['a mention that is no channel', { channel: '<!channel>', text: 'x' }, ''],
    ['a channel name with an invisible character', { channel: '#o\u200bps', text: 'x' }, ''],
    // A name and an ID are aliases the gateway cannot resolve: never taken for one another.
    ['a channel ID with its #name as resource', { channel: 'C01GENERAL', text: 'x' }, '#general'],
  ])('refuses slack.msg.post to %s', async (_name, params, resource) => {
    const body = toolCall({ params, resource });
    const r = await submit(body);
    expect(r.status).toBe(422);
    expect(r.json.details).toEqual(
      expect.arrayContaining([{ path: '/params/channel', message: expect.any(String) }]),
    );
    await nothingRecorded(body.idempotency_key as string);
  });

  it('refuses a resource on an action that acts on no single object', async () => {
    const body = toolCall({ tool: 'jira', action: 'issue.list', resource: 'PROD-1', params: {} });
    const r = await submit(body);
    expect(r.status).toBe(422);
    expect(r.json.details).toEqual([
      { path: '/resource', message: expect.stringMatching(/no single object/) },
    ]);
    await nothingRecorded(body.idempotency_key as string);
  });
});

describe('POST /v1/toolcalls: strict inputs, checked before any decision', () => {
  it.each([
    ['an issue that is no issue key', { params: { issue: 'SDK-KILL-1' } }, '/params/issue', /issue key/],
    ['an unknown param and no target', { params: { key: 'OPS-3' } }, '/params/key', /unknown param/],
    ['no target at all', { params: {} }, '/params/issue', /is required/],
  ])(
    'refuses jira.issue.delete with %s: 422, nothing parked or recorded',
    async (_name, extra, path, message) => {
      const body = toolCall({ tool: 'jira', action: 'issue.delete', ...extra });
      const r = await submit(body);
      expect(r.status).toBe(422);
      expect(r.json.code).toBe('VALIDATION_ERROR');
      expect(r.json.details).toEqual(
        expect.arrayContaining([{ path, message: expect.stringMatching(message) }]),
      );
      await nothingRecorded(body.idempotency_key as string);
    },
  );

  it('refuses a param the action does not declare (slack.msg.post with an extra param does not run)', async () => {
    const body = toolCall({ params: { channel: '#general', text: 'Hello', unfurl: true } });
    const r = await submit(body);
    expect(r.status).toBe(422);
    expect(r.json.details).toEqual([
      { path: '/params/unfurl', message: expect.stringMatching(/unknown param/) },
    ]);
    await nothingRecorded(body.idempotency_key as string);
  });
});

describe('GET /v1/toolcalls/{event_id}', () => {
  it('hides other tenants events behind 404, exactly like missing ones', async () => {
    const r = await submit(toolCall());
    const other = await fetchEvent(r.json.event_id, KEYS.tenant2);
    expect(other.status).toBe(404);
    const missing = await fetchEvent('6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b', KEYS.tenant2);
    expect(other.json.message).toBe(missing.json.message);
    expect(other.json.code).toBe('NOT_FOUND');
  });

  it.each(['not-a-uuid', '6F1C2A9E-3B4D-4E5F-8A6B-7C8D9E0F1A2B', '6f1c2a9e3b4d4e5f8a6b7c8d9e0f1a2b'])(
    'answers 400 for a malformed id %p',
    async (id) => {
      const r = await fetchEvent(id);
      expect(r.status).toBe(400);
      expect(r.json.code).toBe('BAD_REQUEST');
    },
  );

  it('requires a key', async () => {
    const r = await fetchEvent('6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b', null);
    expect(r.status).toBe(401);
  });
});

/**
 * The web console's server side on the local stack: its files under a strict CSP, its sign-in
 * settings, the local dev sign-in, and the chain positions of an approval's facts that its
 * detail view shows. (The app itself runs in a real browser in test/ui/console.test.ts.)
 */
import { gunzipSync } from 'node:zlib';
import { tokenFor } from '../support/approvers.js';
import { tableSnapshot } from '../support/snapshot.js';
import { startTestStack, toolCall, type TestStack } from '../support/stack.js';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack.stop();
});

async function parked(): Promise<{ eventId: string; approvalId: string }> {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-7', params: {} }),
  );
  expect(r.json.decision).toBe('approve');
  return { eventId: r.json.event_id, approvalId: r.json.approval.id };
}

describe('the console files', () => {
  it('serves the page at /console and for every app page, under a strict CSP', async () => {
    const { approvalId } = await parked();
    // `/console/grants` too: the standing grants page is linked, bookmarked and reloaded like the others.
    for (const path of [
      '/console',
      `/console/approvals/${approvalId}`,
      '/console/callback',
      '/console/grants',
    ]) {
      const r = await stack.request('GET', path, { key: null });
      expect([path, r.status, r.headers['content-type']]).toEqual([path, 200, 'text/html; charset=utf-8']);
      expect(r.text).toContain('<script type="module" src="/console/assets/app.js"></script>');
      const csp = r.headers['content-security-policy'];
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
    // No inline script or style in the page: the CSP would block it, so there must be none.
    const page = await stack.request('GET', '/console', { key: null });
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.text).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
  });

  it('serves its assets, gzip-compressed when asked, and nothing outside them', async () => {
    const js = await stack.request('GET', '/console/assets/app.js', { key: null });
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const gz = await stack.request('GET', '/console/assets/app.js', {
      key: null,
      headers: { 'Accept-Encoding': 'gzip' },
      contract: false, // a compressed body is bytes, not a text the contract client reads
    });
    expect(gz.headers['content-encoding']).toBe('gzip');
    for (const path of [
      '/console/assets/../index.html',
      '/console/assets/nope.js',
      '/console/assets/%2e%2e%2fpackage.json',
      '/console/approvals/not-an-id',
      '/console/index.html/x',
      '/console/grants/x',
    ]) {
      const r = await stack.request('GET', path, { key: null });
      expect([path, r.status, r.json?.code]).toEqual([path, 404, 'NOT_FOUND']);
    }
  });

  it('is small: the page, its script and its style transfer in under 15 KB (gzip)', async () => {
    let total = 0;
    for (const path of ['/console', '/console/assets/app.js', '/console/assets/app.css']) {
      const r = await rawGet(path);
      expect(r.encoding).toBe('gzip');
      expect(gunzipSync(r.bytes).length).toBeGreaterThan(r.bytes.length);
      total += r.bytes.length;
    }
    expect(total).toBeLessThan(15 * 1024);
  });

  it('tells the app to use the dev sign-in on the local stack', async () => {
    const r = await stack.request('GET', '/console/config.json', { key: null });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ auth: 'dev' });
  });
});

describe('the local dev sign-in', () => {
  it('mints a working approver token for an allowlisted email, for its tenant', async () => {
    const r = await stack.request('POST', '/console/dev-sign-in', {
      key: null,
      body: { email: 'carol@acme.example' },
    });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ email: 'carol@acme.example', tenant_id: 'tenant1' });
    const list = await stack.request('GET', '/v1/approvals', { token: r.json.token });
    expect(list.status).toBe(200);
    const bob = await stack.request('POST', '/console/dev-sign-in', {
      key: null,
      body: { email: 'bob@globex.example' },
    });
    expect(bob.json.tenant_id).toBe('tenant2');
  });

  it('refuses an email on no allowlist and bad bodies, writing nothing', async () => {
    await stack.poller?.drained();
    const before = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const stranger = await stack.request('POST', '/console/dev-sign-in', {
      key: null,
      body: { email: 'mallory@acme.example' },
    });
    expect([stranger.status, stranger.json.code]).toEqual([403, 'APPROVER_NOT_ALLOWED']);
    for (const body of [
      '{',
      '{}',
      '{"email":1}',
      '{"email":"a","x":1}',
      '{"email":"alice@acme.example\\u200b"}',
    ]) {
      const r = await stack.request('POST', '/console/dev-sign-in', { key: null, body });
      expect([body, r.status >= 400 && r.status < 500]).toEqual([body, true]);
    }
    const text = await stack.request('POST', '/console/dev-sign-in', {
      key: null,
      body: 'email=alice',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(text.status).toBe(415);
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
  });
});

describe('an approval read with its facts', () => {
  it('names the policy version and each fact with its chain seq once sealed', async () => {
    const alice = await tokenFor('alice');
    const { approvalId } = await parked();
    await stack.poller?.drained();
    const before = await stack.request('GET', `/v1/approvals/${approvalId}`, { token: alice });
    expect(before.json.policy_version).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(before.json.facts).toEqual([
      expect.objectContaining({
        kind: 'toolcall.decided',
        seq: expect.any(Number),
        hash: expect.any(String),
      }),
    ]);
    await stack.request('POST', `/v1/approvals/${approvalId}/approve`, { token: alice, body: {} });
    await stack.poller?.drained();
    const after = await stack.request('GET', `/v1/approvals/${approvalId}`, { token: alice });
    expect(after.json.facts.map((f: { kind: string }) => f.kind)).toEqual([
      'toolcall.decided',
      'approval.decided',
    ]);
    const [decided, approval] = after.json.facts;
    expect(approval.seq).toBeGreaterThan(decided.seq);
    // The same seq the chain holds for that fact.
    const chain = await stack.get(`/v1/toolcalls/${after.json.event_id}`);
    const sealed = chain.json.evidence.find(
      (f: { record: { kind: string } }) => f.record.kind === 'approval.decided',
    );
    expect(sealed.seq).toBe(approval.seq);
  });
});

/** The console's bytes as they go over the wire, gzip-encoded (the contract reads text, not gzip). */
async function rawGet(path: string): Promise<{ bytes: Buffer; encoding: string | undefined }> {
  const r = await stack.request('GET', path, {
    key: null,
    headers: { 'Accept-Encoding': 'gzip' },
    contract: false,
  });
  expect(r.status).toBe(200);
  return { bytes: r.bytes, encoding: r.headers['content-encoding'] };
}

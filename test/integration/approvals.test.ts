/**
 * Human approvals and exactly-once execution over HTTP on the local stack: approver identity,
 * RBAC, decisions racing, expiry, grants bound to their event (every answer checked against the
 * OpenAPI contract by the stack's client).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { runCli } from '../../bin/cli/program.js';
import { sweep } from '../../functions/handlers/expire-approvals.js';
import { ViewEvidence } from '../../functions/core/view-evidence.js';
import { ChainStore, verifyTenantChain } from '../../functions/store/chain.js';
import type { Clock } from '../../functions/core/ports.js';
import { countingInvoker } from '../support/connectors.js';
import { tokenFor } from '../support/approvers.js';
import { dynamoEndpoint, KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { unpackText } from '../../functions/store/packed-text.js';

/** A clock the test can move forward (approval and grant expiry). */
const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
const connector = countingInvoker({ delayMs: 40 });
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ overrides: { connectors: connector, clock } });
});
afterAll(async () => {
  await stack.stop();
});
beforeEach(() => {
  clock.offsetMs = 0;
});

const asApprover = (method: 'GET' | 'POST', path: string, token: string, body?: unknown) =>
  stack.request(method, path, { token, body });
const execute = (eventId: string, key: string = KEYS.tenant1) =>
  stack.post(`/v1/toolcalls/${eventId}/execute`, '', key);

async function parked(overrides: Record<string, unknown> = {}) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-1', params: {}, ...overrides }),
  );
  expect(r.json.decision).toBe('approve');
  return { eventId: r.json.event_id as string, approvalId: r.json.approval.id as string };
}

describe('the approval loop over HTTP', () => {
  it('submit -> list pending -> approve -> execute -> replay, all recorded and sealed', async () => {
    const alice = await tokenFor('alice');
    const { eventId, approvalId } = await parked();

    const pending = await asApprover('GET', '/v1/approvals?status=pending&limit=100', alice);
    expect(pending.status).toBe(200);
    expect(pending.json.items.map((a: { id: string }) => a.id)).toContain(approvalId);

    const early = await execute(eventId);
    expect(early.status).toBe(409);
    expect(early.json.code).toBe('AWAITING_APPROVAL');
    expect(early.headers['retry-after']).toBeDefined();

    const approved = await asApprover('POST', `/v1/approvals/${approvalId}/approve`, alice, {
      comment: 'ok, ticket OPS-1',
    });
    expect(approved.status).toBe(200);
    expect(approved.json).toMatchObject({
      status: 'approved',
      decided_by: 'alice@acme.example',
      grant: { event_id: eventId, uses_left: 1 },
    });

    const calls = connector.calls.length;
    const first = await execute(eventId);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({
      parent_event_id: eventId,
      decision: 'allow',
      reason: 'approved execution',
    });
    // The approved delete runs (mock mode: deterministic), instead of failing as in the original (W11).
    expect(first.json.result).toMatchObject({
      status: 'success',
      output: { deleted: true, issue: 'OPS-1', mock: true },
    });
    expect(connector.calls.length).toBe(calls + 1);
    expect(connector.calls.at(-1)).toMatchObject({
      tool: 'jira',
      action: 'issue.delete',
      resource: 'OPS-1',
      event_id: first.json.event_id,
    });

    const replay = await execute(eventId);
    expect(replay.text).toBe(first.text);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(connector.calls.length).toBe(calls + 1);

    await stack.poller!.drained();
    const record = await stack.get(`/v1/toolcalls/${eventId}`);
    expect(record.json.approval).toMatchObject({ status: 'approved', decided_by: 'alice@acme.example' });
    expect(record.json.execution).toMatchObject({ event_id: first.json.event_id, status: 'completed' });
    expect(
      record.json.evidence.map((f: { kind: string; status: string }) => `${f.kind}:${f.status}`),
    ).toEqual(['toolcall.decided:sealed', 'approval.decided:sealed', 'execution.started:sealed']);
    const execRecord = await stack.get(`/v1/toolcalls/${first.json.event_id}`);
    expect(execRecord.json).toMatchObject({
      parent_event_id: eventId,
      decision: 'allow',
      reason: 'approved execution',
    });
    expect(execRecord.json.evidence.map((f: { kind: string }) => f.kind)).toEqual(['execution.completed']);
    expect(execRecord.json.evidence[0].record).toMatchObject({ parent_event_id: eventId });
  });

  it('submit -> deny -> execute is 403 with the approver’s reason, and nothing runs', async () => {
    const { eventId, approvalId } = await parked();
    const denied = await asApprover('POST', `/v1/approvals/${approvalId}/deny`, await tokenFor('carol'), {
      reason: 'use archive instead',
    });
    expect(denied.json).toMatchObject({
      status: 'denied',
      deny_reason: 'use archive instead',
      decided_by: 'carol@acme.example',
    });
    expect(denied.json.grant).toBeUndefined();
    const calls = connector.calls.length;
    const r = await execute(eventId);
    expect(r.status).toBe(403);
    expect(r.json.code).toBe('APPROVAL_DENIED');
    expect(r.json.details).toEqual(
      expect.arrayContaining([{ path: 'deny_reason', message: 'use archive instead' }]),
    );
    expect(connector.calls.length).toBe(calls);
  });

  it('execute on allow and deny events is NOT_APPROVAL_GATED; unknown and other-tenant events are 404', async () => {
    const allowed = await stack.post('/v1/toolcalls', toolCall());
    expect((await execute(allowed.json.event_id)).json.code).toBe('NOT_APPROVAL_GATED');
    const { eventId } = await parked();
    expect((await execute(eventId, KEYS.tenant2)).status).toBe(404);
    expect((await execute('6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b')).status).toBe(404);
    expect((await execute('not-a-uuid')).status).toBe(400);
  });
});

describe('exactly once', () => {
  it('64 concurrent executes of one approved event, 20 times: one connector run each, answers identical or in progress', async () => {
    const alice = await tokenFor('alice');
    for (let round = 0; round < 20; round++) {
      const { eventId, approvalId } = await parked();
      expect((await asApprover('POST', `/v1/approvals/${approvalId}/approve`, alice)).status).toBe(200);
      const before = connector.calls.length;
      const answers = await Promise.all(
        Array.from({ length: 64 }, () => stack.post(`/v1/toolcalls/${eventId}/execute`, '')),
      );
      expect(connector.calls.length - before).toBe(1);
      const bodies = new Set(answers.filter((a) => a.status === 200).map((a) => a.text));
      expect(bodies.size).toBe(1);
      for (const a of answers) {
        if (a.status !== 200) expect(a.json.code).toBe('EXECUTION_IN_PROGRESS');
      }
    }
  }, 300_000);

  it('a grant for event A never executes event B with the same agent, tool, action and resource', async () => {
    const a = await parked();
    const b = await parked();
    expect(
      (await asApprover('POST', `/v1/approvals/${a.approvalId}/approve`, await tokenFor('alice'))).status,
    ).toBe(200);
    const calls = connector.calls.length;
    const onB = await execute(b.eventId);
    expect(onB.status).toBe(409);
    expect(onB.json.code).toBe('AWAITING_APPROVAL');
    expect(connector.calls.length).toBe(calls);
    expect((await execute(a.eventId)).status).toBe(200);
  });
});

describe('approver identity and RBAC', () => {
  it('refuses forged, expired, wrong-audience, wrong-issuer and alg:none tokens with 401', async () => {
    const { SignJWT } = await import('jose');
    const secret = new TextEncoder().encode('dev-jwt-secret');
    const claims = { sub: 'alice', email: 'alice@acme.example', tenant_id: 'tenant1' };
    const sign = (iss: string, aud: string, exp: number | string, key = secret) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(iss)
        .setAudience(aud)
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(key);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const tokens = {
      forged: await sign('oc-local', 'oc-approvals', '1h', new TextEncoder().encode('not-the-secret')),
      expired: await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('oc-local')
        .setAudience('oc-approvals')
        .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
        .sign(secret),
      wrongAudience: await sign('oc-local', 'someone-else', '1h'),
      wrongIssuer: await sign('https://evil.example', 'oc-approvals', '1h'),
      algNone: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, iss: 'oc-local', aud: 'oc-approvals', exp: Math.floor(Date.now() / 1000) + 3600 })}.`,
      agentKey: KEYS.tenant1,
    };
    for (const [name, token] of Object.entries(tokens)) {
      const r = await asApprover('GET', '/v1/approvals', token);
      expect([name, r.status]).toEqual([name, 401]);
      expect(r.json.code).toBe('UNAUTHORIZED');
    }
    const none = await stack.request('GET', '/v1/approvals', { key: null });
    expect(none.status).toBe(401);
  });

  it('an approver of tenant2 gets 404 on a tenant1 approval, and sees none of them', async () => {
    const { approvalId } = await parked();
    const bob = await tokenFor('bob');
    expect((await asApprover('GET', `/v1/approvals/${approvalId}`, bob)).status).toBe(404);
    expect((await asApprover('POST', `/v1/approvals/${approvalId}/approve`, bob)).status).toBe(404);
    const list = await asApprover('GET', '/v1/approvals', bob);
    expect(list.json.items.map((a: { id: string }) => a.id)).not.toContain(approvalId);
  });

  it('an approver not on the allowlist gets 403 APPROVER_NOT_ALLOWED', async () => {
    const { approvalId } = await parked();
    const r = await asApprover('POST', `/v1/approvals/${approvalId}/approve`, await tokenFor('mallory'));
    expect(r.status).toBe(403);
    expect(r.json.code).toBe('APPROVER_NOT_ALLOWED');
  });

  it('the requester cannot approve their own call: 403 SELF_APPROVAL', async () => {
    const { approvalId } = await parked({ user_id: 'Alice@Acme.example' });
    const r = await asApprover('POST', `/v1/approvals/${approvalId}/approve`, await tokenFor('alice'));
    expect(r.status).toBe(403);
    expect(r.json.code).toBe('SELF_APPROVAL');
    expect(
      (await asApprover('POST', `/v1/approvals/${approvalId}/approve`, await tokenFor('carol'))).status,
    ).toBe(200);
  });

  it('two approvers racing approve vs deny: exactly one wins, one approval.decided fact', async () => {
    for (let i = 0; i < 5; i++) {
      const { eventId, approvalId } = await parked();
      const [a, c] = await Promise.all([
        asApprover('POST', `/v1/approvals/${approvalId}/approve`, await tokenFor('alice')),
        asApprover('POST', `/v1/approvals/${approvalId}/deny`, await tokenFor('carol'), { reason: 'no' }),
      ]);
      const statuses = [a.status, c.status].sort();
      expect(statuses).toEqual([200, 409]);
      const loser = a.status === 409 ? a : c;
      expect(loser.json.code).toBe('APPROVAL_ALREADY_DECIDED');
      expect(loser.json.details.map((d: { path: string }) => d.path)).toEqual(['status', 'decided_by']);
      const record = await stack.get(`/v1/toolcalls/${eventId}`);
      expect(
        record.json.evidence.filter((f: { kind: string }) => f.kind === 'approval.decided'),
      ).toHaveLength(1);
    }
  });

  it('pages through the pending list with an opaque cursor bound to the tenant', async () => {
    const alice = await tokenFor('alice');
    for (let i = 0; i < 3; i++) await parked();
    const first = await asApprover('GET', '/v1/approvals?limit=2', alice);
    expect(first.json.items).toHaveLength(2);
    expect(typeof first.json.next_cursor).toBe('string');
    const second = await asApprover(
      'GET',
      `/v1/approvals?limit=2&cursor=${encodeURIComponent(first.json.next_cursor)}`,
      alice,
    );
    expect(second.json.items.length).toBeGreaterThan(0);
    // Every page, walked to the end, against the whole list in one page: disjoint pages, newest
    // first throughout (created_at, then id), that together are exactly the whole list.
    type Item = { id: string; created_at: string };
    const pages: Item[][] = [first.json.items, second.json.items];
    for (let cursor = second.json.next_cursor as string | undefined; cursor;) {
      const page = await asApprover(
        'GET',
        `/v1/approvals?limit=2&cursor=${encodeURIComponent(cursor)}`,
        alice,
      );
      expect(page.status).toBe(200);
      pages.push(page.json.items);
      cursor = page.json.next_cursor;
    }
    expect(pages.every((page) => page.length > 0 && page.length <= 2)).toBe(true);
    const walked = pages.flat().map((a) => a.id);
    expect(new Set(walked).size).toBe(walked.length);
    const whole = await asApprover('GET', '/v1/approvals?limit=100', alice);
    expect(whole.json.next_cursor ?? null).toBeNull();
    expect(walked).toEqual(whole.json.items.map((a: Item) => a.id));
    const order = pages.flat().map((a) => `${a.created_at}#${a.id}`);
    expect([...order].sort().reverse()).toEqual(order);
    const bob = await tokenFor('bob');
    expect(
      (await asApprover('GET', `/v1/approvals?cursor=${encodeURIComponent(first.json.next_cursor)}`, bob))
        .status,
    ).toBe(400);
    expect((await asApprover('GET', '/v1/approvals?limit=0', alice)).status).toBe(400);
    expect((await asApprover('GET', '/v1/approvals?status=weird', alice)).status).toBe(400);
  });
});

describe('expiry', () => {
  it('approve after expiry is 410; the sweep records approval.expired; execute is 410', async () => {
    const { eventId, approvalId } = await parked();
    clock.offsetMs = 25 * 3600 * 1000;
    const late = await asApprover('POST', `/v1/approvals/${approvalId}/approve`, await tokenFor('alice'));
    expect(late.status).toBe(410);
    expect(late.json.code).toBe('APPROVAL_EXPIRED');
    const result = await sweep(() => stack.state)();
    expect(result.expired).toBeGreaterThanOrEqual(1);
    const again = await sweep(() => stack.state)();
    expect(again.expired).toBe(0);
    clock.offsetMs = 0;
    const record = await stack.get(`/v1/toolcalls/${eventId}`);
    expect(record.json.approval.status).toBe('expired');
    expect(record.json.evidence.map((f: { kind: string }) => f.kind)).toContain('approval.expired');
    const r = await execute(eventId);
    expect(r.status).toBe(410);
    expect(r.json.code).toBe('APPROVAL_EXPIRED');
    // a swept request cannot be decided either
    expect(
      (await asApprover('POST', `/v1/approvals/${approvalId}/deny`, await tokenFor('alice'))).status,
    ).toBe(410);
  });

  it('an unused grant expires: execute after the grant lifetime is 410', async () => {
    const { eventId, approvalId } = await parked();
    expect(
      (await asApprover('POST', `/v1/approvals/${approvalId}/approve`, await tokenFor('alice'))).status,
    ).toBe(200);
    clock.offsetMs = 2 * 3600 * 1000;
    const r = await execute(eventId);
    expect(r.status).toBe(410);
  });
});

describe('the approval view as evidence (issue 19)', () => {
  const factsOf = async (eventId: string) => {
    await stack.poller?.drained();
    return (await stack.get(`/v1/toolcalls/${eventId}`)).json.evidence.map(
      (f: { record: Record<string, any> }) => f.record,
    );
  };

  it('stores the view with the approval and shows target and every param, invisible characters as ⟨U+…⟩', async () => {
    const alice = await tokenFor('alice');
    const { eventId, approvalId } = await parked({
      tool: 'slack',
      action: 'msg.post',
      resource: '',
      risk_score: 9,
      params: { channel: '#ops', text: 'Deploy finished \u202e:eludehcs ot gnidrocca\u202c ok' },
    });
    const shown = (await asApprover('GET', `/v1/approvals/${approvalId}`, alice)).json;
    expect(shown.view).toMatchObject({
      version: 'oc-approval-view/v1',
      recorded: 'oc-approval-view/v1',
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      act: 'post #ops',
    });
    expect(shown.view.lines).toEqual(
      expect.arrayContaining([
        'Target: #ops',
        '  channel = "#ops"',
        '  text = "Deploy finished ⟨U+202E⟩:eludehcs ot gnidrocca⟨U+202C⟩ ok"',
      ]),
    );
    // The request's decision fact binds the view to it: the verifier can re-render it.
    const decided = (await factsOf(eventId)).find((f: any) => f.kind === 'toolcall.decided');
    expect(decided.approval.view).toEqual({ version: 'oc-approval-view/v1', hash: shown.view.hash });
  });

  it('refuses a decision naming another view (409 CONFLICT), writing nothing; records the one it names', async () => {
    const alice = await tokenFor('alice');
    const { eventId, approvalId } = await parked({ resource: 'OPS-5', params: { issue: 'OPS-5' } });
    const { hash } = (await asApprover('GET', `/v1/approvals/${approvalId}`, alice)).json.view;
    for (const verb of ['approve', 'deny']) {
      const wrong = await asApprover('POST', `/v1/approvals/${approvalId}/${verb}`, alice, {
        view_hash: 'f'.repeat(64),
      });
      expect([wrong.status, wrong.json.code]).toEqual([409, 'CONFLICT']);
      expect(wrong.json.details).toEqual([
        { path: 'view_hash', message: `this approval's view is sha256:${hash}` },
      ]);
    }
    const malformed = await asApprover('POST', `/v1/approvals/${approvalId}/approve`, alice, {
      view_hash: 'F00',
    });
    expect(malformed.status).toBe(422);
    expect((await asApprover('GET', `/v1/approvals/${approvalId}`, alice)).json.status).toBe('pending');
    expect((await factsOf(eventId)).filter((f: any) => f.kind === 'approval.decided')).toEqual([]);

    const ok = await asApprover('POST', `/v1/approvals/${approvalId}/approve`, alice, { view_hash: hash });
    expect(ok.status).toBe(200);
    const fact = (await factsOf(eventId)).find((f: any) => f.kind === 'approval.decided');
    expect(fact.view).toEqual({ version: 'oc-approval-view/v1', hash, confirmed: true });
  });

  it('records an API decision without view_hash as unconfirmed', async () => {
    const alice = await tokenFor('alice');
    const { eventId, approvalId } = await parked({ resource: 'OPS-6', params: { issue: 'OPS-6' } });
    expect((await asApprover('POST', `/v1/approvals/${approvalId}/deny`, alice)).status).toBe(200);
    const fact = (await factsOf(eventId)).find((f: any) => f.kind === 'approval.decided');
    expect(fact.view).toMatchObject({ version: 'oc-approval-view/v1', confirmed: false });
  });

  it('says `legacy` for an approval stored before views, and renders it with the current version', async () => {
    const alice = await tokenFor('alice');
    const { eventId, approvalId } = await parked({ resource: 'OPS-8', params: { issue: 'OPS-8' } });
    // Rewrite the stored item as an approval written before this change: no view, no risk.
    const key = { pk: `T#tenant1#APR#${approvalId}`, sk: 'APPROVAL' };
    const item = (await stack.state.doc.send(new GetCommand({ TableName: stack.config.tableName, Key: key })))
      .Item!;
    const { view: _v, risk: _r, ...older } = JSON.parse(unpackText(item.approval)!);
    await stack.state.doc.send(
      new PutCommand({
        TableName: stack.config.tableName,
        Item: { ...item, approval: JSON.stringify(older) },
      }),
    );
    const shown = (await asApprover('GET', `/v1/approvals/${approvalId}`, alice)).json.view;
    expect(shown).toMatchObject({ version: 'oc-approval-view/v1', recorded: 'legacy' });
    expect(shown.lines).toContain('Risk: 6/10'); // the effective risk only: the claim and floor were not stored
    expect(
      (await asApprover('POST', `/v1/approvals/${approvalId}/approve`, alice, { view_hash: shown.hash }))
        .status,
    ).toBe(200);
    const fact = (await factsOf(eventId)).find((f: any) => f.kind === 'approval.decided');
    expect(fact.view).toEqual({
      version: 'legacy',
      rendered: 'oc-approval-view/v1',
      hash: shown.hash,
      confirmed: true,
    });
  });

  it('oc verify re-renders every recorded view from its request and finds each hash (legacy included)', async () => {
    await stack.poller?.drained();
    const report = await verifyTenantChain(
      new ChainStore(stack.state.doc, stack.config.tableName),
      'tenant1',
      {
        now: new Date(),
        unsealedGraceMs: 60_000,
        allowUnresolved: true,
      },
    );
    expect(report.problems.filter((p) => p.startsWith('approval view'))).toEqual([]);
    // It did re-render them: every approval of this file recorded a view that checks out.
    const views = new ViewEvidence();
    for await (const entry of new ChainStore(stack.state.doc, stack.config.tableName).entries('tenant1'))
      expect(views.check(entry.record)).toBeUndefined();
    expect(views.checked).toBeGreaterThanOrEqual(5);
  });

  it('`oc approvals show <id>` prints the same view, with its version and hash', async () => {
    const alice = await tokenFor('alice');
    const { approvalId } = await parked({ resource: 'OPS-9', params: { issue: 'OPS-9' } });
    const shown = (await asApprover('GET', `/v1/approvals/${approvalId}`, alice)).json.view;
    const written: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
      written.push(String(chunk));
      return true;
    });
    let code: number;
    try {
      code = await runCli(['node', 'oc', 'approvals', 'show', approvalId, '--tenant', 'tenant1'], {
        ...process.env,
        OC_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'oc-cli-')),
        OC_DYNAMODB_PORT: new URL(dynamoEndpoint()).port,
        OC_TABLE_NAME: stack.config.tableName,
      });
    } finally {
      spy.mockRestore();
    }
    expect(code).toBe(0);
    const missing = await runCli(
      ['node', 'oc', 'approvals', 'show', '00000000-0000-4000-8000-000000000009', '--tenant', 'tenant1'],
      {
        ...process.env,
        OC_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'oc-cli-')),
        OC_DYNAMODB_PORT: new URL(dynamoEndpoint()).port,
        OC_TABLE_NAME: stack.config.tableName,
      },
    );
    expect(missing).toBe(1);
    expect(written.join('')).toBe(
      [
        `Approval ${approvalId} (pending)`,
        ...shown.lines,
        `View: oc-approval-view/v1 sha256:${shown.hash}`,
      ].join('\n') + '\n',
    );
  });
});

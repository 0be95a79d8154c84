/**
 * POST /slack/interactions on the local stack, with the fixture payload: Approve and Deny decide
 * through the approvals core (the chain records `slack:<user id>`), a loopback server standing
 * in for `response_url` gets the replacement or the ephemeral answer, and everything unsigned,
 * stale, replayed, malformed or from the wrong Slack user changes nothing it must not.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Clock } from '../../functions/core/ports.js';
import { tokenFor } from '../support/approvers.js';
import {
  clickPayload,
  formBody,
  loopbackServer,
  signedHeaders,
  type Click,
  type LoopbackServer,
} from '../support/slack.js';
import { tableSnapshot } from '../support/snapshot.js';
import { startTestStack, toolCall, type TestStack } from '../support/stack.js';

const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
let stack: TestStack;
let hooks: LoopbackServer;
let hook = 0;

/**
 * The repository's policy folder with Slack approvers: U123, U456 for tenant1; U999 for tenant2
 * only; both tenants in the fixture's workspace T0001 (tenant1 as the demo policy has it).
 */
function policyWithSlackApprovers(): string {
  const dir = mkdtempSync(path.join(process.env.OC_TEST_TMP ?? tmpdir(), 'slack-policy-'));
  cpSync(path.resolve('policy'), dir, { recursive: true });
  const file = path.join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(file, 'utf8'));
  tenants.tenant1.approvers.slack_user_ids = ['U123', 'U456'];
  tenants.tenant2.approvers.slack_user_ids = ['U999'];
  tenants.tenant2.slack = { team_id: 'T0001' };
  writeFileSync(file, JSON.stringify(tenants));
  return dir;
}

beforeAll(async () => {
  hooks = await loopbackServer();
  stack = await startTestStack({ env: { OC_POLICY_DIR: policyWithSlackApprovers() }, overrides: { clock } });
});
afterAll(async () => {
  await stack.stop();
  await hooks.close();
});
beforeEach(() => {
  clock.offsetMs = 0;
});

async function parked(overrides: Record<string, unknown> = {}) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-1', params: {}, ...overrides }),
  );
  expect(r.json.decision).toBe('approve');
  return { eventId: r.json.event_id as string, approvalId: r.json.approval.id as string };
}

/** A fresh response_url path on the loopback server. */
const responseUrl = () => `${hooks.url}/hooks/${++hook}`;

const nowSec = () => Math.floor(clock.now().getTime() / 1000);

function send(body: string, headers: Record<string, string>) {
  return stack.request('POST', '/slack/interactions', { key: null, body, headers });
}

/** The view hash the approval's Slack message carries on Approve (it showed the whole view). */
const viewHashOf = async (id: string): Promise<string | undefined> => (await approvalOf(id))?.view?.hash;

async function click(c: Omit<Click, 'responseUrl'> & { responseUrl?: string; noViewHash?: boolean }) {
  const url = c.responseUrl ?? responseUrl();
  const viewHash =
    c.viewHash ?? (c.decision === 'approve' && !c.noViewHash ? await viewHashOf(c.approvalId) : undefined);
  const body = formBody(clickPayload({ ...c, ...(viewHash ? { viewHash } : {}), responseUrl: url }));
  const r = await send(body, signedHeaders(body, { timestamp: nowSec() }));
  return { r, url, answers: () => hooks.on(new URL(url).pathname), body };
}

const approvalOf = async (id: string) =>
  (await stack.request('GET', `/v1/approvals/${id}`, { token: await tokenFor('alice') })).json;

async function decidedFacts(eventId: string) {
  await stack.poller?.drained();
  const ev = await stack.get(`/v1/toolcalls/${eventId}`);
  return ev.json.evidence.filter((f: { record: { kind: string } }) => f.record.kind === 'approval.decided');
}

describe('a click on Approve or Deny', () => {
  it('approves as slack:<user id>, records it in the chain and replaces the clicked message', async () => {
    const { eventId, approvalId } = await parked();
    const { r, answers } = await click({ decision: 'approve', approvalId, eventId });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ outcome: 'approved' });
    expect(await approvalOf(approvalId)).toMatchObject({ status: 'approved', decided_by: 'slack:U123' });
    const [fact] = await decidedFacts(eventId);
    expect(fact.status).toBe('sealed');
    expect(fact.record).toMatchObject({
      decision: 'approved',
      approver: { id: 'slack:U123', sub: 'U123', via: 'slack' },
    });
    const [answer] = answers();
    expect(answer?.json).toMatchObject({ replace_original: true });
    const blocks = JSON.stringify(answer?.json.blocks);
    expect(blocks).toContain('Approved by <@U123>');
    expect(blocks).not.toContain('"actions"'); // the buttons are gone
    expect(blocks).toContain(`/console/approvals/${approvalId}`);
    // The agent can now run it: the grant exists.
    expect((await stack.post(`/v1/toolcalls/${eventId}/execute`, '')).status).toBe(200);
  });

  it('records the view the click approved: its version and hash, confirmed by the button', async () => {
    const { eventId, approvalId } = await parked({ resource: 'OPS-7', params: { issue: 'OPS-7' } });
    const shown = (await approvalOf(approvalId)).view;
    expect(shown).toMatchObject({ version: 'oc-approval-view/v1', recorded: 'oc-approval-view/v1' });
    const { r } = await click({ decision: 'approve', approvalId, eventId, viewHash: shown.hash });
    expect(r.json).toEqual({ outcome: 'approved' });
    const [fact] = await decidedFacts(eventId);
    expect(fact.record.view).toEqual({ version: 'oc-approval-view/v1', hash: shown.hash, confirmed: true });
  });

  it('approves nothing from a click that carries no view hash (a message that did not show the whole view)', async () => {
    const { eventId, approvalId } = await parked();
    const { r, answers } = await click({ decision: 'approve', approvalId, eventId, noViewHash: true });
    expect(r.json).toEqual({ outcome: 'needs_console' });
    expect(answers()[0]?.json).toMatchObject({
      response_type: 'ephemeral',
      text: expect.stringMatching(/does not show the whole request.*console.*\/console\/approvals\//),
    });
    expect(await approvalOf(approvalId)).toMatchObject({ status: 'pending' });
    expect(await decidedFacts(eventId)).toHaveLength(0);
  });

  it('approves nothing from a click whose view hash is another view', async () => {
    const { eventId, approvalId } = await parked();
    const { r, answers } = await click({
      decision: 'approve',
      approvalId,
      eventId,
      viewHash: 'e'.repeat(64),
    });
    expect(r.json).toEqual({ outcome: 'needs_console' });
    expect(answers()[0]?.json.text).toMatch(/another view/);
    expect(await approvalOf(approvalId)).toMatchObject({ status: 'pending' });
  });

  it('denies with "denied from Slack", and the clicked message says who denied', async () => {
    const { eventId, approvalId } = await parked();
    const { r, answers } = await click({ decision: 'deny', approvalId, eventId, userId: 'U456' });
    expect(r.json).toEqual({ outcome: 'denied' });
    expect(await approvalOf(approvalId)).toMatchObject({
      status: 'denied',
      decided_by: 'slack:U456',
      deny_reason: 'denied from Slack',
    });
    expect(JSON.stringify(answers()[0]?.json.blocks)).toContain('Denied by <@U456>: denied from Slack');
    expect((await stack.post(`/v1/toolcalls/${eventId}/execute`, '')).status).toBe(403);
  });

  it('answers a second click ephemerally with who decided, changing nothing', async () => {
    const { eventId, approvalId } = await parked();
    await click({ decision: 'approve', approvalId, eventId });
    const second = await click({ decision: 'deny', approvalId, eventId, userId: 'U456' });
    expect(second.r.json).toEqual({ outcome: 'already_decided' });
    expect(second.answers()[0]?.json).toEqual({
      response_type: 'ephemeral',
      replace_original: false,
      text: 'This approval was already approved by <@U123>.',
    });
    expect(await approvalOf(approvalId)).toMatchObject({ status: 'approved', decided_by: 'slack:U123' });
    expect(await decidedFacts(eventId)).toHaveLength(1);
  });

  it('records exactly one decision when 20 clicks race', async () => {
    const { eventId, approvalId } = await parked();
    const clicks = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        click({ decision: i % 2 ? 'deny' : 'approve', approvalId, eventId, userId: i % 3 ? 'U123' : 'U456' }),
      ),
    );
    const outcomes = clicks.map((c) => c.r.json.outcome).sort();
    expect(clicks.every((c) => c.r.status === 200)).toBe(true);
    expect(outcomes.filter((o) => o === 'already_decided')).toHaveLength(19);
    expect(outcomes.filter((o) => o === 'approved' || o === 'denied')).toHaveLength(1);
    expect(await decidedFacts(eventId)).toHaveLength(1);
    const replaced = clicks.flatMap((c) => c.answers()).filter((a) => a.json.replace_original === true);
    expect(replaced).toHaveLength(1);
  });

  it("refuses a Slack user of another tenant (on tenant2's list, not tenant1's), ephemerally", async () => {
    const { eventId, approvalId } = await parked();
    const { r, answers } = await click({ decision: 'approve', approvalId, eventId, userId: 'U999' });
    expect(r.json).toEqual({ outcome: 'not_allowed' });
    expect(answers()[0]?.json.text).toMatch(/not an approver for this tenant/);
    expect(await approvalOf(approvalId)).toMatchObject({ status: 'pending' });
    // Nor can a button claim U999's own tenant to reach tenant1's approval: it is not found there.
    const cross = await click({
      decision: 'approve',
      approvalId,
      eventId,
      userId: 'U999',
      tenantId: 'tenant2',
    });
    expect(cross.r.json).toEqual({ outcome: 'not_found' });
    expect(await approvalOf(approvalId)).toMatchObject({ status: 'pending' });
    expect(await decidedFacts(eventId)).toHaveLength(0);
  });

  it('keeps separation of duties: the requester cannot approve their own call from Slack', async () => {
    const { eventId, approvalId } = await parked({ user_id: 'U123' });
    const { r, answers } = await click({ decision: 'approve', approvalId, eventId });
    expect(r.json).toEqual({ outcome: 'self_approval' });
    expect(answers()[0]?.json.text).toMatch(/separation of duties/);
    expect(await approvalOf(approvalId)).toMatchObject({ status: 'pending' });
  });

  it('answers a click after expiry ephemerally that it expired', async () => {
    const { eventId, approvalId } = await parked();
    clock.offsetMs = 25 * 3600 * 1000;
    const { r, answers } = await click({ decision: 'approve', approvalId, eventId });
    expect(r.json).toEqual({ outcome: 'expired' });
    expect(answers()[0]?.json).toMatchObject({
      response_type: 'ephemeral',
      text: expect.stringMatching(/expired/),
    });
    expect(await decidedFacts(eventId)).toHaveLength(0);
  });

  it('does nothing for the Open link (Slack reports it too)', async () => {
    const { eventId, approvalId } = await parked();
    const p = clickPayload({ decision: 'approve', approvalId, eventId, responseUrl: responseUrl() });
    (p.actions as any)[0] = { action_id: 'oc_open', type: 'button', url: 'https://x.example' };
    const body = formBody(p);
    await stack.poller?.drained();
    const before = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const r = await send(body, signedHeaders(body));
    expect([r.status, r.json]).toEqual([200, { outcome: 'ignored' }]);
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
  });
});

describe('requests that must change nothing', () => {
  let eventId: string;
  let approvalId: string;
  let before: string[];
  beforeAll(async () => {
    ({ eventId, approvalId } = await parked());
  });
  beforeEach(async () => {
    await stack.poller?.drained();
    before = await tableSnapshot(stack.state.doc, stack.config.tableName);
  });
  afterEach(async () => {
    await stack.poller?.drained();
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
    expect(await approvalOf(approvalId)).toMatchObject({ status: 'pending' });
  });
  const body = () =>
    formBody(clickPayload({ decision: 'approve', approvalId, eventId, responseUrl: responseUrl() }));

  it.each([
    ['another workspace (team.id and user.team_id T0002)', { team: { id: 'T0002' }, user_team: 'T0002' }],
    ['another workspace in team.id only', { team: { id: 'T0002' } }],
    ['no workspace at all', { team: null, user_team: undefined }],
  ])('refuses a signed click from %s (403) and answers nobody', async (_name, from) => {
    const url = responseUrl();
    const p = clickPayload({ decision: 'approve', approvalId, eventId, responseUrl: url });
    if ('team' in from) p.team = from.team;
    if ('user_team' in from) (p.user as Record<string, unknown>).team_id = from.user_team;
    const b = formBody(p);
    const r = await send(b, signedHeaders(b, { timestamp: nowSec() }));
    expect([r.status, r.json.code]).toEqual([403, 'FORBIDDEN']);
    expect(r.json.message).toMatch(/another Slack workspace/);
    expect(hooks.on(new URL(url).pathname)).toEqual([]);
  });

  it.each([
    ['301 s old', -301],
    ['301 s ahead', 301],
  ])('refuses a request signed %s (401)', async (_name, skew) => {
    const b = body();
    const r = await send(b, signedHeaders(b, { timestamp: nowSec() + skew }));
    expect([r.status, r.json.code]).toEqual([401, 'UNAUTHORIZED']);
    expect(r.json.message).toMatch(/stale timestamp/);
  });

  it('accepts one second inside the window in both directions (then refuses those replays)', async () => {
    for (const skew of [-299, 299]) {
      const b = formBody(
        clickPayload({
          decision: 'approve',
          approvalId,
          eventId,
          userId: 'U999',
          responseUrl: responseUrl(),
        }),
      );
      const r = await send(b, signedHeaders(b, { timestamp: nowSec() + skew }));
      expect([skew, r.status, r.json.outcome]).toEqual([skew, 200, 'not_allowed']);
    }
    // Those two were signed and acted on: the replay guard remembers them, and nothing else changed.
    await stack.poller?.drained();
    const after = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const added = after.filter((i) => !before.includes(i)).map((i) => JSON.parse(i));
    expect(added.map((i) => i.type)).toEqual(['slack_replay', 'slack_replay']);
    expect(before.filter((i) => !after.includes(i))).toEqual([]);
    before = after;
  });

  it('refuses a tampered body, a wrong secret, missing headers (401)', async () => {
    const b = body();
    const headers = signedHeaders(b);
    const tampered = b.replace('U123', 'U456');
    expect(tampered).not.toBe(b);
    for (const [name, r] of [
      ['tampered', await send(tampered, headers)],
      ['wrong secret', await send(b, signedHeaders(b, { secret: 'not-the-signing-secret' }))],
      ['no signature', await send(b, { ...headers, 'X-Slack-Signature': '' })],
      [
        'no timestamp',
        await send(b, {
          'Content-Type': headers['Content-Type']!,
          'X-Slack-Signature': headers['X-Slack-Signature']!,
        }),
      ],
      ['nothing', await send(b, { 'Content-Type': 'application/x-www-form-urlencoded' })],
    ] as const)
      expect([name, r.status, r.json.code]).toEqual([name, 401, 'UNAUTHORIZED']);
  });

  it('refuses a replayed request (401), after the first decided', async () => {
    const { eventId: e2, approvalId: a2 } = await parked({ resource: 'OPS-2' });
    const b = formBody(
      clickPayload({ decision: 'deny', approvalId: a2, eventId: e2, responseUrl: responseUrl() }),
    );
    const headers = signedHeaders(b);
    expect((await send(b, headers)).json).toEqual({ outcome: 'denied' });
    await stack.poller?.drained();
    const afterFirst = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const replay = await send(b, headers);
    expect([replay.status, replay.json.code]).toEqual([401, 'UNAUTHORIZED']);
    expect(replay.json.message).toMatch(/replayed/);
    await stack.poller?.drained();
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(afterFirst);
    before = afterFirst;
  });

  it('answers url_verification, other types and malformed payloads with a clear 400', async () => {
    const cases: [string, string, string | undefined, RegExp][] = [
      [
        'url_verification',
        JSON.stringify({ type: 'url_verification', challenge: 'abc', token: 't' }),
        'application/json',
        /url_verification is an Events API handshake/,
      ],
      [
        'an event callback',
        JSON.stringify({ type: 'event_callback' }),
        'application/json',
        /unsupported interaction type/,
      ],
      [
        'view_submission',
        formBody({
          ...clickPayload({ decision: 'approve', approvalId, eventId, responseUrl: responseUrl() }),
          type: 'view_submission',
        }),
        undefined,
        /unsupported interaction type: view_submission/,
      ],
      ['no payload field', 'foo=bar', undefined, /missing payload/],
      ['a payload that is not JSON', 'payload=%7Bnope', undefined, /not JSON/],
      [
        'an unknown action',
        formBody({
          ...clickPayload({ decision: 'approve', approvalId, eventId, responseUrl: responseUrl() }),
          actions: [{ action_id: 'oc_nuke', value: 'x' }],
        }),
        undefined,
        /unknown action: oc_nuke/,
      ],
      [
        'a forged value',
        formBody({
          ...clickPayload({ decision: 'approve', approvalId, eventId, responseUrl: responseUrl() }),
          actions: [{ action_id: 'oc_approve', value: 'eyJkIjoiYXBwcm92ZSJ9' }],
        }),
        undefined,
        /invalid action value/,
      ],
      [
        'another event',
        formBody(
          clickPayload({
            decision: 'approve',
            approvalId,
            eventId: '0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
            responseUrl: responseUrl(),
          }),
        ),
        undefined,
        /event mismatch/,
      ],
      [
        'a response_url elsewhere',
        formBody(
          clickPayload({
            decision: 'approve',
            approvalId,
            eventId,
            responseUrl: 'https://evil.example/hook',
          }),
        ),
        undefined,
        /invalid response_url/,
      ],
    ];
    for (const [name, b, contentType, message] of cases) {
      const r = await send(b, signedHeaders(b, contentType ? { contentType } : {}));
      expect([name, r.status, r.json.code, r.json.message]).toEqual([
        name,
        400,
        'BAD_REQUEST',
        expect.stringMatching(message),
      ]);
    }
    const text = 'hello';
    const r = await send(text, signedHeaders(text, { contentType: 'text/plain' }));
    expect(r.status).toBe(415);
  });
});

/**
 * Issue 21's workflows from Slack on the local stack (DynamoDB Local, the stream consumers, a real
 * webhook receiver and a loopback server standing in for `response_url`): a signed click on
 * **Extend** moves the deadline within policy's bound, recorded and announced as the API's
 * extension; a click on **Approve + calls like it** approves the call and creates the standing
 * grant with the policy's default scope through the API's use case, and the message shows it. The
 * same walls as Approve: another tenant's Slack user, a user not in the directory, the requester,
 * another workspace, a forged signature and a replay are refused, and nothing is written.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Clock } from '../../functions/core/ports.js';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { signDevToken } from '../../functions/store/approver-tokens.js';
import {
  clickPayload,
  formBody,
  loopbackServer,
  signedHeaders,
  type Click,
  type LoopbackServer,
} from '../support/slack.js';
import { tableSnapshot } from '../support/snapshot.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
let stack: TestStack;
let hooks: LoopbackServer;
let webhooks: Receiver;
let hook = 0;
const HOUR = 3_600_000;

/**
 * tenant1 with a directory (alice: U123, carol: U456, both in T0001), 2 h requests that may move
 * by at most 2 h more, standing grants for jira.issue.delete (at most 5 uses, 2 h), and a 2-of-2
 * quorum from risk 9; tenant2's Slack approver U999 sits in the
 * same workspace.
 */
function policy(webhookUrl: string): string {
  const dir = mkdtempSync(path.join(process.env.OC_TEST_TMP ?? tmpdir(), 'slack-workflows-'));
  cpSync(path.resolve('policy'), dir, { recursive: true });
  const file = path.join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(file, 'utf8'));
  Object.assign(tenants.tenant1, {
    approvers: { emails: [], slack_user_ids: [] },
    directory: {
      alice: { email: 'alice@acme.example', slack: { user_id: 'U123', team_id: 'T0001' } },
      carol: { email: 'carol@acme.example', slack: { user_id: 'U456', team_id: 'T0001' } },
    },
    notify: [{ kind: 'webhook', url: webhookUrl, secret_ref: DEV_WEBHOOK.secretRef }],
    approval_ttl_sec: 2 * 3600,
    extensions: { max_sec: 2 * 3600, max_times: 3 },
    standing_grants: {
      actions: ['jira.issue.delete'],
      max_uses: 5,
      max_ttl_sec: 2 * 3600,
      allow_destructive: true,
    },
    quorum: { risk_bands: [{ min_risk: 9, n: 2 }] },
  });
  tenants.tenant2.approvers.slack_user_ids = ['U999'];
  tenants.tenant2.slack = { team_id: 'T0001' };
  writeFileSync(file, JSON.stringify(tenants));
  return dir;
}

beforeAll(async () => {
  hooks = await loopbackServer();
  webhooks = await startReceiver('/hooks/slack-workflows');
  stack = await startTestStack({
    env: { OC_POLICY_DIR: policy(webhooks.url) },
    overrides: { clock },
    notifications: { env: { OC_WEBHOOK_SECRETS: `${DEV_WEBHOOK.secretRef}=${DEV_WEBHOOK.secret}` } },
  });
});
afterAll(async () => {
  await stack.stop();
  await hooks.close();
  await webhooks.close();
});
beforeEach(() => {
  clock.offsetMs = 0;
});

const token = (who: string) => signDevToken({ tenantId: 'tenant1', email: `${who}@acme.example` });

async function parked(overrides: Record<string, unknown> = {}) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-1', params: {}, ...overrides }),
  );
  expect(r.json.decision).toBe('approve');
  return { eventId: r.json.event_id as string, approvalId: r.json.approval.id as string };
}

const approvalOf = async (id: string) =>
  (await stack.request('GET', `/v1/approvals/${id}`, { token: await token('alice') })).json;

const nowSec = () => Math.floor(clock.now().getTime() / 1000);
const responseUrl = () => `${hooks.url}/hooks/${++hook}`;
const send = (body: string, headers: Record<string, string>) =>
  stack.request('POST', '/slack/interactions', { key: null, body, headers });

/** A signed click; the button carries the approval's view hash, as the message's buttons do. */
async function click(c: Omit<Click, 'responseUrl'> & { noViewHash?: boolean }) {
  const url = responseUrl();
  const viewHash = c.viewHash ?? (c.noViewHash ? undefined : (await approvalOf(c.approvalId)).view?.hash);
  const body = formBody(clickPayload({ ...c, ...(viewHash ? { viewHash } : {}), responseUrl: url }));
  const r = await send(body, signedHeaders(body, { timestamp: nowSec() }));
  return { r, body, answers: () => hooks.on(new URL(url).pathname) };
}

const factsOf = async (eventId: string, kind: string) => {
  await stack.poller?.drained();
  const ev = await stack.get(`/v1/toolcalls/${eventId}`);
  return ev.json.evidence.filter((f: { record: { kind: string } }) => f.record.kind === kind);
};

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const announced = (approvalId: string, type: string) =>
  webhooks.received.filter((r) => r.json?.subject === approvalId && r.json?.type === type);

const actionIds = (blocks: unknown): string[] =>
  ((blocks as { type: string; elements?: { action_id?: string }[] }[]) ?? [])
    .filter((b) => b.type === 'actions')
    .flatMap((b) => (b.elements ?? []).map((e) => e.action_id ?? ''));

describe('Extend from Slack', () => {
  it('moves the deadline one hour as alice (slack:U123, her directory id), recorded and announced as the API extension; the message says so and keeps its buttons', async () => {
    const { eventId, approvalId } = await parked();
    const before = await approvalOf(approvalId);
    const { r, answers } = await click({ decision: 'extend', approvalId, eventId });
    expect([r.status, r.json]).toEqual([200, { outcome: 'extended' }]);

    const after = await approvalOf(approvalId);
    expect(after.status).toBe('pending');
    expect(Date.parse(after.expires_at) - Date.parse(before.expires_at)).toBe(HOUR);
    expect(after.extensions).toEqual([
      { by: 'alice', at: expect.any(String), from: before.expires_at, to: after.expires_at },
    ]);
    const [fact] = await factsOf(eventId, 'approval.extended');
    expect(fact.record).toMatchObject({
      approver: { id: 'alice', sub: 'U123', via: 'slack' },
      from: before.expires_at,
      to: after.expires_at,
    });
    const event = await until('oc.approval.extended', () => announced(approvalId, 'oc.approval.extended')[0]);
    expect(event.json.data).toMatchObject({ status: 'pending', expires_at: after.expires_at });
    expect(event.json.data.extension).toMatchObject({ by: 'alice', to: after.expires_at });

    // The clicked message: the one approval view again, its new deadline and who moved it.
    const [answer] = answers();
    expect(answer?.json.replace_original).toBe(true);
    const blocks = JSON.stringify(answer?.json.blocks);
    expect(blocks).toContain(`Deadline extended by alice (it was ${before.expires_at})`);
    expect(blocks).toContain(`|${after.expires_at.replace(/\.\d{3}Z$/, '.000Z')}>`);
    expect(actionIds(answer?.json.blocks)).toEqual([
      'oc_approve',
      'oc_grant',
      'oc_deny',
      'oc_extend',
      'oc_open',
    ]);
  });

  it("stops at policy's bound: the last step is cut to reach it, a click past it is told why and moves nothing", async () => {
    const { eventId, approvalId } = await parked({ resource: 'OPS-2' });
    const created = Date.parse((await approvalOf(approvalId)).expires_at);
    // Half an hour of the 2 h bound used by the API first: the Slack steps are 1 h, then 30 min.
    const api = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
      token: await token('carol'),
      body: JSON.stringify({ extend_sec: 1800 }),
    });
    expect(api.status).toBe(200);
    expect((await click({ decision: 'extend', approvalId, eventId })).r.json.outcome).toBe('extended');
    expect((await click({ decision: 'extend', approvalId, eventId, userId: 'U456' })).r.json.outcome).toBe(
      'extended',
    );
    const bounded = await approvalOf(approvalId);
    expect(Date.parse(bounded.expires_at) - created).toBe(2 * HOUR);
    expect(bounded.extensions.map((x: { by: string }) => x.by)).toEqual(['carol', 'alice', 'carol']);

    const past = await click({ decision: 'extend', approvalId, eventId });
    expect(past.r.json).toEqual({ outcome: 'refused' });
    expect(past.answers()[0]?.json).toMatchObject({
      response_type: 'ephemeral',
      replace_original: false,
      text: expect.stringMatching(
        /^Not done: .*extended 3 times, the most policy allows.*Nothing was changed/,
      ),
    });
    expect((await approvalOf(approvalId)).expires_at).toBe(bounded.expires_at);
    expect(await factsOf(eventId, 'approval.extended')).toHaveLength(3);
  });

  it('a click is refused where policy data allows no extensions (tenant2)', async () => {
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-3', params: {} }),
      KEYS.tenant2,
    );
    expect(r.json.decision).toBe('approve');
    const { r: answer, answers } = await click({
      decision: 'extend',
      approvalId: r.json.approval.id,
      eventId: r.json.event_id,
      userId: 'U999',
      tenantId: 'tenant2',
    });
    expect(answer.json).toEqual({ outcome: 'refused' });
    expect(answers()[0]?.json.text).toMatch(/allows no extensions/);
  });
});

describe('Approve + calls like it from Slack', () => {
  it("approves the call and creates the standing grant with the policy's default scope; the message shows it and how to revoke it", async () => {
    const { eventId, approvalId } = await parked({ resource: 'OPS-10' });
    const { r, answers } = await click({ decision: 'grant', approvalId, eventId });
    expect([r.status, r.json]).toEqual([200, { outcome: 'granted' }]);

    const approval = await approvalOf(approvalId);
    expect(approval).toMatchObject({ status: 'approved', decided_by: 'alice' });
    const id = approval.standing_grant.id as string;
    const grant = (await stack.request('GET', `/v1/grants/${id}`, { token: await token('carol') })).json;
    // The default scope: this agent, tool and action on this exact target, policy's max uses, 1 h.
    expect(grant).toMatchObject({
      agent_id: 'agent-1',
      tool: 'jira',
      action: 'issue.delete',
      target_pattern: 'OPS-10',
      max_uses: 5,
      uses_left: 5,
      status: 'active',
      created_by: 'alice',
      approval_id: approvalId,
    });
    expect(Date.parse(grant.expires_at) - Date.parse(grant.created_at)).toBe(HOUR);
    const [fact] = await factsOf(eventId, 'approval.decided');
    expect(fact.record).toMatchObject({
      decision: 'approved',
      approver: { via: 'slack', sub: 'U123' },
      standing_grant: { id, target_pattern: 'OPS-10', max_uses: 5 },
      view: { hash: approval.view.hash, confirmed: true },
    });

    const [answer] = answers();
    expect(answer?.json.replace_original).toBe(true);
    const blocks = JSON.stringify(answer?.json.blocks);
    expect(blocks).toContain('Approved by alice');
    expect(blocks).toContain(`Standing grant* \`${id}\``);
    expect(blocks).toContain('up to 5 uses');
    expect(blocks).toContain(`npx oc grants revoke ${id} --tenant tenant1`);
    expect(actionIds(answer?.json.blocks)).toEqual([]);

    // The decision announced names the grant (a Slack route's update keeps showing it).
    const decided = await until('oc.approval.decided', () => announced(approvalId, 'oc.approval.decided')[0]);
    expect(decided.json.data.standing_grant).toMatchObject({ id, target_pattern: 'OPS-10' });

    // This call runs, and the next call like it runs at once on the grant.
    expect((await stack.post(`/v1/toolcalls/${eventId}/execute`, '')).status).toBe(200);
    const next = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-10', params: {} }),
    );
    expect(next.json).toMatchObject({ decision: 'approve', standing_grant: { id } });
  });

  it('on a call that needs a quorum, each click is a vote asking for the grant; the completing one makes it once', async () => {
    const { eventId, approvalId } = await parked({ resource: 'OPS-30', risk_score: 9 });
    expect((await approvalOf(approvalId)).quorum).toBeDefined();
    const first = await click({ decision: 'grant', approvalId, eventId, userId: 'U123' });
    expect(first.r.json).toEqual({ outcome: 'voted' });
    const voted = await approvalOf(approvalId);
    expect(voted.status).toBe('pending');
    expect(voted.quorum.approvals).toBe(1);
    expect(await factsOf(eventId, 'approval.decided')).toHaveLength(0);
    // The same person again (their other surface would be the same directory id) does not count.
    const again = await click({ decision: 'grant', approvalId, eventId, userId: 'U123' });
    expect(again.r.json.outcome).not.toBe('granted');
    expect((await approvalOf(approvalId)).quorum.approvals).toBe(1);
    const second = await click({ decision: 'grant', approvalId, eventId, userId: 'U456' });
    expect(second.r.json).toEqual({ outcome: 'granted' });
    expect((await approvalOf(approvalId)).status).toBe('approved');
    expect(await factsOf(eventId, 'approval.decided')).toHaveLength(1);
    const grants = (await stack.request('GET', '/v1/grants', { token: await token('alice') })).json.items;
    const made = grants.filter((g: { approval_id: string }) => g.approval_id === approvalId);
    expect(made).toHaveLength(1);
    expect(made[0]).toMatchObject({ target_pattern: 'OPS-30', status: 'active' });
    // The message now shows the grant and how to revoke it.
    expect(JSON.stringify(second.answers()[0]?.json.blocks)).toContain(made[0].id);
  });

  it('on a quorum call, a plain Approve vote beside a grant vote approves the call once and makes no grant', async () => {
    const { eventId, approvalId } = await parked({ resource: 'OPS-31', risk_score: 9 });
    expect((await click({ decision: 'grant', approvalId, eventId, userId: 'U123' })).r.json).toEqual({
      outcome: 'voted',
    });
    const approve = await click({ decision: 'approve', approvalId, eventId, userId: 'U456' });
    expect(approve.r.json.outcome).toBe('approved');
    expect((await approvalOf(approvalId)).status).toBe('approved');
    const grants = (await stack.request('GET', '/v1/grants', { token: await token('alice') })).json.items;
    expect(grants.filter((g: { approval_id: string }) => g.approval_id === approvalId)).toHaveLength(0);
  });

  it('is refused where policy data lists no standing grants for the action', async () => {
    const { eventId, approvalId } = await parked({
      tool: 'slack',
      action: 'msg.post',
      resource: '#general',
      params: { channel: '#general', text: 'hi' },
      risk_score: 7,
    });
    const { r, answers } = await click({ decision: 'grant', approvalId, eventId });
    expect(r.json).toEqual({ outcome: 'refused' });
    expect(answers()[0]?.json.text).toMatch(/offers no standing grant/);
    expect((await approvalOf(approvalId)).status).toBe('pending');
  });

  it('acts only on the view the message showed: without its hash, or with another, the console is named', async () => {
    const { eventId, approvalId } = await parked({ resource: 'OPS-11' });
    for (const c of [{ noViewHash: true }, { viewHash: 'e'.repeat(64) }]) {
      const { r, answers } = await click({ decision: 'grant', approvalId, eventId, ...c });
      expect(r.json).toEqual({ outcome: 'needs_console' });
      expect(answers()[0]?.json.text).toMatch(/console: .*\/console\/approvals\//);
    }
    expect((await approvalOf(approvalId)).status).toBe('pending');
  });

  it('makes one decision and at most one grant when grant and approve clicks race', async () => {
    const { eventId, approvalId } = await parked({ resource: 'OPS-12' });
    const clicks = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        click({
          decision: i % 2 ? 'approve' : 'grant',
          approvalId,
          eventId,
          userId: i % 3 ? 'U123' : 'U456',
        }),
      ),
    );
    const outcomes = clicks.map((c) => c.r.json.outcome);
    expect(outcomes.filter((o) => o === 'granted' || o === 'approved')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'already_decided')).toHaveLength(7);
    expect(await factsOf(eventId, 'approval.decided')).toHaveLength(1);
    const grants = (await stack.request('GET', '/v1/grants', { token: await token('alice') })).json.items;
    expect(
      grants.filter((g: { approval_id: string }) => g.approval_id === approvalId).length,
    ).toBeLessThanOrEqual(1);
  });
});

describe('walls: refused, and nothing written but the replay guard', () => {
  let eventId: string;
  let approvalId: string;
  let before: string[];
  beforeAll(async () => {
    ({ eventId, approvalId } = await parked({ resource: 'OPS-20', user_id: 'U456' }));
    // Its request announced and its delivery recorded first: the walls are checked on a quiet table.
    await until('oc.approval.requested', () => announced(approvalId, 'oc.approval.requested')[0]);
    const t = await token('alice');
    for (let i = 0; i < 100; i++) {
      const d = await stack.request('GET', `/v1/approvals/${approvalId}/deliveries`, { token: t });
      if (d.json.items?.every((x: { status: string }) => x.status === 'delivered')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  beforeEach(async () => {
    await stack.poller?.drained();
    before = await tableSnapshot(stack.state.doc, stack.config.tableName);
  });
  /** The table as before, but for the replay guard's items (a signed click is remembered). */
  async function unchanged() {
    await stack.poller?.drained();
    const after = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const added = after.filter((i) => !before.includes(i)).map((i) => JSON.parse(i).type);
    expect(added.filter((t) => t !== 'slack_replay')).toEqual([]);
    expect(before.filter((i) => !after.includes(i))).toEqual([]);
    expect(await approvalOf(approvalId)).toMatchObject({ status: 'pending' });
  }

  it.each([
    ['extend', 'U999', 'tenant1', 'not_allowed'], // tenant2's Slack approver
    ['grant', 'U999', 'tenant1', 'not_allowed'],
    ['extend', 'U777', 'tenant1', 'not_allowed'], // in the workspace, not in the directory
    ['grant', 'U777', 'tenant1', 'not_allowed'],
    ['extend', 'U999', 'tenant2', 'not_found'], // a button naming U999's own tenant
    ['grant', 'U999', 'tenant2', 'not_found'],
    ['grant', 'U456', 'tenant1', 'self_approval'], // carol requested it (directory: U456)
    ['extend', 'U456', 'tenant1', 'self_approval'],
  ] as const)('%s by %s (button of %s): %s', async (decision, userId, tenantId, outcome) => {
    const { r, answers } = await click({ decision, approvalId, eventId, userId, tenantId });
    expect([r.status, r.json]).toEqual([200, { outcome }]);
    expect(answers()[0]?.json).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    await unchanged();
  });

  it.each(['extend', 'grant'] as const)(
    '%s: another workspace is 403, a forged signature 401, a replay 401',
    async (decision) => {
      const url = responseUrl();
      const p = clickPayload({ decision, approvalId, eventId, responseUrl: url });
      p.team = { id: 'T0002' };
      (p.user as Record<string, unknown>).team_id = 'T0002';
      const other = formBody(p);
      const r1 = await send(other, signedHeaders(other, { timestamp: nowSec() }));
      expect([r1.status, r1.json.code]).toEqual([403, 'FORBIDDEN']);

      const body = formBody(
        clickPayload({ decision, approvalId, eventId, userId: 'U777', responseUrl: url }),
      );
      const forged = await send(body, signedHeaders(body, { timestamp: nowSec(), secret: 'not-the-secret' }));
      expect([forged.status, forged.json.code]).toEqual([401, 'UNAUTHORIZED']);
      const headers = signedHeaders(body, { timestamp: nowSec() });
      expect((await send(body, headers)).json).toEqual({ outcome: 'not_allowed' });
      const replay = await send(body, headers);
      expect([replay.status, replay.json.message]).toEqual([401, expect.stringMatching(/replayed/)]);
      expect(hooks.on(new URL(url).pathname)).toHaveLength(1); // only the signed click was answered
      await unchanged();
    },
  );
});

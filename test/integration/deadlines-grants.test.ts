/**
 * Issue 21 deliverables 5 and 6 on the local stack (DynamoDB Local, the stream consumers, fauxqs
 * and a real webhook receiver on loopback): reminders sent by the expiry sweep through the sparse
 * reminder partition (two overlapping sweeps send one), extensions within policy's bound (recorded,
 * announced), and scoped standing grants (created from an approval, used by calls like it, each
 * still judged by policy, counted down, revoked at once), with the tenant walls on every route.
 * Answers are checked against the OpenAPI contract by the stack's client.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Clock } from '../../functions/core/ports.js';
import { sweep } from '../../functions/handlers/expire-approvals.js';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { generateApiKey } from '../../functions/store/api-keys.js';
import { keys } from '../../functions/store/keys.js';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { tokenFor } from '../support/approvers.js';
import { runOc } from '../support/cli.js';
import { countingInvoker } from '../support/connectors.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
const connector = countingInvoker();
let stack: TestStack;
let receiver: Receiver;
const AGENT1 = generateApiKey();
const AGENT7 = generateApiKey();
const HOUR = 3_600_000;

/** The shipped policy, with tenant1 open to reminders, extensions and standing grants, and PROD frozen. */
function policyDir(receiverUrl: string): string {
  const dir = mkdtempSync(path.join(process.env.OC_TEST_TMP!, 'policy-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  const file = path.join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
  Object.assign(tenants.tenant1!, {
    notify: [{ kind: 'webhook', url: receiverUrl, secret_ref: 'tenant1_webhook' }],
    approval_ttl_sec: 2 * 3600,
    reminder_before_sec: 1800,
    extensions: { max_sec: 3 * 3600, max_times: 2 },
    standing_grants: {
      actions: ['jira.issue.delete'],
      max_uses: 5,
      max_ttl_sec: 86_400,
      allow_destructive: true,
    },
  });
  writeFileSync(file, JSON.stringify(tenants, null, 2));
  appendFileSync(
    path.join(dir, 'policies.cedar'),
    `
@id("test-prod-frozen")
@reason("PROD is frozen")
forbid (principal, action == Action::"jira.issue.delete", resource)
when { context.resource_name like "PROD-*" };
`,
  );
  return dir;
}

beforeAll(async () => {
  receiver = await startReceiver('/hooks/t1');
  stack = await startTestStack({
    env: { OC_POLICY_DIR: policyDir(receiver.url) },
    overrides: { connectors: connector, clock },
    notifications: { env: { OC_WEBHOOK_SECRETS: `tenant1_webhook=${DEV_WEBHOOK.secret}` } },
  });
  await stack.state.apiKeys.put(AGENT1, { tenantId: 'tenant1', agentId: 'agent-1' });
  await stack.state.apiKeys.put(AGENT7, { tenantId: 'tenant1', agentId: 'agent-7' });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});
beforeEach(() => {
  clock.offsetMs = 0;
});

async function park(resource: string, key: string = AGENT1, agent = 'agent-1') {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ agent_id: agent, tool: 'jira', action: 'issue.delete', resource, params: {} }),
    key,
  );
  return r;
}
async function parked(resource: string, key: string = AGENT1, agent = 'agent-1') {
  const r = await park(resource, key, agent);
  expect(r.json.decision).toBe('approve');
  expect(r.json.approval).toBeDefined();
  return { eventId: r.json.event_id as string, approvalId: r.json.approval.id as string };
}
const as = async (who: 'alice' | 'carol' | 'bob' | 'mallory') => ({ token: await tokenFor(who) });

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const events = (approvalId: string, type: string) =>
  receiver.received.filter((r) => r.json?.subject === approvalId && r.json?.type === type);
const waitForEvent = (approvalId: string, type: string) =>
  until(`${type} for ${approvalId}`, async () => events(approvalId, type)[0]);

const approvalItem = async (approvalId: string) =>
  (
    await stack.state.doc.send(
      new GetCommand({ TableName: stack.config.tableName, Key: keys.approval('tenant1', approvalId) }),
    )
  ).Item!;
const reminderItems = async () =>
  (
    await stack.state.doc.send(
      new QueryCommand({
        TableName: stack.config.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.remindersPartition },
      }),
    )
  ).Items ?? [];

describe('reminders', () => {
  it('the sweep sends a due reminder once, even from two overlapping runs; the routes get oc.approval.reminder', async () => {
    const { approvalId, eventId } = await parked('REM-1');
    const item = await approvalItem(approvalId);
    // Due half an hour before the 2 h deadline.
    expect(Date.parse(String(item.expires_at)) - Date.parse(String(item.remind_at))).toBe(1800_000);
    expect((await reminderItems()).map((i) => i.sk)).toContain(`${item.remind_at}#tenant1#${approvalId}`);

    // Not due yet: nothing.
    expect((await sweep(() => stack.state)()).reminded).toBe(0);
    clock.offsetMs = 1.6 * HOUR;
    const runs = await Promise.all([sweep(() => stack.state)(), sweep(() => stack.state)()]);
    expect(runs.map((r) => r.reminded).reduce((a, b) => a + b, 0)).toBe(1);
    expect((await sweep(() => stack.state)()).reminded).toBe(0);
    clock.offsetMs = 0;
    expect((await reminderItems()).map((i) => String(i.sk))).not.toContain(
      `${item.remind_at}#tenant1#${approvalId}`,
    );

    const reminder = await waitForEvent(approvalId, 'oc.approval.reminder');
    expect(reminder.json.data).toMatchObject({
      approval_request_id: approvalId,
      event_id: eventId,
      status: 'pending',
      expires_at: item.expires_at,
    });
    expect(typeof reminder.json.data.reminded_at).toBe('string');
    // Still pending and decidable; the approval says when it was reminded.
    const shown = await stack.request('GET', `/v1/approvals/${approvalId}`, await as('alice'));
    expect(shown.json).toMatchObject({ status: 'pending', reminded_at: reminder.json.data.reminded_at });
    await new Promise((r) => setTimeout(r, 300));
    expect(events(approvalId, 'oc.approval.reminder')).toHaveLength(1);
  });

  it('a decided request is never reminded (its reminder item is cleaned up)', async () => {
    const { approvalId } = await parked('REM-2');
    const r = await stack.request('POST', `/v1/approvals/${approvalId}/deny`, await as('alice'));
    expect(r.status).toBe(200);
    clock.offsetMs = 1.6 * HOUR;
    await sweep(() => stack.state)();
    clock.offsetMs = 0;
    expect((await reminderItems()).some((i) => String(i.sk).endsWith(approvalId))).toBe(false);
    expect(events(approvalId, 'oc.approval.reminder')).toHaveLength(0);
  });
});

describe('extensions', () => {
  it('an approver moves the deadline within the bound: recorded, announced, and the reminder moves with it', async () => {
    const { approvalId, eventId } = await parked('EXT-1');
    const before = await approvalItem(approvalId);
    const r = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
      ...(await as('alice')),
      body: { extend_sec: 3600, comment: 'on call is asleep' },
    });
    expect(r.status).toBe(200);
    const to = new Date(Date.parse(String(before.expires_at)) + HOUR).toISOString();
    expect(r.json).toMatchObject({ status: 'pending', expires_at: to });
    expect(r.json.extensions).toEqual([
      expect.objectContaining({
        by: 'alice@acme.example',
        from: before.expires_at,
        to,
        comment: 'on call is asleep',
      }),
    ]);
    const after = await approvalItem(approvalId);
    expect(after.remind_at).toBe(new Date(Date.parse(to) - 1800_000).toISOString());
    const sks = (await reminderItems()).map((i) => String(i.sk));
    expect(sks).toContain(`${after.remind_at}#tenant1#${approvalId}`);
    expect(sks).not.toContain(`${before.remind_at}#tenant1#${approvalId}`);

    const announced = await waitForEvent(approvalId, 'oc.approval.extended');
    expect(announced.json.data).toMatchObject({
      status: 'pending',
      expires_at: to,
      extension: { by: 'alice@acme.example', from: before.expires_at, to },
    });
    const shown = await stack.request('GET', `/v1/approvals/${approvalId}`, await as('carol'));
    expect(shown.json.facts.map((f: { kind: string }) => f.kind)).toEqual([
      'toolcall.decided',
      'approval.extended',
    ]);
    // A second extension is its own fact and its own announcement.
    const again = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
      ...(await as('carol')),
      body: { extend_sec: 3600 },
    });
    expect(again.status).toBe(200);
    await until('second extension', async () =>
      events(approvalId, 'oc.approval.extended').length >= 2 ? true : undefined,
    );
    const event = await stack.get(`/v1/toolcalls/${eventId}`, AGENT1);
    expect(event.json.approval.status).toBe('pending');
    // Two extensions is the most policy allows here.
    const third = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
      ...(await as('alice')),
      body: { extend_sec: 60 },
    });
    expect([third.status, third.json.code]).toEqual([422, 'VALIDATION_ERROR']);
  });

  it('refuses past the bound, expired requests, the requester, and other tenants', async () => {
    const { approvalId } = await parked('EXT-2');
    const tooFar = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
      ...(await as('alice')),
      body: { extend_sec: 4 * 3600 },
    });
    expect([tooFar.status, tooFar.json.code]).toEqual([422, 'VALIDATION_ERROR']);
    expect(tooFar.json.details[0].path).toBe('/extend_sec');
    const other = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
      ...(await as('bob')),
      body: { extend_sec: 600 },
    });
    expect(other.status).toBe(404);
    const unlisted = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
      ...(await as('mallory')),
      body: { extend_sec: 600 },
    });
    expect(unlisted.status).toBe(403);
    const requester = await stack.post(
      '/v1/toolcalls',
      toolCall({
        tool: 'jira',
        action: 'issue.delete',
        resource: 'EXT-3',
        params: {},
        user_id: 'alice@acme.example',
      }),
      AGENT1,
    );
    const self = await stack.request('POST', `/v1/approvals/${requester.json.approval.id}/extend`, {
      ...(await as('alice')),
      body: { extend_sec: 600 },
    });
    expect([self.status, self.json.code]).toEqual([403, 'SELF_APPROVAL']);
    clock.offsetMs = 2.1 * HOUR;
    const late = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
      ...(await as('alice')),
      body: { extend_sec: 600 },
    });
    expect([late.status, late.json.code]).toEqual([410, 'APPROVAL_EXPIRED']);
    // Bad input writes nothing.
    for (const body of [{}, { extend_sec: 1 }, { extend_sec: '600' }, { extend_sec: 600, x: 1 }]) {
      const bad = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
        ...(await as('alice')),
        body,
      });
      expect(bad.status).toBeGreaterThanOrEqual(400);
      expect(bad.status).toBeLessThan(500);
    }
  });

  it("a pending approval's read offers the step policy allows now (the console's Extend), which the bound accepts", async () => {
    const { approvalId } = await parked('EXT-4');
    const read = async () =>
      (await stack.request('GET', `/v1/approvals/${approvalId}`, await as('carol'))).json;
    expect((await read()).extend_sec).toBe(3600);
    // 2.5 of the 3 hours used: what is left is offered (the console's fixed hour was refused: 422).
    const moved = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
      ...(await as('alice')),
      body: { extend_sec: 9000 },
    });
    expect(moved.status).toBe(200);
    const offered = (await read()).extend_sec;
    expect(offered).toBe(1800);
    const last = await stack.request('POST', `/v1/approvals/${approvalId}/extend`, {
      ...(await as('carol')),
      body: { extend_sec: offered, view_hash: (await read()).view.hash },
    });
    expect(last.status).toBe(200);
    // The bound reached (and both moves spent): nothing is offered that could only be refused.
    expect((await read()).extend_sec).toBeUndefined();
    // Decided, or on a tenant without extensions, nothing is offered.
    await stack.request('POST', `/v1/approvals/${approvalId}/deny`, { ...(await as('alice')), body: {} });
    expect((await read()).extend_sec).toBeUndefined();
    const other = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource: 'G-2', params: {} }),
      KEYS.tenant2,
    );
    const bobs = await stack.request('GET', `/v1/approvals/${other.json.approval.id}`, await as('bob'));
    expect(bobs.status).toBe(200);
    expect(bobs.json.extend_sec).toBeUndefined();
  });

  it('a tenant whose policy data has no extensions cannot extend (403 EXTENSION_NOT_ALLOWED)', async () => {
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource: 'G-1', params: {} }),
      KEYS.tenant2,
    );
    const x = await stack.request('POST', `/v1/approvals/${r.json.approval.id}/extend`, {
      ...(await as('bob')),
      body: { extend_sec: 600 },
    });
    expect([x.status, x.json.code]).toEqual([403, 'EXTENSION_NOT_ALLOWED']);
  });
});

describe('standing grants', () => {
  async function grantFrom(resource: string, body: Record<string, unknown>) {
    const { approvalId, eventId } = await parked(resource);
    const r = await stack.request('POST', `/v1/approvals/${approvalId}/standing-grant`, {
      ...(await as('alice')),
      body,
    });
    return { r, approvalId, eventId };
  }

  it('approves this and calls like it: each later call is judged by policy, runs under the grant, counts down', async () => {
    const { r, approvalId, eventId } = await grantFrom('OPS-1', {
      target_pattern: 'OPS-*',
      max_uses: 2,
      expires_in_sec: 3600,
    });
    expect(r.status).toBe(201);
    const grant = r.json.standing_grant;
    expect(grant).toMatchObject({
      agent_id: 'agent-1',
      tool: 'jira',
      action: 'issue.delete',
      target_pattern: 'OPS-*',
      max_uses: 2,
      uses_left: 2,
      status: 'active',
      created_by: 'alice@acme.example',
      approval_id: approvalId,
      event_id: eventId,
    });
    expect(r.json.approval).toMatchObject({
      id: approvalId,
      status: 'approved',
      standing_grant: { id: grant.id },
    });
    // The call it was created with runs as any approved call.
    expect((await stack.post(`/v1/toolcalls/${eventId}/execute`, '', AGENT1)).status).toBe(200);

    const calls = connector.calls.length;
    const second = await park('OPS-2');
    expect(second.json).toMatchObject({
      decision: 'approve',
      standing_grant: { id: grant.id, approval_id: approvalId },
    });
    expect(second.json.approval).toBeUndefined();
    expect(second.json.result).toBeDefined();
    expect(connector.calls.length).toBe(calls + 1);
    // Recorded with the grant's id.
    const shown = await stack.get(`/v1/toolcalls/${second.json.event_id}`, AGENT1);
    const decided = shown.json.facts?.find((f: { kind: string }) => f.kind === 'toolcall.decided');
    if (decided?.record)
      expect(decided.record.standing_grant).toEqual({ id: grant.id, approval_id: approvalId });
    const stored = await stack.state.toolcalls.getEvent('tenant1', second.json.event_id);
    expect(stored!.facts[0]!.record.standing_grant).toEqual({ id: grant.id, approval_id: approvalId });

    // Not like it: another agent, another target: a human decides, nothing is spent.
    expect((await park('OPS-3', AGENT7, 'agent-7')).json.approval).toBeDefined();
    expect((await park('DEV-3')).json.approval).toBeDefined();
    // Policy still judges first: a forbid denies whatever the grant says.
    const forbidden = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource: 'PROD-1', params: {} }),
      AGENT1,
    );
    expect(forbidden.json.decision).toBe('deny');

    const last = await park('OPS-4');
    expect(last.json.standing_grant?.id).toBe(grant.id);
    // Used up: the next call is parked for a human.
    const after = await park('OPS-5');
    expect(after.json.approval).toBeDefined();
    const read = await stack.request('GET', `/v1/grants/${grant.id}`, await as('carol'));
    expect(read.json).toMatchObject({ id: grant.id, uses_left: 0, status: 'exhausted' });
  });

  it('two calls racing for the last use: one runs under the grant, the other is parked', async () => {
    const { r } = await grantFrom('RACE-10', { target_pattern: 'RACE-*', max_uses: 1, expires_in_sec: 600 });
    expect(r.status).toBe(201);
    const [a, b] = await Promise.all([park('RACE-11'), park('RACE-12')]);
    const used = [a, b].filter((x) => x.json.standing_grant);
    expect(used).toHaveLength(1);
    expect([a, b].filter((x) => x.json.approval)).toHaveLength(1);
  });

  it('revocation takes effect at once, is recorded, and is walled by tenant', async () => {
    const { r, eventId } = await grantFrom('REV-1', {
      target_pattern: 'REV-1',
      max_uses: 5,
      expires_in_sec: 600,
    });
    const id = r.json.standing_grant.id as string;
    // Another tenant's approver: the grant does not exist for them.
    expect((await stack.request('GET', `/v1/grants/${id}`, await as('bob'))).status).toBe(404);
    expect((await stack.request('POST', `/v1/grants/${id}/revoke`, await as('bob'))).status).toBe(404);
    const bobList = await stack.request('GET', '/v1/grants', await as('bob'));
    expect(bobList.json.items.map((g: { id: string }) => g.id)).not.toContain(id);
    expect((await stack.request('GET', '/v1/grants', await as('mallory'))).status).toBe(403);

    const revoked = await stack.request('POST', `/v1/grants/${id}/revoke`, {
      ...(await as('carol')),
      body: { reason: 'incident over' },
    });
    expect(revoked.json).toMatchObject({
      id,
      status: 'revoked',
      revoked_by: 'carol@acme.example',
      revoke_reason: 'incident over',
    });
    const again = await stack.request('POST', `/v1/grants/${id}/revoke`, await as('alice'));
    expect(again.json).toMatchObject({ status: 'revoked', revoked_by: 'carol@acme.example' });
    // The very next call like it is parked for a human.
    expect((await park('REV-1')).json.approval).toBeDefined();
    const listed = await stack.request('GET', '/v1/grants?status=revoked', await as('alice'));
    expect(listed.json.items.map((g: { id: string }) => g.id)).toContain(id);
    const stored = await stack.state.toolcalls.getEvent('tenant1', eventId);
    expect(stored!.facts.map((f) => f.kind)).toContain('standing_grant.revoked');
  });

  it('oc grants revoke and list (the operator CLI, on the same table)', async () => {
    const { r } = await grantFrom('CLI-1', { target_pattern: 'CLI-*', max_uses: 3, expires_in_sec: 600 });
    const id = r.json.standing_grant.id as string;
    const env = {
      OC_DATA_DIR: mkdtempSync(path.join(process.env.OC_TEST_TMP!, 'oc-data-')),
      OC_DYNAMODB_PORT: new URL(stack.config.dynamodbEndpoint!).port,
      OC_TABLE_NAME: stack.config.tableName,
      USER: 'ops-oncall',
    };
    const revoked = await runOc(
      ['grants', 'revoke', id, '--tenant', 'tenant1', '--reason', 'done', '--json'],
      env,
    );
    expect([revoked.code, revoked.stderr]).toEqual([0, '']);
    expect(JSON.parse(revoked.stdout)).toMatchObject({
      id,
      status: 'revoked',
      revoked_by: 'operator:ops-oncall',
    });
    expect((await park('CLI-2')).json.approval).toBeDefined();
    const listed = await runOc(['grants', 'list', '--tenant', 'tenant1', '--json'], env);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).items).toContainEqual(
      expect.objectContaining({ id, status: 'revoked', revoke_reason: 'done' }),
    );
  });

  it('refuses what policy data does not allow, patterns that are not exact or a trailing *, and bad bounds', async () => {
    const cases: [Record<string, unknown>, number][] = [
      [{ target_pattern: 'B*D-1', max_uses: 1, expires_in_sec: 600 }, 422],
      [{ target_pattern: 'OTHER-*', max_uses: 1, expires_in_sec: 600 }, 422],
      [{ target_pattern: 'BAD-*', max_uses: 6, expires_in_sec: 600 }, 422],
      [{ target_pattern: 'BAD-*', max_uses: 1, expires_in_sec: 2 * 86_400 }, 422],
      [{ target_pattern: 'BAD-*', max_uses: 0, expires_in_sec: 600 }, 422],
      [{ target_pattern: 'BAD-*', max_uses: 1 }, 422],
    ];
    const { approvalId } = await parked('BAD-1');
    for (const [body, status] of cases) {
      const r = await stack.request('POST', `/v1/approvals/${approvalId}/standing-grant`, {
        ...(await as('alice')),
        body,
      });
      expect([JSON.stringify(body), r.status]).toEqual([JSON.stringify(body), status]);
    }
    // Nothing was written: still pending.
    expect((await stack.request('GET', `/v1/approvals/${approvalId}`, await as('alice'))).json.status).toBe(
      'pending',
    );
    // tenant2's policy data allows no standing grants.
    const g = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource: 'G-2', params: {} }),
      KEYS.tenant2,
    );
    const refused = await stack.request('POST', `/v1/approvals/${g.json.approval.id}/standing-grant`, {
      ...(await as('bob')),
      body: { target_pattern: 'G-*', max_uses: 1, expires_in_sec: 600 },
    });
    expect([refused.status, refused.json.code]).toEqual([403, 'STANDING_GRANT_NOT_ALLOWED']);
  });
});

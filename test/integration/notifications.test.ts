/**
 * Approval notifications end to end on the local stack (DynamoDB Local stream -> outbox -> fauxqs
 * -> delivery worker -> a real receiver on loopback): signed CloudEvents for requested, decided
 * expired and revoked events, retries with growing delays, 410, Retry-After, the DLQ and its redrive,
 * replays that send nothing twice, tenant walls, and the deliveries route.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { outbox } from '../../functions/handlers/outbox.js';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { keys } from '../../functions/store/keys.js';
import { moveMessages } from '../../functions/store/notify-queue.js';
import { tokenFor } from '../support/approvers.js';
import { KEYS, policyDirWithRoutes, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import {
  startReceiver,
  verifySignatures,
  type Answer,
  type Receiver,
  type Received,
} from '../support/webhook-receiver.js';
import { unpackText } from '../../functions/store/packed-text.js';

const SECRET = DEV_WEBHOOK.secret;
const OTHER_SECRET = 'whsec_' + Buffer.from('tenant-two-webhook-secret-bytes!').toString('base64');
let stack: TestStack;
/** The live policy folder of `stack` (the repository's, with the test routes). */
let livePolicyDir: string;
let receiver: Receiver;
let receiver2: Receiver;
/** Per-resource answer scripts: the n-th request for that resource gets script(n). */
const scripts = new Map<string, (n: number) => Answer>();

const forResource = (resource: string) =>
  receiver.received.filter((r) => r.json?.data?.resource === resource);

beforeAll(async () => {
  receiver = await startReceiver('/hooks/t1');
  receiver2 = await startReceiver('/hooks/t2');
  receiver.answer = (_n, request) => {
    const resource = String(request.json?.data?.resource ?? '');
    const script = scripts.get(resource);
    const index = forResource(resource).length - 1;
    return script ? script(index) : { status: 200 };
  };
  const policyDir = (livePolicyDir = policyDirWithRoutes({
    tenant1: [{ kind: 'webhook', url: `${receiver.url}?token=q-secret`, secret_ref: 'tenant1_webhook' }],
    tenant2: [{ kind: 'webhook', url: receiver2.url, secret_ref: 'tenant2_webhook' }],
  }));
  stack = await startTestStack({
    env: { OC_POLICY_DIR: policyDir },
    notifications: {
      env: {
        OC_WEBHOOK_SECRETS: `tenant1_webhook=${SECRET},tenant2_webhook=${OTHER_SECRET}`,
        OC_WEBHOOK_RETRY_BASE_SEC: '1',
        OC_WEBHOOK_RETRY_CAP_SEC: '2',
        OC_WEBHOOK_TIMEOUT_MS: '3000',
      },
      // The top of each jitter range: the schedule is exactly 1, 2, 2, ... s.
      overrides: { random: () => 1 },
    },
  });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
  await receiver2?.close();
});

async function park(resource: string, key: string = KEYS.tenant1, extra: Record<string, unknown> = {}) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource, params: { issue: resource }, ...extra }),
    key,
  );
  expect(r.json.decision).toBe('approve');
  return { eventId: r.json.event_id as string, approvalId: r.json.approval.id as string };
}

async function deliveries(approvalId: string, who: 'alice' | 'bob' = 'alice') {
  return stack.request('GET', `/v1/approvals/${approvalId}/deliveries`, { token: await tokenFor(who) });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const waitForResource = (resource: string, count: number, timeoutMs = 30_000) =>
  until(
    `${count} request(s) for ${resource}`,
    async () => {
      const got = forResource(resource);
      return got.length >= count ? got : undefined;
    },
    timeoutMs,
  );

function expectCloudEvent(request: Received, type: string, approvalId: string, eventId: string) {
  verifySignatures(request, SECRET);
  expect(request.headers['content-type']).toBe('application/cloudevents+json');
  const ce = request.json;
  expect(ce).toMatchObject({
    specversion: '1.0',
    type,
    source: 'oc://approvals',
    subject: approvalId,
    datacontenttype: 'application/json',
  });
  expect(ce.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(request.headers['webhook-id']).toBe(ce.id);
  expect(Number.isNaN(Date.parse(ce.time))).toBe(false);
  // Binary-mode headers are not mixed in (W24).
  expect(request.headers['ce-id']).toBeUndefined();
  const d = ce.data;
  expect(d).toMatchObject({
    approval_request_id: approvalId,
    event_id: eventId,
    tenant_id: 'tenant1',
    agent_id: 'agent-1',
    tool: 'jira',
    action: 'issue.delete',
    risk_score: 6, // jira.issue.delete's risk floor
    risk_factors: [],
    approver_group: 'security',
    approval_url: `http://localhost:3000/console/approvals/${approvalId}`,
    trace_id: '',
  });
  for (const field of ['resource', 'reason', 'expires_at', 'summary']) expect(typeof d[field]).toBe('string');
  expect(d.raw).toMatchObject({
    tool: 'jira',
    action: 'issue.delete',
    resource: d.resource,
    reason: d.reason,
  });
  expect(d.raw.params).toEqual({ issue: d.resource });
  expect(d.summary).toContain('jira.issue.delete');
  return ce;
}

describe('signed CloudEvents', () => {
  it('requested, then decided (approve), each signed twice and verified with the official verifiers', async () => {
    const { eventId, approvalId } = await park('SIGNED-1');
    const [requested] = await waitForResource('SIGNED-1', 1);
    const ce = expectCloudEvent(requested!, 'oc.approval.requested', approvalId, eventId);
    expect(ce.data.decision).toBeUndefined();
    // The route's query is part of the request the receiver gets, and nowhere in the listing.
    expect(requested!.path).toBe('/hooks/t1?token=q-secret');

    const approved = await stack.request('POST', `/v1/approvals/${approvalId}/approve`, {
      token: await tokenFor('alice'),
      body: { comment: 'fine' },
    });
    expect(approved.status).toBe(200);
    const [, decided] = await waitForResource('SIGNED-1', 2);
    const dce = expectCloudEvent(decided!, 'oc.approval.decided', approvalId, eventId);
    expect(dce.data).toMatchObject({
      decision: 'approved',
      decided_by: 'alice@acme.example',
      decided_at: approved.json.decided_at,
    });
    expect(dce.time).toBe(approved.json.decided_at);
    expect(dce.id).not.toBe(ce.id);

    const list = await deliveries(approvalId);
    expect(list.status).toBe(200);
    expect(list.json.items).toHaveLength(2);
    // In the order they happened (the console lists them so), not in the order of their ids.
    expect(list.json.items.map((i: { event_type: string }) => i.event_type)).toEqual([
      'oc.approval.requested',
      'oc.approval.decided',
    ]);
    for (const item of list.json.items) {
      expect(item).toMatchObject({
        route: { kind: 'webhook', target: receiver.url },
        status: 'delivered',
        attempts: 1,
        last_status_code: 200,
        in_dlq: false,
      });
      expect(typeof item.delivered_at).toBe('string');
    }
    expect(list.text).not.toContain('q-secret');
    expect(list.text).not.toContain('tenant1_webhook');
    expect(list.json.items.map((i: { delivery_id: string }) => i.delivery_id).sort()).toEqual(
      [ce.id, dce.id].sort(),
    );
  });

  it('decided (deny) carries the deny reason; expired is sent by the expiry sweep', async () => {
    const denied = await park('DENIED-1');
    await waitForResource('DENIED-1', 1);
    const r = await stack.request('POST', `/v1/approvals/${denied.approvalId}/deny`, {
      token: await tokenFor('carol'),
      body: { reason: 'not during the freeze' },
    });
    expect(r.status).toBe(200);
    const [, decided] = await waitForResource('DENIED-1', 2);
    const dce = expectCloudEvent(decided!, 'oc.approval.decided', denied.approvalId, denied.eventId);
    expect(dce.data).toMatchObject({
      decision: 'denied',
      decided_by: 'carol@acme.example',
      deny_reason: 'not during the freeze',
    });

    const expiring = await park('EXPIRED-1');
    await waitForResource('EXPIRED-1', 1);
    // Move the approval past its expiry the way the sweep sees it: its expires_at in the past.
    const item = await stack.state.doc.send(
      new GetCommand({
        TableName: stack.config.tableName,
        Key: keys.approval('tenant1', expiring.approvalId),
      }),
    );
    expect(item.Item).toBeDefined();
    const past = new Date(Date.now() - 1000).toISOString();
    const { UpdateCommand } = await import('@aws-sdk/lib-dynamodb');
    const record = JSON.parse(unpackText(item.Item!.approval)!);
    record.expires_at = past;
    await stack.state.doc.send(
      new UpdateCommand({
        TableName: stack.config.tableName,
        Key: keys.approval('tenant1', expiring.approvalId),
        UpdateExpression: 'SET expires_at = :past, approval = :a',
        ExpressionAttributeValues: { ':past': past, ':a': JSON.stringify(record) },
      }),
    );
    await stack.runSchedule('expire-approvals');
    const [, expired] = await waitForResource('EXPIRED-1', 2);
    const ece = expectCloudEvent(expired!, 'oc.approval.expired', expiring.approvalId, expiring.eventId);
    expect(ece.data.status).toBe('expired');
    expect(ece.time).toBe(past);
  });
});

describe('revoked by a changed policy', () => {
  it('an approved call the live policy now forbids is announced as oc.approval.revoked, with why', async () => {
    const { approvalId, eventId } = await park('REVOKED-1');
    await waitForResource('REVOKED-1', 1);
    const approved = await stack.request('POST', `/v1/approvals/${approvalId}/approve`, {
      token: await tokenFor('alice'),
    });
    expect(approved.status).toBe(200);
    await waitForResource('REVOKED-1', 2);

    // A deploy of a policy that forbids the call: another gateway on the same table, same routes.
    const frozen = mkdtempSync(path.join(process.env.OC_TEST_TMP!, 'policy-frozen-'));
    cpSync(livePolicyDir, frozen, { recursive: true });
    const cedar = path.join(frozen, 'policies.cedar');
    writeFileSync(
      cedar,
      `${readFileSync(cedar, 'utf8')}\n@id("freeze")\n@reason("deletes are frozen")\nforbid (principal, action == Action::"jira.issue.delete", resource);\n`,
    );
    const deployed = await startTestStack({
      env: { OC_POLICY_DIR: frozen },
      tableName: stack.config.tableName,
      consumers: false, // the first stack's consumers announce every change of the table
    });
    try {
      const executed = await deployed.post(`/v1/toolcalls/${eventId}/execute`, '');
      expect([executed.status, executed.json.code]).toEqual([409, 'POLICY_CHANGED']);
    } finally {
      await deployed.stop();
    }
    const [, , revoked] = await waitForResource('REVOKED-1', 3);
    const ce = expectCloudEvent(revoked!, 'oc.approval.revoked', approvalId, eventId);
    expect(ce.data).toMatchObject({
      status: 'revoked_by_policy',
      decided_by: 'alice@acme.example',
      revocation: { decision: 'deny', reason: 'deletes are frozen' },
    });
    expect(ce.data.revocation.policy_version).not.toBe(ce.data.revocation.approved_under);
    expect(ce.time).toBe(ce.data.revocation.at);
    const list = await deliveries(approvalId);
    expect(list.json.items.map((i: { event_type: string }) => i.event_type).sort()).toEqual([
      'oc.approval.decided',
      'oc.approval.requested',
      'oc.approval.revoked',
    ]);
  });
});

describe('retries', () => {
  it('500, 500, 200: three attempts with growing delays, then never sent again (SQS redelivery, stream replay)', async () => {
    scripts.set('RETRY-1', (n) => ({ status: n < 2 ? 500 : 200 }));
    const { approvalId } = await park('RETRY-1');
    const got = await waitForResource('RETRY-1', 3);
    const gaps = [got[1]!.at - got[0]!.at, got[2]!.at - got[1]!.at];
    expect(gaps[0]).toBeGreaterThanOrEqual(900);
    expect(gaps[1]).toBeGreaterThanOrEqual(1900);
    expect(gaps[1]).toBeGreaterThan(gaps[0]!);
    // Every attempt is the same event, byte for byte: id, time and body are stable.
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    expect(new Set(got.map((r) => r.headers['webhook-id'])).size).toBe(1);
    got.forEach((r) => verifySignatures(r, SECRET));

    const list = await until('delivered', async () => {
      const l = await deliveries(approvalId);
      return l.json.items[0]?.status === 'delivered' ? l : undefined;
    });
    expect(list.json.items[0]).toMatchObject({ attempts: 3, last_status_code: 200, in_dlq: false });

    // The same message again (SQS delivers at least once) and the stream record again (a replay).
    const notifications = stack.notifications!;
    const approval = await stack.state.approvals.get('tenant1', approvalId);
    const body = {
      v: 1,
      delivery_id: list.json.items[0].delivery_id,
      tenant_id: 'tenant1',
      approval_id: approvalId,
      event_type: 'oc.approval.requested',
      route_index: 0,
      route: approval!.record.notify[0],
      time: approval!.record.created_at,
      data: got[0]!.json.data,
    };
    await notifications.sqs.send(
      new SendMessageCommand({ QueueUrl: notifications.queueUrl, MessageBody: JSON.stringify(body) }),
    );
    const item = await stack.state.doc.send(
      new GetCommand({ TableName: stack.config.tableName, Key: keys.approval('tenant1', approvalId) }),
    );
    const replay: DynamoDBStreamEvent = {
      Records: [
        {
          eventName: 'INSERT',
          dynamodb: {
            SequenceNumber: '1',
            NewImage: marshall({ ...item.Item!, status: 'pending' }) as never,
          },
        },
      ],
    };
    const answer = await outbox(() => stack.state, notifications.stateFor)(replay);
    expect(answer.batchItemFailures).toEqual([]);
    await new Promise((r) => setTimeout(r, 3000));
    expect(forResource('RETRY-1')).toHaveLength(3);
  });

  it('410: one attempt, stopped for good', async () => {
    scripts.set('GONE-1', () => ({ status: 410 }));
    const { approvalId } = await park('GONE-1');
    await waitForResource('GONE-1', 1);
    const list = await until('failed', async () => {
      const l = await deliveries(approvalId);
      return l.json.items[0]?.status === 'failed' ? l : undefined;
    });
    expect(list.json.items[0]).toMatchObject({ attempts: 1, last_status_code: 410, in_dlq: false });
    expect(list.json.items[0].next_attempt_at).toBeUndefined();
    await new Promise((r) => setTimeout(r, 3000));
    expect(forResource('GONE-1')).toHaveLength(1);
  });

  it('Retry-After: 3 is honoured', async () => {
    scripts.set('LATER-1', (n) =>
      n === 0 ? { status: 503, headers: { 'Retry-After': '3' } } : { status: 200 },
    );
    await park('LATER-1');
    const got = await waitForResource('LATER-1', 2);
    // The schedule alone would wait 1 s.
    expect(got[1]!.at - got[0]!.at).toBeGreaterThanOrEqual(2900);
  });

  it('always 500: ten attempts, then the DLQ; a redrive delivers it once the receiver recovers', async () => {
    let recovered = false;
    scripts.set('DEAD-1', () => ({ status: recovered ? 200 : 500 }));
    const { approvalId } = await park('DEAD-1');
    await waitForResource('DEAD-1', 10, 60_000);
    const dead = await until('dead', async () => {
      const l = await deliveries(approvalId);
      return l.json.items[0]?.status === 'dead' ? l : undefined;
    });
    expect(dead.json.items[0]).toMatchObject({ attempts: 10, last_status_code: 500, in_dlq: true });
    await new Promise((r) => setTimeout(r, 2500));
    expect(forResource('DEAD-1')).toHaveLength(10);

    recovered = true;
    const n = stack.notifications!;
    const moved = await moveMessages(
      n.sqs,
      n.dlqUrl,
      n.queueUrl,
      (b) => JSON.parse(b).approval_id === approvalId,
    );
    expect(moved.moved).toBe(1);
    await waitForResource('DEAD-1', 11);
    const after = await until('delivered after redrive', async () => {
      const l = await deliveries(approvalId);
      return l.json.items[0]?.status === 'delivered' ? l : undefined;
    });
    expect(after.json.items[0]).toMatchObject({ attempts: 1, in_dlq: false, last_status_code: 200 });
    await new Promise((r) => setTimeout(r, 2000));
    expect(forResource('DEAD-1')).toHaveLength(11);
  }, 120_000);
});

describe('tenants', () => {
  it("a route of tenant1 never receives tenant2's events, and another tenant's deliveries are 404", async () => {
    const before = receiver.received.length;
    const t2 = await park('GLOBEX-1', KEYS.tenant2);
    const [got] = await receiver2.waitFor(1);
    verifySignatures(got!, OTHER_SECRET);
    expect(got!.json.data.tenant_id).toBe('tenant2');
    expect(() => verifySignatures(got!, SECRET)).toThrow();
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.received.slice(before).filter((r) => r.json?.data?.tenant_id !== 'tenant1')).toEqual([]);

    // Bob (tenant2) sees his own; Alice (tenant1) gets 404 for it, like a missing id.
    expect((await deliveries(t2.approvalId, 'bob')).status).toBe(200);
    const cross = await deliveries(t2.approvalId, 'alice');
    expect(cross.status).toBe(404);
    expect(cross.json.code).toBe('NOT_FOUND');
    // Someone of tenant1 who is not an approver: 404 as well.
    const own = await park('WALL-1');
    const mallory = await stack.request('GET', `/v1/approvals/${own.approvalId}/deliveries`, {
      token: await tokenFor('mallory'),
    });
    expect(mallory.status).toBe(404);
  });
});

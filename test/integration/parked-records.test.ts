/**
 * No record can hold a shared pipeline (the stream shard and the notification queue carry every
 * tenant): a record the outbox or the delivery worker cannot process is parked in an item of its
 * own tenant, the batch moves on, and release-parked retries it. Characters SQS refuses are
 * escaped in every message body; noncharacters are refused at the edge. Local stack: DynamoDB
 * Local's stream, fauxqs, a real receiver on loopback; faults injected into the SQS client only
 * where the emulator cannot refuse on cue.
 */
import { randomUUID } from 'node:crypto';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { driftEventId } from '../../functions/core/upstream-facts.js';
import { keys } from '../../functions/store/keys.js';
import { UpstreamStore } from '../../functions/store/upstreams.js';
import { sqsBody } from '../../functions/store/notify-queue.js';
import { tokenFor } from '../support/approvers.js';
import { faultyDocumentClient } from '../support/faults.js';
import { KEYS, policyDirWithRoutes, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { startReceiver, verifySignatures, type Receiver } from '../support/webhook-receiver.js';
import { unpackText } from '../../functions/store/packed-text.js';

const SECRET = DEV_WEBHOOK.secret;
const OTHER_SECRET = 'whsec_' + Buffer.from('tenant-two-webhook-secret-bytes!').toString('base64');
let stack: TestStack;
let receiver: Receiver;
let receiver2: Receiver;
/** While set, the queue refuses (as SQS would) any message whose body this matches. */
let refuse: ((body: string) => boolean) | undefined;
/** The delivery records' client: a test makes one of its writes fail. */
const faults = faultyDocumentClient();

function refusingSqs(): SQSClient {
  const sqs = new SQSClient({ endpoint: process.env.OC_TEST_SQS_ENDPOINT });
  const send = sqs.send.bind(sqs) as (command: unknown) => Promise<unknown>;
  (sqs as { send: unknown }).send = async (command: unknown) => {
    if (refuse && command instanceof SendMessageBatchCommand) {
      const entries = command.input.Entries ?? [];
      const bad = entries.filter((e) => refuse!(e.MessageBody ?? ''));
      if (bad.length > 0)
        return {
          Successful: [],
          Failed: bad.map((e) => ({ Id: e.Id, SenderFault: true, Code: 'InvalidMessageContents' })),
        };
    }
    if (refuse && command instanceof SendMessageCommand && refuse(command.input.MessageBody ?? ''))
      throw Object.assign(new Error('injected refusal'), { name: 'InvalidMessageContents' });
    return send(command);
  };
  return sqs;
}

beforeAll(async () => {
  receiver = await startReceiver('/hooks/t1');
  receiver2 = await startReceiver('/hooks/t2');
  const policyDir = policyDirWithRoutes({
    tenant1: [{ kind: 'webhook', url: receiver.url, secret_ref: 'tenant1_webhook' }],
    tenant2: [{ kind: 'webhook', url: receiver2.url, secret_ref: 'tenant2_webhook' }],
  });
  stack = await startTestStack({
    env: { OC_POLICY_DIR: policyDir },
    notifications: {
      env: {
        OC_WEBHOOK_SECRETS: `tenant1_webhook=${SECRET},tenant2_webhook=${OTHER_SECRET}`,
        OC_WEBHOOK_TIMEOUT_MS: '3000',
      },
      overrides: { sqs: refusingSqs(), doc: faults.doc },
    },
  });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
  await receiver2?.close();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const announced = (r: Receiver, approvalId: string, type = 'oc.approval.requested') =>
  until(`${type} of ${approvalId}`, async () =>
    r.received.find((m) => m.json?.subject === approvalId && m.json?.type === type),
  );

async function parkFor(resource: string, key: string = KEYS.tenant1, extra: Record<string, unknown> = {}) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource, params: {}, ...extra }),
    key,
  );
  expect(r.status).toBe(200);
  expect(r.json.decision).toBe('approve');
  return r.json.approval.id as string;
}

async function parkedItems(tenantId: string) {
  const out = await stack.state.doc.send(
    new QueryCommand({
      TableName: stack.config.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': `T#${tenantId}#PARKED` },
      ConsistentRead: true,
    }),
  );
  return out.Items ?? [];
}

/** Runs release-parked as if the backoff had passed: every parked record is made due first. */
async function releaseLater() {
  for (const tenantId of ['tenant1', 'tenant2', '_'])
    for (const item of await parkedItems(tenantId)) {
      const past = new Date(Date.now() - 1000).toISOString();
      await stack.state.doc.send(
        new PutCommand({
          TableName: stack.config.tableName,
          Item: {
            ...item,
            next_retry_at: past,
            ...keys.parkedListing(past, tenantId, String(item.consumer), String(item.record_id)),
          },
        }),
      );
    }
  return (await stack.runSchedule('release-parked')) as { retried: number; parked: number };
}

describe('message bodies', () => {
  it('escapes every code unit SQS refuses, and JSON.parse gives back the same value', () => {
    const value = {
      s: 'a\uffff b\ufffe c\u{1f600} d\u{10fffd} e\u0000 f\ud800 g\t\n\r h\u{fdd0}',
      [`k\uffff`]: ['\\\uffff'],
    };
    const body = sqsBody(value);
    // fauxqs's own check (and SQS's, on code points): nothing outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD.
    expect(body).not.toMatch(/[^\t\n\r\u0020-\ud7ff\ue000-\ufffd]/);
    expect(JSON.parse(body)).toEqual(value);
  });

  it('refuses a message over the queue limit rather than have SQS refuse it', () => {
    expect(() => sqsBody({ s: '\uffff'.repeat(50_000) })).toThrow(/over the queue's 262144/);
  });
});

describe('a U+FFFF record already stored (it never passed the new edge rule)', () => {
  it("is announced, escaped, and the other tenant's next approval is announced too", async () => {
    // A real approval, then a copy of its item with U+FFFF and U+FFFE in agent, resource and params,
    // written straight into the table as data from before the rule would be.
    const source = await parkFor('OPS-101');
    const item = (
      await stack.state.doc.send(
        new GetCommand({ TableName: stack.config.tableName, Key: keys.approval('tenant1', source) }),
      )
    ).Item!;
    const id = randomUUID();
    const record = JSON.parse(unpackText(item.approval)!);
    Object.assign(record, {
      id,
      agent_id: 'agent-\uffff',
      resource: 'OPS-\uffff1',
      params: { note: 'poison \uffff \ufffe', ['k\uffff']: '\u{1f600}' },
    });
    await stack.state.doc.send(
      new PutCommand({
        TableName: stack.config.tableName,
        Item: {
          ...item,
          ...keys.approval('tenant1', id),
          ...keys.approvalListing('tenant1', 'pending', String(item.created_at), id),
          approval: JSON.stringify(record),
        },
      }),
    );
    const got = await announced(receiver, id);
    verifySignatures(got, SECRET);
    expect(got.json.data.resource).toBe('OPS-\uffff1');
    expect(got.json.data.raw.params).toEqual({ note: 'poison \uffff \ufffe', ['k\uffff']: '\u{1f600}' });
    const other = await parkFor('OPS-102', KEYS.tenant2);
    await announced(receiver2, other);
    expect(await parkedItems('tenant1')).toEqual([]);
  });
});

describe('the outbox', () => {
  it("parks a record it cannot enqueue in its tenant's partition; the other tenant is announced; release-parked announces it once", async () => {
    refuse = (body) => body.includes('OPS-103');
    try {
      const stuck = await parkFor('OPS-103');
      await until('the parked record', async () =>
        (await parkedItems('tenant1')).length === 1 ? true : undefined,
      );
      const [parked] = await parkedItems('tenant1');
      expect(parked).toMatchObject({
        type: 'parked_record',
        consumer: 'outbox',
        record_id: `${stuck}.oc.approval.requested`,
        tenant_id: 'tenant1',
        attempts: 0,
      });
      expect(String(parked!.reason)).toMatch(/refused 1 message/);
      // Nothing of it is in the other tenant's partition, and the other tenant is not held.
      expect(await parkedItems('tenant2')).toEqual([]);
      const other = await parkFor('OPS-104', KEYS.tenant2);
      await announced(receiver2, other);
      // Still refused: the release reschedules it (attempts grow), nothing is sent.
      const early = await releaseLater();
      expect(early.parked).toBe(1);
      expect((await parkedItems('tenant1'))[0]).toMatchObject({ attempts: 1 });
    } finally {
      refuse = undefined;
    }
    const report = await releaseLater();
    expect(report).toMatchObject({ retried: 1, parked: 0 });
    const got = await until('announced after release', async () =>
      receiver.received.find((m) => m.json?.data?.resource === 'OPS-103'),
    );
    verifySignatures(got, SECRET);
    expect(await parkedItems('tenant1')).toEqual([]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(receiver.received.filter((m) => m.json?.subject === got.json.subject)).toHaveLength(1);
  });
});

describe('the outbox, an upstream drift (issue 25)', () => {
  it("parks a drift it cannot announce in its tenant's partition, with the drift; release-parked announces it once", async () => {
    const drift = {
      server: 'docs',
      tool: 'search',
      at: new Date().toISOString(),
      pinnedHash: 'a'.repeat(64),
      seenHash: 'b'.repeat(64),
      fields: ['description'],
      detectedBy: 'sync' as const,
    };
    const eventId = driftEventId('tenant1', drift);
    refuse = (body) => body.includes('oc.upstream.drift');
    try {
      await new UpstreamStore(stack.state.doc, stack.config.tableName).recordDrift('tenant1', drift);
      const [parked] = await until('the parked drift', async () => {
        const items = (await parkedItems('tenant1')).filter((i) => i.consumer === 'outbox');
        return items.length === 1 ? items : undefined;
      });
      expect(parked).toMatchObject({ record_id: `${eventId}.oc.upstream.drift`, tenant_id: 'tenant1' });
      expect(await parkedItems('tenant2')).toEqual([]);
    } finally {
      refuse = undefined;
    }
    expect(await releaseLater()).toMatchObject({ retried: 1, parked: 0 });
    const got = await announced(receiver, eventId, 'oc.upstream.drift');
    verifySignatures(got, SECRET);
    expect(got.json.data).toMatchObject({
      tenant_id: 'tenant1',
      action: 'docs.search',
      seen_hash: drift.seenHash,
    });
    await new Promise((r) => setTimeout(r, 1000));
    expect(receiver.received.filter((m) => m.json?.subject === eventId)).toHaveLength(1);
    expect(receiver2.received.filter((m) => m.json?.type === 'oc.upstream.drift')).toEqual([]);
  });
});

describe('the delivery worker', () => {
  it('parks a message no sender can read (it was dropped before) and keeps it parked, visibly', async () => {
    const queueUrl = stack.notifications!.queueUrl;
    const sqs = new SQSClient({ endpoint: process.env.OC_TEST_SQS_ENDPOINT });
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '{"v":1,"garbage":true}' }));
    const [item] = await until('the parked message', async () => {
      const items = await parkedItems('_');
      return items.length > 0 ? items : undefined;
    });
    expect(item).toMatchObject({ consumer: 'deliver-notifications', payload: '{"v":1,"garbage":true}' });
    expect(String(item!.record_id)).toMatch(/^msg-/);
    // Released, it is read again, fails again, and stays parked with its schedule pushed back.
    await releaseLater();
    await until('parked again after the release', async () => {
      const [again] = await parkedItems('_');
      return again && Number(again.attempts) === 1 ? true : undefined;
    });
  });

  it('parks a delivery whose record cannot be written (storage fault), and release-parked sends it once', async () => {
    // The worker's first write (the attempt's lease) fails once, as DynamoDB can.
    faults.plan.fail = { command: 'UpdateCommand', nth: 1 };
    const id = await parkFor('OPS-105');
    const [parked] = await until('the parked delivery', async () => {
      const items = (await parkedItems('tenant1')).filter((i) => i.consumer === 'deliver-notifications');
      return items.length > 0 ? items : undefined;
    });
    expect(String(parked!.reason)).toMatch(/failed/);
    expect(receiver.received.filter((m) => m.json?.subject === id)).toHaveLength(0);
    const report = await releaseLater();
    // This one, and the unreadable message above, still parked under `_`.
    expect(report.retried).toBe(2);
    const got = await announced(receiver, id);
    verifySignatures(got, SECRET);
    // The worker that handled the released message removed its parked record; it arrived once.
    await until('the parked record removed', async () =>
      (await parkedItems('tenant1')).length === 0 ? true : undefined,
    );
    expect(await parkedItems('_')).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1000));
    expect(receiver.received.filter((m) => m.json?.subject === id)).toHaveLength(1);
  });
});

describe('hostile text through every recorded field (property, fixed seed)', () => {
  it("never answers 5xx, refuses noncharacters with 422 and a JSON pointer, and another tenant's next approval is announced and sealed", async () => {
    const nonchar = fc.constantFrom('\ufdd0', '\ufdef', '\ufffe', '\uffff', '\u{1fffe}', '\u{10ffff}');
    // Lone surrogates go out as JSON escapes (JSON.stringify writes \ud800): refused as ever.
    const surrogate = fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff');
    const text = fc.oneof(
      // Every plane: any code point, controls, format characters, private use, unassigned.
      fc.string({ unit: 'binary', maxLength: 24 }),
      fc.tuple(fc.string({ maxLength: 8 }), nonchar, fc.string({ maxLength: 8 })).map((p) => p.join('')),
      fc.tuple(fc.string({ maxLength: 8 }), surrogate).map((p) => p.join('')),
    );
    const seen = { accepted: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        // One field hostile per request, the others ordinary: each field's own rule is what answers.
        fc.record({
          field: fc.constantFrom(
            'agent_id',
            'user_id',
            'session_id',
            'trace_id',
            'label',
            'label_key',
            'risk_factor',
            'idempotency_key',
            'resource',
            'param',
            'param_key',
          ),
          value: text,
          reason: text,
        }),
        async (f) => {
          const v = f.value;
          // A free-text param: a Slack message, risky enough to wait for a human.
          const call =
            f.field === 'param'
              ? {
                  tool: 'slack',
                  action: 'msg.post',
                  resource: '',
                  risk_score: 8,
                  params: { channel: '#ops', text: v },
                }
              : {
                  tool: 'jira',
                  action: 'issue.delete',
                  resource: f.field === 'resource' ? `OPS-${v}` : 'OPS-77',
                  params: f.field === 'param_key' ? { [`n${v}`]: 1 } : {},
                };
          const body = toolCall({
            ...call,
            agent_id: f.field === 'agent_id' ? `agent ${v}` : 'agent-p',
            user_id: f.field === 'user_id' ? v : 'user-p',
            session_id: f.field === 'session_id' ? v : '',
            trace_id: f.field === 'trace_id' ? v : '',
            labels: { [f.field === 'label_key' ? `l${v}` : 'l']: f.field === 'label' ? v : 'x' },
            risk_factors: f.field === 'risk_factor' ? [`f${v}`] : [],
            idempotency_key: `k-${randomUUID()}${f.field === 'idempotency_key' ? v : ''}`,
          });
          const r = await stack.post('/v1/toolcalls', body);
          expect(r.status).toBeLessThan(500);
          const hasNonchar = /[\ufdd0-\ufdef\ufffe\uffff]|[\u{1fffe}\u{1ffff}\u{10fffe}\u{10ffff}]/u.test(
            JSON.stringify(body),
          );
          if (hasNonchar) {
            expect(r.status).toBe(422);
            expect(r.json.details[0].path).toMatch(/^\/\w+/);
          }
          if (r.status === 200) {
            seen.accepted += 1;
            if (r.json.approval && seen.accepted % 5 === 0) {
              const deny = await stack.request('POST', `/v1/approvals/${r.json.approval.id}/deny`, {
                token: await tokenFor('alice'),
                body: { reason: `no ${f.reason}` },
              });
              expect(deny.status).toBeLessThan(500);
            }
          } else seen.refused += 1;
        },
      ),
      { seed: 20261207, numRuns: 60 },
    );
    expect(seen.accepted).toBeGreaterThan(0);
    expect(seen.refused).toBeGreaterThan(0);
    const after = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-106', params: {} }),
      KEYS.tenant2,
    );
    const approvalId = after.json.approval.id as string;
    await announced(receiver2, approvalId);
    await stack.poller?.drained();
    const ev = await stack.get(`/v1/toolcalls/${after.json.event_id}`, KEYS.tenant2);
    expect(ev.json.evidence.every((f: { status: string }) => f.status === 'sealed')).toBe(true);
    expect(await parkedItems('tenant1')).toEqual([]);
  });
});

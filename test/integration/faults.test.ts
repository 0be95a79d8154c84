/**
 * A storage failure at each step of submit fails closed (5xx), never runs a connector without a
 * durable record of intent, and never leaves "ran, nothing recorded" silent.
 */
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { ConnectorInvoker } from '../../functions/connectors/types.js';
import { resolveExecution } from '../../functions/core/execute.js';
import { resolveDeps } from '../../functions/handlers/execution-state.js';
import { verifyTenantChain } from '../../functions/store/chain.js';
import { keys } from '../../functions/store/keys.js';
import { countingInvoker } from '../support/connectors.js';
import { faultyDocumentClient } from '../support/faults.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { dynamoEndpoint, KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { chainOf } from '../../functions/handlers/chain-state.js';

const { doc, plan } = faultyDocumentClient();
/** A client outside the fault plan, for the test's own looks at the table. */
const inspector = createDocumentClient({ endpoint: dynamoEndpoint() });
const counted = countingInvoker();
/** What the table held for each event when its connector ran. */
const intentAtInvoke: { eventStatus?: string; decidedFact: boolean }[] = [];
let stack: TestStack;

const connector: ConnectorInvoker = {
  async invoke(req, opts) {
    const table = stack.config.tableName;
    const event = await inspector.send(
      new GetCommand({
        TableName: table,
        Key: keys.event(req.tenant_id, req.event_id),
        ConsistentRead: true,
      }),
    );
    const record = event.Item?.record ? JSON.parse(String(event.Item.record)) : undefined;
    intentAtInvoke.push({
      eventStatus: event.Item?.status as string | undefined,
      decidedFact: record?.kind === 'toolcall.decided' && record?.event_id === req.event_id,
    });
    return counted.invoke(req, opts);
  },
};

beforeAll(async () => {
  stack = await startTestStack({
    overrides: { doc, connectors: connector },
    consumers: false,
    // A rate of 10/s leases one permit at a time: every call writes the limiter (a step this file breaks).
    env: { OC_RATE_LIMIT_PER_SEC: '10', OC_RATE_LIMIT_BURST: '1000' },
  });
  // Warm the authorizer's key cache so the plan counts only submit's own requests.
  expect((await stack.post('/v1/toolcalls', toolCall())).status).toBe(200);
});
afterAll(async () => {
  await stack.stop();
  inspector.destroy();
});
beforeEach(() => {
  plan.fail = undefined;
  counted.calls.length = 0;
  intentAtInvoke.length = 0;
});

async function eventItems(): Promise<number> {
  const out = await inspector.send(
    new ScanCommand({
      TableName: stack.config.tableName,
      FilterExpression: '#t IN (:e, :f, :a)',
      ExpressionAttributeNames: { '#t': 'type' },
      ExpressionAttributeValues: { ':e': 'event', ':f': 'fact', ':a': 'approval' },
      ConsistentRead: true,
    }),
  );
  return out.Count ?? 0;
}

describe('fault injection on submit', () => {
  // Issue 26: no idempotency read before the claim; the claim's condition finds a replay.
  it('counts the DynamoDB requests of an allow call: rate limit, decision, result; no idempotency read, no transaction', async () => {
    const before = { ...plan.counts };
    expect((await stack.post('/v1/toolcalls', toolCall())).status).toBe(200);
    const delta = Object.fromEntries(
      Object.entries(plan.counts)
        .map(([k, v]) => [k, v - (before[k] ?? 0)])
        .filter(([, v]) => v),
    );
    expect(delta).toEqual({ UpdateCommand: 1, PutCommand: 2 });
    expect(intentAtInvoke).toEqual([{ eventStatus: 'executing', decidedFact: true }]);
  });

  // Issue 26: a name policy data does not classify is denied whatever a tenant's upstream catalog
  // holds, so it costs no catalog read (the bench's `DynamoDB requests per call (deny)`, goal ≤ 3).
  it.each([
    ['a native action policy data does not list', { tool: 'jira', action: 'issue.comment' }],
    ['an upstream-shaped name policy data does not list', { tool: 'unknown', action: 'thing' }],
  ])('counts the DynamoDB requests of a denied call (%s): rate limit, decision', async (_what, call) => {
    const before = { ...plan.counts };
    const r = await stack.post('/v1/toolcalls', toolCall({ ...call, params: {} }));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ decision: 'deny', reason: 'action not in allowlist' });
    const delta = Object.fromEntries(
      Object.entries(plan.counts)
        .map(([k, v]) => [k, v - (before[k] ?? 0)])
        .filter(([, v]) => v),
    );
    expect(delta).toEqual({ UpdateCommand: 1, PutCommand: 1 });
    expect(counted.calls).toHaveLength(0);
  });

  // The decision is one conditional put (allow, deny), or a transaction with the approval (approve).
  it.each([
    ['the rate limiter', 'UpdateCommand', 'UpdateCommand'],
    ['the decision write', 'PutCommand', 'TransactWriteCommand'],
  ])(
    'a failure of %s answers 500, runs nothing and records nothing',
    async (_step, command, approveCommand) => {
      for (const [body, failing] of [
        [toolCall(), command],
        [toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-1', params: {} }), approveCommand],
        [toolCall({ tool: 'x', action: 'y' }), command],
      ] as const) {
        const before = await eventItems();
        counted.calls.length = 0;
        plan.fail = { command: failing, nth: 1 };
        const r = await stack.post('/v1/toolcalls', body);
        expect(r.status).toBe(500);
        expect(r.json).toMatchObject({ code: 'INTERNAL_ERROR', retryable: true });
        expect(r.text).not.toContain('injected');
        expect(await eventItems()).toBe(before);
        expect(counted.calls).toHaveLength(0);
        // The same request succeeds once storage is back: nothing half-written blocks it.
        expect((await stack.post('/v1/toolcalls', body)).status).toBe(200);
      }
    },
  );

  it("a failure reading a replay's first answer answers 500, writes nothing and runs nothing again", async () => {
    const body = toolCall();
    expect((await stack.post('/v1/toolcalls', body)).status).toBe(200);
    const before = await eventItems();
    counted.calls.length = 0;
    // The claim's condition finds the recorded call; the read of its result is what fails.
    plan.fail = { command: 'QueryCommand', nth: 1 };
    const r = await stack.post('/v1/toolcalls', body);
    expect(r.status).toBe(500);
    expect(r.json).toMatchObject({ code: 'INTERNAL_ERROR', retryable: true });
    expect(await eventItems()).toBe(before);
    expect(counted.calls).toHaveLength(0);
    const replay = await stack.post('/v1/toolcalls', body);
    expect(replay.status).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(counted.calls).toHaveLength(0);
  });

  it('a key-store failure in the authorizer answers 500, not 401, and runs nothing', async () => {
    const fresh = 'sk-fault-' + Date.now();
    await stack.state.apiKeys.put(fresh, { tenantId: 'tenant1' });
    plan.fail = { command: 'GetCommand', nth: 1 };
    const r = await stack.post('/v1/toolcalls', toolCall(), fresh);
    expect(r.status).toBe(500);
    expect(counted.calls).toHaveLength(0);
  });

  it('a failure recording the result answers 500 and leaves the event reading unknown; the connector ran once, after its intent was durable', async () => {
    const body = toolCall();
    plan.fail = { command: 'PutCommand', nth: 2 };
    const r = await stack.post('/v1/toolcalls', body);
    expect(r.status).toBe(500);
    expect(r.json.retryable).toBe(false);
    const eventId = r.json.details[0].message as string;
    expect(counted.calls).toHaveLength(1);
    expect(intentAtInvoke).toEqual([{ eventStatus: 'executing', decidedFact: true }]);
    const ev = await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant1);
    expect(ev.json.status).toBe('unknown');
    expect(ev.json.evidence.map((f: { kind: string }) => f.kind)).toEqual(['toolcall.decided']);
    // A retry with the same key never runs the tool again.
    const retry = await stack.post('/v1/toolcalls', body);
    expect(retry.status).toBe(409);
    expect(counted.calls).toHaveLength(1);
  });

  it('an allowed call left unknown fails verification until an operator resolves it; the replay then answers the resolution', async () => {
    const body = toolCall();
    plan.fail = { command: 'PutCommand', nth: 2 };
    const r = await stack.post('/v1/toolcalls', body);
    expect(r.status).toBe(500);
    const eventId = r.json.details[0].message as string;
    const verify = (allowUnresolved = false) =>
      verifyTenantChain(chainOf(stack.state), 'tenant1', {
        now: new Date(),
        unsealedGraceMs: 3_600_000,
        outcomeGraceMs: 3_600_000,
        allowUnresolved,
      });
    const before = await verify();
    expect(before.ok).toBe(false);
    expect(before.unresolved).toContainEqual({
      event_id: eventId,
      kind: 'allow',
      status: 'unknown',
      since: expect.any(String),
    });
    expect(before.problems).toContain(
      `allowed call ${eventId}: outcome unknown since ${before.unresolved.find((u) => u.event_id === eventId)!.since}` +
        ' (the tool may have run); record it with `oc executions resolve`',
    );
    expect((await verify(true)).problems.some((p) => p.includes(eventId))).toBe(false);

    const resolved = await resolveExecution(resolveDeps(stack.state), {
      tenantId: 'tenant1',
      eventId,
      status: 'success',
      note: 'message seen in #general',
      operator: 'operator:test',
    });
    expect(JSON.parse(resolved)).toMatchObject({
      event_id: eventId,
      decision: 'allow',
      result: { status: 'success' },
    });
    const ev = await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant1);
    expect(ev.json.status).toBe('completed');
    expect(ev.json.evidence[1].record).toMatchObject({
      kind: 'toolcall.executed',
      resolved_by: 'operator:test',
    });
    const replay = await stack.post('/v1/toolcalls', body);
    expect(replay.status).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.text).toBe(resolved);
    expect(counted.calls).toHaveLength(1); // the tool never ran again
    expect((await verify()).unresolved.some((u) => u.event_id === eventId)).toBe(false);
    await expect(
      resolveExecution(resolveDeps(stack.state), {
        tenantId: 'tenant1',
        eventId,
        status: 'error',
        note: 'again',
        operator: 'operator:test',
      }),
    ).rejects.toMatchObject({ status: 409, message: 'this call already has a recorded outcome' });
  });
});

/**
 * Shadow mode (issue 24) through the real submit path on DynamoDB Local, with a candidate that
 * decides every call otherwise (test/fixtures/shadow-flip): the difference rides on the event item,
 * the enforced decision, the answer and the sealed chain are those of the same calls without shadow
 * mode, byte for byte; `oc policy shadow-report` counts it per tenant; a failing candidate costs a
 * metric and a log line, never the call.
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { jest } from '@jest/globals';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ConnectorInvoker } from '../../functions/connectors/types.js';
import type { Clock, IdGenerator } from '../../functions/core/ports.js';
import type { PolicyEngine } from '../../functions/core/policy.js';
import type { ShadowSummary } from '../../functions/core/shadow.js';
import { SHADOW_METRICS } from '../../functions/shared/constants.js';
import { logger, metrics } from '../../functions/shared/powertools.js';
import { keys } from '../../functions/store/keys.js';
import { runOc } from '../support/cli.js';
import { contractFetch } from '../support/sdk-fetch.js';
import { dynamoEndpoint, KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { chainOf } from '../../functions/handlers/chain-state.js';

const FLIP = path.resolve('test/fixtures/shadow-flip');
const AT = new Date('2026-11-30T12:00:00.000Z');
/** One instant for every call: two stacks given the same calls write the same records. */
const fixedClock: Clock = { now: () => new Date(AT) };
function sequentialIds(): IdGenerator {
  let n = 0;
  return { uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}` };
}

/** A connector whose answer takes no measurable time (the mock one records its duration). */
const instant: ConnectorInvoker = {
  invoke: async (req) => ({ status: 'success', output: { ok: true, tool: req.tool }, duration_ms: 0 }),
};

/** The three live outcomes, each of which the candidate flips. */
const CALLS = [
  { idempotency_key: 'shadow-allow', tool: 'slack', action: 'msg.post', risk_score: 1 },
  { idempotency_key: 'shadow-deny', tool: 'unknown', action: 'thing', params: {}, risk_score: 2 },
  {
    idempotency_key: 'shadow-approve',
    tool: 'jira',
    action: 'issue.delete',
    resource: 'OPS-1',
    params: {},
    risk_score: 3,
  },
] as const;
const FLIPPED = { allow: 'deny', deny: 'approve', approve: 'allow' } as const;

let shadowed: TestStack;
let plain: TestStack;
beforeAll(async () => {
  [shadowed, plain] = await Promise.all([
    startTestStack({
      env: { OC_POLICY_SHADOW_DIR: FLIP },
      overrides: { clock: fixedClock, ids: sequentialIds(), connectors: instant },
    }),
    startTestStack({
      env: { OC_POLICY_SHADOW_DIR: FLIP, OC_POLICY_SHADOW: 'off' },
      overrides: { clock: fixedClock, ids: sequentialIds(), connectors: instant },
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([shadowed?.stop(), plain?.stop()]);
});

const eventItem = async (stack: TestStack, tenant: string, eventId: string) =>
  (
    await stack.state.doc.send(
      new GetCommand({
        TableName: stack.config.tableName,
        Key: keys.event(tenant, eventId),
        ConsistentRead: true,
      }),
    )
  ).Item;

async function chain(stack: TestStack, tenant: string) {
  await stack.poller!.drained(30_000);
  const list = [];
  for await (const e of chainOf(stack.state).entries(tenant)) list.push(e);
  return list;
}

const report = (stack: TestStack, args: string[]) =>
  runOc(['policy', 'shadow-report', ...args, '--json', '--table', stack.config.tableName], {
    OC_DYNAMODB_PORT: new URL(dynamoEndpoint()).port,
    OC_DATA_DIR: path.join(process.env.OC_TEST_TMP!, 'no-stack'),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
  });

describe('shadow mode on the submit path', () => {
  const answers: { shadowed: string[]; plain: string[]; eventIds: string[] } = {
    shadowed: [],
    plain: [],
    eventIds: [],
  };
  beforeAll(async () => {
    for (const call of CALLS) {
      const body = toolCall(call);
      const [a, b] = [await shadowed.post('/v1/toolcalls', body), await plain.post('/v1/toolcalls', body)];
      expect([a.status, b.status]).toEqual([200, 200]);
      answers.shadowed.push(a.text);
      answers.plain.push(b.text);
      answers.eventIds.push((a.json as { event_id: string }).event_id);
    }
  });

  it('enforces the live decision and answers as without shadow mode, byte for byte', () => {
    expect(answers.shadowed.map((t) => (JSON.parse(t) as { decision: string }).decision)).toEqual([
      'allow',
      'deny',
      'approve',
    ]);
    expect(answers.shadowed).toEqual(answers.plain);
  });

  it("stores the candidate's different decision on the event item only, beside the sealed record", async () => {
    for (const [i, eventId] of answers.eventIds.entries()) {
      const live = (['allow', 'deny', 'approve'] as const)[i]!;
      const item = await eventItem(shadowed, 'tenant1', eventId);
      expect(item?.shadow).toEqual({
        decision: FLIPPED[live],
        reason: expect.stringMatching(/^(candidate: |action not in allowlist)/),
        policy_version: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
        enforced: live,
        action: `${CALLS[i]!.tool}.${CALLS[i]!.action}`,
      });
      expect(String(item?.record)).not.toContain('candidate');
      const without = await eventItem(plain, 'tenant1', eventId);
      expect(without?.shadow).toBeUndefined();
      // The same event otherwise: the shadow attribute and its listing keys are all that differ.
      const { shadow: _s, gsi1pk: _p, gsi1sk: _k, ...rest } = item!;
      expect(rest).toEqual(without);
    }
  });

  it('seals the same chain with and without shadow mode, byte for byte', async () => {
    const [a, b] = await Promise.all([chain(shadowed, 'tenant1'), chain(plain, 'tenant1')]);
    expect(a.length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(a)).not.toMatch(/candidate|"enforced"/);
  });

  it('oc policy shadow-report counts each transition with its event, per tenant (the tenant wall)', async () => {
    // A tenant2 difference: reported under tenant2 only.
    const other = await shadowed.post(
      '/v1/toolcalls',
      toolCall({ idempotency_key: 'shadow-t2', tool: 'slack', action: 'msg.post', risk_score: 1 }),
      KEYS.tenant2,
    );
    expect(other.status).toBe(200);
    await shadowed.poller!.drained(30_000);

    // Three runs of the real `oc` at once (each boots tsx).
    const [one, everyone, afterwards] = await Promise.all([
      report(shadowed, ['--tenant', 'tenant1']),
      report(shadowed, []),
      report(shadowed, ['--tenant', 'tenant1', '--since', '2026-11-30T12:00:00.001Z']),
    ]);
    expect(one.stderr).toBe('');
    expect(one.code).toBe(0);
    const summary = JSON.parse(one.stdout) as ShadowSummary;
    expect(summary.tenants).toEqual(['tenant1']);
    expect(summary.total).toBe(3);
    expect(summary.by_transition).toEqual({ 'allow->deny': 1, 'deny->approve': 1, 'approve->allow': 1 });
    expect(summary.rows.map((r) => [r.tenant_id, r.action, r.transition, r.count, r.examples])).toEqual([
      ['tenant1', 'jira.issue.delete', 'approve->allow', 1, [answers.eventIds[2]]],
      ['tenant1', 'slack.msg.post', 'allow->deny', 1, [answers.eventIds[0]]],
      ['tenant1', 'unknown.thing', 'deny->approve', 1, [answers.eventIds[1]]],
    ]);

    const all = JSON.parse(everyone.stdout) as ShadowSummary;
    expect(all.tenants).toEqual(['tenant1', 'tenant2']);
    expect(all.total).toBe(4);
    expect(all.rows.filter((r) => r.tenant_id === 'tenant2')).toEqual([
      expect.objectContaining({
        action: 'slack.msg.post',
        transition: 'allow->deny',
        examples: [(other.json as { event_id: string }).event_id],
      }),
    ]);
    expect((JSON.parse(afterwards.stdout) as ShadowSummary).total).toBe(0);
  });

  it('an MCP call goes through the same core: its difference is recorded and counted by transition', async () => {
    const dimensions = jest.spyOn(Metrics.prototype, 'addDimension');
    const added = jest.spyOn(Metrics.prototype, 'addMetric');
    const client = new Client({ name: 'shadow-agent', version: '1.0.0' }, { capabilities: {} });
    const fetcher = contractFetch(shadowed);
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${shadowed.url}/mcp`), {
        requestInit: { headers: { 'X-API-Key': KEYS.tenant1 } },
        fetch: (url: string | URL, init?: RequestInit) => fetcher(new Request(url, init)),
      }),
    );
    const r = (await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: '#general', text: 'via mcp' },
    })) as { isError?: boolean; _meta?: Record<string, unknown> };
    await client.close();
    expect(r.isError).toBeFalsy();
    const item = await eventItem(shadowed, 'tenant1', r._meta!['openclause/event_id'] as string);
    expect(item?.shadow).toMatchObject({ enforced: 'allow', decision: 'deny', action: 'slack.msg.post' });
    expect(dimensions.mock.calls).toContainEqual([SHADOW_METRICS.transitionDimension, 'allow->deny']);
    expect(added.mock.calls.filter(([name]) => name === SHADOW_METRICS.diff)).toEqual([
      [SHADOW_METRICS.diff, 'Count', 1],
    ]);
    jest.restoreAllMocks();
  });
});

describe('a failing shadow candidate', () => {
  const throwing: PolicyEngine = {
    version: 'sha256:broken',
    evaluate: () => {
      throw new Error('injected shadow fault');
    },
    tenant: () => undefined,
  };
  let broken: TestStack;
  let unloadable: TestStack;
  beforeAll(async () => {
    const bad = mkdtempSync(path.join(process.env.OC_TEST_TMP!, 'shadow-bad-'));
    cpSync(FLIP, bad, { recursive: true });
    writeFileSync(path.join(bad, 'policies.cedar'), 'permit (principal, action, resource) when { nope };');
    [broken, unloadable] = await Promise.all([
      startTestStack({ overrides: { shadowPolicy: throwing } }),
      startTestStack({ env: { OC_POLICY_SHADOW_DIR: bad } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([broken?.stop(), unloadable?.stop()]);
  });
  afterEach(() => jest.restoreAllMocks());

  it.each([
    ['an engine that throws', () => broken],
    ['a candidate that cannot be loaded', () => unloadable],
  ])(
    '%s: the call is decided and answered as live, with a ShadowErrors metric and a log line',
    async (_what, stackOf) => {
      const stack = stackOf();
      const added = jest.spyOn(metrics, 'addMetric');
      const warned = jest.spyOn(logger, 'warn');
      for (const { idempotency_key: _key, ...call } of CALLS) {
        const r = await stack.post('/v1/toolcalls', toolCall(call));
        expect(r.status).toBe(200);
        const eventId = (r.json as { event_id: string }).event_id;
        expect((await eventItem(stack, 'tenant1', eventId))?.shadow).toBeUndefined();
      }
      const errors = added.mock.calls.filter(([name]) => name === SHADOW_METRICS.errors);
      expect(errors).toHaveLength(CALLS.length);
      expect(warned.mock.calls.filter(([m]) => String(m).startsWith('shadow policy'))).toHaveLength(
        CALLS.length,
      );
    },
  );
});

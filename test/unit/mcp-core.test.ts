import { jest } from '@jest/globals';
/** The MCP face's pure parts (functions/core/mcp.ts): the catalog, arguments, keys and results. */
import { ACTION_SPECS } from '../../functions/connectors/registry.js';
import {
  buildCatalog,
  clientLabel,
  derivedIdempotencyKey,
  executeOutcome,
  HIGH_RISK,
  mcpToolName,
  paramHeadersOf,
  splitArguments,
  submitOutcome,
} from '../../functions/core/mcp.js';
import { paramHeaderMismatch, traceOf } from '../../functions/core/mcp-protocol.js';
import { resolveCall } from '../../functions/core/mcp-resolve.js';
import { createPolicyEngine } from '../../functions/core/policy.js';
import {
  detailedTask,
  TASK_FAILED,
  TASK_RESULT_RETENTION_SEC,
  tasksDeclared,
  whoMustDecide,
  taskBinding,
  taskStatusOf,
  taskTtlSec,
} from '../../functions/core/mcp-protocol.js';
import { buildRiskFloors } from '../../functions/core/risk.js';
import { AppError } from '../../functions/shared/errors.js';
import { rules } from '../../functions/shared/input-rules.js';
import { defaultPolicyDir, loadPolicyBundle } from '../../functions/store/policy-files.js';

const bundle = loadPolicyBundle(defaultPolicyDir());
const policy = createPolicyEngine(bundle);
const now = new Date('2026-12-01T10:00:00Z');
const catalog = (tenantId: string, floors: Record<string, number> = {}) =>
  buildCatalog({
    specs: ACTION_SPECS,
    actions: bundle.actions,
    floors: buildRiskFloors(ACTION_SPECS, { ...bundle.actions.risk_floors, ...floors }),
    policy,
    tenantId,
    agentId: 'agent-1',
    now,
  });
const spec = (name: string) => ACTION_SPECS.find((s) => s.name === name)!;

describe('the MCP catalog', () => {
  it('names each action tool_action and evaluates policy as a call at the floor would', () => {
    const entries = catalog('tenant1');

    expect(entries.map((e) => e.tool.name)).toContain('jira_issue_delete');
    expect(entries.find((e) => e.tool.name === 'jira_issue_delete')!.decision).toBe('approve');
    expect(entries.find((e) => e.tool.name === 'slack_msg_post')!.decision).toBe('allow');
    expect(mcpToolName('a.b-c.d')).toBe('a_b_c_d');
  });

  it('leaves out what policy denies: a floor at the tenant threshold', () => {
    expect(catalog('tenant1', { 'jira.issue.create': 5 }).map((e) => e.tool.name)).not.toContain(
      'jira_issue_create',
    );
    expect(catalog('tenant1', { 'jira.issue.create': 4 }).map((e) => e.tool.name)).toContain(
      'jira_issue_create',
    );
  });

  it('declares outputSchema only for allowed actions, and the gateway’s idempotency_key argument', () => {
    const entries = catalog('tenant1');
    const post = entries.find((e) => e.tool.name === 'slack_msg_post')!.tool;
    const del = entries.find((e) => e.tool.name === 'jira_issue_delete')!.tool;

    expect(post.outputSchema).toMatchObject({ type: 'object' });
    expect(del.outputSchema).toBeUndefined();
    expect(post.inputSchema.properties).toHaveProperty('idempotency_key');
    expect(post.inputSchema).not.toHaveProperty('$schema');
  });
});

describe('MCP call arguments', () => {
  it('split the gateway’s key from the params and check the arguments with the shared JSON rules', () => {
    expect(
      splitArguments(spec('slack.msg.post'), { channel: '#a', text: 'x', idempotency_key: 'k1' }),
    ).toEqual({
      ok: true,
      params: { channel: '#a', text: 'x' },
      idempotencyKey: 'k1',
    });
    // The params are the submit core's to check (once, as for REST): see test/integration/mcp.test.ts.
    expect(splitArguments(spec('slack.msg.post'), { channel: '#a' })).toEqual({
      ok: true,
      params: { channel: '#a' },
    });
    // The shared JSON rules, even in a field the action's schema would ignore.
    expect(splitArguments(spec('jira.issue.delete'), { '': [['\ud800']] })).toEqual({
      ok: false,
      message: 'invalid arguments for jira_issue_delete: .0.0 contains a lone surrogate',
    });
    expect(splitArguments(spec('jira.issue.delete'), { issue: 'OPS-1', n: 2 ** 60 })).toMatchObject({
      ok: false,
    });
    expect(
      splitArguments(spec('slack.msg.post'), { channel: '#a', text: 'x', idempotency_key: 'a\u200bb' }),
    ).toMatchObject({ ok: false, message: expect.stringMatching(/^idempotency_key/) });
  });

  it('derive one key per request and sender: same id, arguments, key, agent, client and session replay, anything else is new', () => {
    const base = {
      requestId: 0,
      tool: 'slack_msg_post',
      args: { channel: '#a', text: 'x' },
      keyId: 'key_0000000000000001',
      agentId: 'agent-a',
      clientName: 'modern-agent',
    };
    const key = derivedIdempotencyKey(base);

    expect(key).toMatch(/^mcp-[0-9a-f]{64}$/);
    expect(derivedIdempotencyKey({ ...base, args: { text: 'x', channel: '#a' } })).toBe(key);
    expect(derivedIdempotencyKey({ ...base, requestId: 1 })).not.toBe(key);
    expect(derivedIdempotencyKey({ ...base, requestId: '0' })).not.toBe(key);
    expect(derivedIdempotencyKey({ ...base, args: { channel: '#a', text: 'y' } })).not.toBe(key);
    // Every fresh client numbers its first call 0: the sender tells them apart.
    expect(derivedIdempotencyKey({ ...base, agentId: 'agent-b' })).not.toBe(key);
    expect(derivedIdempotencyKey({ ...base, keyId: 'key_0000000000000002' })).not.toBe(key);
    expect(derivedIdempotencyKey({ ...base, clientName: 'other-agent' })).not.toBe(key);
    const inSession = derivedIdempotencyKey({ ...base, session: 's1' });
    expect(inSession).not.toBe(key);
    expect(derivedIdempotencyKey({ ...base, session: 's2' })).not.toBe(inSession);
    // No time in it: nothing else goes in (a retry across midnight UTC is the same key).
    expect(derivedIdempotencyKey({ ...base, session: 's1' })).toBe(inSession);
  });

  it('keep the client’s name and version only as bounded, visible text', () => {
    expect(clientLabel({ name: 'Claude Code', version: '2.1.0' })).toEqual({
      name: 'Claude Code',
      version: '2.1.0',
    });
    expect(clientLabel({ name: 'x\u202e', version: 'v'.repeat(200) })).toEqual({
      name: 'unknown',
      version: 'unknown',
    });
    expect(clientLabel(undefined)).toEqual({ name: 'unknown', version: 'unknown' });
  });

  it('check the label with one schema built once, not two per request (issue 26: MCP overhead)', () => {
    const built = jest.spyOn(rules, 'id');
    try {
      for (let i = 0; i < 5; i++) clientLabel({ name: 'Claude Code', version: `2.1.${i}` });
      expect(built.mock.calls.length).toBeLessThanOrEqual(1);
    } finally {
      built.mockRestore();
    }
  });
});

describe('MCP results', () => {
  const body = (b: Record<string, unknown>) => ({ body: JSON.stringify(b) });

  it('turn a deny into a tool error with the reason, and an approve into pending with the console link', () => {
    const denied = submitOutcome(
      body({ event_id: 'e1', decision: 'deny', reason: 'no', policy_version: 'v' }),
      't',
    );
    expect(denied.result).toMatchObject({ isError: true });
    expect(denied.result.content[0]!.text).toMatch(/^Denied by policy: no\./);

    const parked = submitOutcome(
      body({
        event_id: 'e2',
        decision: 'approve',
        reason: 'destructive',
        policy_version: 'v',
        approval: { id: 'a2', url: 'http://x/console/approvals/a2', expires_at: '2026-12-02T00:00:00Z' },
      }),
      'jira_issue_delete',
    );
    expect(parked.pending).toEqual({
      eventId: 'e2',
      approvalId: 'a2',
      url: 'http://x/console/approvals/a2',
      expiresAt: '2026-12-02T00:00:00Z',
      reason: 'destructive',
    });
    expect(parked.result.isError).toBeUndefined();
    expect(parked.result.structuredContent).toMatchObject({ status: 'pending', event_id: 'e2' });
  });

  it('report a connector failure as a tool error, and mark replays', () => {
    const failed = submitOutcome(
      body({
        event_id: 'e3',
        decision: 'allow',
        reason: 'ok',
        policy_version: 'v',
        result: { status: 'error', error: { code: 'UPSTREAM_ERROR', message: 'slack: channel_not_found' } },
      }),
      't',
    );
    expect(failed.result).toMatchObject({ isError: true });
    expect(failed.result.content[0]!.text).toContain('UPSTREAM_ERROR: slack: channel_not_found');
    const replayed = submitOutcome(
      {
        body: JSON.stringify({
          event_id: 'e4',
          decision: 'allow',
          reason: 'ok',
          policy_version: 'v',
          result: { status: 'success', output: { ok: true } },
        }),
        headers: { 'Idempotent-Replayed': 'true' },
      },
      't',
    );
    expect(replayed.result).toMatchObject({
      structuredContent: { ok: true },
      _meta: { 'openclause/replayed': true },
    });
    expect(replayed.result.content[0]!.text).toMatch(/^Replayed: nothing ran again/);
    const replayedDeny = submitOutcome(
      {
        body: JSON.stringify({ event_id: 'e5', decision: 'deny', reason: 'no', policy_version: 'v' }),
        headers: { 'Idempotent-Replayed': 'true' },
      },
      't',
    );
    expect(replayedDeny.result.content[0]!.text).toMatch(
      /^Replayed: nothing ran again.*Denied by policy: no/,
    );
    const replayedRun = executeOutcome('e6', {
      response: {
        body: JSON.stringify({ event_id: 'x6', result: { status: 'success', output: {} } }),
        headers: { 'Idempotent-Replayed': 'true' },
      },
    });
    expect(replayedRun.content[0]!.text).toMatch(/^Replayed: nothing ran again/);
  });

  it('give every /execute outcome its own status, never a protocol error', () => {
    const status = (error: AppError) => executeOutcome('e', { error }).structuredContent!.status;
    expect(status(new AppError(409, 'AWAITING_APPROVAL', 'pending'))).toBe('pending');
    expect(
      status(
        new AppError(403, 'APPROVAL_DENIED', 'denied', { details: [{ path: 'deny_reason', message: 'no' }] }),
      ),
    ).toBe('denied');
    expect(status(new AppError(410, 'APPROVAL_EXPIRED', 'expired'))).toBe('expired');
    expect(status(new AppError(409, 'EXECUTION_OUTCOME_UNKNOWN', 'unknown'))).toBe('unknown');
    expect(status(new AppError(404, 'NOT_FOUND', 'not found'))).toBe('not_found');
    expect(status(new AppError(409, 'NOT_APPROVAL_GATED', 'allow'))).toBe('not_approval_gated');
    const run = (headers: Record<string, string>) =>
      executeOutcome('e', {
        response: {
          body: JSON.stringify({ event_id: 'x', result: { status: 'success', output: { deleted: true } } }),
          headers,
        },
      }).structuredContent!.status;
    expect(run({})).toBe('executed');
    expect(run({ 'Idempotent-Replayed': 'true' })).toBe('replayed');
  });
});

describe('tools/resolve: the preview of one call', () => {
  const deps = (floors: Record<string, number> = {}) => ({
    policy,
    riskFloors: buildRiskFloors(ACTION_SPECS, { ...bundle.actions.risk_floors, ...floors }),
    actions: new Map(ACTION_SPECS.map((s) => [s.name, s])),
    actionsFile: bundle.actions,
  });
  const resolve = (name: string, args: Record<string, unknown>, floors: Record<string, number> = {}) =>
    resolveCall(deps(floors), { spec: spec(name), tenantId: 'tenant1', agentId: 'agent-1', args, now });

  it('flags a high floor destructive and never read-only, whatever the action’s group', () => {
    const low = resolve('slack.channel.list', {});
    const high = resolve('slack.channel.list', {}, { 'slack.channel.list': HIGH_RISK });

    expect(low).toMatchObject({
      ok: true,
      tool: { annotations: { readOnlyHint: true, destructiveHint: false } },
    });
    expect(high).toMatchObject({
      ok: true,
      tool: { annotations: { readOnlyHint: false, destructiveHint: true } },
    });
  });

  it('refuses what tools/call would refuse before deciding (no target, unknown keys)', () => {
    expect(resolve('jira.issue.delete', {})).toMatchObject({ ok: false });
    expect(resolve('jira.issue.delete', { issue: 'OPS-1', nope: 1 })).toMatchObject({ ok: false });
  });
});

describe('2026-07-28 headers and trace context', () => {
  const declared = [
    { param: 'issue', header: 'issue', type: 'string' },
    { param: 'n', header: 'N', type: 'integer' },
  ];
  const headers = (h: Record<string, string>) => (name: string) =>
    Object.entries(h).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1] ?? null;

  it('compares Mcp-Param-* with the body: numbers as numbers, Base64 sentinels decoded, absent args need none', () => {
    expect(
      paramHeaderMismatch(
        declared,
        { issue: 'OPS-1', n: 42 },
        headers({ 'mcp-param-issue': 'OPS-1', 'Mcp-Param-N': '42.0' }),
      ),
    ).toBeUndefined();
    expect(paramHeaderMismatch(declared, {}, headers({}))).toBeUndefined();
    expect(
      paramHeaderMismatch(declared, { issue: 'é' }, headers({ 'Mcp-Param-issue': '=?base64?w6k=?=' })),
    ).toBeUndefined();
    expect(
      paramHeaderMismatch(declared, { issue: 'é' }, headers({ 'Mcp-Param-issue': '=?base64?w6k?=' })),
    ).toMatchObject({ header: 'Mcp-Param-issue' });
    expect(paramHeaderMismatch(declared, { n: 42 }, headers({ 'Mcp-Param-N': '43' }))).toMatchObject({
      header: 'Mcp-Param-N',
    });
    expect(paramHeaderMismatch(declared, { issue: 'OPS-1' }, headers({}))).toMatchObject({
      header: 'Mcp-Param-issue',
    });
  });

  it('marks only the target param x-mcp-header', () => {
    expect(paramHeadersOf(spec('jira.issue.delete'))).toEqual([
      { param: 'issue', header: 'issue', type: 'string' },
    ]);
    expect(paramHeadersOf(spec('jira.issue.list'))).toEqual([]);
  });

  it('reads a W3C traceparent from _meta and ignores anything else', () => {
    const id = '4bf92f3577b34da6a3ce929d0e0e4736';
    expect(traceOf({ traceparent: `00-${id}-00f067aa0ba902b7-01` })).toEqual({
      traceparent: `00-${id}-00f067aa0ba902b7-01`,
      traceId: id,
    });
    for (const bad of [
      `ff-${id}-00f067aa0ba902b7-01`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${id.toUpperCase()}-00f067aa0ba902b7-01`,
      7,
    ])
      expect(traceOf({ traceparent: bad })).toBeUndefined();
    expect(traceOf(undefined)).toBeUndefined();
  });
});

describe('parked calls as tasks', () => {
  it('maps every outcome of execute to a task status: only pending and in flight are working', () => {
    expect(taskStatusOf('pending')).toBe('working');
    expect(taskStatusOf('in_progress')).toBe('working');
    expect(taskStatusOf('executed')).toBe('completed');
    expect(taskStatusOf('replayed')).toBe('completed');
    expect(taskStatusOf('withdrawn')).toBe('cancelled');
    for (const s of ['denied', 'expired', 'revoked_by_policy', 'unknown', 'not_approval_gated', 'error'])
      expect(taskStatusOf(s)).toBe('failed');
  });

  it('lives until the approval expires, plus the grant lifetime, plus the retention', () => {
    const now = new Date('2026-07-01T12:00:00Z');
    expect(taskTtlSec('2026-07-02T12:00:00Z', 3600, now)).toBe(86_400 + 3600 + TASK_RESULT_RETENTION_SEC);
    // Already past its expiry: the grant lifetime and retention still hold the result.
    expect(taskTtlSec('2026-07-01T11:00:00Z', 3600, now)).toBe(3600 + TASK_RESULT_RETENTION_SEC);
  });

  it('binds a task id to tenant, key and agent', () => {
    const a = taskBinding({ tenantId: 't1', keyId: 'key_1' }, 'agent-1');
    expect(taskBinding({ tenantId: 't2', keyId: 'key_1' }, 'agent-1')).not.toBe(a);
    expect(taskBinding({ tenantId: 't1', keyId: 'key_2' }, 'agent-1')).not.toBe(a);
    expect(taskBinding({ tenantId: 't1', keyId: 'key_1' }, 'agent-2')).not.toBe(a);
  });

  it('2026-07-28: a task only for a request whose capabilities declare the extension as an object', () => {
    const ext = 'io.modelcontextprotocol/tasks';
    expect(tasksDeclared({ extensions: { [ext]: {} } })).toBe(true);
    for (const c of [
      undefined,
      {},
      { extensions: {} },
      { extensions: { [ext]: true } },
      { extensions: { [ext]: [] } },
      { extensions: null },
      { tasks: {} },
    ])
      expect(tasksDeclared(c)).toBe(false);
  });

  it('2026-07-28: a detailed task inlines the result when completed, the error (with the call’s end) when failed', () => {
    const base = {
      taskId: 't',
      statusMessage: 'm',
      createdAt: 'c',
      lastUpdatedAt: 'u',
      ttlMs: 1,
      pollIntervalMs: 5000,
    };
    const result = {
      content: [{ type: 'text' as const, text: 'x' }],
      structuredContent: { status: 'denied', reason: 'no' },
    };
    expect(detailedTask({ ...base, status: 'completed' }, result)).toEqual({
      ...base,
      status: 'completed',
      result,
    });
    expect(detailedTask({ ...base, status: 'failed' }, result)).toEqual({
      ...base,
      status: 'failed',
      error: { code: TASK_FAILED, message: 'm', data: { status: 'denied', reason: 'no' } },
    });
    expect(detailedTask({ ...base, status: 'working' }, result)).toEqual({ ...base, status: 'working' });
    expect(detailedTask({ ...base, status: 'cancelled' }, result)).toEqual({ ...base, status: 'cancelled' });
  });

  it('names who must decide: the approver group when known', () => {
    const pending = { eventId: 'e', approvalId: 'a', url: 'u', expiresAt: 'x', reason: 'r' };
    expect(whoMustDecide(pending)).toBe('an approver of this tenant');
    expect(whoMustDecide({ ...pending, approverGroup: 'security' })).toBe(
      'an approver of the group "security" of this tenant',
    );
  });
});

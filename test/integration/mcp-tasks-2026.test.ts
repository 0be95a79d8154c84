/**
 * Parked calls as Tasks on 2026-07-28: the Tasks extension (`io.modelcontextprotocol/tasks`,
 * SEP-2663), driven by a client written from the extension's text (raw JSON-RPC over HTTP, through
 * the tests' gateway client, so every answer is checked against api/openapi.yaml). The official 2.x
 * SDK carries no Tasks runtime; this client sends what the SEP says a client sends: the extension in
 * the request's `clientCapabilities`, `Mcp-Name` set to the task id on `tasks/*`.
 */
import fc from 'fast-check';
import { ACTION_SPECS } from '../../functions/connectors/registry.js';
import { mcpToolName, paramHeadersOf } from '../../functions/core/mcp.js';
import type { Clock } from '../../functions/core/ports.js';
import { generateApiKey } from '../../functions/store/api-keys.js';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker } from '../support/connectors.js';
import { faultyDocumentClient } from '../support/faults.js';
import { KEYS, startTestStack, type TestStack } from '../support/stack.js';

const TASKS = 'io.modelcontextprotocol/tasks';
/** The mock connector, slowed down in one test: a poll that lands while the approved call runs finds it in flight. */
const counting = countingInvoker();
let connectorDelayMs = 0;
const connector: typeof counting = {
  calls: counting.calls,
  invoke: async (req, opts) => {
    await new Promise((r) => setTimeout(r, connectorDelayMs));
    return counting.invoke(req, opts);
  },
};
const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
let stack: TestStack;
const AGENT7 = generateApiKey();
/** The real document client; a test makes one chosen command fail as DynamoDB would (a 500). */
const { doc, plan } = faultyDocumentClient();

beforeAll(async () => {
  stack = await startTestStack({ overrides: { connectors: connector, clock, doc } });
  await stack.state.apiKeys.put(AGENT7, { tenantId: 'tenant1', agentId: 'agent-7' });
});
afterEach(() => {
  clock.offsetMs = 0;
  connectorDelayMs = 0;
});
afterAll(async () => {
  await stack.stop();
});

type Rpc = {
  status: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
};

/** A client from SEP-2663: declares the extension per request (or not), mirrors the task id in `Mcp-Name`. */
function sepClient(key: string = KEYS.tenant1, options: { declare?: boolean; elicitation?: boolean } = {}) {
  let id = 0;
  const declare = options.declare ?? true;
  return async (method: string, params: Record<string, unknown>): Promise<Rpc> => {
    const name = method === 'tools/call' ? params.name : params.taskId;
    const spec = ACTION_SPECS.find((s) => mcpToolName(s.name) === params.name);
    const args = (params.arguments ?? {}) as Record<string, unknown>;
    const r = await stack.request('POST', '/mcp', {
      key,
      headers: {
        Accept: 'application/json, text/event-stream',
        'MCP-Protocol-Version': '2026-07-28',
        'Mcp-Method': method,
        ...(typeof name === 'string' ? { 'Mcp-Name': name } : {}),
        ...Object.fromEntries(
          (spec ? paramHeadersOf(spec) : [])
            .filter(({ param }) => args[param] !== undefined)
            .map(({ param, header }) => [`Mcp-Param-${header}`, String(args[param])]),
        ),
      },
      body: {
        jsonrpc: '2.0',
        id: ++id,
        method,
        params: {
          ...params,
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: 'sep-2663-client', version: '1' },
            'io.modelcontextprotocol/clientCapabilities': {
              ...(declare ? { extensions: { [TASKS]: {} } } : {}),
              ...(options.elicitation ? { elicitation: { url: {} } } : {}),
            },
          },
        },
      },
    });
    const body = r.json as { result?: Record<string, unknown>; error?: Rpc['error'] };
    return { status: r.status, ...body };
  };
}

const call = (client: ReturnType<typeof sepClient>, issue: string) =>
  client('tools/call', { name: 'jira_issue_delete', arguments: { issue } });

const pendingApprovalId = async (resource: string, status = 'pending') => {
  const list = await stack.request('GET', `/v1/approvals?status=${status}&limit=100`, {
    token: await tokenFor('alice'),
  });
  return list.json.items.find((a: { resource: string }) => a.resource.includes(resource))?.id as string;
};
const decide = async (approvalId: string, how: 'approve' | 'deny') =>
  stack.request('POST', `/v1/approvals/${approvalId}/${how}`, {
    token: await tokenFor('alice'),
    ...(how === 'deny' ? { body: { reason: 'not today' } } : {}),
  });

/** Parks a call as a task; its id. */
async function parked(client: ReturnType<typeof sepClient>, issue: string): Promise<string> {
  const created = await call(client, issue);
  expect(created.result).toMatchObject({ resultType: 'task', status: 'working' });
  return created.result!.taskId as string;
}

describe('2026-07-28 Tasks extension (SEP-2663), a client written from the SEP', () => {
  it('declares the extension, and a parked call is a task: working with who and by when, then approved, executed, completed with the result inlined', async () => {
    const client = sepClient();
    const discover = await client('server/discover', {});
    expect(discover.result).toMatchObject({ capabilities: { extensions: { [TASKS]: {} } } });

    const calls = connector.calls.length;
    const created = await call(client, 'T26-1');
    expect(created.status).toBe(200);
    expect(created.result).toMatchObject({
      resultType: 'task',
      status: 'working',
      statusMessage: expect.stringMatching(
        /^Waiting for an approver of the group "security" of this tenant to decide at http:\/\/localhost:3000\/console\/approvals\/[0-9a-f-]{36} before \d{4}-/,
      ),
      createdAt: expect.any(String),
      lastUpdatedAt: expect.any(String),
      pollIntervalMs: 5000,
    });
    const taskId = created.result!.taskId as string;
    // Opaque and signed: never the event id.
    expect(taskId).not.toMatch(/^[0-9a-f-]{36}$/);
    // Lifetime: the approval's time to expiry (24 h) + the grant's lifetime + 24 h of retention.
    expect(created.result!.ttlMs as number).toBeGreaterThan(48 * 3600 * 1000 - 60_000);

    // Durable before the answer: the first poll resolves (naming the group from the stored approval).
    const working = await client('tasks/get', { taskId });
    expect(working.result).toMatchObject({
      resultType: 'complete',
      taskId,
      status: 'working',
      statusMessage: expect.stringMatching(/^Waiting for an approver of the group "security" of this tenant/),
      ttlMs: created.result!.ttlMs,
      pollIntervalMs: 5000,
    });
    expect(working.result).not.toHaveProperty('result');

    expect((await decide(await pendingApprovalId('T26-1'), 'approve')).status).toBe(200);
    let done: Rpc;
    do done = await client('tasks/get', { taskId });
    while (done.result?.status === 'working');
    expect(done.result).toMatchObject({
      resultType: 'complete',
      status: 'completed',
      result: {
        content: [{ type: 'text', text: expect.stringMatching(/^(Executed|Replayed)/) }],
        structuredContent: { result: { status: 'success' } },
      },
    });
    expect(connector.calls.length).toBe(calls + 1);
    // No tasks/result and no tasks/list in this revision.
    expect((await client('tasks/result', { taskId })).error?.code).toBe(-32601);
    expect((await client('tasks/list', {})).error?.code).toBe(-32601);
  });

  it('10 concurrent tasks/get right after the approval run the call once; a poll finding it in flight answers working at once', async () => {
    const client = sepClient();
    const taskId = await parked(client, 'T26-2');
    const approvalId = await pendingApprovalId('T26-2');
    const calls = connector.calls.length;
    expect((await decide(approvalId, 'approve')).status).toBe(200);

    connectorDelayMs = 2_000;
    const started = Date.now();
    const polls = await Promise.all(
      Array.from({ length: 10 }, () =>
        client('tasks/get', { taskId }).then((r) => ({ ...r, ms: Date.now() - started })),
      ),
    );
    const ends = polls.map(
      (p) => (p.result?.result as { structuredContent?: { status?: string } })?.structuredContent?.status,
    );
    // One poll ran it (and answered with its own run); the others found it in flight and answered
    // `working` without waiting on it, or (arriving after it ended) read the recorded result.
    expect(ends.filter((s) => s === 'executed')).toHaveLength(1);
    const runner = polls.find((_, i) => ends[i] === 'executed')!;
    const inFlight = polls.filter((p) => p.result?.status === 'working');
    expect(inFlight.length).toBeGreaterThan(0);
    for (const p of inFlight) {
      expect(p.result?.statusMessage).toMatch(/^Approved: the tool is running now/);
      expect(p.ms).toBeLessThan(runner.ms);
    }
    for (const p of polls.filter((q) => q.result?.status === 'completed' && q !== runner))
      expect(p.result?.result).toMatchObject({ structuredContent: { status: 'replayed' } });
    expect(connector.calls.length).toBe(calls + 1);

    // The records: one execution of the approval's grant.
    const approval = await stack.request('GET', `/v1/approvals/${approvalId}`, {
      token: await tokenFor('alice'),
    });
    const kinds = (approval.json.facts as { kind: string }[]).map((f) => f.kind);
    expect(kinds.filter((k) => k === 'execution.started')).toHaveLength(1);
    // Later polls read the recorded result: still one run.
    const again = await client('tasks/get', { taskId });
    expect(again.result).toMatchObject({
      status: 'completed',
      result: { structuredContent: { status: 'replayed' } },
    });
    expect(connector.calls.length).toBe(calls + 1);
  });

  it('denial and expiry are failed tasks with distinct error data; nothing runs', async () => {
    const client = sepClient();
    const calls = connector.calls.length;
    const denied = await parked(client, 'T26-3');
    await decide(await pendingApprovalId('T26-3'), 'deny');
    expect((await client('tasks/get', { taskId: denied })).result).toMatchObject({
      status: 'failed',
      statusMessage: expect.stringMatching(/^Denied by the approver/),
      error: { code: -32010, data: { status: 'denied', reason: 'not today' } },
    });

    const expiring = await parked(client, 'T26-4');
    clock.offsetMs = 25 * 3600 * 1000;
    expect((await client('tasks/get', { taskId: expiring })).result).toMatchObject({
      status: 'failed',
      error: { code: -32010, data: { status: 'expired' } },
    });
    expect(connector.calls.length).toBe(calls);
  });

  it('tasks/cancel withdraws the request: acknowledged, cancelled, and nobody can approve it; tasks/update is acknowledged', async () => {
    const client = sepClient();
    const calls = connector.calls.length;
    const taskId = await parked(client, 'T26-5');
    expect(
      await client('tasks/update', { taskId, inputResponses: { approval: { action: 'accept' } } }),
    ).toMatchObject({
      result: { resultType: 'complete' },
    });
    expect((await client('tasks/get', { taskId })).result?.status).toBe('working');

    const ack = await client('tasks/cancel', { taskId });
    expect(ack.result).toEqual({ resultType: 'complete', _meta: expect.any(Object) });
    expect((await client('tasks/get', { taskId })).result).toMatchObject({
      status: 'cancelled',
      statusMessage: expect.stringMatching(/^Withdrawn by key_[0-9a-f]{16} before anyone decided/),
    });
    // A repeat is acknowledged (the same withdrawal).
    expect((await client('tasks/cancel', { taskId })).result?.resultType).toBe('complete');
    const approvalId = await pendingApprovalId('T26-5', 'withdrawn');
    expect((await decide(approvalId, 'approve')).status).toBe(409);
    expect(connector.calls.length).toBe(calls);

    // Cancelling a call already approved is acknowledged and changes nothing (cooperative).
    const approved = await parked(client, 'T26-6');
    await decide(await pendingApprovalId('T26-6'), 'approve');
    expect((await client('tasks/cancel', { taskId: approved })).result?.resultType).toBe('complete');
    expect((await client('tasks/get', { taskId: approved })).result?.status).toBe('completed');
  });

  it('walls: another agent’s or tenant’s poll, update and cancel are not found; a forged id too; nothing changes', async () => {
    const taskId = await parked(sepClient(), 'T26-7');
    for (const other of [sepClient(AGENT7), sepClient(KEYS.tenant2)])
      for (const method of ['tasks/get', 'tasks/cancel', 'tasks/update'])
        expect(
          (await other(method, { taskId, ...(method === 'tasks/update' ? { inputResponses: {} } : {}) }))
            .error,
        ).toMatchObject({ code: -32602, message: 'Task not found' });
    const forged = taskId.slice(0, -4) + (taskId.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await sepClient()('tasks/get', { taskId: forged })).error).toMatchObject({ code: -32602 });
    expect((await sepClient()('tasks/get', { taskId })).result?.status).toBe('working');
  });

  it('never a task to a request that did not declare the extension; tasks/* from one is -32021', async () => {
    const plain = sepClient(KEYS.tenant1, { declare: false });
    const result = await call(plain, 'T26-8');
    expect(result.result?.resultType).not.toBe('task');
    expect(result.result).not.toHaveProperty('taskId');
    expect(result.result).toMatchObject({ structuredContent: { status: 'pending' } });

    // With URL elicitation but not the extension: the input_required rung, with its poll hint.
    const asking = await call(sepClient(KEYS.tenant1, { declare: false, elicitation: true }), 'T26-11');
    expect(asking.result).toMatchObject({
      resultType: 'input_required',
      requestState: expect.any(String),
      inputRequests: {
        approval: { params: { mode: 'url', message: expect.stringMatching(/every 5 s\.$/) } },
      },
      _meta: { 'io.openclause/pollIntervalMs': 5000 },
    });
    // Both declared: the task wins (it needs no retry of the call).
    expect((await call(sepClient(KEYS.tenant1, { elicitation: true }), 'T26-12')).result?.resultType).toBe(
      'task',
    );

    const taskId = await parked(sepClient(), 'T26-9');
    for (const method of ['tasks/get', 'tasks/cancel'])
      expect((await plain(method, { taskId })).error).toMatchObject({
        code: -32021,
        data: { requiredCapabilities: { extensions: { [TASKS]: {} } } },
      });
    expect((await sepClient()('tasks/get', { taskId })).result?.status).toBe('working');
  });

  it('refuses bad params and a task id whose Mcp-Name disagrees, before anything runs', async () => {
    const client = sepClient();
    expect((await client('tasks/get', { taskId: 42 })).error?.code).toBe(-32602);
    expect((await client('tasks/update', { taskId: 'x' })).error?.code).toBe(-32602);
    const taskId = await parked(client, 'T26-10');
    const mismatch = await stack.request('POST', '/mcp', {
      headers: {
        Accept: 'application/json, text/event-stream',
        'MCP-Protocol-Version': '2026-07-28',
        'Mcp-Method': 'tasks/get',
        'Mcp-Name': 'another-task',
      },
      body: {
        jsonrpc: '2.0',
        id: 9,
        method: 'tasks/get',
        params: {
          taskId,
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientCapabilities': { extensions: { [TASKS]: {} } },
          },
        },
      },
    });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.error.code).toBe(-32020);
  });

  it('hostile task ids (long, binary, look-alikes of a real one) are not found on every method: never a 5xx, nothing changes', async () => {
    const client = sepClient();
    const taskId = await parked(client, 'T26-13');
    const calls = connector.calls.length;
    const hostile = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 64 }),
      fc.string({ minLength: 4097, maxLength: 5000 }),
      fc.integer({ min: 0, max: taskId.length - 1 }).map((i) => taskId.slice(0, i) + taskId.slice(i + 1)),
      fc.constantFrom(taskId.toUpperCase(), `${taskId}.`, taskId.replace('.v1.', '.v2.')),
    );
    await fc.assert(
      fc.asyncProperty(
        hostile,
        fc.constantFrom('tasks/get', 'tasks/cancel', 'tasks/update'),
        async (id, method) => {
          // Mcp-Name mirrors the id only when a header can carry it (else the edge refuses the header: 400).
          const r = await stack.request('POST', '/mcp', {
            headers: {
              Accept: 'application/json, text/event-stream',
              'MCP-Protocol-Version': '2026-07-28',
              'Mcp-Method': method,
              ...(/^[\x21-\x7e]*$/.test(id) && id.length > 0 ? { 'Mcp-Name': id } : {}),
            },
            body: {
              jsonrpc: '2.0',
              id: 1,
              method,
              params: {
                taskId: id,
                ...(method === 'tasks/update' ? { inputResponses: {} } : {}),
                _meta: {
                  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
                  'io.modelcontextprotocol/clientCapabilities': { extensions: { [TASKS]: {} } },
                },
              },
            },
          });
          expect(r.status).toBeLessThan(500);
          if (r.status === 200) expect(r.json.error).toMatchObject({ code: -32602 });
        },
      ),
      { numRuns: 15 },
    );
    expect((await client('tasks/get', { taskId })).result?.status).toBe('working');
    expect(connector.calls.length).toBe(calls);
  });

  it('fails closed: a storage failure under tasks/get or tasks/cancel is an internal error, and nothing changes', async () => {
    const client = sepClient();
    const taskId = await parked(client, 'T26-14');
    const calls = connector.calls.length;
    plan.fail = { command: 'QueryCommand', nth: 1 };
    expect((await client('tasks/get', { taskId })).error).toMatchObject({ code: -32603 });
    plan.fail = { command: 'TransactWriteCommand', nth: 1 };
    expect((await client('tasks/cancel', { taskId })).error).toMatchObject({ code: -32603 });
    plan.fail = undefined;
    expect((await client('tasks/get', { taskId })).result?.status).toBe('working');
    expect(connector.calls.length).toBe(calls);
  });
});

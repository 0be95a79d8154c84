/**
 * Parked calls as MCP Tasks (issue 22 deliverable 1), 2025-11-25 revision, with the official 1.x
 * client's `callToolStream` against the local stack: a governed call that needs approval returns a
 * task; polling reports `working` with who must decide and by when; after a human approves in the
 * API, the next poll runs the exactly-once execute and the stream yields the executed result;
 * denial fails the task, `tasks/cancel` withdraws the request; a task id is bound to its key and
 * agent (another principal: not found); no task for a client that did not ask for one.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from '@modelcontextprotocol/client';
import * as z from 'zod';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../functions/core/ports.js';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { generateApiKey } from '../../functions/store/api-keys.js';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker } from '../support/connectors.js';
import { contractFetch } from '../support/sdk-fetch.js';
import { KEYS, startTestStack, type TestStack } from '../support/stack.js';

const connector = countingInvoker();
/** A clock the expiry tests move past the approval's deadline. */
const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
let stack: TestStack;
let policyDir: string;
const AGENT7 = generateApiKey();

beforeAll(async () => {
  // tasks/result's bound is 20 s in service; 300 ms here, so the test shows the bound quickly.
  // The shipped policy, but `jira.issue.create` floored at 5 (tenant1's threshold): a denied call.
  policyDir = mkdtempSync(join(process.env.OC_TEST_TMP!, 'oc-mcp-tasks-policy-'));
  cpSync(defaultPolicyDir(), policyDir, { recursive: true });
  const actionsPath = join(policyDir, 'actions.json');
  const actions = JSON.parse(readFileSync(actionsPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(actionsPath, JSON.stringify({ ...actions, risk_floors: { 'jira.issue.create': 5 } }));
  stack = await startTestStack({
    env: { OC_POLICY_DIR: policyDir },
    overrides: { connectors: connector, mcpTaskResultWaitMs: 300, clock },
  });
  await stack.state.apiKeys.put(AGENT7, { tenantId: 'tenant1', agentId: 'agent-7' });
});
afterEach(() => {
  clock.offsetMs = 0;
});
afterAll(async () => {
  await stack.stop();
  rmSync(policyDir, { recursive: true, force: true });
});

async function legacyClient(key: string = KEYS.tenant1) {
  const client = new Client({ name: 'task-agent', version: '1.0.0' }, {
    defaultTaskPollInterval: 50,
  } as never);
  const fetcher = contractFetch(stack);
  const fetch = (url: string | URL, init?: RequestInit) => fetcher(new Request(url, init));
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${stack.url}/mcp`), {
      requestInit: { headers: { 'X-API-Key': key } },
      fetch,
    }),
  );
  await client.listTools(); // caches which tools take tasks (`execution.taskSupport`)
  return client;
}

type StreamMessage = { type: string; task?: Record<string, unknown>; result?: unknown; error?: Error };

/** Runs `callToolStream` to its end, calling `onWorking` at each working status. */
async function stream(
  client: Client,
  args: Record<string, unknown>,
  onWorking: (task: Record<string, unknown>, n: number) => Promise<void>,
): Promise<StreamMessage[]> {
  const seen: StreamMessage[] = [];
  let n = 0;
  for await (const message of client.experimental.tasks.callToolStream(
    { name: 'jira_issue_delete', arguments: args },
    CallToolResultSchema,
    { task: { ttl: 60_000 } },
  )) {
    seen.push(message as StreamMessage);
    if (message.type === 'taskStatus' && message.task.status === 'working')
      await onWorking(message.task, n++);
  }
  return seen;
}

/** Starts the stream and stops at the created task (its id). */
async function createTask(client: Client, issue: string): Promise<string> {
  for await (const message of client.experimental.tasks.callToolStream(
    { name: 'jira_issue_delete', arguments: { issue } },
    CallToolResultSchema,
    { task: { ttl: 60_000 } },
  ))
    if (message.type === 'taskCreated') return message.task.taskId;
  throw new Error('no task created');
}

const approve = async (approvalId: string) =>
  stack.request('POST', `/v1/approvals/${approvalId}/approve`, { token: await tokenFor('alice') });
const deny = async (approvalId: string) =>
  stack.request('POST', `/v1/approvals/${approvalId}/deny`, {
    token: await tokenFor('alice'),
    body: { reason: 'not today' },
  });
const pendingApprovalId = async (resource: string) => {
  const list = await stack.request('GET', '/v1/approvals?status=pending&limit=100', {
    token: await tokenFor('alice'),
  });
  return list.json.items.find((a: { resource: string }) => a.resource.includes(resource)).id as string;
};

describe('2025-11-25 tasks with the 1.x client', () => {
  it('lists governed tools with taskSupport optional and advertises the tasks capability', async () => {
    const client = await legacyClient();
    const { tools } = await client.listTools();
    expect(tools.find((t) => t.name === 'jira_issue_delete')?.execution).toEqual({ taskSupport: 'optional' });
    expect(tools.find((t) => t.name === 'oc_execute_approved')?.execution).toBeUndefined();
    expect(client.getServerCapabilities()?.tasks).toMatchObject({ requests: { tools: { call: {} } } });
    await client.close();
  });

  it('a parked call is a task: working with who and by when, then approved, executed once, completed', async () => {
    const client = await legacyClient();
    const calls = connector.calls.length;
    let taskId = '';
    const seen = await stream(client, { issue: 'TASK-1' }, async (task, n) => {
      taskId = String(task.taskId);
      expect(task.statusMessage).toMatch(
        /^Waiting for an approver (of the group "security" )?of this tenant to decide at http.*before \d{4}-/,
      );
      expect(task.pollInterval).toBe(5000);
      if (n === 1) expect((await approve(await pendingApprovalId('TASK-1'))).status).toBe(200);
    });
    const created = seen.find((m) => m.type === 'taskCreated');
    expect(created?.task).toMatchObject({ status: 'working' });
    // Opaque: never the event id.
    expect(taskId).not.toMatch(/^[0-9a-f-]{36}$/);
    const result = seen.at(-1);
    expect(result?.type).toBe('result');
    expect(result?.result).toMatchObject({
      // The first tasks/get after the approval ran it; tasks/result reads the recorded execution.
      structuredContent: { status: 'replayed', result: { status: 'success' } },
      _meta: { 'io.modelcontextprotocol/related-task': { taskId } },
    });
    expect(connector.calls.length).toBe(calls + 1);

    // Polls after completion replay the recorded result: the tool ran once.
    const polls = await Promise.all([1, 2, 3].map(() => client.experimental.tasks.getTask(taskId)));
    expect(polls.map((t) => t.status)).toEqual(['completed', 'completed', 'completed']);
    expect(connector.calls.length).toBe(calls + 1);
    await client.close();
  });

  it('denial fails the task with the approver’s reason; tasks/result answers the denial', async () => {
    const client = await legacyClient();
    const taskId = await createTask(client, 'TASK-2');
    await deny(await pendingApprovalId('TASK-2'));
    expect((await client.experimental.tasks.getTask(taskId)).status).toBe('failed');
    const result = await client.experimental.tasks.getTaskResult(taskId, CallToolResultSchema);
    expect(result).toMatchObject({
      isError: true,
      structuredContent: { status: 'denied', reason: 'not today' },
    });
    await client.close();
  });

  it('tasks/cancel withdraws the pending request: cancelled, and nothing can run it', async () => {
    const client = await legacyClient();
    const calls = connector.calls.length;
    const taskId = await createTask(client, 'TASK-3');
    const cancelled = await client.experimental.tasks.cancelTask(taskId);
    expect(cancelled.status).toBe('cancelled');
    expect((await client.experimental.tasks.getTask(taskId)).status).toBe('cancelled');
    // A repeat is the same withdrawal (idempotent), not a second one.
    expect((await client.experimental.tasks.cancelTask(taskId)).status).toBe('cancelled');
    const approvalId = await stack
      .request('GET', '/v1/approvals?status=withdrawn&limit=100', { token: await tokenFor('alice') })
      .then((r) => r.json.items.find((a: { resource: string }) => a.resource.includes('TASK-3'))?.id);
    expect(approvalId).toBeDefined();
    expect((await approve(approvalId)).status).toBe(409);
    expect(connector.calls.length).toBe(calls);
    await client.close();
  });

  it('a task id is bound to its key and agent: another principal gets not found', async () => {
    const client = await legacyClient();
    const taskId = await createTask(client, 'TASK-4');
    const other = await legacyClient(AGENT7);
    await expect(other.experimental.tasks.getTask(taskId)).rejects.toThrow(/Task not found/);
    await expect(other.experimental.tasks.cancelTask(taskId)).rejects.toThrow(/Task not found/);
    await expect(client.experimental.tasks.getTask('forged.' + taskId.slice(7))).rejects.toThrow(
      /Task not found/,
    );
    expect((await client.experimental.tasks.getTask(taskId)).status).toBe('working');
    await Promise.all([client.close(), other.close()]);
  });

  it('concurrent polls after approval run the call once; a poll that finds it in flight answers working at once', async () => {
    const slow = await legacyClient();
    const taskId = await createTask(slow, 'TASK-6');
    const early = Date.now();
    await expect(slow.experimental.tasks.getTaskResult(taskId, CallToolResultSchema)).rejects.toThrow(
      /still working .*poll tasks\/get every 5 s/,
    );
    expect(Date.now() - early).toBeLessThan(5_000);
    const calls = connector.calls.length;
    await approve(await pendingApprovalId('TASK-6'));
    const clients = await Promise.all([1, 2, 3, 4].map(() => legacyClient()));
    const polls = await Promise.all(clients.map((c) => c.experimental.tasks.getTask(taskId)));
    for (const p of polls) expect(['working', 'completed']).toContain(p.status);
    expect(polls.some((p) => p.status === 'completed')).toBe(true);
    const result = await slow.experimental.tasks.getTaskResult(taskId, CallToolResultSchema);
    expect(result.structuredContent).toMatchObject({ result: { status: 'success' } });
    expect(connector.calls.length).toBe(calls + 1);
    await Promise.all([slow, ...clients].map((c) => c.close()));
  });

  it('an allowed or denied call asked as a task (callToolStream asks on every governed tool) is a completed task with its answer', async () => {
    const client = await legacyClient();
    const calls = connector.calls.length;
    const run = async (name: string, args: Record<string, unknown>) => {
      const seen: StreamMessage[] = [];
      for await (const message of client.experimental.tasks.callToolStream(
        { name, arguments: args },
        CallToolResultSchema,
      ))
        seen.push(message as StreamMessage);
      return seen;
    };
    const allowed = await run('slack_msg_post', { channel: '#general', text: 'hi' });
    expect(allowed.map((m) => m.type)).toEqual(['taskCreated', 'taskStatus', 'result']);
    expect(allowed[0]?.task).toMatchObject({ status: 'completed' });
    expect(allowed.at(-1)?.result).toMatchObject({ structuredContent: expect.anything() });
    expect(allowed.at(-1)?.result).not.toHaveProperty('isError', true);
    // Polled and read back, never run again.
    expect(connector.calls.length).toBe(calls + 1);

    const denied = await run('jira_issue_create', { project: 'OPS', summary: 'x'.repeat(5) });
    expect(denied.at(-1)).toMatchObject({ type: 'result', result: { isError: true } });
    expect(JSON.stringify(denied.at(-1)?.result)).toMatch(/Denied by policy/);
    expect(connector.calls.length).toBe(calls + 1);
    await client.close();
  });

  it('expiry fails the task; tasks/result answers expired, and nothing runs', async () => {
    const client = await legacyClient();
    const calls = connector.calls.length;
    const taskId = await createTask(client, 'TASK-7');
    clock.offsetMs = 25 * 3600 * 1000;
    expect((await client.experimental.tasks.getTask(taskId)).status).toBe('failed');
    const result = await client.experimental.tasks.getTaskResult(taskId, CallToolResultSchema);
    expect(result).toMatchObject({ isError: true, structuredContent: { status: 'expired' } });
    expect(connector.calls.length).toBe(calls);
    await client.close();
  });

  it('a client that does not ask for a task gets the pending result, never a task', async () => {
    const client = await legacyClient();
    const result = await client.callTool({ name: 'jira_issue_delete', arguments: { issue: 'TASK-5' } });
    expect(result).not.toHaveProperty('task');
    expect(result.structuredContent).toMatchObject({ status: 'pending' });
    await client.close();
  });
});

/**
 * The official 2.x client (2026-07-28). It carries the extension's types but no Tasks runtime: its
 * result decoder refuses `resultType: "task"` (`UnsupportedResultType`), so this client reads the
 * CreateTaskResult from the HTTP answer its transport received, then drives `tasks/get` and
 * `tasks/cancel` through the SDK's own `client.request` (which sets `Mcp-Name` to the task id).
 */
describe('2026-07-28 tasks with the official 2.x client', () => {
  const TASKS = 'io.modelcontextprotocol/tasks';
  const Task = z.looseObject({
    taskId: z.string(),
    status: z.enum(['working', 'input_required', 'completed', 'failed', 'cancelled']),
    statusMessage: z.string().optional(),
    ttlMs: z.number().nullable(),
    pollIntervalMs: z.number().optional(),
    result: z.looseObject({ structuredContent: z.record(z.string(), z.unknown()).optional() }).optional(),
    error: z.looseObject({ code: z.number(), data: z.record(z.string(), z.unknown()).optional() }).optional(),
  });

  async function modernClient() {
    const answers: unknown[] = [];
    const fetcher = contractFetch(stack);
    const fetch = async (url: string | URL, init?: RequestInit) => {
      const response = await fetcher(new Request(url, init));
      answers.push(
        await response
          .clone()
          .json()
          .catch(() => undefined),
      );
      return response;
    };
    const client = new ModernClient(
      { name: 'modern-task-agent', version: '2.0.0' },
      { capabilities: { extensions: { [TASKS]: {} } }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await client.connect(
      new ModernTransport(new URL(`${stack.url}/mcp`), {
        requestInit: { headers: { 'X-API-Key': KEYS.tenant1 } },
        fetch,
      }),
    );
    /** Parks a call: the SDK refuses the task result; its id is in the answer the transport got. */
    const park = async (issue: string) => {
      await expect(client.callTool({ name: 'jira_issue_delete', arguments: { issue } })).rejects.toThrow(
        /Unsupported result type 'task'/,
      );
      const created = (answers.at(-1) as { result: Record<string, unknown> }).result;
      expect(created).toMatchObject({ resultType: 'task', status: 'working', pollIntervalMs: 5000 });
      return created.taskId as string;
    };
    const get = (taskId: string) => client.request({ method: 'tasks/get', params: { taskId } }, Task);
    const cancel = (taskId: string) =>
      client.request({ method: 'tasks/cancel', params: { taskId } }, z.looseObject({}));
    return { client, park, get, cancel };
  }

  it('list, an allowed call, a parked call waited to completion after an approval in the console', async () => {
    const { client, park, get } = await modernClient();
    expect(client.getServerCapabilities()?.extensions).toMatchObject({ [TASKS]: {} });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('jira_issue_delete');

    const allowed = await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: '#general', text: 'hi' },
    });
    expect(allowed.isError).toBeFalsy();

    const calls = connector.calls.length;
    const taskId = await park('TASK-21');
    const first = await get(taskId);
    expect(first).toMatchObject({
      status: 'working',
      statusMessage: expect.stringMatching(/group "security"/),
    });
    await approve(await pendingApprovalId('TASK-21'));
    let task = await get(taskId);
    while (task.status === 'working') task = await get(taskId);
    expect(task).toMatchObject({
      status: 'completed',
      result: { structuredContent: { result: { status: 'success' } } },
    });
    expect(connector.calls.length).toBe(calls + 1);
    await client.close();
  });

  it('denial, expiry and cancel', async () => {
    const { client, park, get, cancel } = await modernClient();
    const calls = connector.calls.length;
    const denied = await park('TASK-22');
    await deny(await pendingApprovalId('TASK-22'));
    expect(await get(denied)).toMatchObject({
      status: 'failed',
      error: { code: -32010, data: { status: 'denied', reason: 'not today' } },
    });

    const cancelled = await park('TASK-23');
    await cancel(cancelled);
    expect((await get(cancelled)).status).toBe('cancelled');

    const expiring = await park('TASK-24');
    clock.offsetMs = 25 * 3600 * 1000;
    expect(await get(expiring)).toMatchObject({ status: 'failed', error: { data: { status: 'expired' } } });
    expect(connector.calls.length).toBe(calls);
    await client.close();
  });
});

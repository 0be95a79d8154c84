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
import { generateApiKey } from '../../functions/store/api-keys.js';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker } from '../support/connectors.js';
import { contractFetch } from '../support/sdk-fetch.js';
import { KEYS, startTestStack, type TestStack } from '../support/stack.js';

const connector = countingInvoker();
let stack: TestStack;
const AGENT7 = generateApiKey();

beforeAll(async () => {
  // tasks/result's bound is 20 s in service; 300 ms here, so the test shows the bound quickly.
  stack = await startTestStack({ overrides: { connectors: connector, mcpTaskResultWaitMs: 300 } });
  await stack.state.apiKeys.put(AGENT7, { tenantId: 'tenant1', agentId: 'agent-7' });
});
afterAll(async () => {
  await stack.stop();
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

  it('a client that does not ask for a task gets the pending result, never a task', async () => {
    const client = await legacyClient();
    const result = await client.callTool({ name: 'jira_issue_delete', arguments: { issue: 'TASK-5' } });
    expect(result).not.toHaveProperty('task');
    expect(result.structuredContent).toMatchObject({ status: 'pending' });
    await client.close();
  });
});

/**
 * Agents are walls (issue 19, deliverable 6): a key bound to an agent reads and executes only that
 * agent's events, on REST and MCP, with the same 404 / `not_found` as a missing event, and spends
 * nothing; an unbound key keeps the tenant's scope; `execution.started` names the key and the
 * agent that triggered it. Over HTTP on the local stack (answers checked against the contract).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { generateApiKey, hashApiKey, keyIdOf } from '../../functions/store/api-keys.js';
import { verifyTenantChain } from '../../functions/store/chain.js';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker } from '../support/connectors.js';
import { contractFetch } from '../support/sdk-fetch.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { chainOf } from '../../functions/handlers/chain-state.js';

const connector = countingInvoker();
let stack: TestStack;
/** A key of tenant1 bound to agent-7, as `oc keys create --agent agent-7` makes it. */
const AGENT7 = generateApiKey();
/** A key of tenant1 bound to agent-1. */
const AGENT1 = generateApiKey();

beforeAll(async () => {
  stack = await startTestStack({ overrides: { connectors: connector } });
  await stack.state.apiKeys.put(AGENT7, { tenantId: 'tenant1', agentId: 'agent-7' });
  await stack.state.apiKeys.put(AGENT1, { tenantId: 'tenant1', agentId: 'agent-1' });
});
afterAll(async () => {
  await stack.stop();
});

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown> };

/** agent-1's destructive call, parked and approved: a single-use grant waiting to be spent. */
async function approvedCallOfAgent1(): Promise<string> {
  return (await approvedCall()).eventId;
}

async function approvedCall(): Promise<{ eventId: string; approvalId: string }> {
  const parked = await stack.post(
    '/v1/toolcalls',
    toolCall({ agent_id: 'agent-1', tool: 'jira', action: 'issue.delete', resource: 'OPS-1', params: {} }),
    AGENT1,
  );
  expect(parked.json.decision).toBe('approve');
  const approved = await stack.request('POST', `/v1/approvals/${parked.json.approval.id}/approve`, {
    token: await tokenFor('alice'),
    body: { comment: 'ok' },
  });
  expect(approved.status).toBe(200);
  return { eventId: parked.json.event_id as string, approvalId: parked.json.approval.id as string };
}

async function mcpClient(key: string) {
  const client = new Client({ name: 'walls-test', version: '1.0.0' });
  const fetcher = contractFetch(stack);
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${stack.url}/mcp`), {
      requestInit: { headers: { 'X-API-Key': key } },
      fetch: (url: string | URL, init?: RequestInit) => fetcher(new Request(url, init)),
    }),
  );
  return client;
}

describe('a key bound to an agent', () => {
  it('REST: another agent’s event is 404 to read and to execute, as a missing one, and its grant is not spent', async () => {
    const eventId = await approvedCallOfAgent1();
    const missing = await stack.get('/v1/toolcalls/6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b', AGENT7);

    const read = await stack.get(`/v1/toolcalls/${eventId}`, AGENT7);
    const before = connector.calls.length;
    const executed = await stack.post(`/v1/toolcalls/${eventId}/execute`, '', AGENT7);

    expect(read.status).toBe(404);
    expect(read.json).toEqual({ ...missing.json, request_id: read.json.request_id });
    expect(executed.status).toBe(404);
    expect(executed.json.code).toBe(missing.json.code);
    expect(connector.calls.length).toBe(before);
    // agent-1's own key still reads it and spends the grant, once.
    expect((await stack.get(`/v1/toolcalls/${eventId}`, AGENT1)).json.approval.status).toBe('approved');
    const own = await stack.post(`/v1/toolcalls/${eventId}/execute`, '', AGENT1);
    expect(own.status).toBe(200);
    expect(own.headers['idempotent-replayed']).toBeUndefined();
    expect(connector.calls.length).toBe(before + 1);
  });

  it('MCP: oc_approval_status and oc_execute_approved answer not_found for another agent’s event, and spend nothing', async () => {
    const eventId = await approvedCallOfAgent1();
    const client = await mcpClient(AGENT7);
    const before = connector.calls.length;

    const status = (await client.callTool({
      name: 'oc_approval_status',
      arguments: { event_id: eventId },
    })) as ToolResult;
    const executed = (await client.callTool({
      name: 'oc_execute_approved',
      arguments: { event_id: eventId },
    })) as ToolResult;
    await client.close();

    expect(status.structuredContent).toMatchObject({ status: 'not_found', event_id: eventId });
    expect(executed.isError).toBe(true);
    expect(executed.structuredContent).toMatchObject({ status: 'not_found', event_id: eventId });
    expect(connector.calls.length).toBe(before);
    const owner = await mcpClient(AGENT1);
    const own = (await owner.callTool({
      name: 'oc_execute_approved',
      arguments: { event_id: eventId },
    })) as ToolResult;
    await owner.close();
    expect(own.structuredContent).toMatchObject({ status: 'executed' });
    expect(connector.calls.length).toBe(before + 1);
  });
});

describe('an unbound key', () => {
  it('keeps the tenant’s scope: it reads and executes any agent’s event, and execution.started names the key and the agent', async () => {
    const eventId = await approvedCallOfAgent1();
    expect((await stack.get(`/v1/toolcalls/${eventId}`, KEYS.tenant1)).status).toBe(200);
    const executed = await stack.post(`/v1/toolcalls/${eventId}/execute`, '', KEYS.tenant1);
    expect(executed.status).toBe(200);

    const record = await stack.get(`/v1/toolcalls/${eventId}`, AGENT1);
    const started = (record.json.evidence as { kind: string; record: Record<string, unknown> }[]).find(
      (f) => f.kind === 'execution.started',
    )!.record;
    expect(started).toMatchObject({ key_id: keyIdOf(hashApiKey(KEYS.tenant1)), agent_id: null });
  });

  it('a bound key’s execution.started names its key id and its agent', async () => {
    const { eventId, approvalId } = await approvedCall();
    expect((await stack.post(`/v1/toolcalls/${eventId}/execute`, '', AGENT1)).status).toBe(200);
    const record = await stack.get(`/v1/toolcalls/${eventId}`, AGENT1);
    const started = (record.json.evidence as { kind: string; record: Record<string, unknown> }[]).find(
      (f) => f.kind === 'execution.started',
    )!.record;
    expect(started).toMatchObject({ key_id: keyIdOf(hashApiKey(AGENT1)), agent_id: 'agent-1' });
    // The approval's read lists the execution that spent its grant, within the contract's kinds.
    const approval = await stack.request('GET', `/v1/approvals/${approvalId}`, {
      token: await tokenFor('alice'),
    });
    expect(approval.json.facts.map((f: { kind: string }) => f.kind)).toEqual([
      'toolcall.decided',
      'approval.decided',
      'execution.started',
    ]);
  });
});

it('the chain that records who spent each grant still verifies (after the executions above)', async () => {
  await stack.poller!.drained();
  const report = await verifyTenantChain(chainOf(stack.state), 'tenant1', {
    now: new Date(),
    unsealedGraceMs: 60_000,
  });
  expect(report).toMatchObject({ ok: true, problems: [] });
  expect(report.entries).toBeGreaterThan(0);
});

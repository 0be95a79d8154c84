/**
 * POST /mcp with the official MCP clients against the local stack: the 1.x SDK client
 * (`@modelcontextprotocol/sdk`, protocol 2025-11-25) and the 2.x client pinned to 2026-07-28. Every
 * HTTP answer the clients receive goes through the tests' gateway client, so it is checked against
 * api/openapi.yaml. The policy folder is the shipped one with two changes: `jira.issue.create` is
 * floored at 5 (tenant1's threshold: denied for tenant1), and tenant2 auto-approves nothing (its
 * reads and writes are denied; its destructive actions go to approval).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from '@modelcontextprotocol/client';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { jest } from '@jest/globals';
import fc from 'fast-check';
import * as z from 'zod';
import addFormatsModule from 'ajv-formats';
import { ACTION_SPECS } from '../../functions/connectors/registry.js';
import { mcpToolName, paramHeadersOf } from '../../functions/core/mcp.js';
import type { Clock } from '../../functions/core/ports.js';
import { logger } from '../../functions/shared/powertools.js';
import { rotatedKeyRingText } from '../../functions/store/mcp-state-keys.js';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker, type CountingInvoker } from '../support/connectors.js';
import { contractFetch } from '../support/sdk-fetch.js';
import { tableSnapshot } from '../support/snapshot.js';
import { KEYS, startTestStack, type TestStack } from '../support/stack.js';

// ajv-formats is CommonJS; under NodeNext its default import is `module.exports`.
const addFormats = addFormatsModule.default;

let stack: TestStack;
let connector: CountingInvoker;
let dir: string;
/** A clock the tests can move (a retry across midnight UTC). */
const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
/** Two keys of tenant1 bound to agents, as `oc keys create --agent` makes them. */
const AGENT_KEYS = { a: 'sk-test-agent-a', b: 'sk-test-agent-b' } as const;

beforeAll(async () => {
  dir = mkdtempSync(join(process.env.OC_TEST_TMP!, 'oc-mcp-policy-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  const actionsPath = join(dir, 'actions.json');
  const actions = JSON.parse(readFileSync(actionsPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(actionsPath, JSON.stringify({ ...actions, risk_floors: { 'jira.issue.create': 5 } }));
  const tenantsPath = join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(tenantsPath, 'utf8')) as Record<string, Record<string, unknown>>;
  tenants.tenant2!.max_risk_auto_approve = 0;
  writeFileSync(tenantsPath, JSON.stringify(tenants));
  connector = countingInvoker();
  stack = await startTestStack({ env: { OC_POLICY_DIR: dir }, overrides: { connectors: connector, clock } });
  await stack.state.apiKeys.put(AGENT_KEYS.a, { tenantId: 'tenant1', agentId: 'agent-a' });
  await stack.state.apiKeys.put(AGENT_KEYS.b, { tenantId: 'tenant1', agentId: 'agent-b' });
});
afterEach(() => {
  clock.offsetMs = 0;
});
afterAll(async () => {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The SDK transports call their fetch with (url, init); the gateway client checks each answer against the contract. */
const checkedFetch = (on: TestStack = stack) => {
  const fetcher = contractFetch(on);
  return Object.assign((url: string | URL, init?: RequestInit) => fetcher(new Request(url, init)), {
    sent: fetcher.sent,
  });
};

type Elicitation = { mode?: string; url?: string; message?: string; elicitationId?: string };

async function legacyClient(key: string, options: { onElicit?: (e: Elicitation) => void } = {}) {
  const client = new Client(
    { name: 'test-agent', version: '1.2.3' },
    { capabilities: options.onElicit ? { elicitation: { url: {} } } : {} },
  );
  if (options.onElicit) {
    const onElicit = options.onElicit;
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      onElicit(request.params as Elicitation);
      return { action: 'accept' };
    });
  }
  const fetch = checkedFetch();
  const transport = new StreamableHTTPClientTransport(new URL(`${stack.url}/mcp`), {
    requestInit: { headers: { 'X-API-Key': key } },
    fetch,
  });
  await client.connect(transport);
  return { client, transport, fetch };
}

async function modernClient(key: string, options: { onElicit?: (e: Elicitation) => Promise<void> } = {}) {
  const client = new ModernClient(
    { name: 'modern-agent', version: '2.0.0' },
    {
      capabilities: options.onElicit ? { elicitation: { url: {} } } : {},
      versionNegotiation: { mode: { pin: '2026-07-28' } },
    },
  );
  if (options.onElicit) {
    const onElicit = options.onElicit;
    client.setRequestHandler('elicitation/create', async (request) => {
      await onElicit(request.params as Elicitation);
      return { action: 'accept' };
    });
  }
  const fetch = checkedFetch();
  await client.connect(
    new ModernTransport(new URL(`${stack.url}/mcp`), {
      requestInit: { headers: { 'X-API-Key': key } },
      fetch,
    }),
  );
  return { client, fetch };
}

const approve = (approvalId: string, who: 'alice' | 'bob' = 'alice') =>
  tokenFor(who).then((token) =>
    stack.request('POST', `/v1/approvals/${approvalId}/approve`, { token, body: { comment: 'ok' } }),
  );

const decidedFact = async (eventId: string, key: string = KEYS.tenant1) => {
  const r = await stack.get(`/v1/toolcalls/${eventId}`, key);
  expect(r.status).toBe(200);
  const facts = r.json.evidence as { kind: string; record: Record<string, unknown> }[];
  return facts.find((f) => f.kind === 'toolcall.decided')!.record;
};

type ToolResult = {
  isError?: boolean;
  content: { type: string; text: string }[];
  structuredContent?: Record<string, any>;
  _meta?: Record<string, unknown>;
};
const textOf = (r: ToolResult) => r.content.map((c) => c.text).join('\n');

describe('MCP: tools/list', () => {
  it('list the tenant’s allowed and approval-gated actions, with valid JSON Schemas and policy annotations', async () => {
    const { client, transport } = await legacyClient(KEYS.tenant1);
    expect(transport.sessionId).toMatch(/^[A-Za-z0-9_-]{1,32}\.v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(client.getServerVersion()).toEqual({ name: 'openclause-gateway', version: '0.1.0' });
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();

    expect(names).toEqual(
      [
        'jira_issue_delete',
        'jira_issue_list',
        'oc_approval_status',
        'oc_execute_approved',
        'slack_channel_list',
        'slack_msg_post',
        'template_item_get',
      ].sort(),
    );
    expect(names).not.toContain('jira_issue_create'); // floored at 5 = tenant1's threshold: denied
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(byName.slack_channel_list!.annotations).toMatchObject({
      readOnlyHint: true,
      idempotentHint: true,
    });
    expect(byName.slack_msg_post!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    expect(byName.jira_issue_delete!.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: true,
    });
    expect(byName.jira_issue_delete!.description).toMatch(/Requires human approval/);
    expect(byName.jira_issue_delete!.outputSchema).toBeUndefined();
    expect(byName.slack_msg_post!.description).toMatch(/Allowed by policy/);
    expect(byName.slack_msg_post!.inputSchema).toMatchObject({
      type: 'object',
      required: expect.arrayContaining(['channel', 'text']),
      properties: { channel: { type: 'string' }, idempotency_key: { type: 'string' } },
    });
    const ajv = new Ajv2020({ strict: false });
    addFormats(ajv);
    for (const tool of tools) {
      expect(() => ajv.compile(tool.inputSchema)).not.toThrow();
      if (tool.outputSchema) expect(() => ajv.compile(tool.outputSchema!)).not.toThrow();
    }
    expect(ajv.validate(byName.slack_msg_post!.inputSchema, { channel: '#a', text: 'hi' })).toBe(true);
    expect(ajv.validate(byName.slack_msg_post!.inputSchema, { channel: 5 })).toBe(false);
    // Exactly what is required, and nothing else is accepted.
    expect(byName.jira_issue_delete!.inputSchema).toMatchObject({
      required: ['issue'],
      additionalProperties: false,
    });
    expect(ajv.validate(byName.jira_issue_delete!.inputSchema, { key: 'OPS-3' })).toBe(false);
    expect(ajv.validate(byName.slack_msg_post!.inputSchema, { channel: '#a', text: 'hi', x: 1 })).toBe(false);
    expect(
      ajv.validate(byName.slack_msg_post!.inputSchema, { channel: '#a', text: 'hi', idempotency_key: 'k' }),
    ).toBe(true);
    await client.close();
  });

  it('show another tenant only its own tools: tenant2 auto-approves nothing, so only approvals are listed', async () => {
    const { client } = await legacyClient(KEYS.tenant2);
    const names = (await client.listTools()).tools.map((t) => t.name).sort();

    expect(names).toEqual(['jira_issue_delete', 'oc_approval_status', 'oc_execute_approved']);
    await client.close();
  });
});

/**
 * The `Mcp-Param-*` headers a conforming 2026-07-28 client sends with a call (SEP-2243): each
 * argument the listed tool marks `x-mcp-header`, as the official client mirrors it.
 */
const paramHeaders = (name: string, args: unknown): Record<string, string> => {
  const spec = ACTION_SPECS.find((s) => mcpToolName(s.name) === name);
  const values = (args ?? {}) as Record<string, unknown>;
  return Object.fromEntries(
    (spec ? paramHeadersOf(spec) : [])
      .filter(({ param }) => values[param] !== undefined && values[param] !== null)
      .map(({ param, header }) => [`Mcp-Param-${header}`, String(values[param])]),
  );
};

/**
 * The table once the chain writer is done with earlier tests' calls (it seals events off the
 * stream, in the background): two scans in a row alike. "Nothing written" then means by this test.
 */
async function settledSnapshot(): Promise<string[]> {
  let last = await tableSnapshot(stack.state.doc, stack.config.tableName);
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const next = await tableSnapshot(stack.state.doc, stack.config.tableName);
    if (JSON.stringify(next) === JSON.stringify(last)) return next;
    last = next;
  }
  return last;
}

/** The resolved tool of `tools/resolve`, as this gateway answers it. */
const Resolved = z.object({
  tool: z.looseObject({
    name: z.string(),
    annotations: z.looseObject({ readOnlyHint: z.boolean(), destructiveHint: z.boolean() }),
    _meta: z.record(z.string(), z.any()).optional(),
  }),
});
const previewOf = (r: z.infer<typeof Resolved>) => r.tool._meta?.['io.openclause/preview'];

/** A hand-written 2026-07-28 request of any method (headers as a conforming client sends them). */
const modernRequest = (
  key: string,
  method: string,
  params: Record<string, unknown>,
  headers: Record<string, string> = {},
) =>
  stack.request('POST', '/mcp', {
    key,
    headers: {
      Accept: 'application/json, text/event-stream',
      'MCP-Protocol-Version': '2026-07-28',
      'Mcp-Method': method,
      ...(typeof params.name === 'string' ? { 'Mcp-Name': params.name } : {}),
      ...(method === 'tools/call' ? paramHeaders(params.name as string, params.arguments) : {}),
      ...headers,
    },
    body: {
      jsonrpc: '2.0',
      id: 1,
      method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'hand-agent', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': {},
          ...((params._meta as Record<string, unknown> | undefined) ?? {}),
        },
      },
    },
  });

describe('MCP: tools/resolve, a policy preview of one call (experimental tool resolution)', () => {
  it('answer allow, park (and for whom) or deny as tools/call would, writing nothing (official 2.x client)', async () => {
    const { client } = await modernClient(KEYS.tenant1);
    const before = await settledSnapshot();
    const calls = connector.calls.length;
    const resolve = (name: string, args: Record<string, unknown>) =>
      client.request({ method: 'tools/resolve', params: { name, arguments: args } }, Resolved);

    const allowed = await resolve('slack_msg_post', { channel: '#general', text: 'hi' });
    const parked = await resolve('jira_issue_delete', { issue: 'OPS-7' });
    const denied = await resolve('jira_issue_create', { project: 'OPS', summary: 'x' });

    expect(previewOf(allowed)).toMatchObject({ decision: 'allow', risk: { effective: expect.any(Number) } });
    expect(allowed.tool.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    expect(previewOf(parked)).toMatchObject({
      decision: 'park',
      approver_group: 'security',
      approval_ttl_sec: expect.any(Number),
      resource: 'OPS-7',
    });
    expect(parked.tool.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    // Floored at 5 by policy data (the connector says less): tenant1's threshold denies it.
    expect(previewOf(denied)).toMatchObject({ decision: 'deny', risk: { floor: 5, effective: 5 } });
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
    expect(connector.calls.length).toBe(calls);
    await client.close();
  });

  it('answer a 2025-11-25 client too (official 1.x client)', async () => {
    const { client } = await legacyClient(KEYS.tenant1);
    const r = await client.request(
      { method: 'tools/resolve', params: { name: 'jira_issue_delete', arguments: { issue: 'OPS-8' } } },
      Resolved,
    );
    expect(previewOf(r)).toMatchObject({ decision: 'park', approver_group: 'security', resource: 'OPS-8' });
    await client.close();
  });

  it('preview for the caller’s own tenant and agent only: tenant2 parks for its own approver group', async () => {
    const { client } = await modernClient(KEYS.tenant2);
    const r = await client.request(
      { method: 'tools/resolve', params: { name: 'jira_issue_delete', arguments: { issue: 'OPS-7' } } },
      Resolved,
    );
    expect(previewOf(r)).toMatchObject({ decision: 'park', approver_group: 'ops' });
    await client.close();
  });

  it('refuse a call that could never run or an unknown tool with -32602, and flag every listed tool resolvable', async () => {
    const bad = await modernRequest(KEYS.tenant1, 'tools/resolve', {
      name: 'jira_issue_delete',
      arguments: { issue: 'not a key', extra: 1 },
    });
    const unknown = await modernRequest(KEYS.tenant1, 'tools/resolve', { name: 'nope_tool', arguments: {} });
    const lone = await modernRequest(KEYS.tenant1, 'tools/resolve', {
      name: 'slack_msg_post',
      arguments: { channel: '#a', text: 'x\uD800' },
    });

    for (const r of [bad, unknown, lone]) {
      expect(r.status).toBeLessThan(500);
      expect(r.json.error).toMatchObject({ code: -32602 });
    }
    const list = await modernRequest(KEYS.tenant1, 'tools/list', {});
    const governed = (list.json.result.tools as { name: string; resolve?: boolean }[]).filter(
      (t) => !t.name.startsWith('oc_'),
    );
    expect(governed.length).toBeGreaterThan(0);
    expect(governed.every((t) => t.resolve === true)).toBe(true);
  });
});

describe('MCP: the rest of 2026-07-28', () => {
  it('mark tools/list private to the caller with a ttlMs, in a deterministic (name) order', async () => {
    const list = await modernRequest(KEYS.tenant1, 'tools/list', {});

    expect(list.status).toBe(200);
    expect(list.json.result).toMatchObject({ ttlMs: 60_000, cacheScope: 'private' });
    const names = (list.json.result.tools as { name: string }[]).map((t) => t.name);
    const governed = names.filter((n) => !n.startsWith('oc_'));
    expect(governed).toEqual([...governed].sort());
    expect(names.slice(-2)).toEqual(['oc_approval_status', 'oc_execute_approved']);
  });

  it('refuse an Mcp-Method that disagrees with the body with -32020, and run nothing', async () => {
    const calls = connector.calls.length;
    const r = await modernRequest(
      KEYS.tenant1,
      'tools/call',
      { name: 'slack_msg_post', arguments: { channel: '#general', text: 'header says list' } },
      { 'Mcp-Method': 'tools/list' },
    );

    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: -32020 });
    expect(connector.calls.length).toBe(calls);
  });

  it('carry _meta.traceparent to the record (trace_id) and the log; ignore one that is no W3C traceparent (official 2.x client)', async () => {
    const { client } = await modernClient(KEYS.tenant1);
    const info = jest.spyOn(logger, 'info');
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    try {
      const traced = (await client.callTool({
        name: 'slack_msg_post',
        arguments: { channel: '#general', text: 'traced' },
        _meta: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      })) as ToolResult;
      const untraced = (await client.callTool({
        name: 'slack_msg_post',
        arguments: { channel: '#general', text: 'not traced' },
        _meta: { traceparent: 'ff-not-a-trace' },
      })) as ToolResult;

      const fact = await decidedFact(traced._meta!['openclause/event_id'] as string);
      expect(fact.request).toMatchObject({ trace_id: traceId });
      const other = await decidedFact(untraced._meta!['openclause/event_id'] as string);
      expect(other.request).toMatchObject({ trace_id: '' });
      expect(info).toHaveBeenCalledWith(
        'mcp governed call',
        expect.objectContaining({
          event_id: traced._meta!['openclause/event_id'],
          trace_id: traceId,
          traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
        }),
      );
    } finally {
      info.mockRestore();
      await client.close();
    }
  });

  it('mirror a call’s target in Mcp-Param-*: absent or disagreeing is -32020 with nothing run or written; a Base64 sentinel agrees', async () => {
    const list = await modernRequest(KEYS.tenant1, 'tools/list', {});
    const del = (list.json.result.tools as { name: string; inputSchema: any }[]).find(
      (t) => t.name === 'jira_issue_delete',
    )!;
    expect(del.inputSchema.properties.issue['x-mcp-header']).toBe('issue');
    const before = await settledSnapshot();
    const calls = connector.calls.length;
    const call = (
      headers: Record<string, string>,
      args = { issue: 'OPS-31', idempotency_key: 'param-hdr' },
    ) => modernRequest(KEYS.tenant1, 'tools/call', { name: 'jira_issue_delete', arguments: args }, headers);

    const swapped = await call({ 'Mcp-Param-issue': 'OPS-1' });
    const badSentinel = await call({ 'Mcp-Param-issue': '=?base64?T1BTLTMx=?=' });
    const absent = await stack.request('POST', '/mcp', {
      key: KEYS.tenant1,
      headers: {
        Accept: 'application/json, text/event-stream',
        'MCP-Protocol-Version': '2026-07-28',
        'Mcp-Method': 'tools/call',
        'Mcp-Name': 'jira_issue_delete',
      },
      body: {
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: {
          name: 'jira_issue_delete',
          arguments: { issue: 'OPS-31' },
          _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' },
        },
      },
    });

    for (const r of [swapped, badSentinel, absent]) {
      expect(r.status).toBe(400);
      expect(r.json.error).toMatchObject({ code: -32020, data: { mismatch: { header: 'Mcp-Param-issue' } } });
    }
    expect(absent.json.id).toBe(7);
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
    expect(connector.calls.length).toBe(calls);
    // The value in the spec's Base64 sentinel ("OPS-31"): the same call, parked as usual.
    const sentinel = await call({
      'Mcp-Param-issue': `=?base64?${Buffer.from('OPS-31').toString('base64')}?=`,
    });
    expect(sentinel.status).toBe(200);
    expect(sentinel.json.result.structuredContent).toMatchObject({ status: 'pending' });
  });
});

describe('MCP: tools/call', () => {
  it('run an allowed call through the REST core: connector output as structuredContent, recorded with channel mcp', async () => {
    const { client } = await legacyClient(KEYS.tenant1);
    const before = connector.calls.length;
    const r = (await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: '#general', text: 'from mcp' },
    })) as ToolResult;

    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ ok: true, channel: '#general' });
    expect(JSON.parse(textOf(r))).toEqual(r.structuredContent);
    expect(connector.calls.length).toBe(before + 1);
    expect(connector.calls.at(-1)).toMatchObject({
      tool: 'slack',
      action: 'msg.post',
      agent_id: 'mcp-test-agent',
    });
    const eventId = r._meta!['openclause/event_id'] as string;
    const fact = await decidedFact(eventId);
    expect(fact).toMatchObject({
      decision: 'allow',
      channel: 'mcp',
      client: { name: 'test-agent', version: '1.2.3', protocol_version: '2025-11-25' },
    });
    expect((fact.request as { idempotency_key: string }).idempotency_key).toMatch(/^mcp-[0-9a-f]{64}$/);
    await client.close();
  });

  it('answer a denied call with isError and the policy reason, run nothing and record the denial', async () => {
    const { client } = await legacyClient(KEYS.tenant1);
    const before = connector.calls.length;
    const r = (await client.callTool({
      name: 'jira_issue_create',
      arguments: { project: 'OPS', summary: 'x' },
    })) as ToolResult;

    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^Denied by policy: risk score exceeds tenant auto-approve threshold/);
    expect(connector.calls.length).toBe(before);
    const eventId = /event_id ([0-9a-f-]{36})/.exec(textOf(r))![1]!;
    expect(await decidedFact(eventId)).toMatchObject({ decision: 'deny', channel: 'mcp' });
    await client.close();
  });

  it('refuse bad arguments with a tool error or invalid params, and write nothing', async () => {
    const { client } = await legacyClient(KEYS.tenant1);
    await stack.poller?.drained();
    const before = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const calls = connector.calls.length;

    const wrongType = (await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: 5 },
    })) as ToolResult;
    const badKey = (await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: '#a', text: 'x', idempotency_key: '' },
    })) as ToolResult;
    const badEvent = (await client.callTool({
      name: 'oc_execute_approved',
      arguments: { event_id: 'not-a-uuid' },
    })) as ToolResult;
    const unknownTool = await client.callTool({ name: 'no_such_tool', arguments: {} }).catch((e: Error) => e);

    expect(wrongType.isError).toBe(true);
    expect(textOf(wrongType)).toMatch(/^VALIDATION_ERROR: .*\/params\/channel: must be a string/);
    expect(textOf(wrongType)).toMatch(/\/params\/text: is required.*Nothing ran\.$/);
    expect(badKey.isError).toBe(true);
    expect(textOf(badKey)).toMatch(/idempotency_key/);
    expect(badEvent.isError).toBe(true);
    expect(textOf(badEvent)).toMatch(/event_id/);
    expect(unknownTool).toBeInstanceOf(Error);
    expect(String(unknownTool)).toMatch(/-32602|Unknown tool/);
    expect(connector.calls.length).toBe(calls);
    await stack.poller?.drained();
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
    await client.close();
  });

  it('refuse a call that could never run (unknown keys, no target, a target that is no issue key): a tool error, nothing parked or written', async () => {
    const { client } = await legacyClient(KEYS.tenant1);
    await stack.poller?.drained();
    const before = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const calls = connector.calls.length;

    const call = (name: string, args: Record<string, unknown>) =>
      client.callTool({ name, arguments: args }) as Promise<ToolResult>;
    const unknownKey = await call('jira_issue_delete', { key: 'OPS-3' });
    const notAKey = await call('jira_issue_delete', { issue: 'SDK-KILL-1' });
    const numericId = await call('jira_issue_delete', { issue: '10042' });
    const extraParam = await call('slack_msg_post', { channel: '#general', text: 'x', unfurl: true });

    for (const r of [unknownKey, notAKey, numericId, extraParam]) {
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/Nothing ran\.$/);
      expect(textOf(r)).not.toMatch(/Approval required/);
    }
    expect(textOf(unknownKey)).toMatch(/key/);
    expect(textOf(notAKey)).toMatch(/issue/);
    expect(textOf(numericId)).toMatch(/issue key/);
    expect(textOf(extraParam)).toMatch(/unfurl/);
    expect(connector.calls.length).toBe(calls);
    await stack.poller?.drained();
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
    await client.close();
  });

  it('record the target an MCP call acts on as its resource (MCP sends no resource)', async () => {
    const { client } = await legacyClient(KEYS.tenant1);
    const r = (await client.callTool({
      name: 'jira_issue_delete',
      arguments: { issue: 'OPS-21', idempotency_key: `mcp-target-${Date.now()}` },
    })) as ToolResult;
    const eventId = (r.structuredContent as { event_id: string }).event_id;
    expect(await decidedFact(eventId)).toMatchObject({
      decision: 'approve',
      request: { resource: 'OPS-21', params: { issue: 'OPS-21' } },
    });
    await client.close();
  });

  it('replay a re-sent request (same id, same arguments) and run a new request id again', async () => {
    const post = (id: number) =>
      stack.request('POST', '/mcp', {
        headers: { Accept: 'application/json, text/event-stream', 'mcp-session-id': session },
        body: {
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: { name: 'slack_msg_post', arguments: { channel: '#general', text: 'retry me' } },
        },
      });
    const { transport, client } = await legacyClient(KEYS.tenant1);
    const session = transport.sessionId!;
    const before = connector.calls.length;

    const first = await post(7001);
    const again = await post(7001);
    const next = await post(7002);

    const result = (r: { text: string }) =>
      JSON.parse(/^data: (.*)$/m.exec(r.text)![1]!).result as ToolResult & { _meta: Record<string, unknown> };
    expect(result(first)._meta['openclause/replayed']).toBe(false);
    expect(result(again)._meta['openclause/replayed']).toBe(true);
    expect(textOf(result(again))).toMatch(/^Replayed: nothing ran again/);
    expect(textOf(result(first))).not.toMatch(/Replayed/);
    expect(result(again)._meta['openclause/event_id']).toBe(result(first)._meta['openclause/event_id']);
    expect(result(next)._meta['openclause/event_id']).not.toBe(result(first)._meta['openclause/event_id']);
    expect(connector.calls.length).toBe(before + 2);
    await client.close();
  });
});

describe('MCP: approvals', () => {
  it('park an approval-gated call, point the human to the console, and run it once after an API approval', async () => {
    const elicited: Elicitation[] = [];
    const { client } = await legacyClient(KEYS.tenant1, { onElicit: (e) => elicited.push(e) });
    const before = connector.calls.length;

    const parked = (await client.callTool({
      name: 'jira_issue_delete',
      arguments: { issue: 'OPS-7', idempotency_key: `mcp-approval-${Date.now()}` },
    })) as ToolResult;

    expect(parked.isError).toBeFalsy();
    const pending = parked.structuredContent!;
    expect(pending).toMatchObject({ status: 'pending', reason: 'destructive action requires approval' });
    expect(pending.approval.url).toBe(`http://localhost:3000/console/approvals/${pending.approval.id}`);
    expect(Date.parse(pending.approval.expires_at)).toBeGreaterThan(Date.now());
    expect(textOf(parked)).toContain(pending.approval.url);
    expect(textOf(parked)).toContain(pending.event_id);
    expect(connector.calls.length).toBe(before);
    // The client's human was shown the console page (URL elicitation); accepting it approves nothing.
    await new Promise((r) => setTimeout(r, 200));
    expect(elicited).toEqual([
      expect.objectContaining({ mode: 'url', url: pending.approval.url, elicitationId: pending.approval.id }),
    ]);
    // Its message is the approval view, as every surface renders it: target and every param.
    expect(elicited[0]!.message).toContain(
      '\nAction: jira.issue.delete\nTarget: OPS-7\nParams (1):\n  issue = "OPS-7"\n',
    );
    const status = (await client.callTool({
      name: 'oc_approval_status',
      arguments: { event_id: pending.event_id },
    })) as ToolResult;
    expect(status.structuredContent).toMatchObject({ status: 'pending', event_id: pending.event_id });
    const early = (await client.callTool({
      name: 'oc_execute_approved',
      arguments: { event_id: pending.event_id },
    })) as ToolResult;
    expect(early.isError).toBeFalsy();
    expect(early.structuredContent).toMatchObject({ status: 'pending' });
    expect(connector.calls.length).toBe(before);

    expect((await approve(pending.approval.id)).status).toBe(200);
    const approved = (await client.callTool({
      name: 'oc_approval_status',
      arguments: { event_id: pending.event_id },
    })) as ToolResult;
    expect(approved.structuredContent).toMatchObject({ status: 'approved' });
    const executed = (await client.callTool({
      name: 'oc_execute_approved',
      arguments: { event_id: pending.event_id },
    })) as ToolResult;
    const replayed = (await client.callTool({
      name: 'oc_execute_approved',
      arguments: { event_id: pending.event_id },
    })) as ToolResult;

    expect(executed.isError).toBeFalsy();
    expect(executed.structuredContent).toMatchObject({ status: 'executed', result: { status: 'success' } });
    expect(replayed.structuredContent).toMatchObject({
      status: 'replayed',
      execution_event_id: executed.structuredContent!.execution_event_id,
    });
    expect(connector.calls.length).toBe(before + 1);
    expect(connector.calls.at(-1)).toMatchObject({ tool: 'jira', action: 'issue.delete' });
    const done = (await client.callTool({
      name: 'oc_approval_status',
      arguments: { event_id: pending.event_id },
    })) as ToolResult;
    expect(done.structuredContent).toMatchObject({ status: 'executed' });
    await client.close();
  });

  it('answer a denied approval with the approver’s reason, as a tool result', async () => {
    const { client } = await legacyClient(KEYS.tenant1);
    const parked = (await client.callTool({
      name: 'jira_issue_delete',
      arguments: { issue: 'OPS-8' },
    })) as ToolResult;
    const { approval, event_id } = parked.structuredContent!;
    const token = await tokenFor('alice');
    const denied = await stack.request('POST', `/v1/approvals/${approval.id}/deny`, {
      token,
      body: { reason: 'not this sprint' },
    });
    expect(denied.status).toBe(200);

    const r = (await client.callTool({ name: 'oc_execute_approved', arguments: { event_id } })) as ToolResult;

    expect(r.isError).toBe(true);
    expect(r.structuredContent).toMatchObject({ status: 'denied', reason: 'not this sprint' });
    expect(textOf(r)).toContain('not this sprint');
    await client.close();
  });

  it('keep tenants apart: tenant2 neither reads nor resumes tenant1’s parked call', async () => {
    const one = await legacyClient(KEYS.tenant1);
    const parked = (await one.client.callTool({
      name: 'jira_issue_delete',
      arguments: { issue: 'OPS-9' },
    })) as ToolResult;
    const { event_id, approval } = parked.structuredContent!;
    expect((await approve(approval.id)).status).toBe(200);
    const two = await legacyClient(KEYS.tenant2);
    const before = connector.calls.length;

    const status = (await two.client.callTool({
      name: 'oc_approval_status',
      arguments: { event_id },
    })) as ToolResult;
    const run = (await two.client.callTool({
      name: 'oc_execute_approved',
      arguments: { event_id },
    })) as ToolResult;

    expect(status.structuredContent).toMatchObject({ status: 'not_found' });
    expect(status.isError).toBe(true);
    expect(run.structuredContent).toMatchObject({ status: 'not_found' });
    expect(connector.calls.length).toBe(before);
    // tenant2's own approver cannot approve it either; tenant1's still can run it.
    expect((await approve(approval.id, 'bob')).status).toBe(404);
    const mine = (await one.client.callTool({
      name: 'oc_execute_approved',
      arguments: { event_id },
    })) as ToolResult;
    expect(mine.structuredContent).toMatchObject({ status: 'executed' });
    await one.client.close();
    await two.client.close();
  });
});

describe('MCP: a deployment’s connectors', () => {
  it('offer only the tools whose connector is deployed (live, the template connector left out)', async () => {
    const live = await startTestStack({
      env: {
        OC_POLICY_DIR: dir,
        OC_CONNECTORS_MODE: 'live',
        OC_CONNECTOR_FUNCTIONS: JSON.stringify({ slack: 'oc-connector-slack', jira: 'oc-connector-jira' }),
      },
      overrides: { connectors: countingInvoker() },
    });
    try {
      const client = new Client({ name: 'live', version: '1' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${live.url}/mcp`), {
          requestInit: { headers: { 'X-API-Key': KEYS.tenant1 } },
          fetch: checkedFetch(live),
        }),
      );
      const names = (await client.listTools()).tools.map((t) => t.name);

      expect(names).toContain('slack_msg_post');
      expect(names).not.toContain('template_item_get');
      await client.close();
    } finally {
      await live.stop();
    }
  });
});

describe('MCP: the tenant’s rate limit', () => {
  it('share the REST bucket: other messages take a token at the edge (429), governed calls in the adapter (a tool error)', async () => {
    const limited = await startTestStack({
      env: { OC_POLICY_DIR: dir, OC_RATE_LIMIT_PER_SEC: '1', OC_RATE_LIMIT_BURST: '2' },
      overrides: { connectors: countingInvoker() },
    });
    try {
      const post = (body: unknown) =>
        limited.request('POST', '/mcp', { body, headers: { Accept: 'application/json, text/event-stream' } });
      const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
      const call = {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'slack_msg_post', arguments: { channel: '#a', text: 'x', idempotency_key: 'rl-1' } },
      };
      const answers = [await post(list), await post(list), await post(list)];
      const refused = await post(call);

      expect(answers.map((r) => r.status)).toEqual([200, 200, 429]);
      expect(answers[2]!.json).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
      expect(answers[2]!.headers['retry-after']).toMatch(/^[0-9]+$/);
      expect(refused.status).toBe(200);
      expect(refused.text).toMatch(/"isError":true/);
      expect(refused.text).toMatch(/RATE_LIMITED: too many requests; retry after [0-9]+ s\. Nothing ran\./);
    } finally {
      await limited.stop();
    }
  });
});

describe('MCP: protocol 2026-07-28', () => {
  it('serve a modern client: list and call, recorded with its protocol version', async () => {
    const { client } = await modernClient(KEYS.tenant1);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('slack_msg_post');
    expect(names).not.toContain('jira_issue_create');

    const r = (await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: '#general', text: 'modern' },
    })) as ToolResult;

    expect(r.structuredContent).toMatchObject({ ok: true });
    const fact = await decidedFact(r._meta!['openclause/event_id'] as string);
    expect(fact).toMatchObject({
      channel: 'mcp',
      client: { name: 'modern-agent', version: '2.0.0', protocol_version: '2026-07-28' },
    });
    await client.close();
  });

  it('return input_required pointing at the console; the retry runs the call only once an approver has approved', async () => {
    const rounds: Elicitation[] = [];
    const before = connector.calls.length;
    const { client } = await modernClient(KEYS.tenant1, {
      // The client's human opens the console page; an approver approves there (here: the API) on
      // the second round only, so the first retry finds the call still pending.
      onElicit: async (e) => {
        rounds.push(e);
        if (rounds.length === 2) {
          const id = /approvals\/([0-9a-f-]{36})$/.exec(e.url!)![1]!;
          expect((await approve(id)).status).toBe(200);
        }
      },
    });

    const r = (await client.callTool({
      name: 'jira_issue_delete',
      arguments: { issue: 'OPS-10' },
    })) as ToolResult;

    expect(rounds).toHaveLength(2);
    expect(rounds[0]).toMatchObject({ mode: 'url', url: expect.stringMatching(/\/console\/approvals\//) });
    expect(r.structuredContent).toMatchObject({ status: 'executed', result: { status: 'success' } });
    expect(connector.calls.length).toBe(before + 1);
    await client.close();
  });

  it('refuse a forged retry: requestState naming another tenant’s approved call runs nothing', async () => {
    const one = await legacyClient(KEYS.tenant1);
    const parked = (await one.client.callTool({
      name: 'jira_issue_delete',
      arguments: { issue: 'OPS-12' },
    })) as ToolResult;
    const { event_id, approval } = parked.structuredContent!;
    expect((await approve(approval.id)).status).toBe(200);
    const before = connector.calls.length;
    const envelope = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'forger', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': { elicitation: { url: {} } },
    };

    const forged = await stack.request('POST', '/mcp', {
      key: KEYS.tenant2,
      headers: {
        Accept: 'application/json, text/event-stream',
        'MCP-Protocol-Version': '2026-07-28',
        'Mcp-Method': 'tools/call',
        'Mcp-Name': 'jira_issue_delete',
      },
      body: {
        jsonrpc: '2.0',
        id: 9,
        method: 'tools/call',
        params: {
          name: 'jira_issue_delete',
          arguments: {},
          requestState: event_id,
          inputResponses: { approval: { action: 'accept' } },
          _meta: envelope,
        },
      },
    });

    expect(forged.status).toBe(200);
    expect(forged.json.result).toMatchObject({ isError: true });
    expect(textOf(forged.json.result)).toMatch(/^requestState refused: .*Nothing ran\./);
    expect(connector.calls.length).toBe(before);
    // Its own tenant's client still runs it, once.
    const mine = (await one.client.callTool({
      name: 'oc_execute_approved',
      arguments: { event_id },
    })) as ToolResult;
    expect(mine.structuredContent).toMatchObject({ status: 'executed' });
    expect(connector.calls.length).toBe(before + 1);
    await one.client.close();
  });

  it('answer pending (no elicitation) to a modern client without URL elicitation', async () => {
    const { client } = await modernClient(KEYS.tenant1);
    const r = (await client.callTool({
      name: 'jira_issue_delete',
      arguments: { issue: 'OPS-11' },
    })) as ToolResult;

    expect(r.structuredContent).toMatchObject({ status: 'pending' });
    await client.close();
  });
});

describe('MCP: the HTTP edge', () => {
  const ACCEPT = { Accept: 'application/json, text/event-stream' };
  const rpc = (body: unknown, headers: Record<string, string> = {}, key: string | null = KEYS.tenant1) =>
    stack.request('POST', '/mcp', { body, key, headers: { ...ACCEPT, ...headers } });

  it('answer no key or a wrong key with 401 and a WWW-Authenticate challenge, and nothing else', async () => {
    const none = await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, {}, null);
    const wrong = await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, {}, 'sk-wrong');

    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="openclause-mcp"');
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="openclause-mcp", error="invalid_token"');
    expect(Object.keys(wrong.json).sort()).toEqual(['code', 'message', 'request_id', 'retryable']);
    expect(wrong.text).not.toMatch(/tenant|tool/i);
  });

  it('give spec-correct answers to malformed JSON, a batch, an unknown method, a notification and oversized bodies', async () => {
    await stack.poller?.drained();
    const before = await tableSnapshot(stack.state.doc, stack.config.tableName);

    const malformed = await rpc('{"jsonrpc":');
    const notRpc = await rpc('{}');
    const unknown = await rpc({ jsonrpc: '2.0', id: 3, method: 'no/such' });
    const notification = await rpc({ jsonrpc: '2.0', method: 'notifications/initialized' });
    const batch = await rpc([
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    ]);
    const big = await rpc({
      jsonrpc: '2.0',
      id: 4,
      method: 'ping',
      params: { pad: 'x'.repeat(1024 * 1024) },
    });
    const xml = await rpc('<x/>', { 'Content-Type': 'application/xml' });
    const noAccept = await stack.request('POST', '/mcp', { body: { jsonrpc: '2.0', id: 5, method: 'ping' } });

    expect(malformed.status).toBe(400);
    expect(malformed.json.error.code).toBe(-32700);
    expect(notRpc.status).toBe(400);
    expect(notRpc.json.error.code).toBe(-32600);
    expect(unknown.status).toBe(200);
    expect(unknown.text).toMatch(/"code":-32601/);
    expect(notification.status).toBe(202);
    expect(notification.text).toBe('');
    expect(batch.status).toBe(200);
    expect(batch.text.match(/^data: /gm)).toHaveLength(2);
    expect(big.status).toBe(413);
    expect(big.json.code).toBe('PAYLOAD_TOO_LARGE');
    expect(xml.status).toBe(415);
    expect(noAccept.status).toBe(406);
    await stack.poller?.drained();
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
  });

  it('answer hostile tool arguments (lone surrogates, bidi marks, huge integers, deep nesting) without a 5xx', async () => {
    // Sent as raw JSON text: JSON.stringify would escape lone surrogates into valid JSON.
    const value: fc.Arbitrary<string> = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.string({ unit: 'binary', maxLength: 40 }).map((t) => JSON.stringify(t)),
        fc.constantFrom(
          '"\\ud800"',
          '"a\\u202eb"',
          '"x\\u200by"',
          '12345678901234567890',
          '1e400',
          'null',
          'true',
        ),
        fc.array(tie('v'), { maxLength: 4 }).map((a) => `[${a.join(',')}]`),
        fc.dictionary(fc.string({ unit: 'binary', maxLength: 12 }), tie('v'), { maxKeys: 4 }).map(
          (d) =>
            `{${Object.entries(d)
              .map(([k, x]) => `${JSON.stringify(k)}:${x}`)
              .join(',')}}`,
        ),
      ),
    })).v;
    const args = fc.oneof(
      fc.record({ channel: value, text: value }).map((r) => `{"channel":${r.channel},"text":${r.text}}`),
      fc.record({ id: value, key: value }).map((r) => `{"issue":${r.id},"idempotency_key":${r.key}}`),
      value,
    );
    const tools = fc.constantFrom(
      'slack_msg_post',
      'jira_issue_create',
      'jira_issue_delete',
      'oc_execute_approved',
    );
    await fc.assert(
      fc.asyncProperty(tools, args, fc.integer({ min: 1, max: 1e9 }), async (tool, a, id) => {
        const r = await stack.request('POST', '/mcp', {
          headers: { Accept: 'application/json, text/event-stream' },
          body: `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${tool}","arguments":${a}}}`,
        });
        expect(r.status).toBeLessThan(500);
        // Never an internal error: a tool error, a result, invalid params, or (not JSON) a parse error.
        expect(r.text).not.toMatch(/"code":-32603/);
      }),
      { numRuns: 150 },
    );
  });

  it('apply the REST body rules: not UTF-8 is 400, another charset 415, and nothing is recorded', async () => {
    await stack.poller?.drained();
    const before = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const calls = connector.calls.length;
    const call = (text: string) =>
      `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slack_msg_post","arguments":{"channel":"#general","text":"${text}"}}}`;
    // "caf\xe9": Latin-1 bytes, which a lenient decoder would record as U+FFFD.
    const latin1 = Buffer.from(call('caf\xe9'), 'latin1');

    const notUtf8 = await rpc(latin1);
    const declared = await rpc(latin1, { 'Content-Type': 'application/json; charset=iso-8859-1' });
    const utf16 = await rpc(call('x'), { 'Content-Type': 'application/json; charset=utf-16' });
    const utf8 = await rpc(
      { jsonrpc: '2.0', id: 2, method: 'ping' },
      { 'Content-Type': 'application/json; charset=UTF-8' },
    );

    expect(notUtf8.status).toBe(400);
    expect(notUtf8.json).toMatchObject({ code: 'BAD_REQUEST', message: 'request body is not valid UTF-8' });
    expect(declared.status).toBe(415);
    expect(declared.json.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(utf16.status).toBe(415);
    expect(utf8.status).toBe(200);
    expect(connector.calls.length).toBe(calls);
    await stack.poller?.drained();
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
  });

  it('answer a Unicode noncharacter in an argument’s value or key with a tool error, and record nothing', async () => {
    await stack.poller?.drained();
    const before = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const calls = connector.calls.length;
    const call = (id: number, name: string, args: Record<string, unknown>) =>
      rpc({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

    const answers = [
      await call(1, 'slack_msg_post', { channel: '#general', text: 'a\uffffb' }),
      await call(2, 'slack_msg_post', { channel: '#general', text: 'x', idempotency_key: 'k\ufdd0' }),
      await call(3, 'slack_msg_post', { channel: '#general', text: 'x', 'k\uffff': 'v' }),
      await call(4, 'jira_issue_create', {
        project: 'OPS',
        summary: 's',
        fields: { 'f\u{10ffff}': 'v' },
      }),
      await call(5, 'jira_issue_delete', { issue: 'OPS-1', note: '\ufffe' }),
    ];

    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(r.text).toMatch(/"isError":true/);
    }
    expect(connector.calls.length).toBe(calls);
    await stack.poller?.drained();
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
  });

  it('carry Cache-Control: no-store and X-Content-Type-Options: nosniff on every answer', async () => {
    const answers = [
      await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { Accept: 'application/json' }),
      await rpc([{ jsonrpc: '2.0', id: 1, method: 'ping' }]),
      await rpc({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      await rpc('{"jsonrpc":'),
      await rpc({ jsonrpc: '2.0', id: 1, method: 'ping' }, {}, 'sk-wrong'),
      await stack.request('GET', '/mcp', { headers: ACCEPT }),
    ];
    for (const r of answers) {
      // An SSE answer keeps the SDK's `no-store, no-cache, no-transform`: no-store is among them.
      expect(r.headers['cache-control']?.split(/,\s*/)).toContain('no-store');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('refuse a foreign Origin (DNS rebinding) and accept the gateway’s own', async () => {
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    const foreign = await rpc(list, { Origin: 'http://evil.example' });
    const own = await rpc(list, { Origin: 'http://localhost:3000' });

    expect(foreign.status).toBe(403);
    expect(foreign.json.code).toBe('FORBIDDEN');
    expect(own.status).toBe(200);
  });

  it('answer GET and DELETE with 405 (no server stream, no session to end): the endpoint is stateless', async () => {
    const get = await stack.request('GET', '/mcp');
    const del = await stack.request('DELETE', '/mcp', {
      headers: { 'Mcp-Session-Id': 'e30.AAAAAAAAAAAAAAAA' },
    });

    expect([get.status, del.status]).toEqual([405, 405]);
    expect([get.headers.allow, del.headers.allow]).toEqual(['POST', 'POST']);
  });

  it('let a 1.x client end its session: the 405 tells it there is none', async () => {
    const { client, transport } = await legacyClient(KEYS.tenant1);

    await expect(transport.terminateSession()).resolves.toBeUndefined();
    await client.close();
  });
});

/** A hand-written 2026-07-28 `tools/call` (what any client, or a forger, can send). */
const modernCall = (
  key: string,
  id: number | string,
  name: string,
  args: Record<string, unknown>,
  options: { requestState?: string; client?: string; elicitation?: boolean } = {},
) =>
  stack.request('POST', '/mcp', {
    key,
    headers: {
      Accept: 'application/json, text/event-stream',
      'MCP-Protocol-Version': '2026-07-28',
      'Mcp-Method': 'tools/call',
      'Mcp-Name': name,
      ...paramHeaders(name, args),
    },
    body: {
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: {
        name,
        arguments: args,
        ...(options.requestState !== undefined
          ? { requestState: options.requestState, inputResponses: { approval: { action: 'accept' } } }
          : {}),
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: options.client ?? 'hand-agent', version: '1' },
          'io.modelcontextprotocol/clientCapabilities':
            options.elicitation === false ? {} : { elicitation: { url: {} } },
        },
      },
    },
  });

describe('MCP: requestState is signed and bound to the call (2026-07-28)', () => {
  /** Park `jira_issue_delete` for a URL-elicitation client, approve it: its requestState. */
  async function parkedAndApproved(issue: string, client = 'hand-agent') {
    const parked = await modernCall(
      KEYS.tenant1,
      `park-${issue}`,
      'jira_issue_delete',
      { issue },
      { client },
    );
    expect(parked.status).toBe(200);
    const result = parked.json.result as {
      resultType: string;
      requestState: string;
      inputRequests: { approval: { params: { url: string } } };
    };
    expect(result.resultType).toBe('input_required');
    const approvalId = /approvals\/([0-9a-f-]{36})$/.exec(result.inputRequests.approval.params.url)![1]!;
    expect((await approve(approvalId)).status).toBe(200);
    return result.requestState;
  }

  it('refuse a retry that swaps the call: another tool, other arguments, another agent, a forged or tampered state; run nothing, record nothing', async () => {
    const state = await parkedAndApproved('OPS-20');
    // agent-b's key is used once first: its last-use time (written once a minute) is not the call's record.
    const listed = await stack.request('POST', '/mcp', {
      key: AGENT_KEYS.b,
      headers: { Accept: 'application/json, text/event-stream' },
      body: { jsonrpc: '2.0', id: 1, method: 'tools/list' },
    });
    expect(listed.status).toBe(200);
    await stack.poller?.drained();
    const before = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const calls = connector.calls.length;

    const swapped = await modernCall(
      KEYS.tenant1,
      'swap-1',
      'slack_msg_post',
      { channel: '#general', text: 'innocent' },
      { requestState: state },
    );
    const otherArgs = await modernCall(
      KEYS.tenant1,
      'swap-2',
      'jira_issue_delete',
      { issue: 'PROD-42' },
      { requestState: state },
    );
    const otherAgent = await modernCall(
      AGENT_KEYS.b,
      'swap-3',
      'jira_issue_delete',
      { issue: 'OPS-20' },
      { requestState: state },
    );
    const otherClient = await modernCall(
      KEYS.tenant1,
      'swap-4',
      'jira_issue_delete',
      { issue: 'OPS-20' },
      { requestState: state, client: 'another-agent' },
    );
    const [kid, v1, body, mac] = state.split('.');
    const flip = (t: string) =>
      t[5] === 'A' ? `${t.slice(0, 5)}B${t.slice(6)}` : `${t.slice(0, 5)}A${t.slice(6)}`;
    const tampered = await modernCall(
      KEYS.tenant1,
      'swap-5',
      'jira_issue_delete',
      { issue: 'OPS-20' },
      { requestState: [kid, v1, flip(body ?? 'AAAAAAAA'), mac].join('.') },
    );
    const rawEventId = await modernCall(
      KEYS.tenant1,
      'swap-6',
      'jira_issue_delete',
      { issue: 'OPS-20' },
      { requestState: '00000000-0000-4000-8000-000000000000' },
    );

    for (const r of [swapped, otherArgs, otherAgent, otherClient, tampered, rawEventId]) {
      expect(r.status).toBe(200);
      expect(r.json.result).toMatchObject({ isError: true });
      expect(textOf(r.json.result)).toMatch(/^requestState refused: .*Nothing ran\./);
    }
    expect(connector.calls.length).toBe(calls);
    expect(textOf(swapped.json.result)).toMatch(/issued for another call/);
    expect(state).not.toMatch(/^[0-9a-f-]{36}$/); // not the raw event id: signed
    await stack.poller?.drained();
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);

    // The call it was issued for, retried by its own caller, runs: once.
    const own = await modernCall(
      KEYS.tenant1,
      'own-1',
      'jira_issue_delete',
      { issue: 'OPS-20' },
      { requestState: state },
    );
    expect(own.json.result.structuredContent).toMatchObject({ status: 'executed' });
    expect(connector.calls.length).toBe(calls + 1);
    expect(connector.calls.at(-1)).toMatchObject({
      tool: 'jira',
      action: 'issue.delete',
      params: { issue: 'OPS-20' },
    });
  });
});

describe('MCP: derived idempotency keys belong to their sender', () => {
  it('run two agents’ identical first calls twice (official 2.x clients, keys bound to agent-a and agent-b)', async () => {
    const before = connector.calls.length;
    const a = await modernClient(AGENT_KEYS.a);
    const b = await modernClient(AGENT_KEYS.b);
    const args = { channel: '#general', text: 'first call of the day' };

    const ra = (await a.client.callTool({ name: 'slack_msg_post', arguments: args })) as ToolResult;
    const rb = (await b.client.callTool({ name: 'slack_msg_post', arguments: args })) as ToolResult;

    for (const r of [ra, rb]) {
      expect(r.isError).toBeFalsy();
      expect(r._meta!['openclause/replayed']).toBe(false);
      expect(textOf(r)).not.toMatch(/Replayed|IDEMPOTENCY_KEY_REUSED/);
    }
    expect(ra._meta!['openclause/event_id']).not.toBe(rb._meta!['openclause/event_id']);
    expect(connector.calls.length).toBe(before + 2);
    expect(connector.calls.slice(-2).map((c) => c.agent_id)).toEqual(['agent-a', 'agent-b']);
    await a.client.close();
    await b.client.close();
  });

  it('tell two clients of one unbound key apart, and replay only the same request re-sent, saying so first', async () => {
    const before = connector.calls.length;
    const args = { channel: '#general', text: 'same id, two clients' };

    const one = await modernCall(KEYS.tenant1, 0, 'slack_msg_post', args, { client: 'client-one' });
    const two = await modernCall(KEYS.tenant1, 0, 'slack_msg_post', args, { client: 'client-two' });
    const again = await modernCall(KEYS.tenant1, 0, 'slack_msg_post', args, { client: 'client-one' });

    expect(one.json.result._meta['openclause/replayed']).toBe(false);
    expect(two.json.result._meta['openclause/replayed']).toBe(false);
    expect(two.json.result._meta['openclause/event_id']).not.toBe(
      one.json.result._meta['openclause/event_id'],
    );
    expect(again.json.result._meta).toMatchObject({
      'openclause/replayed': true,
      'openclause/event_id': one.json.result._meta['openclause/event_id'],
    });
    expect(textOf(again.json.result)).toMatch(/^Replayed: nothing ran again/);
    expect(connector.calls.length).toBe(before + 2);
  });

  it('recognize a 2025 retry without a session across midnight UTC (no day scope)', async () => {
    const post = () =>
      stack.request('POST', '/mcp', {
        headers: { Accept: 'application/json, text/event-stream' },
        body: {
          jsonrpc: '2.0',
          id: 8101,
          method: 'tools/call',
          params: { name: 'slack_msg_post', arguments: { channel: '#general', text: 'around midnight' } },
        },
      });
    const result = (r: { text: string }) =>
      JSON.parse(/^data: (.*)$/m.exec(r.text)![1]!).result as ToolResult;
    const midnight = Date.parse(`${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}T00:00:00Z`);
    const before = connector.calls.length;

    clock.offsetMs = midnight - 1_000 - Date.now();
    const first = await post();
    clock.offsetMs = midnight + 1_000 - Date.now();
    const retry = await post();

    expect(result(first)._meta!['openclause/replayed']).toBe(false);
    expect(result(retry)._meta).toMatchObject({
      'openclause/replayed': true,
      'openclause/event_id': result(first)._meta!['openclause/event_id'],
    });
    expect(connector.calls.length).toBe(before + 1);
  });
});

describe('MCP: 2025 session ids are signed', () => {
  const call = (sessionId: string, key: string = KEYS.tenant1) =>
    stack.request('POST', '/mcp', {
      key,
      headers: { Accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId },
      body: {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'slack_msg_post', arguments: { channel: '#general', text: 'with a session' } },
      },
    });

  it('answer a forged, rebuilt, tampered or another key’s session id with 404 (session not found), and record nothing', async () => {
    const { transport, client } = await legacyClient(KEYS.tenant1);
    const real = transport.sessionId!;
    // What the server used to issue: the claims anyone could read in the evidence, and random bits.
    const claims = Buffer.from(JSON.stringify({ n: 'trusted-ci', v: '9.9.9', u: 0 })).toString('base64url');
    const rebuilt = `${claims}.AAAAAAAAAAAAAAAA`;
    const [kid, v1, body, mac] = real.split('.');
    const forgedBody = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(body ?? 'e30', 'base64url').toString()),
        p: { n: 'trusted-ci', v: '9', u: 0, r: 'AAAAAAAAAAAAAAAA' },
      }),
    ).toString('base64url');
    await stack.poller?.drained();
    const before = await tableSnapshot(stack.state.doc, stack.config.tableName);
    const calls = connector.calls.length;

    const answers = [
      await call(rebuilt),
      await call([kid, v1, forgedBody, mac].join('.')),
      await call(`${real}x`),
      await call(real, KEYS.tenant2),
      await call(real, AGENT_KEYS.a),
      await call('x'.repeat(5000)),
    ];

    for (const r of answers) {
      expect(r.status).toBe(404);
      expect(r.json).toMatchObject({
        jsonrpc: '2.0',
        error: { code: -32001, message: 'Session not found' },
        id: null,
      });
    }
    expect(connector.calls.length).toBe(calls);
    await stack.poller?.drained();
    expect(await tableSnapshot(stack.state.doc, stack.config.tableName)).toEqual(before);
    // The session the server issued still works, for its own key.
    expect((await call(real)).status).toBe(200);
    await client.close();
  });

  it('round-trip a client name and version of 128 non-ASCII characters each', async () => {
    const name = '中'.repeat(128);
    const version = '版'.repeat(128);
    const client = new Client({ name, version });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${stack.url}/mcp`), {
        requestInit: { headers: { 'X-API-Key': KEYS.tenant1 } },
        fetch: checkedFetch(),
      }),
    );
    const r = (await client.callTool({
      name: 'slack_msg_post',
      arguments: { channel: '#general', text: 'wide name' },
    })) as ToolResult;

    const fact = await decidedFact(r._meta!['openclause/event_id'] as string);
    expect(fact).toMatchObject({ channel: 'mcp', client: { name, version } });
    expect((fact.request as { session_id?: string }).session_id).toMatch(/^mcp-[A-Za-z0-9_-]{16}$/);
    await client.close();
  });

  it('keep accepting a session signed with the previous key after a rotation, and refuse it once that key is dropped', async () => {
    const keyFile = join(dir, 'mcp-state-keys.json');
    const started: TestStack[] = [];
    const on = async (file: string) => {
      const s = await startTestStack({
        env: { OC_POLICY_DIR: dir, OC_MCP_STATE_KEY_FILE: file },
        overrides: { connectors: countingInvoker() },
        tableName: stack.config.tableName,
        consumers: false, // reads only: the first stack's consumers keep the table's stream
      });
      started.push(s);
      return s;
    };
    const sessionOn = async (s: TestStack) => {
      const client = new Client({ name: 'rotating', version: '1' });
      const transport = new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), {
        requestInit: { headers: { 'X-API-Key': KEYS.tenant1 } },
        fetch: checkedFetch(s),
      });
      await client.connect(transport);
      return { client, sessionId: transport.sessionId! };
    };
    const list = (s: TestStack, sessionId: string) =>
      s.request('POST', '/mcp', {
        headers: { Accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId },
        body: { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      });
    try {
      const old = await sessionOn(await on(keyFile)); // the file is generated on first use
      const oldKid = old.sessionId.split('.')[0]!;
      const ring = readFileSync(keyFile, 'utf8');
      const rotatedFile = join(dir, 'mcp-state-keys-rotated.json');
      writeFileSync(rotatedFile, rotatedKeyRingText(ring));
      const droppedFile = join(dir, 'mcp-state-keys-dropped.json');
      writeFileSync(
        droppedFile,
        JSON.stringify({ ...JSON.parse(readFileSync(rotatedFile, 'utf8')), previous: [] }),
      );
      const rotated = await on(rotatedFile);
      const dropped = await on(droppedFile);

      const fresh = await sessionOn(rotated);
      expect(fresh.sessionId.split('.')[0]).not.toBe(oldKid);
      expect((await list(rotated, old.sessionId)).status).toBe(200);
      expect((await list(dropped, old.sessionId)).status).toBe(404);
      expect((await list(dropped, fresh.sessionId)).status).toBe(200);
      await old.client.close();
      await fresh.client.close();
    } finally {
      for (const s of started) await s.stop();
    }
  });
});

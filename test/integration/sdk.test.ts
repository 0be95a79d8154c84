/**
 * The agent SDK (sdk/) against the local stack: allow, deny, approve -> wait -> approve through
 * the API -> execute; denial and expiry end the wait with typed errors on the next poll; a 503
 * that swallows the first submit's answer is retried with the same idempotency key and the tool
 * runs once; an aborted signal stops the polling. Every response the SDK reads goes through the
 * tests' gateway client (checked against api/openapi.yaml).
 */
import type { Clock } from '../../functions/core/ports.js';
import {
  ApprovalDeniedError,
  ApprovalExpiredError,
  ApprovalWithdrawnError,
  createClient,
  NotApprovalGatedError,
  OpenClauseApiError,
  type OpenClauseClient,
} from '../../sdk/src/index.js';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker } from '../support/connectors.js';
import { contractFetch, type ContractFetch } from '../support/sdk-fetch.js';
import { KEYS, startTestStack, type TestStack } from '../support/stack.js';

const clock: Clock & { offsetMs: number } = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
const connector = countingInvoker();
let stack: TestStack;
let http: ContractFetch;
let sdk: OpenClauseClient;

beforeAll(async () => {
  stack = await startTestStack({ overrides: { connectors: connector, clock } });
});
afterAll(async () => {
  await stack.stop();
});
beforeEach(() => {
  clock.offsetMs = 0;
  http = contractFetch(stack);
  // Small backoff so retries are quick; the gateway's Retry-After still paces the polling.
  sdk = createClient({ baseUrl: stack.url, apiKey: KEYS.tenant1, fetch: http, retry: { baseDelayMs: 10 } });
});

const destructive = { agent_id: 'agent-sdk', tool: 'jira', action: 'issue.delete', resource: 'OPS-1' };
const executes = () => http.sent.filter((s) => s.path.endsWith('/execute'));
const approve = async (approvalId: string, body?: unknown) =>
  stack.request('POST', `/v1/approvals/${approvalId}/approve`, { token: await tokenFor('alice'), body });
const deny = async (approvalId: string, reason: string) =>
  stack.request('POST', `/v1/approvals/${approvalId}/deny`, {
    token: await tokenFor('alice'),
    body: { reason },
  });

describe('agent SDK against the local stack', () => {
  it('allow: submit runs the tool and returns its result, with one key and a W3C traceparent', async () => {
    const r = await sdk.submit({
      agent_id: 'agent-sdk',
      tool: 'slack',
      action: 'msg.post',
      params: { channel: '#general', text: 'hi' },
    });

    expect(r).toMatchObject({ decision: 'allow', result: { status: 'success', output: { ok: true } } });
    const [sent] = http.sent;
    const body = JSON.parse(sent!.body);
    expect(body.idempotency_key).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(sent!.headers.traceparent).toMatch(new RegExp(`^00-${body.trace_id}-[0-9a-f]{16}-01$`));
    expect(sent!.headers['x-api-key']).toBe(KEYS.tenant1);
    const stored = await sdk.get(r.event_id);
    expect(stored.request.trace_id).toBe(body.trace_id);
  });

  it('deny: submit returns the deny decision; waiting on it is NotApprovalGatedError, at once', async () => {
    const r = await sdk.submit({ agent_id: 'agent-sdk', tool: 'unknown', action: 'do.something' });

    expect(r).toMatchObject({ decision: 'deny', reason: 'action not in allowlist' });
    await expect(sdk.waitForApprovalThenExecute(r.event_id, { pollInterval: 50 })).rejects.toBeInstanceOf(
      NotApprovalGatedError,
    );
    expect(executes()).toHaveLength(1);
  });

  it('approve: waits while pending, a human approves through the API, then executes once', async () => {
    const r = await sdk.submit({ ...destructive, params: {} });
    expect(r.decision).toBe('approve');
    const approvalId = r.approval!.id;
    const calls = connector.calls.length;
    const pending: number[] = [];

    const execution = await sdk.waitForApprovalThenExecute(r.event_id, {
      pollInterval: 50,
      onPending: ({ attempt, nextPollMs }) => {
        pending.push(attempt);
        // The gateway's Retry-After (5 s) paces the polling, not the 50 ms asked for.
        expect(nextPollMs).toBeGreaterThanOrEqual(5_000);
        if (attempt === 1) void approve(approvalId, { comment: 'ok' });
      },
    });

    expect(pending).toEqual([1]);
    expect(execution).toMatchObject({
      parent_event_id: r.event_id,
      decision: 'allow',
      result: { status: 'success', output: { deleted: true, issue: 'OPS-1', mock: true } },
    });
    expect(connector.calls.length).toBe(calls + 1);
    expect((await sdk.approval(r.event_id))?.status).toBe('approved');
    // Executing again replays the same execution; the tool does not run again.
    expect((await sdk.execute(r.event_id)).event_id).toBe(execution.event_id);
    expect(connector.calls.length).toBe(calls + 1);
  });

  it('denied: the next poll throws ApprovalDeniedError with the approver’s reason', async () => {
    const r = await sdk.submit({ ...destructive, params: {} });

    const waiting = sdk.waitForApprovalThenExecute(r.event_id, {
      pollInterval: 50,
      onPending: ({ attempt }) => {
        if (attempt === 1) void deny(r.approval!.id, 'OPS-1 is referenced by the incident review');
      },
    });

    const error = await waiting.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApprovalDeniedError);
    expect(error).toMatchObject({
      reason: 'OPS-1 is referenced by the incident review',
      decidedBy: 'alice@acme.example',
      eventId: r.event_id,
    });
    // One pending answer, then the denial: no polling after a terminal answer.
    expect(executes()).toHaveLength(2);
  });

  it('expired: the next poll throws ApprovalExpiredError', async () => {
    const r = await sdk.submit({ ...destructive, params: {} });

    const waiting = sdk.waitForApprovalThenExecute(r.event_id, {
      pollInterval: 50,
      onPending: ({ attempt }) => {
        // Past the approval's TTL (24 h for tenant1).
        if (attempt === 1) clock.offsetMs = 25 * 3600 * 1000;
      },
    });

    await expect(waiting).rejects.toBeInstanceOf(ApprovalExpiredError);
    expect(executes()).toHaveLength(2);
  });

  it('withdraw: the agent takes its request back; the wait ends with ApprovalWithdrawnError and nothing runs', async () => {
    const calls = connector.calls.length;
    const r = await sdk.submit({ ...destructive, params: {} });
    const waiting = sdk.waitForApprovalThenExecute(r.event_id, {
      pollInterval: 50,
      onPending: ({ attempt }) => {
        if (attempt === 1) void sdk.withdraw(r.event_id);
      },
    });
    await expect(waiting).rejects.toBeInstanceOf(ApprovalWithdrawnError);
    const again = await sdk.withdraw(r.event_id);
    expect(again).toMatchObject({
      event_id: r.event_id,
      status: 'withdrawn',
      withdrawn_by: expect.any(String),
    });
    expect((await sdk.approval(r.event_id))?.status).toBe('withdrawn');
    expect(connector.calls.length).toBe(calls);
  });

  it('a 503 that swallows the first submit’s answer is retried with the same key; the tool runs once', async () => {
    const calls = connector.calls.length;
    http.replace = (sent, index) =>
      index === 0 && sent.path === '/v1/toolcalls'
        ? new Response('<html>503 Service Unavailable</html>', {
            status: 503,
            headers: { 'content-type': 'text/html', 'retry-after': '0' },
          })
        : undefined;

    const r = await sdk.submit({
      agent_id: 'agent-sdk',
      tool: 'slack',
      action: 'msg.post',
      params: { channel: '#general', text: 'once' },
    });

    expect(r).toMatchObject({ decision: 'allow', result: { status: 'success' } });
    expect(http.sent).toHaveLength(2);
    const [first, second] = http.sent.map((s) => JSON.parse(s.body));
    expect(second.idempotency_key).toBe(first.idempotency_key);
    expect(second.trace_id).toBe(first.trace_id);
    // Same trace, a new span per attempt.
    expect(http.sent[1]!.headers.traceparent).not.toBe(http.sent[0]!.headers.traceparent);
    expect(connector.calls.length).toBe(calls + 1);
  });

  it('a 4xx is not retried', async () => {
    const error = await sdk
      .submit({ agent_id: 'agent-sdk', tool: 'slack', action: 'msg.post', risk_score: 11 })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(OpenClauseApiError);
    expect(error).toMatchObject({ status: 422, code: 'VALIDATION_ERROR', retryable: false });
    expect(http.sent).toHaveLength(1);
  });

  it('an aborted signal stops the polling', async () => {
    const r = await sdk.submit({ ...destructive, params: {} });
    const controller = new AbortController();

    const waiting = sdk.waitForApprovalThenExecute(r.event_id, {
      signal: controller.signal,
      pollInterval: 50,
      onPending: () => controller.abort(new Error('user gave up')),
    });

    await expect(waiting).rejects.toThrow('user gave up');
    expect(executes()).toHaveLength(1);
    // The approval is still pending: nothing was decided or run on the agent's behalf.
    expect((await sdk.approval(r.event_id))?.status).toBe('pending');
  });

  it('another tenant’s key cannot read or execute the event', async () => {
    const r = await sdk.submit({ ...destructive, params: {} });
    const other = createClient({ baseUrl: stack.url, apiKey: KEYS.tenant2, fetch: http });

    await expect(other.get(r.event_id)).rejects.toMatchObject({ status: 404 });
    await expect(other.waitForApprovalThenExecute(r.event_id)).rejects.toMatchObject({ status: 404 });
  });
});

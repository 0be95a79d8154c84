/**
 * The Slack connector's approval actions against a loopback server standing in for the Slack
 * Web API: `chat.postMessage` once per request, `chat.update` with the outcome, `ok: false` as an
 * error, 429 with `Retry-After` honoured; and mock mode recording what it would post.
 */
import { slackUserEmail } from '../../functions/store/slack-users.js';
import { createSlackConnector } from '../../functions/connectors/slack.js';
import type { ConnectorRequest } from '../../functions/connectors/types.js';
import { decodeButtonValue } from '../../functions/core/slack-interaction.js';
import { logger } from '../../functions/shared/powertools.js';
import { loopbackServer, type LoopbackServer } from '../support/slack.js';

const TOKEN = 'xoxb-test-token-approvals';
const approval = {
  id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
  event_id: '0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
  tenant_id: 'tenant1',
  tool: 'jira',
  action: 'issue.delete',
  resource: 'OPS-42',
  risk_score: 7,
  reason: 'destructive action requires approval',
  agent_id: 'agent-7',
  user_id: 'dana@acme.example',
  expires_at: '2025-06-02T12:34:56.130Z',
};
const params = {
  channel: '#security-approvals',
  approval,
  console_url: `https://oc.example/console/approvals/${approval.id}`,
  summary: 'Approval requested: jira.issue.delete on OPS-42',
};
const request = (action: string, p: Record<string, unknown>): ConnectorRequest => ({
  event_id: approval.event_id,
  tenant_id: 'tenant1',
  agent_id: 'oc-notifications',
  tool: 'slack',
  action,
  params: p,
  resource: '',
});

/** The Web API takes form bodies; `blocks` travels as a JSON string inside. */
const blocksOf = (json: Record<string, unknown>) =>
  typeof json.blocks === 'string' ? JSON.parse(json.blocks) : json.blocks;

let slackApi: LoopbackServer;
beforeAll(async () => {
  logger.setLogLevel('SILENT');
  slackApi = await loopbackServer(() => ({
    status: 200,
    body: { ok: true, channel: 'C02SECURITY', ts: '1700000000.000100' },
  }));
});
afterAll(() => slackApi.close());
beforeEach(() => slackApi.received.splice(0));

const live = () =>
  createSlackConnector({ config: { mode: 'live', botToken: TOKEN }, apiBaseUrl: `${slackApi.url}/api` });

describe('slack.approval.request (live)', () => {
  it('posts the approval message once with chat.postMessage and returns its channel and ts', async () => {
    const r = await live()(request('approval.request', params));
    expect(r).toEqual({
      status: 'success',
      output: { ok: true, channel: 'C02SECURITY', ts: '1700000000.000100' },
    });
    expect(slackApi.received.map((x) => x.path)).toEqual(['/api/chat.postMessage']);
    const [sent] = slackApi.received;
    expect(sent?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(sent?.json.channel).toBe('#security-approvals');
    expect(sent?.json.text).toBe('Approval needed: jira.issue.delete on OPS-42 (risk 7)');
    const blocks = blocksOf(sent!.json);
    const actions = blocks.find((b: { type: string }) => b.type === 'actions');
    expect(actions.elements.map((e: { action_id: string }) => e.action_id)).toEqual([
      'oc_approve',
      'oc_deny',
      'oc_open',
    ]);
    expect(decodeButtonValue(actions.elements[0].value)).toEqual({
      d: 'approve',
      r: approval.id,
      e: approval.event_id,
      t: 'tenant1',
      // The view the message showed whole: its hash (core/approval-view.ts).
      h: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('treats ok:false as an error, with Slack’s code and nothing else', async () => {
    slackApi.reply({ status: 200, body: { ok: false, error: 'channel_not_found' } });
    const r = await live()(request('approval.request', params));
    expect(r).toEqual({
      status: 'error',
      error: { code: 'UPSTREAM_ERROR', message: 'slack: channel_not_found' },
    });
    expect(JSON.stringify(r)).not.toContain(TOKEN);
  });

  it('waits out a short Retry-After on 429 and posts once it is allowed', async () => {
    slackApi.reply({
      status: 429,
      headers: { 'Retry-After': '1' },
      body: { ok: false, error: 'ratelimited' },
    });
    const r = await live()(request('approval.request', params));
    expect(r.status).toBe('success');
    expect(slackApi.received.map((x) => x.path)).toEqual(['/api/chat.postMessage', '/api/chat.postMessage']);
  });

  it('fails a long Retry-After at once, saying when to retry, and does not hammer Slack', async () => {
    slackApi.reply({
      status: 429,
      headers: { 'Retry-After': '30' },
      body: { ok: false, error: 'ratelimited' },
    });
    const r = await live()(request('approval.request', params));
    expect(r).toEqual({
      status: 'error',
      error: { code: 'UPSTREAM_ERROR', message: 'slack: ratelimited (retry after 30 s)' },
    });
    expect(slackApi.received).toHaveLength(1);
  });

  it('refuses params it cannot build a message from', async () => {
    const r = await live()(request('approval.request', { ...params, console_url: 'not a url' }));
    expect(r.status).toBe('error');
    expect(r.error?.code).toBe('INVALID_PARAMS');
    expect(slackApi.received).toHaveLength(0);
  });
});

describe('slack.approval.update (live)', () => {
  it('replaces the message with chat.update: who approved, buttons gone', async () => {
    const r = await live()(
      request('approval.update', {
        ...params,
        ts: '1700000000.000100',
        outcome: { status: 'approved', decided_by: 'alice@acme.example' },
      }),
    );
    expect(r.status).toBe('success');
    const [sent] = slackApi.received;
    expect(sent?.path).toBe('/api/chat.update');
    expect(sent?.json).toMatchObject({ channel: '#security-approvals', ts: '1700000000.000100' });
    const blocks = JSON.stringify(blocksOf(sent!.json));
    expect(blocks).toContain('Approved by alice@acme.example');
    expect(blocks).not.toContain('oc_approve');
  });

  it('says who denied and why, or that it expired', async () => {
    for (const [outcome, expected] of [
      [{ status: 'denied', decided_by: 'slack:U123', deny_reason: 'freeze' }, 'Denied by <@U123>: freeze'],
      [{ status: 'expired' }, 'Expired without a decision'],
      [
        { status: 'revoked_by_policy', decided_by: 'slack:U123', reason: 'deletes are frozen' },
        'Approved by <@U123>, then revoked: the policy changed and the live policy refused it (deletes are frozen)',
      ],
    ] as const) {
      slackApi.received.splice(0);
      await live()(request('approval.update', { ...params, ts: '1700000000.000100', outcome }));
      expect(JSON.stringify(blocksOf(slackApi.received[0]!.json))).toContain(expected);
    }
  });
});

describe('slack.approval.update for a quorum vote (issue 21)', () => {
  it('keeps the request and its buttons, with who has voted and what is still needed', async () => {
    slackApi.received.splice(0);
    await live()(
      request('approval.update', {
        ...params,
        ts: '1700000000.000100',
        outcome: {
          status: 'pending',
          progress: '1 of 2 approvals; needs 1 more from finance',
          voters: ['alice'],
        },
      }),
    );
    const blocks = JSON.stringify(blocksOf(slackApi.received[0]!.json));
    expect(slackApi.received[0]?.path).toBe('/api/chat.update');
    expect(blocks).toContain('1 of 2 approvals; needs 1 more from finance. Voted: alice');
    expect(blocks).toContain('oc_approve');
  });
});

describe('slack.approval.update of a pending request (issue 21: reminder, extension)', () => {
  it('re-renders the request with its buttons, the new deadline and the note', async () => {
    const r = await live()(
      request('approval.update', {
        ...params,
        approval: { ...params.approval, expires_at: '2030-01-02T10:00:00.000Z' },
        ts: '1700000000.000100',
        outcome: { status: 'pending', note: 'Deadline extended by alice@acme.example' },
      }),
    );
    expect(r.status).toBe('success');
    const [sent] = slackApi.received;
    expect(sent?.path).toBe('/api/chat.update');
    const blocks = JSON.stringify(blocksOf(sent!.json));
    expect(blocks).toContain('Deadline extended by alice@acme.example');
    expect(blocks).toContain('oc_deny');
    expect(blocks).toContain('2030-01-02T10:00:00.000Z');
  });
});

describe('mock mode', () => {
  it('records what it would post and update, and calls nobody', async () => {
    const mock = createSlackConnector({ config: { mode: 'mock' }, now: () => new Date(1_700_000_000_000) });
    const posted = await mock(request('approval.request', params));
    expect(posted.output).toMatchObject({
      mock: true,
      ok: true,
      channel: '#security-approvals',
      ts: '1700000000.000001',
    });
    expect(JSON.stringify(posted.output?.message)).toContain('oc_approve');
    const updated = await mock(
      request('approval.update', { ...params, ts: '1700000000.000001', outcome: { status: 'expired' } }),
    );
    expect(updated.output).toMatchObject({ mock: true, ts: '1700000000.000001' });
    expect(JSON.stringify(updated.output?.message)).toContain('Expired');
    expect(slackApi.received).toHaveLength(0);
  });
});

describe('users.info', () => {
  it("gives the clicker's email (separation of duties in live mode)", async () => {
    slackApi.reply({
      status: 200,
      body: { ok: true, user: { id: 'U123', profile: { email: 'dana@acme.example' } } },
    });
    const apiUrl = `${slackApi.url}/api/`;
    await expect(slackUserEmail(TOKEN, 'U123', { apiUrl })).resolves.toBe('dana@acme.example');
    expect(slackApi.received[0]?.path).toBe('/api/users.info');
    expect(slackApi.received[0]?.json.user).toBe('U123');
    expect(slackApi.received[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    slackApi.reply({ status: 200, body: { ok: false, error: 'user_not_found' } });
    await expect(slackUserEmail(TOKEN, 'U404', { apiUrl })).rejects.toThrow(
      'slack users.info: user_not_found',
    );
    slackApi.reply({ status: 500, body: { ok: false } });
    await expect(slackUserEmail(TOKEN, 'U500', { apiUrl })).rejects.toThrow('slack users.info: HTTP 500');
  });
});

/**
 * The Slack route end to end on the local stack: stream -> outbox -> fauxqs -> delivery worker ->
 * the live Slack connector (`@slack/web-api`) -> a loopback server standing in for the Slack Web
 * API. One `chat.postMessage` per approval, one `chat.update` of that message after a decision made
 * through the API (or the expiry sweep), `ok: false` and 429 retried, and no other tenant's
 * approval ever reaching this tenant's channel.
 */
import { tokenFor } from '../support/approvers.js';
import { waitFor } from '../support/processes.js';
import { liveSlackConnectors, loopbackServer, type LoopbackServer, type Recorded } from '../support/slack.js';
import { KEYS, policyDirWithRoutes, startTestStack, toolCall, type TestStack } from '../support/stack.js';

const TOKEN = 'xoxb-route-test-token';
let stack: TestStack;
let slackApi: LoopbackServer;
let posted = 0;

/** The approval id a posted or updated message is about (its Open button links to the console). */
const approvalOf = (r: Recorded): string | undefined =>
  /console\/approvals\/([0-9a-f-]{36})/.exec(String(r.json.blocks ?? ''))?.[1];
const calls = (method: string, approvalId: string) =>
  slackApi.on(`/api/${method}`).filter((r) => approvalOf(r) === approvalId);

beforeAll(async () => {
  slackApi = await loopbackServer((r) => {
    if (r.path === '/api/chat.postMessage')
      return { status: 200, body: { ok: true, channel: 'C0SECURITY', ts: `1700000000.${++posted}` } };
    return { status: 200, body: { ok: true, channel: String(r.json.channel), ts: String(r.json.ts) } };
  });
  const policyDir = policyDirWithRoutes({
    tenant1: [{ kind: 'slack', channel: '#security-approvals' }],
    tenant2: [],
  });
  stack = await startTestStack({
    env: { OC_POLICY_DIR: policyDir },
    notifications: { env: { OC_WEBHOOK_RETRY_BASE_SEC: '1', OC_WEBHOOK_RETRY_CAP_SEC: '2' } },
    overrides: {
      // The real Slack connector in live mode, its Web API on loopback.
      connectors: liveSlackConnectors(`${slackApi.url}/api`, TOKEN),
    },
  });
});
afterAll(async () => {
  await stack?.stop();
  await slackApi?.close();
});

async function park(resource: string, key: string = KEYS.tenant1) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource, params: {} }),
    key,
  );
  expect(r.json.decision).toBe('approve');
  return r.json.approval.id as string;
}

const deliveries = async (approvalId: string) =>
  (await stack.request('GET', `/v1/approvals/${approvalId}/deliveries`, { token: await tokenFor('alice') }))
    .json.items as { event_type: string; status: string; route: unknown; attempts: number }[];

describe('the Slack route', () => {
  it('shows a slack.msg.post approval its channel and text (invisible characters as ⟨U+…⟩), Approve carrying the view hash', async () => {
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({
        tool: 'slack',
        action: 'msg.post',
        resource: '',
        risk_score: 9,
        params: { channel: '#ops', text: 'Deploy finished \u202e:eludehcs ot gnidrocca\u202c ok' },
      }),
    );
    expect(r.json.decision).toBe('approve');
    const id = r.json.approval.id as string;
    const [post] = await waitFor('chat.postMessage', () =>
      calls('chat.postMessage', id).length ? calls('chat.postMessage', id) : undefined,
    );
    const blocks = JSON.parse(String(post!.json.blocks)) as any[];
    const shown = blocks
      .filter((b) => String(b.block_id).startsWith('oc_view'))
      .map((b) => b.text.text)
      .join('\n');
    expect(shown).toContain('Target: #ops');
    expect(shown).toContain('channel = "#ops"');
    expect(shown).toContain('text = "Deploy finished ⟨U+202E⟩:eludehcs ot gnidrocca⟨U+202C⟩ ok"');
    const approve = blocks.find((b) => b.type === 'actions').elements[0];
    expect(approve.text.text).toBe('Approve: post #ops');
    const value = JSON.parse(Buffer.from(approve.value, 'base64url').toString('utf8'));
    expect(value.h).toBe(r.json.approval.view.hash);
  });

  it('posts the approval message once, then updates it once when the API approves', async () => {
    const id = await park('SLACK-1');
    const [post] = await waitFor('chat.postMessage', () =>
      calls('chat.postMessage', id).length ? calls('chat.postMessage', id) : undefined,
    );
    expect(post!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(post!.json.channel).toBe('#security-approvals');
    const blocks = JSON.parse(String(post!.json.blocks)) as {
      type: string;
      elements?: { action_id: string }[];
    }[];
    // tenant1's policy data allows extensions (issue 21): Extend too; no standing grants for jira.
    expect(blocks.find((b) => b.type === 'actions')?.elements?.map((e) => e.action_id)).toEqual([
      'oc_approve',
      'oc_deny',
      'oc_extend',
      'oc_open',
    ]);
    const ts = `1700000000.${posted}`;

    const approved = await stack.request('POST', `/v1/approvals/${id}/approve`, {
      token: await tokenFor('alice'),
      body: {},
    });
    expect(approved.status).toBe(200);
    const [update] = await waitFor('chat.update', () =>
      calls('chat.update', id).length ? calls('chat.update', id) : undefined,
    );
    expect(update!.json.channel).toBe('C0SECURITY');
    expect(update!.json.ts).toBe(ts);
    expect(update!.json.text).toBe('Approved: jira.issue.delete on SLACK-1 (risk 6)');
    expect(String(update!.json.blocks)).toContain('Approved by alice@acme.example');
    expect(JSON.parse(String(update!.json.blocks)).some((b: { type: string }) => b.type === 'actions')).toBe(
      false,
    );

    const items = await waitFor('both deliveries recorded', async () => {
      const all = await deliveries(id);
      return all.length === 2 && all.every((d) => d.status === 'delivered') ? all : undefined;
    });
    expect(items.map((d) => d.event_type).sort()).toEqual(['oc.approval.decided', 'oc.approval.requested']);
    expect(items[0]!.route).toEqual({ kind: 'slack', channel: '#security-approvals' });
    // Nothing more is ever sent for this approval.
    await new Promise((r) => setTimeout(r, 1500));
    expect(calls('chat.postMessage', id)).toHaveLength(1);
    expect(calls('chat.update', id)).toHaveLength(1);
  });

  it('offers Approve + calls like it where policy allows a standing grant, and the update after one keeps showing it', async () => {
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({
        resource: '#deploys',
        params: { channel: '#deploys', text: 'Deploy finished' },
        risk_score: 9,
      }),
    );
    expect(r.json.decision).toBe('approve');
    const id = r.json.approval.id as string;
    const [post] = await waitFor('chat.postMessage', () =>
      calls('chat.postMessage', id).length ? calls('chat.postMessage', id) : undefined,
    );
    const actions = (JSON.parse(String(post!.json.blocks)) as any[]).find((b) => b.type === 'actions');
    expect(actions.elements.map((e: { action_id: string }) => e.action_id)).toEqual([
      'oc_approve',
      'oc_grant',
      'oc_deny',
      'oc_extend',
      'oc_open',
    ]);
    // The shipped tenant1: slack.msg.post grants of at most 10 uses and 1 h; the default scope is those.
    expect(actions.elements[1].confirm.text.text).toContain(
      'for 1 hour up to 10 more calls by agent-1 of slack.msg.post on #deploys',
    );

    const created = await stack.request('POST', `/v1/approvals/${id}/standing-grant`, {
      token: await tokenFor('alice'),
      body: JSON.stringify({ target_pattern: '#deploys', max_uses: 3, expires_in_sec: 600 }),
    });
    expect(created.status).toBe(201);
    const grantId = created.json.standing_grant.id as string;
    const [update] = await waitFor('chat.update', () =>
      calls('chat.update', id).length ? calls('chat.update', id) : undefined,
    );
    const text = String(update!.json.blocks);
    expect(text).toContain('Approved by alice@acme.example');
    expect(text).toContain(`Standing grant* \`${grantId}\``);
    expect(text).toContain('up to 3 uses');
    expect(text).toContain(`npx oc grants revoke ${grantId} --tenant tenant1`);
  });

  it('writes the deny reason into the updated message', async () => {
    const id = await park('SLACK-2');
    await waitFor('chat.postMessage', () => (calls('chat.postMessage', id).length ? true : undefined));
    const denied = await stack.request('POST', `/v1/approvals/${id}/deny`, {
      token: await tokenFor('alice'),
      body: { reason: 'not during the freeze' },
    });
    expect(denied.status).toBe(200);
    const [update] = await waitFor('chat.update', () =>
      calls('chat.update', id).length ? calls('chat.update', id) : undefined,
    );
    expect(update!.json.text).toBe('Denied: jira.issue.delete on SLACK-2 (risk 6)');
    expect(String(update!.json.blocks)).toContain('Denied by alice@acme.example');
    expect(String(update!.json.blocks)).toContain('not during the freeze');
  });

  it('retries ok:false and a 429 with Retry-After, and posts exactly once when Slack recovers', async () => {
    slackApi.reply(
      { status: 200, body: { ok: false, error: 'internal_error' } },
      { status: 429, headers: { 'Retry-After': '1' }, body: { ok: false, error: 'ratelimited' } },
    );
    const id = await park('SLACK-3');
    const requested = await waitFor('the message posted after two refusals', async () => {
      const [d] = (await deliveries(id)).filter((x) => x.event_type === 'oc.approval.requested');
      return d?.status === 'delivered' ? d : undefined;
    });
    // ok:false fails the first attempt (the worker retries it); the 429 of the second is honoured
    // by the Web API client inside that attempt, which then posts.
    expect(requested.attempts).toBe(2);
    expect(calls('chat.postMessage', id)).toHaveLength(3);
  });

  it('never posts another tenant’s approval to this channel', async () => {
    const before = slackApi.received.length;
    const id = await park('SLACKT-2', KEYS.tenant2);
    await new Promise((r) => setTimeout(r, 2000));
    expect(slackApi.received.slice(before).filter((r) => approvalOf(r) === id)).toEqual([]);
  });
});

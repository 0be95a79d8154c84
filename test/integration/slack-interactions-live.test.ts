/**
 * Live mode: separation of duties compares the requester with the clicker's Slack email too,
 * which `users.info` gives (a loopback server stands in for the Slack Web API); when Slack cannot
 * say, nothing is decided (fail closed).
 */
import { countingInvoker } from '../support/connectors.js';
import { tokenFor } from '../support/approvers.js';
import {
  clickPayload,
  formBody,
  loopbackServer,
  signedHeaders,
  type LoopbackServer,
} from '../support/slack.js';
import { startTestStack, toolCall, type TestStack } from '../support/stack.js';

let stack: TestStack;
let slackApi: LoopbackServer;
let hooks: LoopbackServer;

beforeAll(async () => {
  slackApi = await loopbackServer(() => ({
    status: 200,
    body: { ok: true, user: { id: 'U123', profile: { email: 'dana@acme.example' } } },
  }));
  hooks = await loopbackServer();
  stack = await startTestStack({
    env: {
      OC_CONNECTORS_MODE: 'live',
      SLACK_BOT_TOKEN: 'xoxb-live-test-token',
      OC_SLACK_API_URL: `${slackApi.url}/api/`,
    },
    overrides: { connectors: countingInvoker() },
  });
  // The connectors read their credentials from the environment (slackConfigSource).
  process.env.OC_CONNECTORS_MODE = 'live';
  process.env.SLACK_BOT_TOKEN = 'xoxb-live-test-token';
});
afterAll(async () => {
  delete process.env.OC_CONNECTORS_MODE;
  delete process.env.SLACK_BOT_TOKEN;
  await stack.stop();
  await slackApi.close();
  await hooks.close();
});

async function parked(userId: string) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-9', params: {}, user_id: userId }),
  );
  return { eventId: r.json.event_id as string, approvalId: r.json.approval.id as string };
}

async function clickAsU123(approvalId: string, eventId: string) {
  // The Approve button of a message that showed the whole view carries the view's hash.
  const viewHash = (
    await stack.request('GET', `/v1/approvals/${approvalId}`, { token: await tokenFor('alice') })
  ).json.view.hash as string;
  const body = formBody(
    clickPayload({ decision: 'approve', approvalId, eventId, viewHash, responseUrl: `${hooks.url}/h` }),
  );
  return stack.request('POST', '/slack/interactions', { key: null, body, headers: signedHeaders(body) });
}

const statusOf = async (id: string) =>
  (await stack.request('GET', `/v1/approvals/${id}`, { token: await tokenFor('alice') })).json.status;

describe('a Slack click in live mode', () => {
  it('refuses the requester, recognised by the Slack email users.info gives', async () => {
    const { eventId, approvalId } = await parked('dana@acme.example');
    const r = await clickAsU123(approvalId, eventId);
    expect(r.json).toEqual({ outcome: 'self_approval' });
    const lookup = slackApi.received.find((x) => x.path === '/api/users.info');
    expect(lookup?.json.user).toBe('U123');
    expect(lookup?.headers.authorization).toBe('Bearer xoxb-live-test-token');
    expect(await statusOf(approvalId)).toBe('pending');
  });

  it('decides for someone else', async () => {
    const { eventId, approvalId } = await parked('erin@acme.example');
    expect((await clickAsU123(approvalId, eventId)).json).toEqual({ outcome: 'approved' });
    expect(await statusOf(approvalId)).toBe('approved');
  });

  it('decides nothing when Slack cannot say who the clicker is (503, retryable)', async () => {
    const { eventId, approvalId } = await parked('erin@acme.example');
    slackApi.reply({ status: 200, body: { ok: false, error: 'user_not_found' } });
    const r = await clickAsU123(approvalId, eventId);
    expect([r.status, r.json.code, r.json.retryable]).toEqual([503, 'UNAVAILABLE', true]);
    expect(await statusOf(approvalId)).toBe('pending');
  });
});

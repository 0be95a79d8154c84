/**
 * What the approver sees is what runs, over generated requests (fast-check, fixed seed): for every
 * parked `slack.msg.post`, every param value appears, visibly (no invisible code point left raw; each
 * shown as ⟨U+XXXX⟩ and decodable back to the exact value), in every surface that offers a decision
 * (the API's view the console renders, the Slack message with its one-click Approve, the webhook's
 * view) or that surface says how much it left out and offers no one-click Approve; and after an
 * approval naming that view's hash, the connector receives exactly the params of that view.
 * Local stack: DynamoDB Local's stream, fauxqs, the live Slack connector against a loopback Slack
 * Web API, a real webhook receiver.
 */
import fc from 'fast-check';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { tokenFor } from '../support/approvers.js';
import { waitFor } from '../support/processes.js';
import { liveSlackConnectors, loopbackServer, type LoopbackServer, type Recorded } from '../support/slack.js';
import { policyDirWithRoutes, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { decodeShown, hostileText, INVISIBLE, shownParam } from '../support/view-property.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

let stack: TestStack;
let slackApi: LoopbackServer;
let receiver: Receiver;
let posted = 0;

const approvalMessage = (approvalId: string): Recorded | undefined =>
  slackApi
    .on('/api/chat.postMessage')
    .find((r) => String(r.json.blocks ?? '').includes(`console/approvals/${approvalId}`));

beforeAll(async () => {
  slackApi = await loopbackServer((r) =>
    r.path === '/api/chat.postMessage'
      ? { status: 200, body: { ok: true, channel: 'C0SECURITY', ts: `1700000000.${++posted}` } }
      : { status: 200, body: { ok: true, channel: String(r.json.channel), ts: String(r.json.ts) } },
  );
  receiver = await startReceiver('/hooks/view');
  const policyDir = policyDirWithRoutes({
    tenant1: [
      { kind: 'slack', channel: '#security-approvals' },
      { kind: 'webhook', url: receiver.url, secret_ref: DEV_WEBHOOK.secretRef },
    ],
    tenant2: [],
  });
  stack = await startTestStack({
    env: { OC_POLICY_DIR: policyDir },
    notifications: { env: { OC_WEBHOOK_SECRETS: `${DEV_WEBHOOK.secretRef}=${DEV_WEBHOOK.secret}` } },
    overrides: {
      connectors: liveSlackConnectors(`${slackApi.url}/api`, 'xoxb-view-property'),
    },
  });
});
afterAll(async () => {
  await stack?.stop();
  await slackApi?.close();
  await receiver?.close();
});

it('shows every param visibly on every deciding surface, and runs exactly the params of the view approved', async () => {
  // At least one part, and a prefix: Slack refuses an empty text.
  const text = hostileText({ minParts: 1, maxParts: 8 }).map((t) => `m ${t}`);
  const token = await tokenFor('alice');
  let ran = 0;
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('#ops', '#deploys'), text, async (channel, message) => {
      const r = await stack.post(
        '/v1/toolcalls',
        toolCall({
          tool: 'slack',
          action: 'msg.post',
          resource: '',
          risk_score: 9,
          params: { channel, text: message },
        }),
      );
      expect(r.status).toBe(200);
      expect(r.json.decision).toBe('approve');
      const approvalId = r.json.approval.id as string;

      // The API's view: what the console renders above its buttons.
      const approval = await stack.request('GET', `/v1/approvals/${approvalId}`, { token });
      const view = approval.json.view as { hash: string; lines: string[] };
      for (const line of view.lines) expect([line, INVISIBLE.test(line)]).toEqual([line, false]);
      expect(decodeShown(shownParam(view.lines, 'text')!)).toBe(message);
      expect(decodeShown(shownParam(view.lines, 'channel')!)).toBe(channel);

      // The webhook: the same view, the same hash.
      const event = await waitFor(`webhook of ${approvalId}`, async () =>
        receiver.received.find(
          (m) => m.json?.subject === approvalId && m.json?.type === 'oc.approval.requested',
        ),
      );
      expect(event.json.data.view.hash).toBe(view.hash);
      expect(decodeShown(shownParam(event.json.data.view.lines, 'text')!)).toBe(message);

      // Slack: the whole view with a one-click Approve naming that view, or "and N more" and none.
      const post = await waitFor(`Slack message of ${approvalId}`, async () => approvalMessage(approvalId));
      const blocks = JSON.parse(String(post.json.blocks)) as Array<Record<string, any>>;
      const shown = blocks
        .filter((b) => String(b.block_id).startsWith('oc_view'))
        .map((b) => String(b.text.text))
        .join('\n')
        .split('\n');
      const approve = blocks
        .find((b) => b.type === 'actions')
        ?.elements.find((e: Record<string, any>) => String(e.text?.text ?? '').startsWith('Approve'));
      if (approve) {
        expect(decodeShown(shownParam(shown, 'text')!)).toBe(message);
        const value = JSON.parse(Buffer.from(approve.value, 'base64url').toString('utf8'));
        expect(value.h).toBe(view.hash);
      } else expect(JSON.stringify(blocks)).toMatch(/and \d+ more/);
      for (const line of shown) expect([line, INVISIBLE.test(line)]).toEqual([line, false]);

      // Approved on that view, executed once: the connector gets exactly the view's params.
      const decided = await stack.request('POST', `/v1/approvals/${approvalId}/approve`, {
        token,
        body: { view_hash: view.hash },
      });
      expect(decided.status).toBe(200);
      const executed = await stack.post(`/v1/toolcalls/${r.json.event_id}/execute`, undefined);
      expect(executed.json.result.status).toBe('success');
      const sent = slackApi
        .on('/api/chat.postMessage')
        .filter((m) => m.json.blocks === undefined && m.json.text === message);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.json.channel).toBe(channel);
      ran += 1;
    }),
    { seed: 20261207, numRuns: 20 },
  );
  expect(ran).toBe(20);
});

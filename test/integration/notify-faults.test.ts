/**
 * The outbox and the delivery worker failing while approvals are created, then recovering:
 * nothing is lost and nothing is sent twice. Faults are injected around the REAL clients (SQS on
 * fauxqs, DynamoDB Local): the outbox cannot enqueue for a while (the stream retries it), then the
 * delivery worker's record writes fail for a while (its messages come back after their visibility).
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { tokenFor } from '../support/approvers.js';
import {
  dynamoEndpoint,
  policyDirWithRoutes,
  startTestStack,
  toolCall,
  type TestStack,
} from '../support/stack.js';
import { startReceiver, verifySignatures, type Receiver } from '../support/webhook-receiver.js';

const faults = { sqsSend: false, recordUpdates: false, refusedSends: 0, refusedUpdates: 0 };
let stack: TestStack;
let receiver: Receiver;

function faultySqs(): SQSClient {
  const sqs = new SQSClient({ endpoint: process.env.OC_TEST_SQS_ENDPOINT });
  const send = sqs.send.bind(sqs) as (command: unknown, options?: unknown) => Promise<unknown>;
  (sqs as { send: unknown }).send = async (command: { constructor: { name: string } }, options?: unknown) => {
    if (faults.sqsSend && command.constructor.name === 'SendMessageBatchCommand') {
      faults.refusedSends += 1;
      throw Object.assign(new Error('injected fault'), { name: 'InternalError', $fault: 'server' });
    }
    return send(command, options);
  };
  return sqs;
}

function faultyDoc() {
  const doc = createDocumentClient({ endpoint: dynamoEndpoint(), maxAttempts: 1 });
  const send = doc.send.bind(doc) as (command: unknown) => Promise<unknown>;
  (doc as { send: unknown }).send = async (command: { constructor: { name: string } }) => {
    if (faults.recordUpdates && command.constructor.name === 'UpdateCommand') {
      faults.refusedUpdates += 1;
      throw Object.assign(new Error('injected fault'), { name: 'InternalServerError', $fault: 'server' });
    }
    return send(command);
  };
  return doc;
}

beforeAll(async () => {
  receiver = await startReceiver('/hooks/faults');
  stack = await startTestStack({
    env: {
      OC_POLICY_DIR: policyDirWithRoutes({
        tenant1: [{ kind: 'webhook', url: receiver.url, secret_ref: DEV_WEBHOOK.secretRef }],
      }),
    },
    notifications: {
      env: {
        OC_WEBHOOK_SECRETS: `${DEV_WEBHOOK.secretRef}=${DEV_WEBHOOK.secret}`,
        OC_WEBHOOK_TIMEOUT_MS: '1000',
        OC_WEBHOOK_RETRY_BASE_SEC: '1',
        OC_WEBHOOK_RETRY_CAP_SEC: '1',
      },
      overrides: { sqs: faultySqs(), doc: faultyDoc() },
    },
  });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

const park = async (resource: string) => {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource, params: {} }),
  );
  expect(r.json.decision).toBe('approve');
  return r.json.approval.id as string;
};

it('outbox failing, then the delivery worker failing, while approvals are created: each arrives exactly once', async () => {
  faults.sqsSend = true;
  const during: string[] = [];
  for (let i = 0; i < 4; i++) during.push(await park(`FAULTA-${i + 1}`));
  // The outbox has seen them and failed (the stream holds its position and retries).
  const deadline = Date.now() + 20_000;
  while (faults.refusedSends < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(faults.refusedSends).toBeGreaterThanOrEqual(2);
  expect(receiver.received).toHaveLength(0);

  // The outbox recovers as the delivery worker starts failing to record its attempts.
  faults.recordUpdates = true;
  faults.sqsSend = false;
  for (let i = 0; i < 4; i++) during.push(await park(`FAULTB-${i + 1}`));
  while (faults.refusedUpdates < 2 && Date.now() < deadline + 20_000)
    await new Promise((r) => setTimeout(r, 100));
  expect(faults.refusedUpdates).toBeGreaterThanOrEqual(2);
  // Nothing is sent while the worker cannot take its lease.
  expect(receiver.received).toHaveLength(0);
  faults.recordUpdates = false;

  await receiver.waitFor(during.length, 60_000);
  await new Promise((r) => setTimeout(r, 3000));
  expect(receiver.received).toHaveLength(during.length);
  expect(receiver.received.map((r) => r.json.subject).sort()).toEqual([...during].sort());
  receiver.received.forEach((r) => verifySignatures(r, DEV_WEBHOOK.secret));
  const token = await tokenFor('alice');
  for (const id of during) {
    const r = await stack.request('GET', `/v1/approvals/${id}/deliveries`, { token });
    expect(r.json.items).toHaveLength(1);
    expect(r.json.items[0]).toMatchObject({ status: 'delivered', last_status_code: 200 });
  }
}, 150_000);

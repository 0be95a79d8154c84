/**
 * The notification path survives a crash of `npm start` (ARCHITECTURE: fauxqs keeps messages in
 * memory; the delivery records in DynamoDB are the durable truth): deliveries queued and retrying
 * when the whole stack is SIGKILLed are re-enqueued from their records by the next `npm start`,
 * and each arrives once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { tokenFor } from '../support/approvers.js';
import { gatewayClient } from '../support/gateway-client.js';
import { npmStart as startNpm, stackPorts, type NpmStart } from '../support/npm-start.js';
import { dynamoDbJava, isAlive, waitFor } from '../support/processes.js';
import { policyDirWithRoutes, toolCall } from '../support/stack.js';
import { startReceiver, verifySignatures, type Receiver } from '../support/webhook-receiver.js';

const KEY = 'sk-test-key-1';

const runs: NpmStart[] = [];
let receiver: Receiver;
let dataDir: string;

function npmStart(env: Record<string, string>): NpmStart {
  const run = startNpm(env);
  runs.push(run);
  return run;
}

afterAll(async () => {
  for (const run of runs) await run.stop();
  await receiver?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

it('kill -9 with deliveries queued; the next npm start re-enqueues them from their records: each arrives once', async () => {
  receiver = await startReceiver('/hooks/approvals');
  let up = false;
  // Retry-After is a floor under the jittered backoff: no second attempt before the crash.
  receiver.answer = () => (up ? { status: 200 } : { status: 503, headers: { 'Retry-After': '3600' } });
  const policyDir = policyDirWithRoutes({
    tenant1: [{ kind: 'webhook', url: receiver.url, secret_ref: DEV_WEBHOOK.secretRef }],
  });
  dataDir = mkdtempSync(path.join(process.env.OC_TEST_TMP!, 'notify-restart-'));
  const ports = await stackPorts();
  const { PORT, OC_DYNAMODB_PORT } = ports;
  const env = {
    ...ports,
    OC_DATA_DIR: dataDir,
    OC_POLICY_DIR: policyDir,
  };
  const client = gatewayClient(`http://127.0.0.1:${PORT}`);
  const ready = (run: NpmStart) =>
    waitFor(`/readyz\n${run.output()}`, async () => {
      if (run.npm.exitCode !== null) throw new Error(`npm start exited:\n${run.output()}`);
      const r = await client.request('GET', '/readyz', { key: KEY });
      return r.status === 200 ? true : undefined;
    });

  const first = npmStart(env);
  await ready(first);
  const approvals: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await client.request('POST', '/v1/toolcalls', {
      key: KEY,
      body: toolCall({ tool: 'jira', action: 'issue.delete', resource: `OPSR-${i + 1}`, params: {} }),
    });
    expect(r.json.decision).toBe('approve');
    approvals.push(r.json.approval.id);
  }
  const token = await tokenFor('alice');
  // Each has been tried once (503) and is waiting for its next attempt in the queue.
  for (const id of approvals)
    await waitFor(`first attempt of ${id}`, async () => {
      const r = await client.request('GET', `/v1/approvals/${id}/deliveries`, { token });
      const item = r.json?.items?.[0];
      return item?.status === 'pending' && item.attempts === 1 && item.next_attempt_at ? true : undefined;
    });
  // Let DynamoDB Local write its data files before the crash (it loses what it acknowledged just before a SIGKILL).
  await new Promise((r) => setTimeout(r, 3000));
  process.kill(-first.npm.pid!, 'SIGKILL');
  await first.exited;
  // DynamoDB Local runs in its own process group: its guardian stops it once npm's node is gone.
  await waitFor('DynamoDB Local of the killed stack gone', async () => {
    const java = dynamoDbJava(Number(OC_DYNAMODB_PORT));
    return java === undefined || !isAlive(java.pid) ? true : undefined;
  });
  const triedBefore = receiver.received.length;
  expect(triedBefore).toBe(3);

  up = true;
  const second = npmStart(env);
  await ready(second);
  await receiver.waitFor(triedBefore + 3, 60_000);
  // Nothing more arrives: each was delivered once.
  await new Promise((r) => setTimeout(r, 3000));
  const after = receiver.received.slice(triedBefore);
  expect(after).toHaveLength(3);
  expect(after.map((r) => r.json.subject).sort()).toEqual([...approvals].sort());
  after.forEach((r) => verifySignatures(r, DEV_WEBHOOK.secret));
  for (const id of approvals) {
    const r = await client.request('GET', `/v1/approvals/${id}/deliveries`, { token });
    expect(r.json.items[0]).toMatchObject({ status: 'delivered', attempts: 2, last_status_code: 200 });
  }
  expect(second.output()).toContain('re-enqueued 3 pending notification(s)');
  process.kill(-second.npm.pid!, 'SIGTERM');
  await second.exited;
}, 170_000);

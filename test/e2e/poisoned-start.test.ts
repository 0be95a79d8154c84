/**
 * `npm start` never refuses to start because of one stored record. The fixture is a data folder
 * written by the gateway before records could be parked (test/fixtures/poisoned-stack/README.md):
 * a U+FFFF approval held the outbox, a tenant2 approval waited behind it, a deny reason held
 * U+FFFF too, and the next `npm start` failed with "notification enqueue refused". A copy of it
 * now starts, and every approval in it is announced.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { gatewayClient } from '../support/gateway-client.js';
import { npmStart, stackPorts, type NpmStart } from '../support/npm-start.js';
import { waitFor } from '../support/processes.js';
import { policyDirWithRoutes } from '../support/stack.js';
import { startReceiver, verifySignatures, type Receiver } from '../support/webhook-receiver.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The receiver the fixture's approvals name (their routes were recorded with them). */
const FIXTURE_WEBHOOK_PORT = 48090;

let stack: NpmStart | undefined;
let receiver: Receiver | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

it('starts on a data folder a U+FFFF approval poisoned, and announces every approval in it', async () => {
  receiver = await startReceiver('/hooks/approvals', FIXTURE_WEBHOOK_PORT);
  dataDir = mkdtempSync(path.join(process.env.OC_TEST_TMP!, 'poisoned-'));
  cpSync(path.join(ROOT, 'test/fixtures/poisoned-stack/data'), dataDir, { recursive: true });
  const route = [{ kind: 'webhook', url: receiver.url, secret_ref: DEV_WEBHOOK.secretRef }];
  const policyDir = policyDirWithRoutes({ tenant1: route, tenant2: route });
  const ports = await stackPorts();
  stack = npmStart({
    ...ports,
    OC_DATA_DIR: dataDir,
    OC_POLICY_DIR: policyDir,
    OC_ALLOW_PRIVATE_WEBHOOKS: 'true',
  });
  const { npm, output } = stack;
  const client = gatewayClient(`http://127.0.0.1:${ports.PORT}`);
  await waitFor(`/readyz\n${output()}`, async () => {
    if (npm.exitCode !== null) throw new Error(`npm start exited:\n${output()}`);
    const r = await client.request('GET', '/readyz', { key: 'sk-test-key-1' });
    return r.status === 200 ? true : undefined;
  });
  // tenant1's poisoned request, tenant2's approval that waited behind it, and tenant1's denied one
  // (requested and decided, with its U+FFFF deny reason).
  const received = await receiver.waitFor(4, 60_000);
  received.forEach((r) => verifySignatures(r, DEV_WEBHOOK.secret));
  const seen = received.map((r) => `${r.json.data.tenant_id} ${r.json.type} ${r.json.data.resource}`).sort();
  expect(seen).toEqual([
    'tenant1 oc.approval.decided OPS-9',
    'tenant1 oc.approval.requested OPS-9',
    'tenant1 oc.approval.requested OPS-\uffff1',
    'tenant2 oc.approval.requested OPS-7',
  ]);
  const poisoned = received.find((r) => r.json.data.resource === 'OPS-\uffff1')!;
  expect(poisoned.json.data.agent_id).toBe('agent-\uffff');
  expect(poisoned.json.data.raw.params).toEqual({ note: 'poison \uffff \ufffe' });
  const denied = received.find((r) => r.json.type === 'oc.approval.decided')!;
  expect(denied.json.data).toMatchObject({ decision: 'denied', deny_reason: 'no \uffff way' });
  expect(output()).not.toMatch(/failed to start|outbox failed/);
}, 170_000);

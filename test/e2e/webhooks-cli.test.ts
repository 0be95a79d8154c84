/**
 * `oc webhooks listen` and `oc webhooks redrive` as the real CLI process: the receiver verifies
 * both signatures and prints each event (and refuses a tampered one); redrive moves one tenant's
 * dead-lettered notifications back, and they are delivered once the receiver recovers.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../bin/local/emulators.js';
import { cloudEventBody, signatureHeaders } from '../../functions/core/notifications.js';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { postWebhook } from '../../functions/store/webhook-http.js';
import { tokenFor } from '../support/approvers.js';
import { runOc } from '../support/cli.js';
import { waitFor } from '../support/processes.js';
import { KEYS, policyDirWithRoutes, startTestStack, toolCall } from '../support/stack.js';
import { startReceiver } from '../support/webhook-receiver.js';

/** The product's own webhook client (loopback allowed), posting to the CLI's receiver. */
async function post(port: number, body: string, headers: Record<string, string>): Promise<number> {
  const answer = await postWebhook(`http://127.0.0.1:${port}/hooks/approvals`, body, headers, {
    allowPrivate: true,
    timeoutMs: 10_000,
  });
  return answer.statusCode;
}

it('listen: verifies both signatures, prints each event, refuses a tampered body', async () => {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [path.resolve('bin/oc.js'), 'webhooks', 'listen', '--port', String(port)],
    {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise((resolve) => child.once('close', resolve));
  try {
    await waitFor(`listen to start\n${out}`, () => (out.includes('listening on') ? true : undefined), 60_000);
    const body = cloudEventBody({
      id: 'd-1',
      type: 'oc.approval.requested',
      source: 'oc://approvals',
      subject: 'approval-1',
      time: new Date().toISOString(),
      data: { tenant_id: 'tenant1', summary: 'agent-1 requests jira.issue.delete on OPS-1' } as never,
    });
    const headers = {
      'Content-Type': 'application/cloudevents+json',
      ...signatureHeaders(DEV_WEBHOOK.secret, 'd-1', body, new Date()),
    };
    expect(await post(port, body, headers)).toBe(200);
    expect(await post(port, body.replace('OPS-1', 'OPS-2'), headers)).toBe(401);
    const wrongHmac = { ...headers, 'X-OC-Signature-256': `sha256=${'0'.repeat(64)}` };
    expect(await post(port, body, wrongHmac)).toBe(401);
    await waitFor('the lines', () =>
      out.split('\n').filter((l) => l.includes('REJECTED')).length >= 2 ? true : undefined,
    );
    expect(out).toMatch(/oc\.approval\.requested subject=approval-1 id=d-1 tenant=tenant1 signatures=ok/);
    expect(out).toContain('agent-1 requests jira.issue.delete on OPS-1');
    expect(out).toMatch(/REJECTED POST \/hooks\/approvals: webhook-signature/);
    expect(out).toMatch(/REJECTED POST \/hooks\/approvals: X-OC-Signature-256 does not match/);
  } finally {
    child.kill('SIGTERM');
    await closed;
  }
});

it('listen: a secret that is not whsec_ is a usage error (one line, exit 2)', async () => {
  const r = await runOc(['webhooks', 'listen', '--secret', 'plain']);
  expect(r.code).toBe(2);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toContain('whsec_');
});

it("redrive --tenant moves that tenant's dead-lettered notifications back; they are delivered once", async () => {
  const receiver = await startReceiver('/hooks/r');
  let up = false;
  receiver.answer = () => ({ status: up ? 200 : 500 });
  const other = 'whsec_' + Buffer.from('tenant-two-webhook-secret-bytes!').toString('base64');
  const stack = await startTestStack({
    env: {
      OC_POLICY_DIR: policyDirWithRoutes({
        tenant1: [{ kind: 'webhook', url: receiver.url, secret_ref: DEV_WEBHOOK.secretRef }],
        tenant2: [{ kind: 'webhook', url: receiver.url, secret_ref: 'two' }],
      }),
    },
    notifications: {
      env: {
        OC_WEBHOOK_SECRETS: `${DEV_WEBHOOK.secretRef}=${DEV_WEBHOOK.secret},two=${other}`,
        OC_WEBHOOK_RETRY_BASE_SEC: '1',
        OC_WEBHOOK_RETRY_CAP_SEC: '1',
      },
    },
  });
  try {
    const park = async (key: string) => {
      const r = await stack.post(
        '/v1/toolcalls',
        toolCall({ tool: 'jira', action: 'issue.delete', resource: 'X-1', params: {} }),
        key,
      );
      return r.json.approval.id as string;
    };
    const mine = await park(KEYS.tenant1);
    const theirs = await park(KEYS.tenant2);
    const dead = async (id: string, who: 'alice' | 'bob') => {
      const r = await stack.request('GET', `/v1/approvals/${id}/deliveries`, { token: await tokenFor(who) });
      return r.json.items[0]?.status === 'dead' ? true : undefined;
    };
    await waitFor('both dead', async () =>
      (await dead(mine, 'alice')) && (await dead(theirs, 'bob')) ? true : undefined,
    );
    up = true;
    const sqsPort = new URL(process.env.OC_TEST_SQS_ENDPOINT!).port;
    const r = await runOc(['webhooks', 'redrive', '--tenant', 'tenant1', '--table', stack.config.tableName], {
      OC_AWS_PORT: sqsPort,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(
      'moved 1 notification(s) from the DLQ back to the queue; left 1 of other tenants',
    );
    await waitFor('tenant1 delivered', async () => {
      const l = await stack.request('GET', `/v1/approvals/${mine}/deliveries`, {
        token: await tokenFor('alice'),
      });
      return l.json.items[0]?.status === 'delivered' ? true : undefined;
    });
    await new Promise((res) => setTimeout(res, 2000));
    const delivered = receiver.received.filter((x) => x.json.subject === mine);
    expect(delivered).toHaveLength(11);
    expect(receiver.received.filter((x) => x.json.subject === theirs)).toHaveLength(10);
    expect(await dead(theirs, 'bob')).toBe(true);
  } finally {
    await stack.stop();
    await receiver.close();
  }
}, 150_000);

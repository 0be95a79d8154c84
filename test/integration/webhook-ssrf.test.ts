/**
 * The webhook client's SSRF guard against real receivers on loopback (W22): every blocked address
 * class is refused before any connection; a name that resolves to 127.0.0.1 is refused; the
 * connection goes to the address that was checked (no second lookup); a 302 to a private address
 * is not followed; a receiver that trickles its answer is abandoned at the deadline; a connection
 * that fails at once (the pinned address unreachable) is a retried WebhookUnreachable, never an
 * error thrown past the caller (issue 20: it used to exit the process, in a loop across restarts).
 */
import { postWebhook, WebhookRefused, WebhookUnreachable } from '../../functions/store/webhook-http.js';
import { WebhookSender } from '../../functions/store/webhook-sender.js';
import { envWebhookSecrets } from '../../functions/store/webhook-secrets.js';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { tokenFor } from '../support/approvers.js';
import { policyDirWithRoutes, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { REFUSED_ADDRESSES, REFUSED_URLS } from '../support/webhook-vectors.js';
import { startReceiver, verifySignatures, type Receiver } from '../support/webhook-receiver.js';

let receiver: Receiver;
let target: Receiver;

beforeAll(async () => {
  receiver = await startReceiver('/hook');
  target = await startReceiver('/internal');
});
afterAll(async () => {
  await receiver.close();
  await target.close();
});
beforeEach(() => {
  receiver.answer = () => ({ status: 200 });
});

const strict = { allowPrivate: false, timeoutMs: 2000 };

describe('refused before connecting', () => {
  it.each([
    ['loopback', '127.0.0.1'],
    ['loopback (other)', '127.1.2.3'],
    ['"this network"', '0.0.0.0'],
    ['private 10/8', '10.0.0.1'],
    ['private 172.16/12', '172.16.5.4'],
    ['private 192.168/16', '192.168.0.10'],
    ['link-local / metadata', '169.254.169.254'],
    ['CGNAT', '100.64.0.1'],
    ['multicast', '224.0.0.251'],
    ['reserved', '240.0.0.1'],
    ['IPv6 loopback', '[::1]'],
    ['IPv4-mapped loopback', '[::ffff:127.0.0.1]'],
    ['IPv6 unique local / EC2 metadata', '[fd00:ec2::254]'],
    ['IPv6 link-local', '[fe80::1]'],
    ['IPv6 multicast', '[ff02::1]'],
  ])('%s (%s)', async (_name, host) => {
    const before = receiver.connections;
    await expect(
      postWebhook(`https://${host}:${receiver.port}/hook`, '{}', {}, strict),
    ).rejects.toBeInstanceOf(WebhookRefused);
    expect(receiver.connections).toBe(before);
  });

  it.each(REFUSED_URLS)('the vector table: %s (%s)', async (_name, url) => {
    const before = receiver.connections;
    // Refused before any DNS query (a query would be a miss: unreachable, not refused).
    let lookups = 0;
    const resolve = async (): Promise<never> => {
      lookups += 1;
      throw new Error('no DNS in this test');
    };
    await expect(postWebhook(url, '{}', {}, { ...strict, resolve })).rejects.toBeInstanceOf(WebhookRefused);
    expect(lookups).toBe(0);
    expect(receiver.connections).toBe(before);
  });

  it.each(REFUSED_ADDRESSES)('a name that resolves to %s', async (address) => {
    await expect(
      postWebhook(
        `https://hooks.example.com:${receiver.port}/hook`,
        '{}',
        {},
        {
          ...strict,
          resolve: async () => [{ address, family: address.includes(':') ? 6 : 4 }],
        },
      ),
    ).rejects.toBeInstanceOf(WebhookRefused);
  });

  it('a hostname that resolves to 127.0.0.1 (or to any non-public address among others)', async () => {
    const before = receiver.connections;
    for (const addresses of [
      [{ address: '127.0.0.1', family: 4 }],
      [
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.1', family: 4 },
      ],
      [{ address: '::ffff:169.254.169.254', family: 6 }],
    ])
      await expect(
        postWebhook(
          `https://hooks.example.com:${receiver.port}/hook`,
          '{}',
          {},
          {
            ...strict,
            resolve: async () => addresses,
          },
        ),
      ).rejects.toBeInstanceOf(WebhookRefused);
    // Real DNS: localhost resolves to loopback.
    await expect(
      postWebhook(`https://localhost:${receiver.port}/hook`, '{}', {}, strict),
    ).rejects.toBeInstanceOf(WebhookRefused);
    await expect(postWebhook(`http://hooks.example.com/hook`, '{}', {}, strict)).rejects.toThrow(/https/);
    expect(receiver.connections).toBe(before);
  });
});

describe('what is sent goes where it was checked', () => {
  it('connects to the resolved, checked address, with no second lookup', async () => {
    let lookups = 0;
    const answer = await postWebhook(
      `http://receiver.invalid:${receiver.port}/hook`,
      '{"a":1}',
      {},
      {
        allowPrivate: true,
        timeoutMs: 2000,
        resolve: async () => {
          lookups += 1;
          return [{ address: '127.0.0.1', family: 4 }];
        },
      },
    );
    expect(answer.statusCode).toBe(200);
    expect(lookups).toBe(1);
    const last = receiver.received.at(-1)!;
    expect(last.body).toBe('{"a":1}');
    // The Host header names the URL's host (what TLS would check), not the address.
    expect(last.headers.host).toBe(`receiver.invalid:${receiver.port}`);
  });

  it('a 302 to a private address is not followed', async () => {
    receiver.answer = () => ({ status: 302, headers: { Location: target.url } });
    const before = target.connections;
    const answer = await postWebhook(receiver.url, '{}', {}, { allowPrivate: true, timeoutMs: 2000 });
    expect(answer.statusCode).toBe(302);
    await new Promise((r) => setTimeout(r, 300));
    expect(target.connections).toBe(before);
    expect(target.received).toHaveLength(0);
  });

  it('a slow-loris receiver is abandoned at the deadline', async () => {
    receiver.answer = () => ({ stall: true });
    const started = Date.now();
    await expect(
      postWebhook(receiver.url, '{}', {}, { allowPrivate: true, timeoutMs: 1500 }),
    ).rejects.toBeInstanceOf(WebhookUnreachable);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(6000);
  });
});

describe('at load', () => {
  it('the local host refuses to start on a route named with a trailing dot', async () => {
    await expect(
      startTestStack({
        env: {
          OC_POLICY_DIR: policyDirWithRoutes({
            tenant1: [
              {
                kind: 'webhook',
                url: 'https://[2606:4700:4700::1111]/hook',
                secret_ref: DEV_WEBHOOK.secretRef,
              },
              {
                kind: 'webhook',
                url: 'https://metadata.google.internal./x',
                secret_ref: DEV_WEBHOOK.secretRef,
              },
            ],
          }),
        },
        notifications: { env: { OC_ALLOW_PRIVATE_WEBHOOKS: 'false' } },
      }),
    ).rejects.toThrow(
      /^notification routes refused: tenant1\.notify\[1\]\.url names a host that is not public$/,
    );
  });
});

describe('a connection that fails at once (issue 20)', () => {
  // Connecting to 255.255.255.255 fails inside connect() itself (ENETUNREACH or EACCES), as an
  // IPv6-only receiver does on an IPv4-only host: the error comes before any callback could run.
  const unreachable = {
    allowPrivate: true,
    timeoutMs: 2000,
    resolve: async () => [{ address: '255.255.255.255', family: 4 }],
  };

  it.each(['http', 'https'])('%s: a WebhookUnreachable, and the process goes on', async (scheme) => {
    for (let i = 0; i < 3; i++)
      await expect(
        postWebhook(`${scheme}://receiver.invalid:${receiver.port}/hook`, '{}', {}, unreachable),
      ).rejects.toBeInstanceOf(WebhookUnreachable);
    // Any error emitted late, with no listener, would fail this test (jest reports it): wait for it.
    await new Promise((r) => setTimeout(r, 200));
    const answer = await postWebhook(receiver.url, '{}', {}, { allowPrivate: true, timeoutMs: 2000 });
    expect(answer.statusCode).toBe(200);
  });

  it('whatever http(s) throws while it sets the request up is a WebhookUnreachable too', async () => {
    // A header value Node refuses throws inside Node's request call, before any socket exists.
    await expect(
      postWebhook(receiver.url, '{}', { 'X-Bad': 'a\nb' }, { allowPrivate: true, timeoutMs: 2000 }),
    ).rejects.toBeInstanceOf(WebhookUnreachable);
  });

  it('the sender retries it', async () => {
    const sender = new WebhookSender({
      secrets: envWebhookSecrets(`${DEV_WEBHOOK.secretRef}=${DEV_WEBHOOK.secret}`),
      eventSource: 'oc://approvals',
      ...unreachable,
    });
    for (const scheme of ['http', 'https']) {
      const out = await sender.send(
        {
          v: 1,
          delivery_id: '6b0e3b2a-1c2d-8e3f-9a4b-5c6d7e8f9a0c',
          tenant_id: 'tenant1',
          approval_id: 'a1',
          event_type: 'oc.approval.requested',
          route_index: 0,
          route: {
            kind: 'webhook',
            url: `${scheme}://receiver.invalid:${receiver.port}/hook`,
            secret_ref: DEV_WEBHOOK.secretRef,
          },
          time: '2026-01-01T00:00:00.000Z',
          data: { summary: 's' } as never,
        },
        { now: new Date(), attempt: 1 },
      );
      expect(out).toMatchObject({ kind: 'retry', error: expect.stringMatching(/^connection failed/) });
    }
  });
});

describe('the delivery worker, on a receiver whose connection fails at once (issue 20)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({
      env: {
        OC_POLICY_DIR: policyDirWithRoutes({
          tenant1: ['http', 'https'].map((scheme) => ({
            kind: 'webhook',
            url: `${scheme}://v6-only.invalid:${receiver.port}/hook`,
            secret_ref: DEV_WEBHOOK.secretRef,
          })),
        }),
      },
      notifications: {
        env: {
          OC_WEBHOOK_SECRETS: `${DEV_WEBHOOK.secretRef}=${DEV_WEBHOOK.secret}`,
          OC_WEBHOOK_TIMEOUT_MS: '1000',
          OC_WEBHOOK_RETRY_BASE_SEC: '30',
          OC_WEBHOOK_RETRY_CAP_SEC: '30',
        },
        overrides: { resolve: async () => [{ address: '255.255.255.255', family: 4 }] },
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('records each delivery pending with the error, and goes on serving', async () => {
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource: 'UNREACHABLE-1', params: {} }),
    );
    expect(r.json.decision).toBe('approve');
    const id = r.json.approval.id as string;
    const token = await tokenFor('alice');
    const deadline = Date.now() + 30_000;
    let items: { status: string; attempts: number; last_error?: string }[] = [];
    while (Date.now() < deadline) {
      items = (await stack.request('GET', `/v1/approvals/${id}/deliveries`, { token })).json.items;
      if (items.length === 2 && items.every((d) => d.attempts >= 1)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(items).toHaveLength(2);
    for (const d of items)
      expect(d).toMatchObject({
        status: 'pending',
        attempts: 1,
        last_error: expect.stringMatching(/^connection failed/),
      });
    // Still serving.
    expect((await stack.request('GET', `/v1/approvals/${id}`, { token })).status).toBe(200);
  }, 60_000);
});

describe('the webhook sender', () => {
  const message = (url: string, secretRef: string = DEV_WEBHOOK.secretRef) => ({
    v: 1 as const,
    delivery_id: '6b0e3b2a-1c2d-8e3f-9a4b-5c6d7e8f9a0b',
    tenant_id: 'tenant1',
    approval_id: 'a1',
    event_type: 'oc.approval.requested' as const,
    route_index: 0,
    route: { kind: 'webhook' as const, url, secret_ref: secretRef },
    time: '2026-01-01T00:00:00.000Z',
    data: { summary: 's' } as never,
  });
  const sender = (allowPrivate: boolean, onSecretUnavailable = () => undefined) =>
    new WebhookSender({
      secrets: envWebhookSecrets(`${DEV_WEBHOOK.secretRef}=${DEV_WEBHOOK.secret}`),
      eventSource: 'oc://approvals',
      allowPrivate,
      timeoutMs: 2000,
      onSecretUnavailable,
    });

  it('refuses a blocked address for good (no retry loop), and signs what it sends', async () => {
    const ctx = { now: new Date(), attempt: 1 };
    const refused = await sender(false).send(message(receiver.url), ctx);
    expect(refused.kind).toBe('failed');
    const sent = await sender(true).send(message(receiver.url), ctx);
    expect(sent).toMatchObject({ kind: 'delivered', statusCode: 200 });
    verifySignatures(receiver.received.at(-1)!, DEV_WEBHOOK.secret);
  });

  it('never sends unsigned: an unresolvable secret fails for good, loudly', async () => {
    const before = receiver.connections;
    const told: string[] = [];
    const out = await sender(true, ((ref: string) => void told.push(ref)) as never).send(
      message(receiver.url, 'no_such_ref'),
      { now: new Date(), attempt: 1 },
    );
    expect(out).toMatchObject({ kind: 'failed' });
    expect(told).toEqual(['no_such_ref']);
    expect(receiver.connections).toBe(before);
  });
});

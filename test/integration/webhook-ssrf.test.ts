/**
 * The webhook client's SSRF guard against real receivers on loopback (W22): every blocked address
 * class is refused before any connection; a name that resolves to 127.0.0.1 is refused; the
 * connection goes to the address that was checked (no second lookup); a 302 to a private address
 * is not followed; a receiver that trickles its answer is abandoned at the deadline.
 */
import { postWebhook, WebhookRefused, WebhookUnreachable } from '../../functions/store/webhook-http.js';
import { WebhookSender } from '../../functions/store/webhook-sender.js';
import { envWebhookSecrets } from '../../functions/store/webhook-secrets.js';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
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

/** The pure parts of notifications: delivery ids, events, the retry schedule, secrets, route URL checks at load. */
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import {
  backoffSec,
  cloudEventBody,
  DEFAULT_RETRY,
  deliveryId,
  eventTypeOf,
  httpOutcome,
  isWebhookSecret,
  parseRetryAfter,
  routeView,
  routeWants,
  signatureHeaders,
} from '../../functions/core/notifications.js';
import { isPublicAddress, routeUrlProblems, staticUrlProblem } from '../../functions/core/webhook-address.js';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { envWebhookSecrets, parseSecretList } from '../../functions/store/webhook-secrets.js';

const hook = { kind: 'webhook' as const, url: 'https://hooks.example.com/a?token=x', secret_ref: 'r' };

describe('delivery ids', () => {
  it('are stable per (approval, event, route) and differ when any of them differs', () => {
    const id = deliveryId('a1', 'oc.approval.requested', hook);
    expect(deliveryId('a1', 'oc.approval.requested', { ...hook })).toBe(id);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const others = [
      deliveryId('a2', 'oc.approval.requested', hook),
      deliveryId('a1', 'oc.approval.decided', hook),
      deliveryId('a1', 'oc.approval.requested', { ...hook, url: 'https://hooks.example.com/b' }),
      deliveryId('a1', 'oc.approval.requested', { ...hook, secret_ref: 'other' }),
      deliveryId('a1', 'oc.approval.requested', { kind: 'slack', channel: '#x' }),
    ];
    expect(new Set([id, ...others]).size).toBe(6);
  });
});

describe('events and routes', () => {
  it('maps stream records to events', () => {
    expect(eventTypeOf('INSERT', 'pending')).toBe('oc.approval.requested');
    expect(eventTypeOf('MODIFY', 'approved')).toBe('oc.approval.decided');
    expect(eventTypeOf('MODIFY', 'denied')).toBe('oc.approval.decided');
    expect(eventTypeOf('MODIFY', 'expired')).toBe('oc.approval.expired');
    expect(eventTypeOf('MODIFY', 'revoked_by_policy')).toBe('oc.approval.revoked');
    expect(eventTypeOf('MODIFY', 'withdrawn')).toBe('oc.approval.withdrawn');
    expect(eventTypeOf('MODIFY', 'pending')).toBeUndefined();
    expect(eventTypeOf('REMOVE', 'approved')).toBeUndefined();
  });

  it('a route gets every event unless it lists some', () => {
    expect(routeWants(hook, 'oc.approval.expired')).toBe(true);
    const some = { ...hook, events: ['oc.approval.requested' as const] };
    expect(routeWants(some, 'oc.approval.requested')).toBe(true);
    expect(routeWants(some, 'oc.approval.decided')).toBe(false);
  });

  it('shows a webhook without its query or credentials', () => {
    expect(routeView({ ...hook, url: 'https://u:p@hooks.example.com:8443/a/b?token=x#f' })).toEqual({
      kind: 'webhook',
      target: 'https://hooks.example.com:8443/a/b',
    });
  });
});

describe('signatures', () => {
  it('X-OC-Signature-256 and Standard Webhooks over the exact body, verified by the official verifier', () => {
    const body = cloudEventBody({
      id: 'd1',
      type: 'oc.approval.requested',
      source: 'oc://approvals',
      subject: 'a1',
      time: '2026-01-01T00:00:00.000Z',
      data: { summary: 's' } as never,
    });
    const headers = signatureHeaders(DEV_WEBHOOK.secret, 'd1', body, new Date());
    expect(headers['X-OC-Signature-256']).toBe(
      `sha256=${createHmac('sha256', DEV_WEBHOOK.secret).update(body).digest('hex')}`,
    );
    expect(new Webhook(DEV_WEBHOOK.secret).verify(body, headers)).toMatchObject({ id: 'd1', subject: 'a1' });
    expect(() => new Webhook(DEV_WEBHOOK.secret).verify(body + ' ', headers)).toThrow();
  });

  it('secrets: whsec_<base64> of 16 bytes or more; unknown refs and malformed secrets are unresolvable', async () => {
    expect(isWebhookSecret(DEV_WEBHOOK.secret)).toBe(true);
    expect(isWebhookSecret('whsec_c2hvcnQ=')).toBe(false);
    expect(isWebhookSecret('plain-secret')).toBe(false);
    expect([...parseSecretList(' a = whsec_x , b=, =c, d=e=f ')]).toEqual([
      ['a', 'whsec_x'],
      ['d', 'e=f'],
    ]);
    const secrets = envWebhookSecrets(`good=${DEV_WEBHOOK.secret},bad=nope`);
    await expect(secrets.resolve('good')).resolves.toBe(DEV_WEBHOOK.secret);
    await expect(secrets.resolve('bad')).rejects.toThrow(/whsec_/);
    await expect(secrets.resolve('missing')).rejects.toThrow(/not configured/);
  });
});

describe('the retry schedule', () => {
  it('full jitter below ceilings of 2, 4, 8 ... 512 s, never below 1 s, Retry-After as a floor, SQS cap', () => {
    const top = () => 1;
    expect(
      Array.from({ length: 9 }, (_, i) => backoffSec(i + 1, DEFAULT_RETRY, top, undefined, 43_200)),
    ).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 512]);
    expect(backoffSec(1, DEFAULT_RETRY, () => 0, undefined, 43_200)).toBe(1);
    expect(backoffSec(20, DEFAULT_RETRY, top, undefined, 43_200)).toBe(900);
    expect(backoffSec(1, DEFAULT_RETRY, () => 0, 30, 43_200)).toBe(30);
    expect(backoffSec(1, DEFAULT_RETRY, () => 0, 10 ** 9, 43_200)).toBe(43_200);
    for (let i = 0; i < 200; i++) {
      const d = backoffSec(4, DEFAULT_RETRY, Math.random, undefined, 43_200);
      expect(d).toBeGreaterThanOrEqual(1);
      expect(d).toBeLessThanOrEqual(16);
    }
  });

  it('Retry-After as seconds or an HTTP date; outcomes by status', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(httpOutcome(204, undefined).kind).toBe('delivered');
    expect(httpOutcome(410, undefined).kind).toBe('failed');
    expect(httpOutcome(302, undefined).kind).toBe('retry');
    expect(httpOutcome(429, 5)).toMatchObject({ kind: 'retry', retryAfterSec: 5 });
  });
});

describe('route URLs at policy load (W22)', () => {
  it('refuses what can never be delivered: http, credentials, non-public literals, local names', () => {
    const strict = { allowPrivate: false };
    expect(staticUrlProblem('https://hooks.example.com/x', strict)).toBeUndefined();
    for (const bad of [
      'http://hooks.example.com/x',
      'https://u:p@hooks.example.com/x',
      'https://127.0.0.1/x',
      'https://[::1]/x',
      'https://169.254.169.254/latest',
      'https://localhost/x',
      'https://metadata.google.internal/x',
      'https://intranet/x',
      'https://2130706433/x',
      'not a url',
    ])
      expect(staticUrlProblem(bad, strict)).toBeDefined();
    expect(staticUrlProblem('http://localhost:8090/x', { allowPrivate: true })).toBeUndefined();
    const problems = routeUrlProblems(
      { t: { notify: [{ kind: 'slack' }, { kind: 'webhook', url: 'http://localhost:8090/hooks' }] } },
      strict,
    );
    expect(problems).toEqual(['t.notify[1].url must be https']);
  });

  it('classifies addresses: every non-public class and its IPv6 / IPv4-mapped forms', () => {
    for (const blocked of [
      '0.0.0.0',
      '10.1.2.3',
      '100.64.0.1',
      '127.0.0.1',
      '169.254.169.254',
      '172.16.0.1',
      '192.168.1.1',
      '192.0.2.1',
      '198.18.0.1',
      '224.0.0.1',
      '240.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '::ffff:169.254.169.254',
      'fc00::1',
      'fd00:ec2::254',
      'fe80::1',
      'ff02::1',
      '64:ff9b::7f00:1',
      '2002:7f00:1::',
      '2001:db8::1',
      // Every IPv4 embedding is refused whatever it embeds (issue 20).
      '::ffff:8.8.8.8',
    ])
      expect([blocked, isPublicAddress(blocked)]).toEqual([blocked, false]);
    for (const ok of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111'])
      expect([ok, isPublicAddress(ok)]).toEqual([ok, true]);
  });
});

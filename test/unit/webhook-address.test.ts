/**
 * Where a webhook may go, at policy load (W22, issue 20): every refused form of the shared vector
 * table is refused by the route check the local host runs before it starts (`checkRouteUrls` on a
 * real policy folder) and by `staticUrlProblem`; public names and public IPv6 literals are accepted.
 * The same vectors are refused at send in test/integration/webhook-ssrf.test.ts.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  isPublicAddress,
  nonPublicReason,
  routeUrlProblems,
  staticUrlProblem,
} from '../../functions/core/webhook-address.js';
import { checkRouteUrls } from '../../functions/handlers/outbox.js';
import { PolicyLoadError } from '../../functions/core/policy-data.js';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { ACCEPTED_URLS, REFUSED_ADDRESSES, REFUSED_URLS } from '../support/webhook-vectors.js';

const strict = { allowPrivate: false };

describe('route URLs at load: the vector table', () => {
  it.each(REFUSED_URLS)('refuses %s (%s)', (_name, url) => {
    expect(staticUrlProblem(url, strict)).toBeDefined();
    expect(routeUrlProblems({ t: { notify: [{ kind: 'webhook', url }] } }, strict)).toHaveLength(1);
  });

  it.each(ACCEPTED_URLS)('accepts %s', (url) => {
    expect(staticUrlProblem(url, strict)).toBeUndefined();
  });

  it('names the right reason: a public IPv6 literal is not "a host that is not public"', () => {
    expect(staticUrlProblem('https://[::1]/x', strict)).toBe('points to a non-public address (loopback)');
    expect(staticUrlProblem('https://[::ffff:8.8.8.8]/x', strict)).toMatch(
      /^points to a non-public address \(embeds an IPv4 address: ipv4Mapped\)$/,
    );
    expect(staticUrlProblem('https://localhost./x', strict)).toBe('names a host that is not public');
  });

  it('with private webhooks allowed, still no credentials and no other scheme', () => {
    const allow = { allowPrivate: true };
    expect(staticUrlProblem('http://localhost:8090/x', allow)).toBeUndefined();
    expect(staticUrlProblem('http://[::1]:8090/x', allow)).toBeUndefined();
    expect(staticUrlProblem('https://u:p@localhost/x', allow)).toBeDefined();
    expect(staticUrlProblem('ftp://localhost/x', allow)).toBeDefined();
    expect(staticUrlProblem('file:///etc/passwd', allow)).toBeDefined();
  });

  it('the policy folder the local host loads: a problem for each refused route, none for public ones', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'oc-webhook-vectors-'));
    try {
      cpSync(defaultPolicyDir(), dir, { recursive: true });
      const file = path.join(dir, 'tenants.json');
      const tenants = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { notify: unknown[] }>;
      const withRoutes = (urls: readonly string[]) => {
        tenants.tenant1!.notify = urls.map((url) => ({
          kind: 'webhook',
          url,
          secret_ref: 'tenant1_webhook',
        }));
        tenants.tenant2!.notify = [];
        writeFileSync(file, JSON.stringify(tenants));
        return dir;
      };
      for (const [name, url] of REFUSED_URLS) {
        // ftp and file are refused by the policy file's schema, before the route check.
        if (!/^https?:/.test(url)) {
          expect(() => checkRouteUrls(withRoutes([url]), false)).toThrow(PolicyLoadError);
          continue;
        }
        const problems = checkRouteUrls(withRoutes([url]), false);
        expect([name, problems.length]).toEqual([name, 1]);
        expect(problems[0]).toMatch(/^tenant1\.notify\[0\]\.url /);
      }
      expect(checkRouteUrls(withRoutes(ACCEPTED_URLS), false)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('addresses: one allow-list for load and send', () => {
  it.each(REFUSED_ADDRESSES)('%s is not public', (address) => {
    expect(isPublicAddress(address)).toBe(false);
    expect(nonPublicReason(address)).toBeDefined();
  });

  it('public unicast IPv4 and global unicast IPv6 are public', () => {
    for (const ok of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e'])
      expect([ok, isPublicAddress(ok)]).toEqual([ok, true]);
  });

  it('what is not an address (or is one only in a lax spelling) is not public', () => {
    for (const bad of ['', 'localhost', '0177.0.0.1', '127.1', '0x7f000001', '2130706433', '1.2.3.4.5'])
      expect([bad, isPublicAddress(bad)]).toEqual([bad, false]);
  });
});

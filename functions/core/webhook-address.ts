/**
 * Where a webhook may go (SPEC §5, W22): https only, and only to public addresses. One rule, used
 * at policy load (IP literals in route URLs) and at send (every address the host resolves to): an
 * allow-list on the `ipaddr.js` ranges, never a list of what to block, so a range nobody thought
 * of is refused. IPv4: `unicast` only (not loopback, private, link-local with the metadata endpoint
 * 169.254.169.254, CGNAT, "this network", broadcast, multicast, reserved and documentation
 * ranges). IPv6: only inside global unicast 2000::/3 and `unicast` there (not 2001::/23, the
 * documentation ranges, fc00::/7 with the EC2 metadata endpoint fd00:ec2::254, link- and
 * site-local...). Every form that embeds an IPv4 address is refused whatever address it embeds:
 * IPv4-compatible (::/96), IPv4-mapped, SIIT (rfc6145), NAT64 (rfc6052, 64:ff9b::/96 and
 * 64:ff9b:1::/48), 6to4 and Teredo; the library alone calls `::7f00:1` (compatible loopback)
 * `unicast`, so the embeddings are named here. The sender resolves the host once, checks every
 * address and connects to the one it checked, so DNS rebinding between check and connect cannot
 * happen.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

const GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');
const IPV4_COMPATIBLE = ipaddr.IPv6.parseCIDR('::/96');
/** The `ipaddr.js` IPv6 ranges whose addresses carry an IPv4 address. */
const IPV4_EMBEDDINGS: ReadonlySet<string> = new Set(['ipv4Mapped', 'rfc6145', 'rfc6052', '6to4', 'teredo']);

/**
 * Why this IP address is not public (its range), or undefined when it is. Only the canonical
 * spellings count as addresses (what DNS answers and the URL parser writes): anything else, a
 * zone index (`fe80::1%eth0`) included, is not public.
 */
export function nonPublicReason(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return 'not an IP address';
  if (address.includes('%')) return 'scoped address';
  try {
    if (family === 4) {
      const range = ipaddr.IPv4.parse(address).range();
      return range === 'unicast' ? undefined : range;
    }
    const ip = ipaddr.IPv6.parse(address);
    const range = ip.range();
    if (IPV4_EMBEDDINGS.has(range)) return `embeds an IPv4 address: ${range}`;
    if (range !== 'unicast') return range;
    // ipaddr.js calls these `unicast` (::7f00:1 is loopback, compatible form).
    if (ip.match(IPV4_COMPATIBLE)) return 'embeds an IPv4 address: ipv4Compatible';
    if (!ip.match(GLOBAL_UNICAST)) return 'outside global unicast 2000::/3';
    return undefined;
  } catch {
    return 'not an IP address';
  }
}

/** Is this IP address a public unicast address? */
export function isPublicAddress(address: string): boolean {
  return nonPublicReason(address) === undefined;
}

/**
 * The URL's host as DNS or an IP literal would take it: `[::1]` -> `::1`, and without trailing
 * dots (`localhost.` is `localhost`; the URL parser already reads `127.0.0.1.` as 127.0.0.1).
 */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.+$/, '');
}

export interface AddressPolicy {
  /** OC_ALLOW_PRIVATE_WEBHOOKS=true: http and non-public addresses (local demos and tests). */
  allowPrivate: boolean;
}

/**
 * What can be said of a route URL without DNS (at policy load): why it can never be delivered,
 * or undefined. Hosts are resolved, and checked again, at send time.
 */
export function staticUrlProblem(value: string, policy: AddressPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.username || url.password) return 'must not carry credentials';
  if (url.protocol !== 'https:' && !(policy.allowPrivate && url.protocol === 'http:'))
    return policy.allowPrivate ? 'must be http(s)' : 'must be https';
  if (policy.allowPrivate) return undefined;
  const host = hostOf(url).toLowerCase();
  if (isIP(host) !== 0) {
    const reason = nonPublicReason(host);
    return reason ? `points to a non-public address (${reason})` : undefined;
  }
  if (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host.endsWith('.internal') ||
    !host.includes('.')
  )
    return 'names a host that is not public';
  return undefined;
}

/** Every webhook route of the tenants' data that can never be delivered to, as `tenant.notify[i].url: why`. */
export function routeUrlProblems(
  tenants: Readonly<Record<string, { notify: readonly { kind: string; url?: string }[] }>>,
  policy: AddressPolicy,
): string[] {
  const problems: string[] = [];
  for (const [tenant, config] of Object.entries(tenants))
    config.notify.forEach((route, i) => {
      if (route.kind !== 'webhook' || route.url === undefined) return;
      const problem = staticUrlProblem(route.url, policy);
      if (problem) problems.push(`${tenant}.notify[${i}].url ${problem}`);
    });
  return problems;
}

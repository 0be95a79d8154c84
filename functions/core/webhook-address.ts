/**
 * Where a webhook may go (SPEC §5, W22): https only, and only to public addresses. Every address
 * class that reaches inside a network is refused: loopback, private, link-local (the cloud metadata
 * endpoints 169.254.169.254 and fd00:ec2::254 among them), CGNAT, multicast, reserved and
 * documentation ranges, and their IPv6 and IPv4-mapped forms (Node's BlockList checks
 * `::ffff:a.b.c.d` against the IPv4 rules). The sender resolves the host once, checks every address
 * and connects to the one it checked, so DNS rebinding between check and connect cannot happen.
 */
import { BlockList, isIP } from 'node:net';

const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const)
  BLOCKED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64 (reaches IPv4 space)
  ['64:ff9b:1::', 48],
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo among them)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4 (embeds IPv4)
  ['fc00::', 7], // unique local (fd00:ec2::254, the EC2 metadata endpoint, among them)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const)
  BLOCKED.addSubnet(net, prefix, 'ipv6');

/** Is this IP literal a public unicast address? */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return !BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** The URL's host as DNS or an IP literal would take it (`[::1]` -> `::1`). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
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
  if (isIP(host) !== 0 && !isPublicAddress(host)) return 'points to a non-public address';
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

/**
 * The one outbound address rule for every connection the gateway opens to a URL an operator or a
 * tenant's data named (webhooks, upstream MCP servers): the host is resolved once, every address
 * it resolves to must be public (unless `allowPrivate`), and the connection goes to the address
 * that was checked (a `lookup` that answers only that address: no second DNS query, no
 * rebinding between check and connect). The rule itself is `core/webhook-address.ts`.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { hostOf, isPublicAddress, staticUrlProblem } from '../core/webhook-address.js';

/** DNS as the sender uses it (tests inject one to answer a name with a chosen address). */
export type Resolve = (host: string) => Promise<{ address: string; family: number }[]>;

/** The URL may never be connected to (scheme, credentials, a non-public address): do not retry. */
export class AddressRefused extends Error {
  override readonly name: string = 'AddressRefused';
}

/** The host could not be resolved (DNS failure, timeout, no address): may be retried. */
export class AddressUnreachable extends Error {
  override readonly name: string = 'AddressUnreachable';
}

export interface PinOptions {
  /** http and non-public addresses allowed (local demos and tests; a VPC deployment's private upstreams). */
  allowPrivate: boolean;
  /** Epoch ms by which DNS must have answered. */
  deadline: number;
  resolve?: Resolve;
  /** What the URL is, for messages: `webhook`, `upstream`. */
  subject: string;
}

export interface PinnedAddress {
  url: URL;
  address: string;
  family: 4 | 6;
  /** A `lookup` for http(s).request / Agent that answers only the checked address. */
  lookup: LookupFunction;
}

const systemResolve: Resolve = async (host) => dnsLookup(host, { all: true, verbatim: true });

export async function pinAddress(target: string, options: PinOptions): Promise<PinnedAddress> {
  const { subject } = options;
  const problem = staticUrlProblem(target, { allowPrivate: options.allowPrivate });
  if (problem) throw new AddressRefused(`${subject} URL ${problem}`);
  const url = new URL(target);
  const host = hostOf(url);

  let addresses: { address: string; family: number }[];
  if (isIP(host) !== 0) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await withDeadline(
        (options.resolve ?? systemResolve)(host),
        options.deadline,
        'DNS lookup',
      );
    } catch (error) {
      throw new AddressUnreachable(`cannot resolve the ${subject} host (${(error as Error).message})`);
    }
  }
  if (addresses.length === 0) throw new AddressUnreachable(`the ${subject} host has no address`);
  // Every address is checked, not just the one used: a name that also points inside is refused.
  if (!options.allowPrivate && addresses.some((a) => !isPublicAddress(a.address)))
    throw new AddressRefused(`the ${subject} host resolves to a non-public address`);
  const chosen = addresses[0]!;
  const family = chosen.family === 6 ? 6 : 4;

  // The answer comes asynchronously, as dns.lookup's does: answered synchronously, a connect()
  // that fails at once (ENETUNREACH: an IPv6-only host on an IPv4-only network) emits its error
  // before http(s) has attached a listener, and the process exits (on https first as a TypeError
  // from setServername).
  const lookup: LookupFunction = (_hostname, opts, callback) => {
    setImmediate(() => {
      if ((opts as { all?: boolean }).all)
        (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
          { address: chosen.address, family },
        ]);
      else callback(null, chosen.address, family);
    });
  };
  return { url, address: chosen.address, family, lookup };
}

function withDeadline<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out`)), Math.max(1, deadline - Date.now()));
    }),
  ]).finally(() => clearTimeout(timer));
}

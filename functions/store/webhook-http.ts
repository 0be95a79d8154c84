/**
 * The webhook's HTTP POST (SPEC §5, W22): the host is resolved once, every address it resolves
 * to must be public (unless `allowPrivate`), and the connection goes to the address that was
 * checked (a `lookup` that answers only that address: no second DNS query, no rebinding). Redirects
 * are not followed (a 3xx is an answer like any other), the whole exchange has one deadline
 * (a receiver that trickles its answer is abandoned) and at most 64 KiB of the answer is read.
 * Nothing is thrown past the caller: every failure to connect, whenever it happens (inside
 * `connect()` itself included), is a `WebhookUnreachable` the sender retries.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { hostOf, isPublicAddress, staticUrlProblem } from '../core/webhook-address.js';

export interface PostOptions {
  allowPrivate: boolean;
  timeoutMs: number;
  /** DNS (tests inject one to answer a name with a chosen address). */
  resolve?: (host: string) => Promise<{ address: string; family: number }[]>;
}

export interface PostAnswer {
  statusCode: number;
  retryAfter?: string;
}

/** The URL may never be delivered to (scheme, credentials, a non-public address): stop, do not retry. */
export class WebhookRefused extends Error {
  override readonly name = 'WebhookRefused';
}

/** No answer (DNS, connection, timeout): retry later. */
export class WebhookUnreachable extends Error {
  override readonly name = 'WebhookUnreachable';
}

const MAX_ANSWER_BYTES = 64 * 1024;

const systemResolve = async (host: string) => dnsLookup(host, { all: true, verbatim: true });

export async function postWebhook(
  target: string,
  body: string,
  headers: Record<string, string>,
  options: PostOptions,
): Promise<PostAnswer> {
  const problem = staticUrlProblem(target, { allowPrivate: options.allowPrivate });
  if (problem) throw new WebhookRefused(`webhook URL ${problem}`);
  const url = new URL(target);
  const host = hostOf(url);
  const deadline = Date.now() + options.timeoutMs;

  let addresses: { address: string; family: number }[];
  if (isIP(host) !== 0) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await withDeadline((options.resolve ?? systemResolve)(host), deadline, 'DNS lookup');
    } catch (error) {
      throw new WebhookUnreachable(`cannot resolve the webhook host (${(error as Error).message})`);
    }
  }
  if (addresses.length === 0) throw new WebhookUnreachable('the webhook host has no address');
  // Every address is checked, not just the one used: a name that also points inside is refused.
  if (!options.allowPrivate && addresses.some((a) => !isPublicAddress(a.address)))
    throw new WebhookRefused('the webhook host resolves to a non-public address');
  const chosen = addresses[0]!;

  // The connection may go only to the checked address. The answer comes asynchronously, as
  // dns.lookup's does: answered synchronously, a connect() that fails at once (ENETUNREACH: an
  // IPv6-only receiver on an IPv4-only host) emits its error before http(s) has attached a listener,
  // and the process exits (on https first as a TypeError from setServername).
  const pinned: LookupFunction = (_hostname, opts, callback) => {
    const family = chosen.family === 6 ? 6 : 4;
    setImmediate(() => {
      if ((opts as { all?: boolean }).all)
        (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
          { address: chosen.address, family },
        ]);
      else callback(null, chosen.address, family);
    });
  };

  return new Promise<PostAnswer>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    const client = url.protocol === 'https:' ? https : http;
    const unreachable = (error: Error) =>
      settle(() =>
        reject(
          new WebhookUnreachable(
            `connection failed (${(error as NodeJS.ErrnoException).code ?? error.message})`,
          ),
        ),
      );
    // One deadline for the whole exchange: a receiver that trickles headers or body is abandoned.
    const timer = setTimeout(
      () => {
        settle(() => reject(new WebhookUnreachable(`no complete answer within ${options.timeoutMs} ms`)));
        request?.destroy();
      },
      Math.max(1, deadline - Date.now()),
    );
    let request: http.ClientRequest | undefined;
    try {
      request = client.request(
        url,
        {
          method: 'POST',
          headers: {
            ...headers,
            'Content-Length': String(Buffer.byteLength(body)),
            'User-Agent': 'OpenClause-Webhooks/1',
          },
          lookup: pinned,
          // One connection per delivery: no pooled socket may carry a request to another host.
          agent: false,
        },
        (response) => {
          let read = 0;
          const answer = () => {
            const retryAfter = response.headers['retry-after'];
            return {
              statusCode: response.statusCode ?? 0,
              ...(retryAfter ? { retryAfter: String(retryAfter) } : {}),
            };
          };
          response.on('data', (chunk: Buffer) => {
            read += chunk.length;
            // Enough of an answer: the status is what counts.
            if (read > MAX_ANSWER_BYTES) {
              settle(() => resolve(answer()));
              response.destroy();
            }
          });
          response.on('end', () => settle(() => resolve(answer())));
          response.on('error', () => settle(() => reject(new WebhookUnreachable('the answer broke off'))));
        },
      );
    } catch (error) {
      // Whatever http(s) throws while it sets up the connection is a failure to connect.
      unreachable(error as Error);
      return;
    }
    request.on('error', unreachable);
    request.end(body);
  });
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

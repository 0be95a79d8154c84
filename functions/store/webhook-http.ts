/**
 * The webhook's HTTP POST (SPEC §5, W22): the host is resolved once, every address it resolves
 * to must be public (unless `allowPrivate`), and the connection goes to the address that was
 * checked (a `lookup` that answers only that address: no second DNS query, no rebinding). Redirects
 * are not followed (a 3xx is an answer like any other), the whole exchange has one deadline
 * (a receiver that trickles its answer is abandoned) and at most 64 KiB of the answer is read.
 * Nothing is thrown past the caller: every failure to connect, whenever it happens (inside
 * `connect()` itself included), is a `WebhookUnreachable` the sender retries.
 */
import http from 'node:http';
import https from 'node:https';
import { AddressRefused, pinAddress, type PinnedAddress, type Resolve } from './outbound-address.js';

export interface PostOptions {
  allowPrivate: boolean;
  timeoutMs: number;
  /** DNS (tests inject one to answer a name with a chosen address). */
  resolve?: Resolve;
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

export async function postWebhook(
  target: string,
  body: string,
  headers: Record<string, string>,
  options: PostOptions,
): Promise<PostAnswer> {
  const deadline = Date.now() + options.timeoutMs;
  let pinned: PinnedAddress;
  try {
    // The shared outbound rule (`outbound-address.ts`): resolved once, every address checked,
    // the connection pinned to the checked one.
    pinned = await pinAddress(target, {
      allowPrivate: options.allowPrivate,
      deadline,
      resolve: options.resolve,
      subject: 'webhook',
    });
  } catch (error) {
    if (error instanceof AddressRefused) throw new WebhookRefused(error.message);
    throw new WebhookUnreachable((error as Error).message);
  }
  const { url } = pinned;

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
          lookup: pinned.lookup,
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

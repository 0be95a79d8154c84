/**
 * A `fetch` for clients that take one (the MCP client's Streamable HTTP transport), with the
 * gateway's outbound rule (`outbound-address.ts`) under it: each origin is resolved once per
 * instance, every address it resolves to is checked, and its connections go only to the checked
 * address (one keep-alive agent per origin, destroyed by `close()`). Redirects are never followed
 * (a 3xx is handed back as it is), the answer is streamed with a byte cap, and the instance's
 * `signal` (the call's deadline) aborts every request and body still open.
 *
 * Node's own fetch cannot be given a `lookup` without the undici package, hence node:http(s).
 */
import http from 'node:http';
import https from 'node:https';
import { staticUrlProblem } from '../core/webhook-address.js';
import { AddressRefused, pinAddress, type PinnedAddress, type Resolve } from './outbound-address.js';

export interface PinnedFetchOptions {
  allowPrivate: boolean;
  /** What the URLs are, for messages (`upstream`). */
  subject: string;
  /** DNS may take this long per origin. */
  dnsTimeoutMs: number;
  /** An answer body longer than this errors its stream (`ResponseTooLarge`). */
  maxResponseBytes: number;
  resolve?: Resolve;
  /** Aborts every request and open body of this instance (the call's deadline). */
  signal?: AbortSignal;
}

export interface PinnedFetch {
  fetch: typeof fetch;
  /** Destroys every connection this instance opened. */
  close(): void;
}

/** The answer was longer than `maxResponseBytes`. */
export class ResponseTooLarge extends Error {
  override readonly name = 'ResponseTooLarge';
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

interface Origin {
  pinned: PinnedAddress;
  agent: http.Agent;
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError');
}

function bodyBytes(body: unknown): Uint8Array | string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError('pinned fetch: only string and byte bodies are supported');
}

export function createPinnedFetch(options: PinnedFetchOptions): PinnedFetch {
  const origins = new Map<string, Promise<Origin>>();

  const originOf = (url: URL): Promise<Origin> => {
    let entry = origins.get(url.origin);
    if (!entry) {
      entry = pinAddress(url.href, {
        allowPrivate: options.allowPrivate,
        deadline: Date.now() + options.dnsTimeoutMs,
        resolve: options.resolve,
        subject: options.subject,
      }).then((pinned) => {
        const Agent = url.protocol === 'https:' ? https.Agent : http.Agent;
        return { pinned, agent: new Agent({ keepAlive: true, maxSockets: 4, lookup: pinned.lookup }) };
      });
      // A failed resolution is not cached: the next request of this instance tries again.
      entry.catch(() => origins.delete(url.origin));
      origins.set(url.origin, entry);
    }
    return entry;
  };

  const pinnedFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    // Scheme and credentials are checked for every URL, addresses once per origin.
    const problem = staticUrlProblem(href, { allowPrivate: options.allowPrivate });
    if (problem) throw new AddressRefused(`${options.subject} URL ${problem}`);
    const url = new URL(href);
    const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init.headers).forEach((value, key) => headers.set(key, value));
    const body = bodyBytes(init.body);
    const signals = [init.signal, options.signal].filter((s): s is AbortSignal => s instanceof AbortSignal);
    const signal = signals.length > 0 ? AbortSignal.any(signals) : undefined;
    if (signal?.aborted) throw abortError(signal);

    const { pinned, agent } = await originOf(url);
    const client = url.protocol === 'https:' ? https : http;
    const outgoing: Record<string, string> = {};
    headers.forEach((value, key) => (outgoing[key] = value));
    if (body !== undefined) outgoing['content-length'] = String(Buffer.byteLength(body));

    return new Promise<Response>((resolve, reject) => {
      const request = client.request(url, { method, headers: outgoing, agent, lookup: pinned.lookup });
      const onAbort = () => request.destroy(abortError(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      });
      request.on('response', (response) => {
        const responseHeaders = new Headers();
        for (let i = 0; i + 1 < response.rawHeaders.length; i += 2)
          responseHeaders.append(response.rawHeaders[i]!, response.rawHeaders[i + 1]!);
        const status = response.statusCode ?? 0;
        if (NULL_BODY_STATUSES.has(status) || method === 'HEAD') {
          signal?.removeEventListener('abort', onAbort);
          response.resume();
          resolve(
            new Response(null, { status, statusText: response.statusMessage, headers: responseHeaders }),
          );
          return;
        }
        let read = 0;
        let done = false;
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            const fail = (error: Error) => {
              if (done) return;
              done = true;
              signal?.removeEventListener('abort', onAbort);
              controller.error(error);
              response.destroy();
            };
            response.on('data', (chunk: Buffer) => {
              if (done) return;
              read += chunk.length;
              if (read > options.maxResponseBytes) {
                fail(
                  new ResponseTooLarge(
                    `the ${options.subject} answered more than ${options.maxResponseBytes} bytes`,
                  ),
                );
                return;
              }
              controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
            });
            response.on('end', () => {
              if (done) return;
              done = true;
              signal?.removeEventListener('abort', onAbort);
              controller.close();
            });
            response.on('error', fail);
            response.on('close', () => {
              if (!done) fail(signal?.aborted ? abortError(signal) : new Error('the answer broke off'));
            });
          },
          cancel() {
            done = true;
            signal?.removeEventListener('abort', onAbort);
            response.destroy();
          },
        });
        resolve(
          new Response(stream, { status, statusText: response.statusMessage, headers: responseHeaders }),
        );
      });
      request.end(body);
    });
  };

  return {
    fetch: pinnedFetch as typeof fetch,
    close() {
      for (const entry of origins.values()) entry.then((o) => o.agent.destroy()).catch(() => undefined);
      origins.clear();
    },
  };
}

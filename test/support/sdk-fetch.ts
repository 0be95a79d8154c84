/**
 * A `fetch` for the agent SDK that sends every request through the tests' gateway client, so
 * each response the SDK sees is checked against api/openapi.yaml like any other test's. It
 * records what the SDK sent, and `replace` lets a test swap an answer after the gateway has
 * handled the request (a response lost behind a load balancer).
 */
import type { GatewayClient } from './gateway-client.js';

export interface SentRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface ContractFetch {
  (request: Request): Promise<Response>;
  sent: SentRequest[];
  /** Called with each request (and its index) after the gateway answered; a Response replaces the answer. */
  replace?: (sent: SentRequest, index: number) => Response | undefined;
}

export function contractFetch(client: GatewayClient): ContractFetch {
  const fetcher = (async (request: Request) => {
    const url = new URL(request.url);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const body = request.body ? await request.text() : '';
    const sent: SentRequest = { method: request.method, path: `${url.pathname}${url.search}`, headers, body };
    const index = fetcher.sent.push(sent) - 1;
    const answer = await client.request(request.method, sent.path, {
      // The SDK's own headers carry the key; an execute has no body.
      key: null,
      headers,
      ...(body === '' ? {} : { body }),
    });
    const replaced = fetcher.replace?.(sent, index);
    if (replaced) return replaced;
    return new Response(answer.status === 204 ? null : answer.text, {
      status: answer.status,
      headers: answer.headers,
    });
  }) as ContractFetch;
  fetcher.sent = [];
  return fetcher;
}

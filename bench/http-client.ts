/**
 * The bench's HTTP client for calls to the stack under test: node:http with one keep-alive agent.
 * The stack and its load share one Node process and its event loop, so the client's own work per
 * request is queued beside the calls it times. Measured on that loop (120 calls/s, the same stack,
 * alternating clients): `fetch` (undici) cost ≈ 0.5 ms of CPU more per call than node:http, about a
 * tenth of a call's whole CPU, stack included. A client elsewhere was worse on a loaded machine: a
 * load generator in a child process measured the scheduler's wake-up delays (p99 70–95 ms at
 * 36 calls/s with the 1-minute load at 3).
 */
import http from 'node:http';

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

export interface Answer {
  status: number;
  text: string;
}

/** POSTs a JSON body (or sends `method` without one) and reads the whole answer as text. */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; json?: unknown } = {},
): Promise<Answer> {
  const body = options.json === undefined ? undefined : JSON.stringify(options.json);
  const method = options.method ?? (body === undefined ? 'GET' : 'POST');
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        agent,
        headers: {
          // As fetch sends them: a POST without a body says so (no chunked encoding).
          ...(body !== undefined
            ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }
            : method === 'GET'
              ? {}
              : { 'Content-Length': 0 }),
          ...options.headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

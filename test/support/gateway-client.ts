/**
 * The one way tests talk to a gateway over HTTP. Every response is checked against
 * api/openapi.yaml before the test sees it, so "every response the tests receive matches the
 * contract" holds by construction, not by each test remembering to check.
 *
 * Requests go out through node:http with the path exactly as written: fetch would normalize
 * `/v1/toolcalls/../x`, `//x` or `%2e%2e`, and a gateway test needs to send those as they are.
 */
import http from 'node:http';
import { assertMatchesContract } from './contract.js';

export const KEYS = { tenant1: 'sk-test-key-1', tenant2: 'sk-test-key-2' } as const;

export interface TestResponse {
  status: number;
  /** Lowercase names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  text: string;
  /** The body's bytes as received (e.g. a gzip-encoded console asset). */
  bytes: Buffer;
  /** The parsed body, or undefined when it is not JSON. */
  json: any;
}

export interface RequestOptions {
  /** A string or Buffer is sent as is (malformed JSON, '', bytes that are no UTF-8), anything else as JSON; omitted: no body. */
  body?: unknown;
  /** The agent API key, sent as `X-API-Key`; default KEYS.tenant1 (none with `token`); null: none. */
  key?: string | null;
  /** An approver JWT, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Sent last, so they replace the defaults (`Content-Type: application/json` with a body). */
  headers?: Record<string, string>;
  /**
   * `false` skips the contract check: only for a request the contract cannot describe (a route
   * or method that does not exist). Say why at the call site. An undocumented answer to a
   * documented operation is a contract bug: fix api/openapi.yaml instead.
   */
  contract?: false;
}

export interface GatewayClient {
  request(method: string, path: string, options?: RequestOptions): Promise<TestResponse>;
  /** POST with a body (a string is sent as is) and the agent key (default tenant1; null: none). */
  post(
    path: string,
    body: unknown,
    key?: string | null,
    headers?: Record<string, string>,
  ): Promise<TestResponse>;
  /** GET with the agent key (default tenant1; null: none). */
  get(path: string, key?: string | null): Promise<TestResponse>;
}

function requestHeaders(
  options: RequestOptions,
  payload: string | Buffer | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {};
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  const key = options.key === undefined ? (options.token === undefined ? KEYS.tenant1 : null) : options.key;
  if (key !== null) headers['X-API-Key'] = key;
  if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
  return { ...headers, ...options.headers };
}

const ANSWER_TIMEOUT_MS = 30_000;

function send(
  base: URL,
  method: string,
  path: string,
  headers: Record<string, string>,
  payload: string | Buffer | undefined,
): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        hostname: base.hostname,
        port: base.port,
        method,
        path,
        headers:
          payload === undefined ? headers : { ...headers, 'Content-Length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          const text = bytes.toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          const flat: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 0, headers: flat, text, bytes, json });
        });
      },
    );
    // A gateway that never answers fails the test that asked, far above any real answer's time.
    req.setTimeout(ANSWER_TIMEOUT_MS, () =>
      req.destroy(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`)),
    );
    req.on('error', (e) => reject(new Error(`${method} ${base.origin}${path}: ${e.message}`)));
    req.end(payload);
  });
}

/** Throws, naming the request, unless the contract allows the response. */
function checkContract(method: string, path: string, r: TestResponse): void {
  try {
    assertMatchesContract({ method, path, status: r.status, headers: r.headers, body: r.text });
  } catch (e) {
    const body = r.text.length > 500 ? `${r.text.slice(0, 500)}...` : r.text;
    throw new Error(
      `${method} ${path} answered ${r.status}, which api/openapi.yaml does not allow: ` +
        `${(e as Error).message}\nresponse body: ${body}`,
    );
  }
}

/** A client for the gateway at `baseUrl` (e.g. a LocalHost's `url`). */
export function gatewayClient(baseUrl: string): GatewayClient {
  const base = new URL(baseUrl);
  const request = async (method: string, path: string, options: RequestOptions = {}) => {
    const { body } = options;
    const payload =
      body === undefined
        ? undefined
        : typeof body === 'string' || Buffer.isBuffer(body)
          ? body
          : JSON.stringify(body);
    const r = await send(base, method, path, requestHeaders(options, payload), payload);
    if (options.contract !== false) checkContract(method, path, r);
    return r;
  };
  return {
    request,
    post: (path, body, key, headers) => request('POST', path, { body, key, headers }),
    get: (path, key) => request('GET', path, { key }),
  };
}

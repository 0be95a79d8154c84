/**
 * One guarded HTTP call for live connectors: global `fetch`, a hard timeout covering headers and
 * body, redirects refused, the response body capped. Every transport failure becomes an
 * `UpstreamError` whose message names only the service (`slack: request timed out`).
 */
import { UpstreamError } from './sdk.js';

export interface HttpCall {
  /** Service name used in public messages (`slack`, `jira`). */
  service: string;
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  /** Serialized as JSON when present. */
  body?: unknown;
  /** Sent as is (with the caller's content-type) when present; `body` is then ignored. */
  rawBody?: string;
  /** The action's deadline (`ctx.signal`); the call also stops at `timeoutMs`. */
  signal?: AbortSignal;
  timeoutMs: number;
  maxResponseBytes: number;
  fetch: typeof fetch;
}

export interface HttpReply {
  status: number;
  /** Parsed JSON body, or `undefined` when the body is empty or not JSON. */
  json: unknown;
  /** The body as text (for clients that parse it themselves). */
  text: string;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
}

/** Seconds from a `Retry-After` header (delta-seconds or HTTP date), or undefined. */
export function retryAfterSeconds(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

class ResponseTooLarge extends Error {}

async function readCapped(response: Response, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new ResponseTooLarge();
  }
  if (!response.body) return new Uint8Array();
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new ResponseTooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export async function callUpstream(call: HttpCall): Promise<HttpReply> {
  const timeout = AbortSignal.timeout(call.timeoutMs);
  const signal = call.signal ? AbortSignal.any([timeout, call.signal]) : timeout;
  const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
  let body: string | undefined = call.rawBody;
  if (body === undefined && call.body !== undefined) {
    headers['content-type'] = 'application/json; charset=utf-8';
    body = JSON.stringify(call.body);
  }
  try {
    const response = await call.fetch(call.url, {
      method: call.method,
      headers,
      body,
      redirect: 'error',
      signal,
    });
    const text = new TextDecoder().decode(await readCapped(response, call.maxResponseBytes));
    const received: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      received[name] = value;
    });
    return { status: response.status, json: parseJson(text), text, headers: received };
  } catch (error) {
    if (error instanceof ResponseTooLarge) {
      throw new UpstreamError(`${call.service}: response too large`, { max_bytes: call.maxResponseBytes });
    }
    if (signal.aborted) {
      throw new UpstreamError(`${call.service}: request timed out`, { timeout_ms: call.timeoutMs });
    }
    // Redirects, DNS and connection failures. Only the error's name/code is logged: a fetch
    // error message can embed the URL.
    const cause = (error as { cause?: { code?: unknown } }).cause;
    throw new UpstreamError(`${call.service}: request failed`, {
      error_name: (error as Error).name,
      error_code: typeof cause?.code === 'string' ? cause.code : undefined,
    });
  }
}

/**
 * One guarded HTTP call for live connectors: global `fetch`, a hard timeout covering headers and
 * body, redirects refused, the response body capped. Every transport failure becomes an
 * `UpstreamError` whose message names only the service (`slack: request timed out`).
 */
import { UpstreamError } from './sdk.js';

export interface HttpCall {
  /** Service name used in public messages (`slack`, `jira`). */
  service: string;
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  /** Serialized as JSON when present. */
  body?: unknown;
  timeoutMs: number;
  maxResponseBytes: number;
  fetch: typeof fetch;
}

export interface HttpReply {
  status: number;
  /** Parsed JSON body, or `undefined` when the body is empty or not JSON. */
  json: unknown;
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

function parseJson(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  } catch {
    return undefined;
  }
}

export async function callUpstream(call: HttpCall): Promise<HttpReply> {
  const signal = AbortSignal.timeout(call.timeoutMs);
  const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
  if (call.body !== undefined) headers['content-type'] = 'application/json; charset=utf-8';
  try {
    const response = await call.fetch(call.url, {
      method: call.method,
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      redirect: 'error',
      signal,
    });
    const bytes = await readCapped(response, call.maxResponseBytes);
    return { status: response.status, json: parseJson(bytes) };
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

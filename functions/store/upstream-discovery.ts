/**
 * Discovery: an upstream's `tools/list`, through the official MCP client (`@modelcontextprotocol/client`),
 * over Streamable HTTP. The client declares no capabilities (the gateway answers no sampling,
 * elicitation or roots request), every page is bounded, and the whole listing has a deadline.
 * What it returns is untrusted: `planSync` checks it before anything is stored.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { UPSTREAM_LIMITS } from '../core/upstream.js';

export interface ListToolsOptions {
  url: string;
  headers: Record<string, string>;
  /** The outbound fetch (the connector's address-checked, pinned one in AWS). */
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export class UpstreamListError extends Error {
  override readonly name = 'UpstreamListError';
}

const MAX_PAGES = 20;

/** Every tool the upstream lists (raw objects), across its pages. */
export async function listUpstreamTools(options: ListToolsOptions): Promise<unknown[]> {
  const client = new Client({ name: 'openclause-gateway', version: '1' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(options.url), {
    requestInit: { headers: options.headers, redirect: 'error' },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const timeoutMs = options.timeoutMs ?? 10_000;
  const signal = AbortSignal.timeout(timeoutMs);
  const tools: unknown[] = [];
  try {
    await client.connect(transport, { signal, timeout: timeoutMs });
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await client.listTools(cursor ? { cursor } : {}, { signal, timeout: timeoutMs });
      tools.push(...result.tools);
      if (tools.length > UPSTREAM_LIMITS.maxTools) break;
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    return tools;
  } catch (error) {
    // The client's message may quote the URL; never a header. Still, one line and bounded.
    throw new UpstreamListError(
      `tools/list failed: ${error instanceof Error ? `${error.name}: ${error.message}` : 'error'}`.slice(
        0,
        300,
      ),
      { cause: error },
    );
  } finally {
    await client.close().catch(() => undefined);
  }
}

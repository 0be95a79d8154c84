/**
 * Real upstream MCP servers on loopback for the upstream tests (issue 25), each over Streamable
 * HTTP on a free port:
 * - `startSmallUpstream()`: a stateless server on the official SDK (`@modelcontextprotocol/sdk`
 *   1.x, a 2025-era server: the client must `initialize` on every call), with a few tools
 *   (`echo`, `add` with an output schema, `big`, `image`, `fail`, `wrong-shape`, `ask` which
 *   asks the client for input) and a tool description the test may change mid-test
 *   (`setDescription`: what drift detection must see).
 * - `startHangingUpstream(phase)`: answers nothing, either from the first request (`connect`)
 *   or only to `tools/call` after a normal handshake (`call`).
 * - `startMalformedUpstream()`: a normal handshake, then a `tools/call` result that is not a
 *   CallToolResult.
 * - `startEverythingUpstream()`: the maintained `@modelcontextprotocol/server-everything` package
 *   in its streamable-HTTP mode, as a child process.
 * Every server counts the `tools/call` requests it received (`calls`).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import * as z from 'zod';
import type { UpstreamResolver, UpstreamTarget } from '../../functions/core/upstream-types.js';
import { waitFor } from './processes.js';

export interface Upstream {
  url: string;
  port: number;
  /** `tools/call` requests received. */
  calls: number;
  /** Request headers of every POST (credentials forwarded?). */
  headers: http.IncomingHttpHeaders[];
  /** Time spent handling requests, from a request's arrival to its answer's end (ms, summed). */
  busyMs: number;
  close(): Promise<void>;
}

export interface SmallUpstream extends Upstream {
  setDescription(tool: string, description: string): void;
}

/** A 1x1 PNG. */
export const TINY_PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

async function listen(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void | Promise<void>,
  extra: Partial<Upstream> = {},
): Promise<Upstream & { server: http.Server }> {
  const sockets = new Set<Socket>();
  const upstream = {
    url: '',
    port: 0,
    calls: 0,
    headers: [] as http.IncomingHttpHeaders[],
    busyMs: 0,
    ...extra,
  } as Upstream & { server: http.Server };
  const server = http.createServer((req, res) => {
    const arrived = performance.now();
    res.on('finish', () => (upstream.busyMs += performance.now() - arrived));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'POST') {
        upstream.headers.push(req.headers);
        if (/"method"\s*:\s*"tools\/call"/.test(body)) upstream.calls += 1;
      }
      Promise.resolve(handler(req, res, body)).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.port = (server.address() as AddressInfo).port;
  upstream.url = `http://127.0.0.1:${upstream.port}/mcp`;
  upstream.server = server;
  upstream.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return upstream;
}

export async function startSmallUpstream(): Promise<SmallUpstream> {
  const descriptions: Record<string, string> = { echo: 'Echoes its text.' };
  const build = () => {
    const server = new McpServer({ name: 'small-upstream', version: '1.0.0' });
    server.registerTool(
      'echo',
      { description: descriptions.echo, inputSchema: { text: z.string() } },
      async ({ text }) => ({ content: [{ type: 'text', text }] }),
    );
    server.registerTool(
      'add',
      {
        description: 'Adds two numbers.',
        inputSchema: { a: z.number(), b: z.number() },
        outputSchema: { sum: z.number() },
      },
      async ({ a, b }) => ({
        content: [{ type: 'text', text: String(a + b) }],
        structuredContent: { sum: a + b },
      }),
    );
    server.registerTool(
      'big',
      { description: 'Answers `kb` KiB of text.', inputSchema: { kb: z.number().int() } },
      async ({ kb }) => ({ content: [{ type: 'text', text: 'x'.repeat(kb * 1024) }] }),
    );
    server.registerTool('image', { description: 'Answers a tiny image.' }, async () => ({
      content: [
        { type: 'text', text: 'here it is' },
        { type: 'image', data: TINY_PNG, mimeType: 'image/png' },
        {
          type: 'resource',
          resource: { uri: 'file:///a.bin', mimeType: 'application/octet-stream', blob: TINY_PNG },
        },
      ],
    }));
    server.registerTool('fail', { description: 'Always fails.' }, async () => ({
      isError: true,
      content: [{ type: 'text', text: 'the thing is broken' }],
    }));
    // Declares an output schema and answers something else: the connector must refuse the result.
    server.registerTool('wrong-shape', { description: 'Lies about its output.' }, async () => ({
      content: [{ type: 'text', text: '{}' }],
      structuredContent: { sum: 'not a number' },
    }));
    server.registerTool('ask', { description: 'Asks the client for input.' }, async () => {
      const answer = await server.server.elicitInput({
        message: 'approve?',
        requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } } },
      });
      return { content: [{ type: 'text', text: `answered ${answer.action}` }] };
    });
    return server;
  };
  const upstream = await listen(async (req, res, body) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    // Stateless: a new server and transport per request, as the SDK's stateless example does.
    const server = build();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, JSON.parse(body));
  });
  return Object.assign(upstream, {
    setDescription(tool: string, description: string) {
      descriptions[tool] = description;
    },
  });
}

const rpcResult = (res: http.ServerResponse, id: unknown, result: unknown): void => {
  res
    .writeHead(200, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', id, result }));
};

/** A hand-written 2025-era server: answers the handshake, hands `tools/call` to `onCall`. */
async function startScripted(onCall: (res: http.ServerResponse, id: unknown) => void): Promise<Upstream> {
  return listen((req, res, body) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const message = JSON.parse(body) as { id?: unknown; method?: string };
    if (message.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    if (message.method === 'initialize')
      return rpcResult(res, message.id, {
        protocolVersion: '2025-06-18',
        capabilities: { tools: {} },
        serverInfo: { name: 'scripted', version: '1.0.0' },
      });
    if (message.method === 'tools/call') return onCall(res, message.id);
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        jsonrpc: '2.0',
        id: message.id,
        error: { code: -32601, message: 'Method not found' },
      }),
    );
  });
}

/** `connect`: never answers anything; `call`: answers the handshake, never `tools/call`. */
export async function startHangingUpstream(phase: 'connect' | 'call'): Promise<Upstream> {
  if (phase === 'call') return startScripted(() => undefined);
  return listen(() => undefined);
}

/** A normal handshake, then a `tools/call` result whose `content` is not an array. */
export async function startMalformedUpstream(): Promise<Upstream> {
  return startScripted((res, id) => rpcResult(res, id, { content: 'not an array', isError: 'maybe' }));
}

/** A normal handshake, then the connection dropped when `tools/call` arrives (no answer at all). */
export async function startDroppingUpstream(): Promise<Upstream> {
  return startScripted((res) => res.socket?.destroy());
}

/** Answers every request with a redirect to `location`. */
export async function startRedirectingUpstream(location: string): Promise<Upstream> {
  return listen((_req, res) => {
    res.writeHead(307, { location }).end();
  });
}

/** `@modelcontextprotocol/server-everything streamableHttp` on a free port, as a child process. */
export async function startEverythingUpstream(): Promise<Upstream> {
  const probe = await listen(() => undefined);
  const port = probe.port;
  await probe.close();
  const require = createRequire(import.meta.url);
  const entry = path.join(
    path.dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
    'dist/index.js',
  );
  const child = spawn(process.execPath, [entry, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}/mcp`;
  try {
    await waitFor(
      'server-everything to listen',
      () => {
        if (child.exitCode !== null) throw new Error(`server-everything exited: ${stderr}`);
        return /listening on port/.test(stderr) ? true : undefined;
      },
      30_000,
    );
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    port,
    calls: 0,
    headers: [],
    busyMs: 0,
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A resolver over fixed targets: `${tenant}/${server}/${tool}` (a tenant sees only its own). */
export function fixedResolver(targets: UpstreamTarget[]): UpstreamResolver {
  const byKey = new Map(targets.map((t) => [`${t.tenantId}/${t.server}/${t.tool.name}`, t]));
  return async (tenantId, server, tool) => byKey.get(`${tenantId}/${server}/${tool}`) ?? null;
}

/** A target for `tool` of the upstream at `url`, with a placeholder pinned hash. */
export function targetFor(
  url: string,
  tool: string,
  extra: Partial<UpstreamTarget['tool']> & {
    tenantId?: string;
    server?: string;
    headers?: Record<string, string>;
  } = {},
): UpstreamTarget {
  const { tenantId = 't1', server = 'up', headers = {}, ...toolExtra } = extra;
  return {
    tenantId,
    server,
    url,
    headers,
    tool: { name: tool, inputSchema: { type: 'object' }, hash: 'sha256:test', ...toolExtra },
  };
}

/**
 * A minimal upstream MCP server for the catalog tests (issue 25): the official SDK's low-level
 * `Server` (`@modelcontextprotocol/sdk` 1.x), stateless Streamable HTTP on a loopback port, listing
 * exactly the raw tools the test gives (so a test can list a catastrophic `pattern` or change a
 * description mid-test with `setTools`). With `token`, a request without `Authorization: Bearer
 * <token>` gets 401. (h25b's `mcp-upstreams.ts` has the fuller servers; the merger unifies.)
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

export interface FixtureTool {
  name: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

export interface UpstreamFixture {
  url: string;
  /** Replaces what `tools/list` answers from the next request on. */
  setTools(tools: FixtureTool[]): void;
  /** `tools/list` requests received. */
  lists: number;
  /** The Authorization header of every POST. */
  authorizations: (string | undefined)[];
  /** Every `tools/call`: the tool's name and its arguments. */
  calls: { name: string; arguments: unknown }[];
  close(): Promise<void>;
}

export async function startUpstreamFixture(options: {
  tools: FixtureTool[];
  token?: string;
}): Promise<UpstreamFixture> {
  let tools = options.tools;
  const sockets = new Set<Socket>();
  const fixture = {
    url: '',
    lists: 0,
    authorizations: [] as (string | undefined)[],
    calls: [] as { name: string; arguments: unknown }[],
    setTools(next: FixtureTool[]) {
      tools = next;
    },
  } as UpstreamFixture;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        if (req.method === 'POST') fixture.authorizations.push(req.headers.authorization);
        if (options.token && req.headers.authorization !== `Bearer ${options.token}`) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
          return;
        }
        if (req.method !== 'POST') {
          res.writeHead(405).end();
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as unknown;
        const mcp = new Server(
          { name: 'upstream-fixture', version: '1.0.0' },
          { capabilities: { tools: {} } },
        );
        mcp.setRequestHandler(ListToolsRequestSchema, async () => {
          fixture.lists += 1;
          return { tools: tools as never };
        });
        mcp.setRequestHandler(CallToolRequestSchema, async (request) => {
          fixture.calls.push({ name: request.params.name, arguments: request.params.arguments });
          return { content: [{ type: 'text', text: JSON.stringify({ called: request.params.name }) }] };
        });
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
        res.on('close', () => {
          void transport.close();
          void mcp.close();
        });
        await mcp.connect(transport);
        await transport.handleRequest(req, res, body);
      })().catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fixture.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  fixture.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return fixture;
}

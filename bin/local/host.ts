/**
 * The local host: runs the Lambda handlers behind one HTTP port as API Gateway HTTP API (v2)
 * would (payload format 2.0; each route authenticates its caller itself), and runs the stream consumers with the same
 * filters as the deployed event source mappings. Reads routes and consumers from the same
 * constants module as lib/.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { Context } from 'aws-lambda';
import { createAppState, type AppState, type StateOverrides } from '../../functions/handlers/app-state.js';
import { getToolCallRoute } from '../../functions/handlers/get-toolcall.js';
import { sequence } from '../../functions/handlers/sequencer.js';
import { submitRoute } from '../../functions/handlers/submit-toolcall.js';
import { executeRoute } from '../../functions/handlers/execute-toolcall.js';
import { listApprovalsRoute } from '../../functions/handlers/list-approvals.js';
import { getApprovalRoute } from '../../functions/handlers/get-approval.js';
import { approveRoute } from '../../functions/handlers/approve-approval.js';
import { denyRoute } from '../../functions/handlers/deny-approval.js';
import { sweep } from '../../functions/handlers/expire-approvals.js';
import { releaseHeldChains } from '../../functions/handlers/release-held-chains.js';
import { loadConfig, type Config } from '../../functions/shared/config.js';
import {
  LIMITS,
  ROUTES,
  SCHEDULES,
  STREAM_CONSUMERS,
  type RouteDef,
} from '../../functions/shared/constants.js';
import { AppError, badRequest, toErrorResponse } from '../../functions/shared/errors.js';
import type { HttpEvent, HttpResponse } from '../../functions/shared/http.js';
import { lambda } from '../../functions/shared/middleware.js';
import { ensureTable } from '../../functions/store/table.js';
import { StreamPoller } from './stream-poller.js';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

type RouteHandler = (event: HttpEvent) => Promise<HttpResponse>;

/** Route handler factories by handler name (the same names CDK deploys). */
const ROUTE_FACTORIES: Record<string, (getState: () => AppState) => RouteHandler> = {
  'submit-toolcall': submitRoute,
  'get-toolcall': getToolCallRoute,
  'execute-toolcall': executeRoute,
  'list-approvals': listApprovalsRoute,
  'get-approval': getApprovalRoute,
  'approve-approval': approveRoute,
  'deny-approval': denyRoute,
};

/** Scheduled handler factories by handler name (the names CDK deploys). */
const SCHEDULE_FACTORIES: Record<
  (typeof SCHEDULES)[number]['handler'],
  (getState: () => AppState) => (event: unknown) => Promise<unknown>
> = {
  'expire-approvals': sweep,
  'release-held-chains': releaseHeldChains,
};

export interface LocalHostOptions {
  config: Config;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  overrides?: StateOverrides;
  /** Run the stream consumers (sequencer) and the schedules (expiry sweep) in this process. */
  consumers?: boolean;
  /** Seconds between runs of each schedule (EventBridge's rate in AWS). */
  scheduleIntervalSec?: number;
  /** Told how long each handler invocation took (the benchmark prices Lambda time with it). */
  onInvoke?: (handler: string, ms: number) => void;
  /**
   * The client the stream poller keeps its position with (Lambda's event source mapping does
   * this itself in AWS, at no cost to the table); default: the handlers' client.
   */
  pollerDoc?: DynamoDBDocumentClient;
  /** Limits on slow clients (tests shorten them). */
  timeouts?: Partial<Record<keyof typeof SERVER_TIMEOUTS, number>>;
  /** Runs once the table exists and before `/readyz` answers 200 (e.g. seeding the demo keys). */
  beforeReady?: (state: AppState) => Promise<void>;
}

export interface LocalHost {
  url: string;
  state: AppState;
  poller?: StreamPoller;
  ready(): boolean;
  /** Runs a scheduled handler now (as its timer would; a run in progress is joined, not doubled). */
  runSchedule(handler: (typeof SCHEDULES)[number]['handler']): Promise<unknown>;
  stop(): Promise<void>;
}

/** The local server's limits on slow or stalled clients (API Gateway has its own in AWS). */
export const SERVER_TIMEOUTS = {
  requestMs: 15_000,
  headersMs: 10_000,
  checkEveryMs: 1_000,
  keepAliveMs: 5_000,
} as const;

const errorBody = (status: number, code: string, message: string, requestId: string) => ({
  code,
  message,
  retryable: status === 408 || status >= 500,
  request_id: requestId,
});

function fakeContext(name: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `oc-local-${name}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:oc-local-${name}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/oc-local-${name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Matches `/v1/toolcalls/{event_id}` style templates; returns the path parameters. */
export function matchRoute(routes: readonly RouteDef[], method: string, path: string) {
  for (const route of routes) {
    if (route.method !== method) continue;
    const names: string[] = [];
    const pattern = new RegExp(
      '^' + route.path.replace(/\{([^}]+)\}/g, (_m, name: string) => (names.push(name), '([^/]+)')) + '$',
    );
    const m = pattern.exec(path);
    if (m) {
      const params: Record<string, string> = {};
      for (const [i, n] of names.entries()) {
        try {
          params[n] = decodeURIComponent(m[i + 1] ?? '');
        } catch {
          // API Gateway answers a malformed percent-encoding with a 400 before any Lambda runs.
          return { route, params, malformed: n };
        }
      }
      return { route, params };
    }
  }
  return undefined;
}

async function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return 'too_large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function startLocalHost(options: LocalHostOptions): Promise<LocalHost> {
  const { config } = options;
  const state = createAppState(config, options.overrides);
  const dynamo = new DynamoDBClient(config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {});
  const { streamArn } = await ensureTable(dynamo, config.tableName);
  dynamo.destroy();

  const routes = new Map<string, ReturnType<typeof lambda<HttpEvent, HttpResponse>>>();
  for (const route of ROUTES) {
    const factory = ROUTE_FACTORIES[route.handler];
    if (!factory) throw new Error(`no local handler for route ${route.handler}`);
    routes.set(route.handler, lambda(factory(() => state)));
  }

  const timed = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    if (!options.onInvoke) return run();
    const start = performance.now();
    try {
      return await run();
    } finally {
      options.onInvoke(name, performance.now() - start);
    }
  };

  let poller: StreamPoller | undefined;
  if (options.consumers !== false) {
    const consumer = STREAM_CONSUMERS[0];
    const sequencer = lambda(sequence(() => state.chain));
    poller = new StreamPoller({
      streams: new DynamoDBStreamsClient(
        config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {},
      ),
      doc: options.pollerDoc ?? state.doc,
      table: config.tableName,
      streamArn,
      consumer: consumer.handler,
      filter: consumer.filter,
      batchSize: consumer.batchSize,
      handler: (event) => timed(consumer.handler, () => sequencer(event, fakeContext(consumer.handler))),
      onError: (error) => console.error('[oc] stream poller error:', (error as Error).message),
    });
    poller.start();
  }

  // Schedules: EventBridge rules in AWS, timers here; a run never overlaps the previous one.
  const timers: NodeJS.Timeout[] = [];
  const scheduled = new Map<string, () => Promise<unknown>>();
  for (const schedule of SCHEDULES) {
    const factory = SCHEDULE_FACTORIES[schedule.handler];
    const run = lambda(factory(() => state));
    let running: Promise<unknown> | undefined;
    const once = () =>
      (running ??= run({}, fakeContext(schedule.handler)).finally(() => (running = undefined)));
    scheduled.set(schedule.handler, once);
    if (options.consumers !== false)
      timers.push(
        setInterval(
          () =>
            void once().catch((error: Error) =>
              console.error(`[oc] ${schedule.handler} failed:`, error.message),
            ),
          (options.scheduleIntervalSec ?? 60) * 1000,
        ),
      );
  }

  let isReady = false;
  const timeouts = { ...SERVER_TIMEOUTS, ...options.timeouts };
  const server = http.createServer(
    {
      // A client that stops sending (a body shorter than its Content-Length, headers that never
      // end) is answered 408 and disconnected instead of holding a connection open.
      requestTimeout: timeouts.requestMs,
      headersTimeout: timeouts.headersMs,
      connectionsCheckingInterval: timeouts.checkEveryMs,
    },
    (req, res) => {
      void handle(req, res).catch((error) => {
        // The client went away (or timed out) mid-request: nothing to answer.
        if (req.destroyed || res.destroyed || res.writableEnded) return;
        console.error('[oc] host error', error);
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(errorBody(500, 'INTERNAL_ERROR', 'internal error', randomUUID())));
      });
    },
  );
  server.keepAliveTimeout = timeouts.keepAliveMs;
  // Malformed HTTP, oversized headers, timeouts: the SPEC error body where the socket still takes one.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || socket.destroyed) return socket.destroy();
    const [status, code, message] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ([408, 'REQUEST_TIMEOUT', 'the request was not received in time'] as const)
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? ([431, 'BAD_REQUEST', 'request headers too large'] as const)
          : ([400, 'BAD_REQUEST', 'malformed HTTP request'] as const);
    const body = JSON.stringify(errorBody(status, code, message, randomUUID()));
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const requestId = randomUUID();
    const send = (r: HttpResponse) => {
      const body = r.body ?? '';
      res.writeHead(r.statusCode ?? 200, {
        ...(r.headers as http.OutgoingHttpHeaders),
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
    };
    const sendError = (error: AppError) => {
      const mapped = toErrorResponse(error, requestId);
      send({
        statusCode: mapped.status,
        headers: { 'Content-Type': 'application/json', ...mapped.headers },
        body: JSON.stringify(mapped.body),
      });
    };
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://local');
    } catch {
      return sendError(badRequest('malformed request target'));
    }
    if (method === 'GET' && url.pathname === '/healthz')
      return send({ statusCode: 200, headers: { 'Content-Type': 'text/plain' }, body: 'OK' });
    if (method === 'GET' && url.pathname === '/readyz') {
      return send(
        isReady
          ? { statusCode: 200, headers: { 'Content-Type': 'text/plain' }, body: 'OK' }
          : { statusCode: 503, headers: { 'Content-Type': 'text/plain' }, body: 'NOT READY' },
      );
    }
    const matched = matchRoute(ROUTES, method, url.pathname);
    if (!matched) return sendError(new AppError(404, 'NOT_FOUND', 'no such route'));
    if (matched.malformed)
      return sendError(
        badRequest(`invalid ${matched.malformed}: malformed percent-encoding`, [
          { path: matched.malformed, message: 'malformed percent-encoding' },
        ]),
      );
    // API Gateway rejects oversized payloads before any Lambda runs; cap reading a little above the handler's limit.
    const body = await readBody(req, LIMITS.maxBodyBytes + 1);
    if (body === 'too_large')
      return sendError(
        new AppError(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${LIMITS.maxBodyBytes} bytes`),
      );

    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
    const now = new Date();
    const requestContext = {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method,
        path: url.pathname,
        protocol: 'HTTP/1.1',
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: `${method} ${matched.route.path}`,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    };
    const queryStringParameters = url.searchParams.size ? Object.fromEntries(url.searchParams) : undefined;
    const event = {
      version: '2.0',
      routeKey: requestContext.routeKey,
      rawPath: url.pathname,
      rawQueryString: url.search.slice(1),
      headers,
      queryStringParameters,
      pathParameters: matched.params,
      body: body.length ? body.toString('base64') : undefined,
      isBase64Encoded: body.length > 0,
      requestContext,
    } as unknown as HttpEvent;
    const handler = routes.get(matched.route.handler);
    if (!handler) return sendError(new AppError(404, 'NOT_FOUND', 'no such route'));
    send(await timed(matched.route.handler, () => handler(event, fakeContext(matched.route.handler))));
  }

  await options.beforeReady?.(state);
  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  isReady = true;
  return {
    url: `http://127.0.0.1:${address.port}`,
    state,
    poller,
    ready: () => isReady,
    runSchedule(handler) {
      const run = scheduled.get(handler);
      if (!run) throw new Error(`no schedule ${handler}`);
      return run();
    },
    async stop() {
      isReady = false;
      timers.forEach((t) => clearInterval(t));
      await poller?.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      state.doc.destroy();
    },
  };
}

export { loadConfig };

/**
 * The local host: runs the Lambda handlers behind one HTTP port as API Gateway HTTP API (v2)
 * would (payload format 2.0; each route authenticates its caller itself), and runs the stream consumers with the same
 * filters as the deployed event source mappings. Reads routes and consumers from the same
 * constants module as lib/. It outlives its dependencies: while DynamoDB is down requests fail
 * closed, `/readyz` names what is down, the poller backs off, and once DynamoDB is back (a table
 * that vanished with an in-memory restart is re-created) it serves again.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { InvokeStore, InvokeStoreBase } from '@aws/lambda-invoke-store';
import type { Context } from 'aws-lambda';
import { createAppState, type AppState, type StateOverrides } from '../../functions/handlers/app-state.js';
import { getToolCallRoute } from '../../functions/handlers/get-toolcall.js';
import { getToolCallProofRoute } from '../../functions/handlers/get-toolcall-proof.js';
import { sequence } from '../../functions/handlers/sequencer.js';
import { submitRoute } from '../../functions/handlers/submit-toolcall.js';
import { executeRoute } from '../../functions/handlers/execute-toolcall.js';
import { withdrawRoute } from '../../functions/handlers/withdraw-toolcall.js';
import { extendRoute } from '../../functions/handlers/extend-approval.js';
import { createStandingGrantRoute } from '../../functions/handlers/create-standing-grant.js';
import { listGrantsRoute } from '../../functions/handlers/list-grants.js';
import { getGrantRoute } from '../../functions/handlers/get-grant.js';
import { revokeGrantRoute } from '../../functions/handlers/revoke-grant.js';
import { listApprovalsRoute } from '../../functions/handlers/list-approvals.js';
import { getApprovalRoute } from '../../functions/handlers/get-approval.js';
import { approveRoute } from '../../functions/handlers/approve-approval.js';
import { editRoute } from '../../functions/handlers/edit-approval.js';
import { batchRoute } from '../../functions/handlers/batch-approvals.js';
import { denyRoute } from '../../functions/handlers/deny-approval.js';
import { getApprovalDeliveriesRoute } from '../../functions/handlers/get-approval-deliveries.js';
import type { NotifyOverrides, NotifyState } from '../../functions/handlers/notifications-state.js';
import { checkRouteUrls, outbox } from '../../functions/handlers/outbox.js';
import type { NotifyConfig } from '../../functions/shared/notify-config.js';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { setUpLocalNotifications, type LocalNotifications } from './notifications.js';
import { consoleRoute } from '../../functions/handlers/console.js';
import { mcpRoute } from '../../functions/handlers/mcp.js';
import { slackInteractionsRoute } from '../../functions/handlers/slack-interactions.js';
import { sweep } from '../../functions/handlers/expire-approvals.js';
import { releaseParked } from '../../functions/handlers/release-parked.js';
import { archiveEvidence } from '../../functions/handlers/archive-evidence.js';
import type { Archiver } from '../../functions/store/archiver.js';
import { loadConfig, type Config } from '../../functions/shared/config.js';
import {
  ENV,
  FUNCTION_URLS,
  LIMITS,
  ROUTES,
  SCHEDULES,
  STREAM_CONSUMERS,
  type RouteDef,
} from '../../functions/shared/constants.js';
import { AppError, badRequest, toErrorResponse } from '../../functions/shared/errors.js';
import { API_HEADERS, jsonResponse, type HttpEvent, type HttpResponse } from '../../functions/shared/http.js';
import { lambda } from '../../functions/shared/middleware.js';
import { logger } from '../../functions/shared/powertools.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { connectorRegistry } from '../../functions/connectors/registry.js';
import { withUpstreamConnector } from '../../functions/connectors/upstream-registry.js';
import type { ConnectorInvoker } from '../../functions/connectors/types.js';
import { createLocalInvoker } from '../../functions/store/connector-invoker.js';
import { catalogResolver } from '../../functions/handlers/upstream-state.js';
import { ensureTable } from '../../functions/store/table.js';
import { builtConsoleDir } from '../../console/build.js';
import { FailureLog, describeError } from './backoff.js';
import { devSignIn } from './dev-sign-in.js';
import {
  Readiness,
  ReadinessMonitor,
  TableMissingError,
  dynamoDbPart,
  readyzResponse,
  type ReadinessPart,
  type ReadinessReport,
} from './readiness.js';
import { StreamPoller } from './stream-poller.js';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { chainOf } from '../../functions/handlers/chain-state.js';

type RouteHandler = (event: HttpEvent) => Promise<HttpResponse>;

/** Route handler factories by handler name (the same names CDK deploys). */
const ROUTE_FACTORIES: Record<string, (getState: () => AppState) => RouteHandler> = {
  'submit-toolcall': submitRoute,
  'get-toolcall': getToolCallRoute,
  'get-toolcall-proof': (getState) => getToolCallProofRoute(getState),
  'execute-toolcall': executeRoute,
  'withdraw-toolcall': withdrawRoute,
  'list-approvals': listApprovalsRoute,
  'get-approval': getApprovalRoute,
  'approve-approval': approveRoute,
  'edit-approval': editRoute,
  'batch-approvals': batchRoute,
  'deny-approval': denyRoute,
  'get-approval-deliveries': getApprovalDeliveriesRoute,
  'extend-approval': extendRoute,
  'create-standing-grant': createStandingGrantRoute,
  'list-grants': listGrantsRoute,
  'get-grant': getGrantRoute,
  'revoke-grant': revokeGrantRoute,
  mcp: mcpRoute,
  console: consoleRoute,
  // A Lambda Function URL in AWS (FUNCTION_URLS), the same path here.
  'slack-interactions': slackInteractionsRoute,
};

/** Scheduled handler factories by handler name (the names CDK deploys). */
const SCHEDULE_FACTORIES: Record<
  (typeof SCHEDULES)[number]['handler'],
  (
    getState: () => AppState,
    getNotify: (app: AppState) => NotifyState,
  ) => (event: unknown) => Promise<unknown>
> = {
  'expire-approvals': sweep,
  'release-parked': releaseParked,
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
  /**
   * Runs once the table exists and before `/readyz` answers 200 (e.g. seeding the demo keys), and
   * again whenever the table had to be re-created (DynamoDB Local restarted in memory).
   */
  beforeReady?: (state: AppState) => Promise<void>;
  /** More parts for `/readyz` to check (the stack adds SQS and S3); DynamoDB and the poller are built in. */
  parts?: ReadinessPart[];
  /** Where the host's own lines go (failures are rate-limited). @default console.error */
  log?: (line: string) => void;
  /**
   * The evidence archiver on its own timer (its EventBridge rate in AWS comes from CDK context):
   * `archiver` is built for the current state (a re-created table gets a new one).
   */
  archive?: { intervalSec: number; archiver: (state: AppState) => Archiver };
  /**
   * Approval notifications (SPEC §5): with an SQS endpoint, the host creates the queue and DLQ,
   * runs the outbox on the stream and the delivery worker on the queue, and re-enqueues every
   * pending delivery at start.
   */
  notifications?: {
    sqsEndpoint: string;
    config: NotifyConfig;
    overrides?: NotifyOverrides;
    /** Concurrent delivery batches. @default 4 */
    workers?: number;
  };
}

export interface LocalHost {
  url: string;
  /** The current state (replaced when the table is re-created: its caches described the lost one). */
  readonly state: AppState;
  poller?: StreamPoller;
  /** The outbox's stream poller (with notifications on). */
  outboxPoller?: StreamPoller;
  notifications?: LocalNotifications;
  /** What `/readyz` would answer now (cached about a second). */
  readiness(): Promise<ReadinessReport>;
  /** Runs a scheduled handler now (as its timer would; a run in progress is joined, not doubled). */
  runSchedule(handler: (typeof SCHEDULES)[number]['handler'] | 'archive-evidence'): Promise<unknown>;
  /** Stops taking requests, lets those in flight finish (a few seconds at most), stops the consumers. */
  stop(): Promise<void>;
}

/** How long stop() lets requests in flight finish before it cuts their connections. */
const DRAIN_MS = 3000;

const SDK_TIMEOUTS = { connectionTimeout: 1000, requestTimeout: 10_000, throwOnRequestTimeout: true };

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

/**
 * This process runs many handlers at once, like a Lambda execution environment with concurrency
 * (AWS_LAMBDA_MAX_CONCURRENCY): Powertools then keeps each invocation's state, the Lambda context
 * that gives every log line its function_name among it, in the runtime's InvokeStore (async-local)
 * instead of on the one shared logger, where the last invocation to start would name them all.
 * The store is made when this module loads, before any AWS SDK call (which would make the
 * single-invocation one); the variable is set at the first invocation, once every module has
 * loaded (Powertools throws when it is set and the store is not there yet).
 */
const invokeStore = await InvokeStore.getInstanceAsync(true);

/** The store key naming the local function an async call belongs to (the bench's counters split by it). */
const FUNCTION_KEY = 'oc-local-function';

/** The local function whose invocation the caller runs in, if any (`invoke`'s `name`). */
export function invokedFunction(): string | undefined {
  return invokeStore.hasContext() ? invokeStore.get<string>(FUNCTION_KEY) : undefined;
}

/** Runs one invocation of `name` in its own scope, its logs carrying its own function's name. */
export function invoke<T>(name: string, run: (context: Context) => Promise<T>): Promise<T> {
  process.env.AWS_LAMBDA_MAX_CONCURRENCY ??= '64';
  const context = fakeContext(name);
  const scope = { [InvokeStoreBase.PROTECTED_KEYS.REQUEST_ID]: context.awsRequestId, [FUNCTION_KEY]: name };
  return invokeStore.run(scope, () => {
    // The handlers' middleware adds it too; the local notification worker has none.
    logger.addContext(context);
    return run(context);
  });
}

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
      '^' +
        route.path.replace(
          /\{([^}+]+)(\+?)\}/g,
          // `{name+}` is API Gateway's greedy parameter: the rest of the path, slashes included.
          (_m, name: string, greedy: string) => (names.push(name), greedy ? '(.+)' : '([^/]+)'),
        ) +
        '$',
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

/** The local host's dev sign-in for the console (never deployed: it is not in ROUTES). */
export const DEV_SIGN_IN_PATH = '/console/dev-sign-in';

export async function startLocalHost(options: LocalHostOptions): Promise<LocalHost> {
  // The console is served from files built here once at start (in AWS: built at synth into its bundle).
  const config = options.config.consoleDir
    ? options.config
    : { ...options.config, consoleDir: builtConsoleDir() };
  // Nothing is logged once stop() has begun (a readiness probe in flight may still fail then).
  const write = options.log ?? ((line: string) => console.error(line));
  const log = (line: string) => {
    if (!stopping) write(line);
  };
  // A frozen DynamoDB must not hold requests forever: each attempt gives up after 10 s,
  // and the caller gets the error body (as API Gateway's own integration timeout would).
  const endpoint = config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {};
  const doc = options.overrides?.doc ?? createDocumentClient({ ...endpoint, requestHandler: SDK_TIMEOUTS });
  const overrides: StateOverrides = {
    ...options.overrides,
    doc,
    connectors: options.overrides?.connectors ?? localConnectors(config, doc),
  };
  let state = createAppState(config, overrides);
  let stopping = false;
  let isServing = false;
  const dynamo = new DynamoDBClient({ ...endpoint, requestHandler: SDK_TIMEOUTS });
  const { streamArn } = await ensureTable(dynamo, config.tableName);
  const currentStreamArn = async () => {
    const described = await dynamo.send(new DescribeTableCommand({ TableName: config.tableName }));
    const arn = described.Table?.LatestStreamArn;
    if (!arn) throw new Error(`table ${config.tableName} has no stream`);
    return arn;
  };

  let notifications: LocalNotifications | undefined;
  if (options.notifications) {
    // A route that can never be delivered to is a configuration error, refused at start (W22).
    const problems = checkRouteUrls(
      config.policyDir ?? defaultPolicyDir(),
      options.notifications.config.allowPrivateWebhooks,
    );
    if (problems.length > 0) throw new Error(`notification routes refused: ${problems.join('; ')}`);
    notifications = await setUpLocalNotifications({
      config: options.notifications.config,
      sqsEndpoint: options.notifications.sqsEndpoint,
      queuePrefix: config.tableName,
      overrides: options.notifications.overrides,
      workers: options.notifications.workers,
      log,
    });
  }

  const routes = new Map<string, ReturnType<typeof lambda<HttpEvent, HttpResponse>>>();
  for (const route of [...ROUTES, ...FUNCTION_URLS]) {
    const factory = ROUTE_FACTORIES[route.handler];
    if (!factory) throw new Error(`no local handler for route ${route.handler}`);
    routes.set(route.handler, lambda(factory(() => state)));
  }

  const timed = async <T>(name: string, run: (context: Context) => Promise<T>): Promise<T> => {
    if (!options.onInvoke) return invoke(name, run);
    const start = performance.now();
    try {
      return await invoke(name, run);
    } finally {
      options.onInvoke(name, performance.now() - start);
    }
  };

  let poller: StreamPoller | undefined;
  let outboxPoller: StreamPoller | undefined;
  if (options.consumers !== false) {
    const consumer = STREAM_CONSUMERS[0];
    const sequencer = lambda(sequence(() => chainOf(state)));
    poller = new StreamPoller({
      streams: new DynamoDBStreamsClient({ ...endpoint, requestHandler: SDK_TIMEOUTS }),
      doc: options.pollerDoc ?? state.doc,
      table: config.tableName,
      streamArn,
      consumer: consumer.handler,
      filter: consumer.filter,
      batchSize: consumer.batchSize,
      handler: (event) => timed(consumer.handler, (context) => sequencer(event, context)),
      resolveStreamArn: currentStreamArn,
      log,
    });
    poller.start();
    const outboxDef = STREAM_CONSUMERS.find((c) => c.handler === 'outbox');
    if (notifications && outboxDef) {
      const run = lambda(outbox(() => state, notifications.stateFor));
      outboxPoller = new StreamPoller({
        streams: new DynamoDBStreamsClient({ ...endpoint, requestHandler: SDK_TIMEOUTS }),
        doc: options.pollerDoc ?? state.doc,
        table: config.tableName,
        streamArn,
        consumer: outboxDef.handler,
        filter: outboxDef.filter,
        batchSize: outboxDef.batchSize,
        handler: (event) => timed(outboxDef.handler, (context) => run(event, context)),
        resolveStreamArn: currentStreamArn,
        log,
      });
      outboxPoller.start();
    }
  }

  // Schedules: EventBridge rules in AWS, timers here; a run never overlaps the previous one.
  const timers: NodeJS.Timeout[] = [];
  const scheduled = new Map<string, () => Promise<unknown>>();
  for (const schedule of SCHEDULES) {
    const run = lambda(
      SCHEDULE_FACTORIES[schedule.handler](
        () => state,
        notifications?.stateFor ??
          (() => {
            throw new Error('notifications are off in this stack');
          }),
      ),
    );
    const failures = new FailureLog({ what: `[oc] ${schedule.handler}`, log, summaryEveryMs: 300_000 });
    let running: Promise<unknown> | undefined;
    const once = () =>
      (running ??= invoke(schedule.handler, (context) => run({}, context)).finally(
        () => (running = undefined),
      ));
    scheduled.set(schedule.handler, once);
    if (options.consumers !== false)
      timers.push(
        setInterval(
          () =>
            void once()
              .then(() => failures.success())
              .catch((error: unknown) => failures.failure(error)),
          (options.scheduleIntervalSec ?? 60) * 1000,
        ),
      );
  }

  if (options.archive && options.consumers !== false) {
    const { archiver, intervalSec } = options.archive;
    let built: { state: AppState; archiver: Archiver } | undefined;
    const forState = (current: AppState) =>
      built?.state === current
        ? built.archiver
        : (built = { state: current, archiver: archiver(current) }).archiver;
    const run = lambda(archiveEvidence(forState, () => state));
    const failures = new FailureLog({ what: '[oc] archive-evidence', log, summaryEveryMs: 300_000 });
    let running: Promise<unknown> | undefined;
    const once = () =>
      (running ??= invoke('archive-evidence', (context) => run({}, context)).finally(
        () => (running = undefined),
      ));
    scheduled.set('archive-evidence', once);
    timers.push(
      setInterval(
        () =>
          void once()
            .then(() => failures.success())
            .catch((error: unknown) => failures.failure(error)),
        intervalSec * 1000,
      ),
    );
  }

  // A table that vanished (DynamoDB Local restarted in memory) is created again, with fresh stores:
  // the old ones cache a chain tail and keys that no longer exist.
  let recreating: Promise<void> | undefined;
  const recreateTable = () =>
    (recreating ??= (async () => {
      log(
        `[oc] table ${config.tableName} is gone (DynamoDB lost its data): creating it again; everything stored before is lost`,
      );
      await ensureTable(dynamo, config.tableName);
      state = createAppState(config, overrides);
      await options.beforeReady?.(state);
      log(`[oc] table ${config.tableName} re-created`);
    })()
      .catch((error: unknown) =>
        log(`[oc] could not re-create table ${config.tableName}: ${describeError(error)}`),
      )
      .finally(() => (recreating = undefined)));
  const dynamoPart = dynamoDbPart(config.dynamodbEndpoint, config.tableName);
  const parts: ReadinessPart[] = [
    {
      ...dynamoPart,
      check: () =>
        dynamoPart.check().catch((error: unknown) => {
          if (error instanceof TableMissingError && !stopping) void recreateTable();
          throw error;
        }),
    },
    ...(poller
      ? [
          {
            name: 'stream-poller' as const,
            // Both readers of the stream (sequencer, outbox) answer for the part.
            check: async () => {
              const health = poller.health();
              if (!health.ok) throw new Error(health.detail);
              const outboxHealth = outboxPoller?.health();
              if (outboxHealth && !outboxHealth.ok) throw new Error(`outbox: ${outboxHealth.detail}`);
            },
          },
        ]
      : []),
    ...(options.parts ?? []),
  ];
  const readiness = new Readiness(parts, { log });
  const monitor = new ReadinessMonitor(readiness);

  const inFlight = new Set<Promise<void>>();
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
      // While stopping, a kept-alive connection gets its answer and is closed, so the drain ends.
      if (stopping) res.setHeader('Connection', 'close');
      const handling = handle(req, res).catch((error) => {
        // The client went away (or timed out) mid-request: nothing to answer.
        if (req.destroyed || res.destroyed || res.writableEnded) return;
        console.error('[oc] host error', error);
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json', ...API_HEADERS });
        res.end(JSON.stringify(errorBody(500, 'INTERNAL_ERROR', 'internal error', randomUUID())));
      });
      inFlight.add(handling);
      void handling.finally(() => inFlight.delete(handling));
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
        Object.entries(API_HEADERS)
          .map(([name, value]) => `${name}: ${value}\r\n`)
          .join('') +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const requestId = randomUUID();
    const send = (r: HttpResponse) => {
      // As API Gateway does: a base64 body (`isBase64Encoded`) goes out as its bytes.
      const body = r.isBase64Encoded ? Buffer.from(r.body ?? '', 'base64') : (r.body ?? '');
      res.writeHead(r.statusCode ?? 200, {
        ...(r.headers as http.OutgoingHttpHeaders),
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
    };
    // The host's own answers (no route, too large, malformed) are shaped as a handler's are.
    const sendError = (error: AppError) => {
      const mapped = toErrorResponse(error, requestId);
      send(
        jsonResponse(
          { status: mapped.status, body: JSON.stringify(mapped.body), headers: mapped.headers },
          requestId,
        ),
      );
    };
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://local');
    } catch {
      return sendError(badRequest('malformed request target'));
    }
    if (method === 'GET' && url.pathname === '/healthz')
      return send({ statusCode: 200, headers: { 'Content-Type': 'text/plain', ...API_HEADERS }, body: 'OK' });
    if (method === 'GET' && url.pathname === '/readyz') {
      return send(
        readyzResponse(
          isServing
            ? await readiness.check()
            : { ready: false, parts: [{ name: 'host', ok: false, detail: 'stopping' }] },
        ),
      );
    }
    const matched = matchRoute([...ROUTES, ...FUNCTION_URLS], method, url.pathname);
    if (method === 'POST' && url.pathname === DEV_SIGN_IN_PATH) {
      const body = await readBody(req, 16 * 1024);
      if (body === 'too_large')
        return sendError(new AppError(413, 'PAYLOAD_TOO_LARGE', 'request body too large'));
      try {
        const r = await devSignIn(config, body, req.headers['content-type']);
        return send(jsonResponse({ status: r.status, body: JSON.stringify(r.body) }, requestId));
      } catch (error) {
        return sendError(error as AppError);
      }
    }
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
    send(await timed(matched.route.handler, (context) => handler(event, context)));
  }

  const release = () => {
    readiness.close();
    dynamo.destroy();
    state.doc.destroy();
  };
  try {
    await options.beforeReady?.(state);
    if (notifications && options.consumers !== false) {
      const requeued = await notifications.requeue(state);
      if (requeued > 0)
        log(`[oc] re-enqueued ${requeued} pending notification(s) from their delivery records`);
      notifications.start(() => state, timed);
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    // Nothing may keep running (or the process alive) after a failed start.
    stopping = true;
    timers.forEach((t) => clearInterval(t));
    await poller?.stop();
    await outboxPoller?.stop();
    await notifications?.stop();
    release();
    throw error;
  }
  const address = server.address() as AddressInfo;
  isServing = true;
  monitor.start();
  return {
    url: `http://127.0.0.1:${address.port}`,
    get state() {
      return state;
    },
    poller,
    outboxPoller,
    notifications,
    readiness: () => readiness.check(),
    runSchedule(handler) {
      const run = scheduled.get(handler);
      if (!run) throw new Error(`no schedule ${handler}`);
      return run();
    },
    async stop() {
      stopping = true;
      isServing = false;
      monitor.stop();
      timers.forEach((t) => clearInterval(t));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let drainTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...inFlight]),
        new Promise((resolve) => (drainTimer = setTimeout(resolve, DRAIN_MS))),
      ]);
      clearTimeout(drainTimer);
      server.closeAllConnections();
      await closed;
      await poller?.stop();
      await outboxPoller?.stop();
      await notifications?.stop();
      await recreating;
      release();
    },
  };
}

export { loadConfig };

/**
 * The local stack's connectors: the native ones in process (as the deciding functions run them
 * without connector functions) plus the generic upstream MCP connector over the tenant catalogs in
 * this table, with local credentials (variables, files) and loopback upstreams allowed. The
 * deciding functions' own bundles do not carry the MCP client: in AWS it is its own Lambda.
 */
function localConnectors(config: Config, doc: DynamoDBDocumentClient): ConnectorInvoker {
  return createLocalInvoker(
    withUpstreamConnector(
      connectorRegistry({ env: { ...process.env, [ENV.connectorsMode]: config.connectorsMode } }),
      { resolve: catalogResolver(doc, config.tableName, { local: true }), allowPrivate: true },
    ),
  );
}

/**
 * The agent SDK's transport and wait rules against a scripted stand-in gateway on loopback
 * (answers the real one gives rarely or never on demand): Retry-After on 429, non-retryable
 * 5xx, network errors, the wait's timeout, an execution with an unknown outcome, and a wait that
 * rides out a restarting gateway (503s, dropped and refused connections) until its timeout.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ApprovalWaitTimeoutError,
  createClient,
  ExecutionOutcomeUnknownError,
  OpenClauseApiError,
  OpenClauseNetworkError,
  type ExecutionResponse,
} from '../../sdk/src/index.js';
import {
  json,
  startUpstream,
  type Responder,
  type UpstreamServer,
} from '../fixtures/connectors/upstream-server.js';

const EVENT = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
const ALLOW = { event_id: EVENT, decision: 'allow', reason: 'ok', policy_version: 'sha256:x' };
const error = (code: string, retryable: boolean, extra: Record<string, unknown> = {}) => ({
  code,
  message: code.toLowerCase(),
  retryable,
  request_id: 'r',
  ...extra,
});

let fake: UpstreamServer;
beforeAll(async () => {
  fake = await startUpstream();
});
afterAll(async () => fake.close());
beforeEach(() => {
  fake.requests.length = 0;
});

/** Answers in order; the last one repeats. */
const script = (...answers: Responder[]) =>
  fake.respond((req, res) => answers[Math.min(fake.requests.length - 1, answers.length - 1)]!(req, res));
const withHeaders =
  (status: number, body: unknown, headers: Record<string, string>): Responder =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
const client = (retry = { baseDelayMs: 1 }) => createClient({ baseUrl: fake.baseUrl, apiKey: 'k', retry });
const call = { agent_id: 'a', tool: 'slack', action: 'msg.post', idempotency_key: 'fixed-key' };

describe('SDK transport', () => {
  it('waits the Retry-After of a 429 before retrying, with the same key', async () => {
    script(withHeaders(429, error('RATE_LIMITED', true), { 'retry-after': '1' }), json(200, ALLOW));

    const started = Date.now();
    const r = await client().submit(call);

    expect(r.decision).toBe('allow');
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests.map((q) => JSON.parse(q.body).idempotency_key)).toEqual(['fixed-key', 'fixed-key']);
    // Honoured, not guessed: the retry came no earlier than the server asked.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
  });

  it('does not retry a 500 whose body says retryable: false', async () => {
    script(json(500, error('INTERNAL_ERROR', false)));

    await expect(client().submit(call)).rejects.toMatchObject({ status: 500, code: 'INTERNAL_ERROR' });
    expect(fake.requests).toHaveLength(1);
  });

  it('gives up after its attempts on repeated 503s, answering the last error', async () => {
    script(json(503, 'upstream unavailable'));

    const failure = await client()
      .submit(call)
      .catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(OpenClauseApiError);
    expect(failure).toMatchObject({ status: 503, code: 'HTTP_ERROR' });
    expect(fake.requests).toHaveLength(4);
  });

  it('retries a refused connection and reports it as a network error', async () => {
    const closed = await startUpstream();
    await closed.close();
    const sdk = createClient({
      baseUrl: closed.baseUrl,
      apiKey: 'k',
      retry: { attempts: 2, baseDelayMs: 1 },
    });

    await expect(sdk.submit(call)).rejects.toBeInstanceOf(OpenClauseNetworkError);
  });

  it('keeps a caller’s W3C trace id and continues a parent traceparent', async () => {
    script(json(200, ALLOW));
    const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

    await client().submit({ ...call, trace_id: 'not-w3c' }, { traceparent: parent });

    expect(JSON.parse(fake.requests[0]!.body).trace_id).toBe('not-w3c');
    expect(fake.requests[0]!.headers.traceparent).toMatch(
      /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/,
    );
    expect(fake.requests[0]!.headers.traceparent).not.toBe(parent);
  });
});

describe('waitForApprovalThenExecute', () => {
  it('throws ApprovalWaitTimeoutError once its timeout passes while pending', async () => {
    script(withHeaders(409, error('AWAITING_APPROVAL', true), { 'retry-after': '0' }));

    const failure = await client()
      .waitForApprovalThenExecute(EVENT, { pollInterval: 20, timeout: 200 })
      .catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(ApprovalWaitTimeoutError);
    expect(fake.requests.length).toBeGreaterThanOrEqual(2);
    expect(
      fake.requests.every((q) => q.method === 'POST' && q.url === `/v1/toolcalls/${EVENT}/execute`),
    ).toBe(true);
  });

  it('keeps polling through EXECUTION_IN_PROGRESS and throws ExecutionOutcomeUnknownError with the execution id', async () => {
    script(
      withHeaders(409, error('EXECUTION_IN_PROGRESS', true), { 'retry-after': '0' }),
      json(
        409,
        error('EXECUTION_OUTCOME_UNKNOWN', false, {
          details: [{ path: 'execution_event_id', message: 'x-1' }],
        }),
      ),
    );

    const failure = await client()
      .waitForApprovalThenExecute(EVENT, { pollInterval: 10 })
      .catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(ExecutionOutcomeUnknownError);
    expect(failure).toMatchObject({ executionEventId: 'x-1' });
    expect(fake.requests).toHaveLength(2);
  });
});

const EXECUTED: ExecutionResponse = {
  event_id: '9b2d7c1e-5f4a-4e3b-8d2c-1a0f9e8d7c6b',
  parent_event_id: EVENT,
  decision: 'allow',
  reason: 'approved execution',
  result: { status: 'success', output: { deleted: true }, duration_ms: 1 },
};

/**
 * A gateway that restarts: a script of steps, one per request, the last repeating. `down` closes
 * the listener (connections are refused) for `ms` and then listens again on the same port.
 */
type Step =
  | { kind: 'answer'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'drop' }
  | { kind: 'down'; ms: number };

async function restartingGateway(steps: Step[]) {
  let requests = 0;
  const log: string[] = [];
  let server: Server;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          const step = steps[Math.min(requests++, steps.length - 1)]!;
          log.push(step.kind === 'answer' ? String(step.status) : step.kind);
          if (step.kind === 'answer') {
            res.writeHead(step.status, { 'content-type': 'application/json', ...step.headers });
            res.end(typeof step.body === 'string' ? step.body : JSON.stringify(step.body));
          } else if (step.kind === 'drop') {
            req.socket.destroy();
          } else {
            req.socket.destroy();
            server.closeAllConnections();
            server.close(() => setTimeout(() => void listen(), step.ms));
          }
        });
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  await listen();
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        if (!server.listening) resolve();
      }),
  };
}

const pending: Step = {
  kind: 'answer',
  status: 409,
  body: error('AWAITING_APPROVAL', true),
  headers: { 'retry-after': '0' },
};
const unavailable: Step = { kind: 'answer', status: 503, body: 'upstream unavailable' };

describe('waitForApprovalThenExecute through a restarting gateway', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((g) => g.close()));
  });
  const start = async (steps: Step[]) => {
    const gateway = await restartingGateway(steps);
    open.push(gateway);
    return gateway;
  };
  const sdk = (baseUrl: string) =>
    createClient({ baseUrl, apiKey: 'k', retry: { baseDelayMs: 20, maxDelayMs: 200 } });

  it('retries 503s, dropped and refused connections until the gateway is back, then executes', async () => {
    const gateway = await start([
      pending,
      unavailable,
      unavailable,
      unavailable,
      { kind: 'drop' },
      { kind: 'drop' },
      { kind: 'answer', status: 502, body: '<html>bad gateway</html>' },
      { kind: 'down', ms: 1_500 },
      pending,
      { kind: 'answer', status: 200, body: EXECUTED },
    ]);

    const started = Date.now();
    const execution = await sdk(gateway.baseUrl).waitForApprovalThenExecute(EVENT, {
      pollInterval: 10,
      timeout: 30_000,
    });

    expect(execution).toEqual(EXECUTED);
    expect(gateway.log).toEqual(['409', '503', '503', '503', 'drop', 'drop', '502', 'down', '409', '200']);
    // The refused connections in between took their time: the wait outlasted the outage.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
  });

  it('gives up at its timeout, not before and not much after, naming the last failure', async () => {
    const gateway = await start([pending, unavailable]);

    const started = Date.now();
    const failure = await sdk(gateway.baseUrl)
      .waitForApprovalThenExecute(EVENT, { pollInterval: 10, timeout: 1_500 })
      .catch((e: unknown) => e);
    const elapsed = Date.now() - started;

    expect(failure).toBeInstanceOf(ApprovalWaitTimeoutError);
    expect((failure as Error).message).toMatch(/1500 ms/);
    expect((failure as Error).message).toMatch(/503 HTTP_ERROR/);
    expect((failure as ApprovalWaitTimeoutError).lastFailure).toBeInstanceOf(OpenClauseApiError);
    // More than one request's retries (4): it kept trying for the whole timeout.
    expect(gateway.log.length).toBeGreaterThan(5);
    expect(elapsed).toBeGreaterThanOrEqual(1_400);
    expect(elapsed).toBeLessThan(2_500);
  });

  it('names a refused connection as the last failure when the gateway never comes back', async () => {
    const gateway = await start([unavailable]);
    const { baseUrl } = gateway;
    await gateway.close();

    const started = Date.now();
    const failure = await sdk(baseUrl)
      .waitForApprovalThenExecute(EVENT, { timeout: 800 })
      .catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(ApprovalWaitTimeoutError);
    expect((failure as ApprovalWaitTimeoutError).lastFailure).toBeInstanceOf(OpenClauseNetworkError);
    expect((failure as Error).message).toMatch(/ECONNREFUSED/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
  });

  it('honours the Retry-After of a 429 while waiting', async () => {
    const gateway = await start([
      pending,
      { kind: 'answer', status: 429, body: error('RATE_LIMITED', true), headers: { 'retry-after': '1' } },
      { kind: 'answer', status: 200, body: EXECUTED },
    ]);

    const started = Date.now();
    await expect(
      sdk(gateway.baseUrl).waitForApprovalThenExecute(EVENT, { pollInterval: 10, timeout: 30_000 }),
    ).resolves.toEqual(EXECUTED);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
  });

  it('does not sleep past its timeout for a Retry-After beyond it', async () => {
    const gateway = await start([
      { kind: 'answer', status: 429, body: error('RATE_LIMITED', true), headers: { 'retry-after': '60' } },
    ]);

    const started = Date.now();
    const failure = await sdk(gateway.baseUrl)
      .waitForApprovalThenExecute(EVENT, { timeout: 2_000 })
      .catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(ApprovalWaitTimeoutError);
    expect((failure as Error).message).toMatch(/429 RATE_LIMITED/);
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(gateway.log).toEqual(['429']);
  });

  it.each([
    [400, 'VALIDATION_ERROR'],
    [401, 'UNAUTHORIZED'],
    [403, 'FORBIDDEN'],
    [404, 'NOT_FOUND'],
  ])('does not retry a %i: it is an answer', async (status, code) => {
    const gateway = await start([pending, { kind: 'answer', status, body: error(code, false) }]);

    await expect(
      sdk(gateway.baseUrl).waitForApprovalThenExecute(EVENT, { pollInterval: 10, timeout: 30_000 }),
    ).rejects.toMatchObject({ status, code });
    expect(gateway.log).toEqual(['409', String(status)]);
  });

  it('does not retry a 500 whose body says retryable: false', async () => {
    const gateway = await start([
      pending,
      { kind: 'answer', status: 500, body: error('INTERNAL_ERROR', false) },
    ]);

    await expect(
      sdk(gateway.baseUrl).waitForApprovalThenExecute(EVENT, { pollInterval: 10, timeout: 30_000 }),
    ).rejects.toMatchObject({ status: 500, code: 'INTERNAL_ERROR' });
    expect(gateway.log).toEqual(['409', '500']);
  });
});

/**
 * The agent SDK's transport and wait rules against a scripted stand-in gateway on loopback
 * (answers the real one gives rarely or never on demand): Retry-After on 429, non-retryable
 * 5xx, network errors, the wait's timeout, and an execution with an unknown outcome.
 */
import {
  ApprovalWaitTimeoutError,
  createClient,
  ExecutionOutcomeUnknownError,
  OpenClauseApiError,
  OpenClauseNetworkError,
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

import { jest } from '@jest/globals';
import { InvokeCommand, LambdaClient, type InvokeCommandOutput } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { createConnectorRegistry } from '../../functions/connectors/registry.js';
import type { Connector, ConnectorRequest } from '../../functions/connectors/types.js';
import { logger } from '../../functions/shared/powertools.js';
import { createLambdaInvoker, createLocalInvoker } from '../../functions/store/connector-invoker.js';

const request = (tool = 'slack', action = 'msg.post'): ConnectorRequest => ({
  event_id: 'evt-1',
  tenant_id: 'tenant1',
  agent_id: 'agent-1',
  tool,
  action,
  params: { channel: '#general', text: 'Hello' },
  resource: '',
});

const MOCK_ENV = { OC_CONNECTORS_MODE: 'mock' };
const CONNECTOR_FAILED = { code: 'CONNECTOR_ERROR', message: 'connector failed' };

/** The Lambda `Payload` is a blob adapter in the SDK; a plain Uint8Array is what matters here. */
const reply = (payload: unknown, extra: Partial<InvokeCommandOutput> = {}) =>
  ({
    StatusCode: 200,
    Payload: new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload)),
    ...extra,
  }) as unknown as InvokeCommandOutput;

beforeAll(() => logger.setLogLevel('SILENT'));

describe('local invoker', () => {
  it('runs a registered connector in process and times the call', async () => {
    const invoker = createLocalInvoker(
      createConnectorRegistry({ env: MOCK_ENV, now: () => new Date(1_700_000_000_000) }),
    );

    const result = await invoker.invoke(request(), { timeoutMs: 1000 });

    expect(result).toEqual({
      status: 'success',
      output: { channel: '#general', mock: true, ok: true, ts: '1700000000.000000' },
      duration_ms: expect.any(Number),
    });
    expect(Number.isInteger(result.duration_ms)).toBe(true);
  });

  it('runs the connector named in the options when it is not the tool\u2019s own (upstream MCP: tool = server)', async () => {
    const seen: unknown[] = [];
    const invoker = createLocalInvoker({
      'mcp-upstream': async (req) => {
        seen.push(req);
        return { status: 'success', output: { via: 'mcp-upstream' } };
      },
    });

    const result = await invoker.invoke(request('docs', 'search'), {
      timeoutMs: 1000,
      connector: 'mcp-upstream',
    });
    const without = await invoker.invoke(request('docs', 'search'), { timeoutMs: 1000 });

    expect(result).toMatchObject({ status: 'success', output: { via: 'mcp-upstream' } });
    expect(seen).toEqual([expect.objectContaining({ tool: 'docs', action: 'search' })]);
    expect(without).toMatchObject({ status: 'error', error: { code: 'NO_CONNECTOR' } });
  });

  it('passes a connector error through', async () => {
    const invoker = createLocalInvoker(createConnectorRegistry({ env: MOCK_ENV }));

    const result = await invoker.invoke(request('jira', 'issue.comment'), { timeoutMs: 1000 });

    expect(result).toEqual({
      status: 'error',
      error: { code: 'UNSUPPORTED_ACTION', message: 'unsupported action: jira.issue.comment' },
      duration_ms: expect.any(Number),
    });
  });

  it.each(['github', 'constructor', '__proto__', 'toString'])(
    'answers NO_CONNECTOR for tool %j',
    async (tool) => {
      const invoker = createLocalInvoker(createConnectorRegistry({ env: MOCK_ENV }));

      const result = await invoker.invoke(request(tool), { timeoutMs: 1000 });

      expect(result).toEqual({
        status: 'error',
        error: { code: 'NO_CONNECTOR', message: `no connector registered for tool "${tool}"` },
        duration_ms: expect.any(Number),
      });
    },
  );

  it('times out a connector that never answers', async () => {
    const never: Connector = () => new Promise(() => undefined);
    const invoker = createLocalInvoker({ slack: never });

    const result = await invoker.invoke(request(), { timeoutMs: 50 });

    expect(result).toEqual({
      status: 'timeout',
      error: { code: 'CONNECTOR_TIMEOUT', message: 'connector did not answer within 50 ms' },
      duration_ms: expect.any(Number),
    });
    expect(result.duration_ms).toBeGreaterThanOrEqual(45);
    expect(result.duration_ms).toBeLessThan(1000);
  });

  it.each<[string, Connector]>([
    [
      'throws synchronously',
      () => {
        throw new Error('boom at /srv/secret');
      },
    ],
    [
      'rejects',
      async () => {
        throw new Error('boom at /srv/secret');
      },
    ],
    ['answers status timeout (W32)', async () => ({ status: 'timeout' }) as never],
    ['answers an error without an error object', async () => ({ status: 'error' }) as never],
    ['answers a non-object output', async () => ({ status: 'success', output: 'text' }) as never],
    ['answers null', async () => null as never],
  ])('maps a connector that %s to CONNECTOR_ERROR', async (_label, connector) => {
    const invoker = createLocalInvoker({ slack: connector });

    const result = await invoker.invoke(request(), { timeoutMs: 1000 });

    expect(result).toEqual({ status: 'error', error: CONNECTOR_FAILED, duration_ms: expect.any(Number) });
  });
});

describe('lambda invoker', () => {
  const lambda = mockClient(LambdaClient);
  const functions = { slack: 'oc-connector-slack', jira: 'oc-connector-jira' };
  const invoker = () => createLambdaInvoker(new LambdaClient({ region: 'eu-west-1' }), functions);

  beforeEach(() => {
    lambda.reset();
  });

  it('invokes the tool’s function synchronously with the request as payload', async () => {
    lambda.on(InvokeCommand).resolves(reply({ status: 'success', output: { ok: true, ts: '1.000000' } }));

    const result = await invoker().invoke(request(), { timeoutMs: 1000 });

    expect(result).toEqual({
      status: 'success',
      output: { ok: true, ts: '1.000000' },
      duration_ms: expect.any(Number),
    });
    const calls = lambda.commandCalls(InvokeCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input;
    expect(input.FunctionName).toBe('oc-connector-slack');
    expect(input.InvocationType).toBe('RequestResponse');
    expect(JSON.parse(new TextDecoder().decode(input.Payload as Uint8Array))).toEqual(request());
  });

  it('passes a connector business error through', async () => {
    const error = { code: 'UPSTREAM_ERROR', message: 'slack: channel_not_found' };
    lambda.on(InvokeCommand).resolves(reply({ status: 'error', error }));

    const result = await invoker().invoke(request(), { timeoutMs: 1000 });

    expect(result).toEqual({ status: 'error', error, duration_ms: expect.any(Number) });
  });

  it('answers NO_CONNECTOR without calling Lambda for an unknown tool', async () => {
    const result = await invoker().invoke(request('github'), { timeoutMs: 1000 });

    expect(result.error).toEqual({
      code: 'NO_CONNECTOR',
      message: 'no connector registered for tool "github"',
    });
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });

  it('hides a FunctionError and logs it', async () => {
    const logError = jest.spyOn(logger, 'error');
    lambda
      .on(InvokeCommand)
      .resolves(
        reply(
          { errorType: 'Error', errorMessage: 'secret upstream body', trace: ['at /var/task/index.mjs'] },
          { FunctionError: 'Unhandled' },
        ),
      );

    const result = await invoker().invoke(request(), { timeoutMs: 1000 });

    expect(result).toEqual({ status: 'error', error: CONNECTOR_FAILED, duration_ms: expect.any(Number) });
    expect(JSON.stringify(result)).not.toContain('secret');
    expect(logError).toHaveBeenCalledWith(
      'connector invocation failed',
      expect.objectContaining({ function_error: 'Unhandled', event_id: 'evt-1' }),
    );
    logError.mockRestore();
  });

  it.each([
    ['not JSON', 'Task timed out after 3.00 seconds'],
    ['JSON null', 'null'],
    ['an unknown status', { status: 'timeout' }],
    ['a success with an array output', { status: 'success', output: [1] }],
    ['an error without a code', { status: 'error', error: { message: 'x' } }],
  ])('maps a payload that is %s to CONNECTOR_ERROR', async (_label, payload) => {
    lambda.on(InvokeCommand).resolves(reply(payload));

    const result = await invoker().invoke(request(), { timeoutMs: 1000 });

    expect(result).toEqual({ status: 'error', error: CONNECTOR_FAILED, duration_ms: expect.any(Number) });
  });

  it('maps an SDK error (e.g. throttling) to CONNECTOR_ERROR', async () => {
    lambda.on(InvokeCommand).rejects(
      Object.assign(new Error('Rate exceeded for arn:aws:lambda:...'), {
        name: 'TooManyRequestsException',
      }),
    );

    const result = await invoker().invoke(request(), { timeoutMs: 1000 });

    expect(result).toEqual({ status: 'error', error: CONNECTOR_FAILED, duration_ms: expect.any(Number) });
  });

  it('times out a slow function and aborts the call', async () => {
    let signal: AbortSignal | undefined;
    lambda
      .on(InvokeCommand)
      .callsFake(
        () => new Promise((resolve) => setTimeout(() => resolve(reply({ status: 'success' })), 500)),
      );
    const client = new LambdaClient({ region: 'eu-west-1' });
    const send = client.send.bind(client);
    jest.spyOn(client, 'send').mockImplementation(((
      command: InvokeCommand,
      options?: { abortSignal?: AbortSignal },
    ) => {
      signal = options?.abortSignal;
      return send(command, options ?? {});
    }) as never);

    const result = await createLambdaInvoker(client, functions).invoke(request(), { timeoutMs: 50 });

    expect(result).toEqual({
      status: 'timeout',
      error: { code: 'CONNECTOR_TIMEOUT', message: 'connector did not answer within 50 ms' },
      duration_ms: expect.any(Number),
    });
    expect(result.duration_ms).toBeLessThan(400);
    expect(signal?.aborted).toBe(true);
  });
});

import { jest } from '@jest/globals';
import { z } from 'zod';
import { defineConnector, secretsFromEnvironment, UpstreamError } from '../../functions/connectors/sdk.js';
import type { ConnectorRequest } from '../../functions/connectors/types.js';
import { logger } from '../../functions/shared/powertools.js';

const request = (action: string, params: Record<string, unknown> = {}, resource = ''): ConnectorRequest => ({
  event_id: 'evt-1',
  tenant_id: 'tenant1',
  agent_id: 'agent-1',
  tool: 'demo',
  action,
  params,
  resource,
});

const SECRET = 'sk-live-very-secret-value-42';
const empty = z.strictObject({});
const anyOutput = z.record(z.string(), z.unknown());
const base = { output: anyOutput, timeoutMs: 1_000, risk: 0, target: null };

const demoConnector = defineConnector({
  tool: 'demo',
  actions: {
    echo: {
      ...base,
      input: z.strictObject({
        value: z.string(),
        count: z.number().int().default(1),
        nested: z.object({ n: z.number() }).optional(),
      }),
      target: 'value',
      // Lower case is the canonical form; `!` names nothing.
      canonicalTarget: (value: string) =>
        value.includes('!')
          ? { ok: false, message: 'must name something' }
          : { ok: true, value: value.toLowerCase() },
      output: z.object({ value: z.string() }),
      // The params type is inferred from the schema.
      run: async ({ value, count }) => ({ value: value.repeat(count) }),
    },
    seen: {
      ...base,
      input: z.strictObject({ id: z.string() }),
      target: 'id',
      // What the action sees of the request: the target filled and canonical.
      run: async (params, { request }) => ({ params, resource: request.resource }),
    },
    upstream: {
      ...base,
      input: empty,
      run: async () => {
        throw new UpstreamError('demo: rate_limited', { http_status: 429, body: 'raw upstream body' });
      },
    },
    crash: {
      ...base,
      input: empty,
      run: async () => {
        throw new Error('TypeError at /var/task/index.mjs:1:2 token=abc');
      },
    },
    'not-an-object': {
      ...base,
      input: empty,
      run: async () => ['a'] as unknown as Record<string, unknown>,
    },
    slow: {
      ...base,
      input: empty,
      timeoutMs: 50,
      run: (_params, { signal }) =>
        new Promise((resolve) => {
          // Resolves only if the deadline never aborts it.
          const timer = setTimeout(() => resolve({ late: true }), 5_000);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            aborted = true;
          });
        }),
    },
    leaky: {
      ...base,
      input: empty,
      run: async (_params, ctx) => {
        const token = await ctx.secret('api_token');
        throw new Error(`upstream refused Authorization: Bearer ${token}`);
      },
    },
    'bad-output': {
      ...base,
      input: empty,
      output: z.object({ id: z.string() }),
      run: async () => ({ id: 42, secretish: SECRET }),
    },
  },
});
let aborted = false;
const demo = demoConnector.create(undefined, {
  secrets: async (name) => {
    if (name !== 'api_token') throw new Error(`no secret ${name}`);
    return SECRET;
  },
});

beforeAll(() => logger.setLogLevel('SILENT'));

describe('defineConnector', () => {
  it('validates params with the schema and runs the action', async () => {
    const response = await demo(request('echo', { value: 'ab', count: 2 }));

    expect(response).toEqual({ status: 'success', output: { value: 'abab' } });
  });

  it('refuses a param the action does not declare, naming it', async () => {
    const response = await demo(request('echo', { value: 'ab', extra: true }));

    expect(response.error).toEqual({
      code: 'INVALID_PARAMS',
      message: 'invalid params: extra is an unknown param: demo.echo takes value, count, nested',
    });
  });

  it('normalizes the target as the gateway does: filled from resource, canonical, one value', async () => {
    expect(await demo(request('seen', {}, 'X-1'))).toEqual({
      status: 'success',
      output: { params: { id: 'X-1' }, resource: 'X-1' },
    });
    expect(await demo(request('seen', { id: 'X-1' }))).toMatchObject({ output: { resource: 'X-1' } });
    expect(await demo(request('echo', { value: 'AB' }))).toEqual({
      status: 'success',
      output: { value: 'ab' },
    });
    // A record made before targets were derived, whose resource names another object: nothing runs.
    expect((await demo(request('seen', { id: 'PROD-42' }, 'OPS-1'))).error).toEqual({
      code: 'INVALID_PARAMS',
      message: expect.stringMatching(
        /^invalid params: resource "OPS-1" names another object than params\.id/,
      ),
    });
    expect((await demo(request('echo', { value: 'a!' }))).error).toEqual({
      code: 'INVALID_PARAMS',
      message: 'invalid params: value must name something',
    });
    expect((await demo(request('upstream', {}, 'r'))).error?.message).toMatch(
      /^invalid params: resource must be empty: demo.upstream acts on no single object/,
    );
  });

  it('names nested fields in the params error', async () => {
    const response = await demo(request('echo', { value: 'a', nested: { n: 'x' } }));

    expect(response.error).toEqual({
      code: 'INVALID_PARAMS',
      message: 'invalid params: nested.n must be a number',
    });
  });

  it('dispatches on tool.action and refuses others', async () => {
    const response = await demo(request('delete'));

    expect(response.error).toEqual({
      code: 'UNSUPPORTED_ACTION',
      message: 'unsupported action: demo.delete',
    });
  });

  it('maps an UpstreamError to its public message and logs the detail', async () => {
    const warn = jest.spyOn(logger, 'warn');

    const response = await demo(request('upstream'));

    expect(response).toEqual({
      status: 'error',
      error: { code: 'UPSTREAM_ERROR', message: 'demo: rate_limited' },
    });
    expect(warn).toHaveBeenCalledWith(
      'connector action failed',
      expect.objectContaining({
        event_id: 'evt-1',
        tenant_id: 'tenant1',
        code: 'UPSTREAM_ERROR',
        http_status: 429,
      }),
    );
    warn.mockRestore();
  });

  it('maps any other failure to a generic error with no detail', async () => {
    const warn = jest.spyOn(logger, 'warn');

    const response = await demo(request('crash'));

    expect(response).toEqual({
      status: 'error',
      error: { code: 'CONNECTOR_ERROR', message: 'demo: connector failed' },
    });
    expect(warn).toHaveBeenCalledWith(
      'connector action failed',
      expect.objectContaining({ error_name: 'Error', error_stack: expect.stringContaining(' at ') }),
    );
    // The message (it may quote a token) is not logged.
    expect(JSON.stringify(warn.mock.calls)).not.toContain('token=abc');
    warn.mockRestore();
  });

  it('refuses a non-object output', async () => {
    const response = await demo(request('not-an-object'));

    expect(response.error?.code).toBe('CONNECTOR_ERROR');
  });

  it('lists its actions, with their floors and timeouts', () => {
    expect(demo.tool).toBe('demo');
    expect(demo.actions).toEqual([
      'demo.echo',
      'demo.seen',
      'demo.upstream',
      'demo.crash',
      'demo.not-an-object',
      'demo.slow',
      'demo.leaky',
      'demo.bad-output',
    ]);
    const slow = demoConnector.specs.find((spec) => spec.name === 'demo.slow');
    expect(slow).toEqual({
      name: 'demo.slow',
      action: 'slow',
      risk: 0,
      timeoutMs: 50,
      input: expect.any(Object),
      output: expect.any(Object),
      target: null,
      normalize: expect.any(Function),
    });
    // The action's own schemas (MCP derives its tools' JSON Schemas from them).
    expect(slow!.input.safeParse({}).success).toBe(true);
    expect(slow!.input.safeParse('not an object').success).toBe(false);
  });

  it('refuses invalid params with INVALID_PARAMS naming every bad field', async () => {
    const response = await demo(request('echo', { count: 'two' }));

    expect(response).toEqual({
      status: 'error',
      error: { code: 'INVALID_PARAMS', message: 'invalid params: value is required; count must be a number' },
    });
  });

  it('aborts a run that exceeds its timeout and answers timeout', async () => {
    aborted = false;

    const response = await demo(request('slow'));

    expect(response).toEqual({
      status: 'timeout',
      error: { code: 'CONNECTOR_TIMEOUT', message: 'demo.slow did not finish within 50 ms' },
    });
    expect(aborted).toBe(true);
  });

  it('keeps a secret in a thrown message out of the result and out of the logs', async () => {
    const lines: string[] = [];
    const capture = (...args: unknown[]) => {
      lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      return true;
    };
    const spies = [
      jest.spyOn(process.stdout, 'write').mockImplementation(capture),
      jest.spyOn(process.stderr, 'write').mockImplementation(capture),
      ...(['log', 'info', 'warn', 'error', 'debug'] as const).map((m) =>
        jest.spyOn(console, m).mockImplementation(capture),
      ),
    ];
    logger.setLogLevel('DEBUG');
    let response;
    try {
      response = await demo(request('leaky'));
    } finally {
      logger.setLogLevel('SILENT');
      for (const spy of spies) spy.mockRestore();
    }

    expect(response).toEqual({
      status: 'error',
      error: { code: 'CONNECTOR_ERROR', message: 'demo: connector failed' },
    });
    // The failure was logged (so the test would see a leak), with the error's name and frames.
    const logged = lines.join('\n');
    expect(logged).toContain('connector action failed');
    expect(logged).toMatch(/"error_name":\s*"Error"/);
    expect(logged).not.toContain(SECRET);
    expect(JSON.stringify(response)).not.toContain(SECRET);
  });

  it('refuses an output that fails its schema, without passing it on', async () => {
    const response = await demo(request('bad-output'));

    expect(response).toEqual({
      status: 'error',
      error: { code: 'CONNECTOR_ERROR', message: 'demo: connector failed' },
    });
    expect(JSON.stringify(response)).not.toContain(SECRET);
  });

  it('exposes normalize() on each spec: the gateway’s one check of a request before policy', () => {
    const spec = (action: string) => demoConnector.specs.find((s) => s.action === action)!;
    expect(spec('echo').target).toBe('value');
    expect(spec('upstream').target).toBeNull();
    expect(spec('echo').normalize({ params: { count: 2 }, resource: 'AB' })).toEqual({
      ok: true,
      // As sent, the target filled and canonical: defaults are the connector's, applied when it runs.
      params: { count: 2, value: 'ab' },
      resource: 'ab',
    });
    expect(spec('echo').normalize({ params: { value: 'a', count: 'x', k: 1 }, resource: '' })).toEqual({
      ok: false,
      message: 'params.count must be a number',
      details: [
        { path: 'params.count', message: 'must be a number' },
        { path: 'params.k', message: 'is an unknown param: demo.echo takes value, count, nested' },
      ],
    });
    expect(spec('echo').normalize({ params: { value: 'b' }, resource: 'a' })).toMatchObject({
      ok: false,
      message: 'resource and params.value name different objects',
      details: [
        { path: 'resource', message: expect.stringContaining('"a"') },
        { path: 'params.value', message: '"b" differs from resource "a"' },
      ],
    });
    // The same value in both is one target, in whichever form.
    expect(spec('echo').normalize({ params: { value: 'a' }, resource: 'a' })).toMatchObject({ ok: true });
    expect(spec('echo').normalize({ params: {}, resource: '' })).toMatchObject({
      ok: false,
      details: [{ path: 'params.value', message: 'is required' }],
    });
  });

  it('requires each action to declare its target, on a strict input, as a required string param', () => {
    const define = (action: Record<string, unknown>) => () =>
      defineConnector({
        tool: 'bad',
        actions: { x: { ...base, run: async () => ({}), ...action } as never },
      });
    expect(define({ input: empty, target: undefined })).toThrow(
      'bad.x: declare target: the param naming the object the action acts on, or null for none',
    );
    expect(define({ input: z.object({}) })).toThrow('bad.x: input must be a z.strictObject');
    expect(define({ input: z.strictObject({ id: z.string() }), target: 'key' })).toThrow(
      'bad.x: target "key" must be a required string param of input',
    );
    expect(define({ input: z.strictObject({ id: z.string().optional() }), target: 'id' })).toThrow(
      'must be a required string param',
    );
    expect(define({ input: z.strictObject({ id: z.number() }), target: 'id' })).toThrow(
      'must be a required string param',
    );
    expect(define({ input: empty, canonicalTarget: (v: string) => ({ ok: true, value: v }) })).toThrow(
      'bad.x: canonicalTarget without a target',
    );
    // The gateway's own (internal) actions are called with the approval's data: not held to it.
    expect(define({ input: z.object({}), internal: true })).not.toThrow();
  });

  it('refuses a definition with a risk floor outside 0..10 or no timeout', () => {
    expect(() =>
      defineConnector({
        tool: 'bad',
        actions: { x: { ...base, input: empty, risk: 11, run: async () => ({}) } },
      }),
    ).toThrow('bad.x: risk must be 0..10');
    expect(() =>
      defineConnector({
        tool: 'bad',
        actions: { x: { ...base, input: empty, timeoutMs: 0, run: async () => ({}) } },
      }),
    ).toThrow('bad.x: timeoutMs must be a positive integer');
  });
});

describe('secretsFromEnvironment', () => {
  it('reads <TOOL>_<NAME> locally and names the variable when it is missing', async () => {
    const secrets = secretsFromEnvironment('my-tool', { MY_TOOL_API_TOKEN: ' t0k ' });

    await expect(secrets('api_token')).resolves.toBe('t0k');
    await expect(secrets('other')).rejects.toThrow('my-tool connector: MY_TOOL_OTHER is not set');
  });

  it('reads a key of the connector secret named by OC_<TOOL>_SECRET_ARN, never quoting the value', async () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:1:secret:demo';
    const read = async (id: string) => (id === arn ? JSON.stringify({ api_token: SECRET }) : 'not json');
    const secrets = secretsFromEnvironment('demo', { OC_DEMO_SECRET_ARN: arn }, read);

    await expect(secrets('api_token')).resolves.toBe(SECRET);
    await expect(secrets('missing')).rejects.toThrow(`demo connector: secret ${arn} has no string "missing"`);
    const broken = secretsFromEnvironment('demo', { OC_DEMO_SECRET_ARN: 'other' }, read);
    await expect(broken('api_token')).rejects.toThrow('demo connector: secret other is not valid JSON');
  });

  it('refuses an ARN it has no reader for (the reader comes from lambdaHandler), rather than read the variable', async () => {
    const secrets = secretsFromEnvironment('demo', {
      OC_DEMO_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:demo',
      DEMO_API_TOKEN: 'local',
    });
    await expect(secrets('api_token')).rejects.toThrow(
      'demo connector: OC_DEMO_SECRET_ARN is set but no secret reader was given (serve it through lambdaHandler)',
    );
  });
});

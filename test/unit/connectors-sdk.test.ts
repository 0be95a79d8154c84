import { jest } from '@jest/globals';
import { z } from 'zod';
import { defineConnector, UpstreamError } from '../../functions/connectors/sdk.js';
import type { ConnectorRequest } from '../../functions/connectors/types.js';
import { logger } from '../../functions/shared/powertools.js';

const request = (action: string, params: Record<string, unknown> = {}): ConnectorRequest => ({
  event_id: 'evt-1',
  tenant_id: 'tenant1',
  agent_id: 'agent-1',
  tool: 'demo',
  action,
  params,
  resource: 'r',
});

const demo = defineConnector({
  tool: 'demo',
  actions: {
    echo: {
      params: z.object({
        value: z.string(),
        count: z.number().int().default(1),
        nested: z.object({ n: z.number() }).optional(),
      }),
      // The params type is inferred from the schema.
      run: async ({ value, count }) => ({ value: value.repeat(count) }),
    },
    upstream: {
      params: z.object({}),
      run: async () => {
        throw new UpstreamError('demo: rate_limited', { http_status: 429, body: 'raw upstream body' });
      },
    },
    crash: {
      params: z.object({}),
      run: async () => {
        throw new Error('TypeError at /var/task/index.mjs:1:2 token=abc');
      },
    },
    notAnObject: {
      params: z.object({}),
      run: async () => ['a'] as unknown as Record<string, unknown>,
    },
  },
});

beforeAll(() => logger.setLogLevel('SILENT'));

describe('defineConnector', () => {
  it('validates params with the schema and runs the action', async () => {
    const response = await demo(request('echo', { value: 'ab', count: 2, extra: true }));

    expect(response).toEqual({ status: 'success', output: { value: 'abab' } });
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
    const error = jest.spyOn(logger, 'error');

    const response = await demo(request('crash'));

    expect(response).toEqual({
      status: 'error',
      error: { code: 'CONNECTOR_ERROR', message: 'demo: connector failed' },
    });
    expect(error).toHaveBeenCalledWith(
      'connector action crashed',
      expect.objectContaining({ error: expect.any(Error) }),
    );
    error.mockRestore();
  });

  it('refuses a non-object output', async () => {
    const response = await demo(request('notAnObject'));

    expect(response.error?.code).toBe('CONNECTOR_ERROR');
  });

  it('lists its actions', () => {
    expect(demo.tool).toBe('demo');
    expect(demo.actions).toEqual(['demo.echo', 'demo.upstream', 'demo.crash', 'demo.notAnObject']);
  });
});

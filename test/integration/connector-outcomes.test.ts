/** Connector failures and timeouts are results (recorded, 200), never crashes or leaked internals. */
import { createLocalInvoker } from '../../functions/store/connector-invoker.js';
import { connectorRegistry } from '../../functions/connectors/registry.js';
import type { ConnectorRegistry } from '../../functions/connectors/types.js';
import { startTestStack, toolCall, type TestStack } from '../support/stack.js';

const real = connectorRegistry({ env: { OC_CONNECTORS_MODE: 'mock' } });
const registry: ConnectorRegistry = {
  ...real,
  // A Slack connector that hangs on one channel and throws on another.
  slack: async (req) => {
    if (req.params.channel === '#hang') return new Promise(() => undefined);
    if (req.params.channel === '#boom')
      throw new Error('socket hang up at https://internal.example/secret-token');
    return real.slack!(req);
  },
};

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({
    env: { OC_CONNECTOR_TIMEOUT_MS: '300' },
    overrides: { connectors: createLocalInvoker(registry) },
    consumers: false,
  });
});
afterAll(async () => {
  await stack.stop();
});

describe('connector outcomes on the allow path', () => {
  it('a connector that does not answer in time is result.status timeout, recorded', async () => {
    const r = await stack.post('/v1/toolcalls', toolCall({ params: { channel: '#hang', text: 'x' } }));
    expect(r.status).toBe(200);
    expect(r.json.result).toMatchObject({ status: 'timeout', error: { code: 'CONNECTOR_TIMEOUT' } });
    const ev = await stack.get(`/v1/toolcalls/${r.json.event_id}`);
    expect(ev.json).toMatchObject({ status: 'completed', result: { status: 'timeout' } });
  });

  it('a connector that throws is result.status error without internals', async () => {
    const r = await stack.post('/v1/toolcalls', toolCall({ params: { channel: '#boom', text: 'x' } }));
    expect(r.status).toBe(200);
    expect(r.json.result).toMatchObject({ status: 'error', error: { code: 'CONNECTOR_ERROR' } });
    expect(r.text).not.toMatch(/internal\.example|secret-token|hang up/);
  });

  it('an action no connector implements is not classified by policy, so it is denied and nothing runs (W11)', async () => {
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.comment', params: { issue: 'OPS-1' } }),
    );
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ decision: 'deny', reason: 'action not in allowlist' });
    expect(r.json.result).toBeUndefined();
  });

  it('invalid params are refused at submit (422 naming the field): the connector is never called', async () => {
    const r = await stack.post('/v1/toolcalls', toolCall({ params: { channel: '#general' } }));
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: [{ path: '/params/text', message: 'is required' }],
    });
  });
});

describe('the template connector through the gateway', () => {
  it('is classified, routed and run like any connector (allow path, mock mode)', async () => {
    const template = await startTestStack();
    try {
      const r = await template.post(
        '/v1/toolcalls',
        toolCall({ tool: 'template', action: 'item.get', params: { id: 'A1' }, risk_score: 1 }),
      );

      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({
        decision: 'allow',
        reason: 'read action on allowlist within tenant threshold',
        result: { status: 'success', output: { id: 'A1', name: 'Item A1', mock: true } },
      });
    } finally {
      await template.stop();
    }
  });
});

/**
 * The template connector, as a newcomer copies it: mock answers, live mode reading its
 * credentials by name from the environment (as locally) or its secret (as in AWS), calling a
 * real HTTP server on loopback that asserts the request, and never leaking the token.
 */
import { lambdaHandler } from '../../functions/connectors/lambda.js';
import { templateConnector } from '../../functions/connectors/template.js';
import { secretsFromEnvironment } from '../../functions/connectors/sdk.js';
import type { ConnectorRequest } from '../../functions/connectors/types.js';
import { logger } from '../../functions/shared/powertools.js';
import { json, startUpstream, type UpstreamServer } from '../fixtures/connectors/upstream-server.js';

const TOKEN = 'tmpl-secret-token-789';
const request = (params: Record<string, unknown>): ConnectorRequest => ({
  event_id: 'evt-1',
  tenant_id: 'tenant1',
  agent_id: 'agent-1',
  tool: 'template',
  action: 'item.get',
  params,
  resource: '',
});

let upstream: UpstreamServer;
beforeAll(async () => {
  logger.setLogLevel('SILENT');
  upstream = await startUpstream();
});
afterAll(async () => upstream.close());
beforeEach(() => {
  upstream.requests.length = 0;
});

describe('template connector', () => {
  it('answers deterministically in mock mode', async () => {
    const connector = templateConnector.create({ mode: 'mock' });

    expect(await connector(request({ id: 'A1' }))).toEqual({
      status: 'success',
      output: { id: 'A1', name: 'Item A1', mock: true },
    });
    expect(templateConnector.specs).toEqual([
      {
        name: 'template.item.get',
        action: 'item.get',
        risk: 0,
        timeoutMs: 5_000,
        input: expect.any(Object),
        output: expect.any(Object),
        target: 'id',
        normalize: expect.any(Function),
      },
    ]);
    const [spec] = templateConnector.specs;
    expect(spec!.input.safeParse({ id: 'A1' }).success).toBe(true);
    expect(spec!.input.safeParse({ id: 'no spaces' }).success).toBe(false);
    expect(spec!.input.safeParse({ id: 'A1', extra: 1 }).success).toBe(false);
    expect(spec!.output.safeParse({ id: 'A1', name: 'x' }).success).toBe(true);
  });

  it('reads TEMPLATE_BASE_URL and TEMPLATE_API_TOKEN by name and calls GET /items/{id} with the bearer token', async () => {
    upstream.respond(json(200, { id: 'A1', name: 'Widget', internal_notes: 'not for agents' }));
    const env = { TEMPLATE_BASE_URL: `${upstream.baseUrl}/`, TEMPLATE_API_TOKEN: TOKEN };
    const connector = templateConnector.create(
      { mode: 'live' },
      { secrets: secretsFromEnvironment('template', env) },
    );

    const response = await connector(request({ id: 'A1' }));

    expect(response).toEqual({ status: 'success', output: { id: 'A1', name: 'Widget' } });
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]).toMatchObject({ method: 'GET', url: '/items/A1' });
    expect(upstream.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('reads the same names from its secret in AWS', async () => {
    upstream.respond(json(200, { id: 'B2', name: 'Gadget' }));
    const arn = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:template';
    const secrets = secretsFromEnvironment('template', { OC_TEMPLATE_SECRET_ARN: arn }, async (id) => {
      expect(id).toBe(arn);
      return JSON.stringify({ base_url: upstream.baseUrl, api_token: TOKEN });
    });

    const response = await templateConnector.create({ mode: 'live' }, { secrets })(request({ id: 'B2' }));

    expect(response.output).toEqual({ id: 'B2', name: 'Gadget' });
    expect(upstream.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('maps an upstream 401 to its status, and a missing credential to a generic failure, without the token', async () => {
    upstream.respond(json(401, { error: `bad token ${TOKEN}` }));
    const live = (env: Record<string, string>) =>
      templateConnector.create({ mode: 'live' }, { secrets: secretsFromEnvironment('template', env) });

    const refused = await live({ TEMPLATE_BASE_URL: upstream.baseUrl, TEMPLATE_API_TOKEN: TOKEN })(
      request({ id: 'A1' }),
    );
    const unconfigured = await live({ TEMPLATE_BASE_URL: upstream.baseUrl })(request({ id: 'A1' }));

    expect(refused).toEqual({
      status: 'error',
      error: { code: 'UPSTREAM_ERROR', message: 'template: HTTP 401' },
    });
    expect(unconfigured).toEqual({
      status: 'error',
      error: { code: 'CONNECTOR_ERROR', message: 'template: connector failed' },
    });
    expect(JSON.stringify([refused, unconfigured])).not.toContain(TOKEN);
  });

  it('refuses an id that could change the path', async () => {
    const response = await templateConnector.create({ mode: 'live' })(request({ id: '../admin' }));

    expect(response.error).toEqual({
      code: 'INVALID_PARAMS',
      message: 'invalid params: id must be an item id',
    });
    expect(upstream.requests).toHaveLength(0);
  });

  it('is a Lambda handler that validates its payload', async () => {
    process.env.OC_CONNECTORS_MODE = 'mock';
    try {
      const handler = lambdaHandler(templateConnector, {});
      const context = { functionName: 'connector-template', awsRequestId: 'r-1' } as never;
      expect(await handler(request({ id: 'C3' }), context)).toEqual({
        status: 'success',
        output: { id: 'C3', name: 'Item C3', mock: true },
      });
      expect(await handler({ tool: 'template' }, context)).toMatchObject({
        status: 'error',
        error: { code: 'INVALID_REQUEST' },
      });
    } finally {
      delete process.env.OC_CONNECTORS_MODE;
    }
  });
});

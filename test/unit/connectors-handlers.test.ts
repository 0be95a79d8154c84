import { jest } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { logger } from '../../functions/shared/powertools.js';
import { fixture } from '../fixtures/connectors/upstream-server.js';

const slackEvent = () => JSON.parse(fixture('request-slack-msg-post.json')) as Record<string, unknown>;
const jiraEvent = () => JSON.parse(fixture('request-jira-issue-create.json')) as Record<string, unknown>;

const context = {
  functionName: 'oc-connector-test',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:oc-connector-test',
  memoryLimitInMB: '256',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  getRemainingTimeInMillis: () => 10_000,
} as unknown as Context;

// The handlers read their config at import (cold start), so the mode is set before importing them.
process.env.OC_CONNECTORS_MODE = 'mock';
const { connectorSlack, handler: slackHandler } = await import('../../functions/handlers/connector-slack.js');
const { connectorJira, handler: jiraHandler } = await import('../../functions/handlers/connector-jira.js');

beforeAll(() => logger.setLogLevel('SILENT'));

describe('cold start', () => {
  it('fails to initialise in live mode without credentials', async () => {
    process.env.OC_CONNECTORS_MODE = 'live';
    try {
      await jest.isolateModulesAsync(async () => {
        await expect(import('../../functions/handlers/connector-jira.js')).rejects.toThrow(
          /JIRA_BASE_URL is required/,
        );
      });
    } finally {
      process.env.OC_CONNECTORS_MODE = 'mock';
    }
  });
});

describe('connector-slack handler', () => {
  it('answers a ConnectorResponse for a valid payload', async () => {
    const response = await connectorSlack(slackEvent());

    expect(response.status).toBe('success');
    expect(response.output).toEqual(expect.objectContaining({ channel: '#general', mock: true, ok: true }));
    expect(response.output?.ts).toMatch(/^\d+\.000000$/);
  });

  it('works behind middy with a Lambda context', async () => {
    const response = await slackHandler(slackEvent(), context);

    expect(response.status).toBe('success');
  });

  it.each([
    ['null', null],
    ['a string', 'hello'],
    ['an array', [slackEvent()]],
    ['no event_id', { ...slackEvent(), event_id: undefined }],
    ['params not an object', { ...slackEvent(), params: ['#general', 'Hello'] }],
    ['params null', { ...slackEvent(), params: null }],
    ['a numeric tool', { ...slackEvent(), tool: 7 }],
  ])('rejects %s with INVALID_REQUEST', async (_label, event) => {
    const response = await connectorSlack(event);

    expect(response.status).toBe('error');
    expect(response.error?.code).toBe('INVALID_REQUEST');
    expect(response.error?.message).toMatch(/^invalid request: /);
    expect(response.output).toBeUndefined();
  });

  it('names the offending field', async () => {
    const response = await connectorSlack({ ...slackEvent(), tenant_id: undefined });

    expect(response.error?.message).toBe('invalid request: tenant_id is required');
  });

  it('says params must be an object', async () => {
    const response = await connectorSlack({ ...slackEvent(), params: 'channel=#general' });

    expect(response.error?.message).toBe('invalid request: params must be an object');
  });
});

describe('connector-jira handler', () => {
  it('creates an issue (mock) from the fixture payload', async () => {
    const response = await jiraHandler(jiraEvent(), context);

    expect(response).toEqual({
      status: 'success',
      output: {
        id: '10001',
        key: 'OPS-42',
        mock: true,
        self: 'https://mock.atlassian.net/rest/api/3/issue/10001',
      },
    });
  });

  it('refuses a Slack request sent to the Jira function', async () => {
    const response = await connectorJira(slackEvent());

    expect(response.error).toEqual({
      code: 'UNSUPPORTED_ACTION',
      message: 'unsupported action: slack.msg.post',
    });
  });

  it('rejects an invalid payload with INVALID_REQUEST', async () => {
    const response = await connectorJira({ tool: 'jira' });

    expect(response.error?.code).toBe('INVALID_REQUEST');
  });
});

import { createJiraConnector } from '../../functions/connectors/jira.js';
import {
  CONNECTOR_ACTIONS,
  createConnectorRegistry,
  isSupportedAction,
} from '../../functions/connectors/registry.js';
import { createSlackConnector } from '../../functions/connectors/slack.js';
import type { ConnectorRequest } from '../../functions/connectors/types.js';
import { logger } from '../../functions/shared/powertools.js';
import { fixture } from '../fixtures/connectors/upstream-server.js';

const MOCK_ENV = { OC_CONNECTORS_MODE: 'mock' };
const fixedClock = () => new Date('2023-11-14T22:13:20.999Z'); // 1700000000.999 s

const request = (tool: string, action: string, params: Record<string, unknown> = {}): ConnectorRequest => ({
  event_id: 'evt-1',
  tenant_id: 'tenant1',
  agent_id: 'agent-1',
  tool,
  action,
  params,
  resource: '',
});

const slack = createSlackConnector({ config: { mode: 'mock' }, now: fixedClock });
const jira = createJiraConnector({ config: { mode: 'mock' } });

beforeAll(() => logger.setLogLevel('SILENT'));

describe('slack connector (mock)', () => {
  it('posts a message with the original output, byte for byte', async () => {
    const response = await slack(request('slack', 'msg.post', { channel: '#general', text: 'Hello' }));

    expect(response.status).toBe('success');
    expect(JSON.stringify(response.output)).toBe(fixture('mock-slack.msg.post.txt'));
  });

  it('derives ts from the clock in whole seconds', async () => {
    const at = createSlackConnector({ config: { mode: 'mock' }, now: () => new Date(1_735_689_600_000) });

    const response = await at(request('slack', 'msg.post', { channel: 'C1', text: 'x' }));

    expect(response.output?.ts).toBe('1735689600.000000');
  });

  it('lists channels with the original output, byte for byte', async () => {
    const response = await slack(request('slack', 'channel.list'));

    expect(response.status).toBe('success');
    expect(JSON.stringify(response.output)).toBe(fixture('mock-slack.channel.list.txt'));
  });

  it.each([
    [{ text: 'Hello' }, 'invalid params: channel is required'],
    [{ channel: '#general' }, 'invalid params: text is required'],
    [{}, 'invalid params: channel is required; text is required'],
    [{ channel: '', text: 'Hello' }, 'invalid params: channel must not be empty'],
    [{ channel: 42, text: 'Hello' }, 'invalid params: channel must be a string'],
  ])('rejects msg.post params %j', async (params, message) => {
    const response = await slack(request('slack', 'msg.post', params));

    expect(response).toEqual({ status: 'error', error: { code: 'INVALID_PARAMS', message } });
  });

  it('refuses unsupported actions such as slack.channel.delete', async () => {
    const response = await slack(request('slack', 'channel.delete', { channel: 'C1' }));

    expect(response).toEqual({
      status: 'error',
      error: { code: 'UNSUPPORTED_ACTION', message: 'unsupported action: slack.channel.delete' },
    });
  });

  it('refuses inherited property names as actions', async () => {
    const response = await slack(request('slack', 'constructor'));

    expect(response.error?.code).toBe('UNSUPPORTED_ACTION');
  });

  it('refuses a request addressed to another tool', async () => {
    const response = await slack(request('jira', 'msg.post', { channel: 'C1', text: 'x' }));

    expect(response.error).toEqual({
      code: 'UNSUPPORTED_ACTION',
      message: 'unsupported action: jira.msg.post',
    });
  });
});

describe('jira connector (mock)', () => {
  it('creates an issue with the original output, byte for byte', async () => {
    const response = await jira(request('jira', 'issue.create', { project: 'OPS', summary: 'Disk full' }));

    expect(response.status).toBe('success');
    expect(JSON.stringify(response.output)).toBe(fixture('mock-jira.issue.create.txt'));
  });

  it('uses the project as given in the mock key', async () => {
    const response = await jira(
      request('jira', 'issue.create', { project: 'SEC', summary: 's', description: 'd', issue_type: 'Bug' }),
    );

    expect(response.output?.key).toBe('SEC-42');
  });

  it('lists issues with the original output, byte for byte', async () => {
    const response = await jira(request('jira', 'issue.list'));

    expect(response.status).toBe('success');
    expect(JSON.stringify(response.output)).toBe(fixture('mock-jira.issue.list.txt'));
  });

  it.each([
    ['without project', { summary: 's' }, 'invalid params: project is required'],
    ['without summary', { project: 'OPS' }, 'invalid params: summary is required'],
    [
      'with a numeric description',
      { project: 'OPS', summary: 's', description: 7 },
      'invalid params: description must be a string',
    ],
    [
      'with a 256-character summary',
      { project: 'OPS', summary: 'x'.repeat(256) },
      'invalid params: summary must have at most 255 characters',
    ],
  ])('rejects issue.create %s', async (_label, params, message) => {
    const response = await jira(request('jira', 'issue.create', params));

    expect(response).toEqual({ status: 'error', error: { code: 'INVALID_PARAMS', message } });
  });

  it('deletes deterministically in mock mode (policy gates it; the connector now runs it, W11)', async () => {
    const response = await jira(request('jira', 'issue.delete', { issue: 'OPS-1' }));

    expect(response).toEqual({ status: 'success', output: { deleted: true, issue: 'OPS-1', mock: true } });
    expect(JSON.stringify(response.output)).toBe('{"deleted":true,"issue":"OPS-1","mock":true}');
  });

  it('deletes the request’s resource when params name no issue', async () => {
    const response = await jira({ ...request('jira', 'issue.delete'), resource: 'OPS-9' });

    expect(response).toEqual({ status: 'success', output: { deleted: true, issue: 'OPS-9', mock: true } });
  });

  it('deletes an issue named in lower case by its canonical key', async () => {
    const response = await jira(request('jira', 'issue.delete', { issue: 'ops-9' }));

    expect(response.output).toEqual({ deleted: true, issue: 'OPS-9', mock: true });
  });

  it.each([
    [{ issue: '10042' }, '', 'invalid params: issue is a numeric issue id: use the issue key'],
    [{ key: 'OPS-3' }, '', 'invalid params: issue is required; key is an unknown param'],
    // Recorded before targets were derived: approved as OPS-1, never runs on PROD-42.
    [
      { issue: 'PROD-42' },
      'OPS-1',
      'invalid params: resource "OPS-1" names another object than params.issue',
    ],
  ])('refuses jira.issue.delete %j (resource %j) before it runs', async (params, resource, message) => {
    const response = await jira({ ...request('jira', 'issue.delete', params), resource });

    expect(response.status).toBe('error');
    expect(response.error?.code).toBe('INVALID_PARAMS');
    expect(response.error?.message.startsWith(message)).toBe(true);
  });

  it('refuses jira.issue.delete of something that is not an issue key', async () => {
    const response = await jira(request('jira', 'issue.delete', { issue: '../../myself' }));

    expect(response.error).toEqual({
      code: 'INVALID_PARAMS',
      message: 'invalid params: issue must be an issue key such as OPS-42',
    });
  });
});

describe('registry', () => {
  it('declares exactly the actions each connector implements', () => {
    expect(slack.actions).toEqual(CONNECTOR_ACTIONS.slack.map((action) => `slack.${action}`));
    expect(jira.actions).toEqual(CONNECTOR_ACTIONS.jira.map((action) => `jira.${action}`));
  });

  it('answers capability questions so policy can be reconciled (W11)', () => {
    expect(isSupportedAction('jira', 'issue.create')).toBe(true);
    expect(isSupportedAction('jira', 'issue.delete')).toBe(true);
    expect(isSupportedAction('jira', 'issue.comment')).toBe(false);
    expect(isSupportedAction('slack', 'channel.delete')).toBe(false);
    expect(isSupportedAction('toString', 'call')).toBe(false);
  });

  it('builds mock connectors when OC_CONNECTORS_MODE=mock', async () => {
    const registry = createConnectorRegistry({ env: MOCK_ENV, now: fixedClock });

    const response = await registry.slack!(
      request('slack', 'msg.post', { channel: '#general', text: 'Hello' }),
    );

    expect(JSON.stringify(response.output)).toBe(fixture('mock-slack.msg.post.txt'));
  });

  it('validates the request envelope like the Lambda entry point', async () => {
    const registry = createConnectorRegistry({ env: MOCK_ENV });

    const response = await registry.jira!({ ...request('jira', 'issue.list'), event_id: '' });

    expect(response.error?.code).toBe('INVALID_REQUEST');
  });

  it('fails fast in live mode (the default) without credentials', () => {
    expect(() => createConnectorRegistry({ env: {} })).toThrow(/SLACK_BOT_TOKEN is required/);
  });
});

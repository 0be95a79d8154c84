import {
  ConnectorConfigError,
  loadConnectorsMode,
  loadJiraConfig,
  loadSlackConfig,
} from '../../functions/connectors/config.js';
import { loadConnectorFunctionNames } from '../../functions/store/connector-invoker.js';

const liveJira = {
  OC_CONNECTORS_MODE: 'live',
  JIRA_BASE_URL: 'https://example.atlassian.net/',
  JIRA_EMAIL: 'bot@example.com',
  JIRA_API_TOKEN: 'jira-secret-token',
};

describe('connector config', () => {
  it('defaults to live mode, like the original', () => {
    expect(loadConnectorsMode({})).toBe('live');
    expect(loadConnectorsMode({ OC_CONNECTORS_MODE: '  ' })).toBe('live');
  });

  it('needs no credentials in mock mode', () => {
    expect(loadSlackConfig({ OC_CONNECTORS_MODE: 'mock' })).toEqual({ mode: 'mock' });
    expect(loadJiraConfig({ OC_CONNECTORS_MODE: 'mock', SLACK_BOT_TOKEN: 'ignored' })).toEqual({
      mode: 'mock',
    });
  });

  it.each(['true', 'LIVE', 'real'])('refuses mode %j', (mode) => {
    expect(() => loadConnectorsMode({ OC_CONNECTORS_MODE: mode })).toThrow(
      'OC_CONNECTORS_MODE must be "mock" or "live"',
    );
  });

  it('reads the Slack token in live mode', () => {
    expect(loadSlackConfig({ OC_CONNECTORS_MODE: 'live', SLACK_BOT_TOKEN: ' xoxb-1 ' })).toEqual({
      mode: 'live',
      botToken: 'xoxb-1',
    });
  });

  it('fails fast without SLACK_BOT_TOKEN in live mode', () => {
    expect(() => loadSlackConfig({ OC_CONNECTORS_MODE: 'live', SLACK_BOT_TOKEN: '' })).toThrow(
      new ConnectorConfigError('slack connector: OC_CONNECTORS_MODE=live but SLACK_BOT_TOKEN is required'),
    );
  });

  it('reads Jira credentials and trims the base URL', () => {
    expect(loadJiraConfig(liveJira)).toEqual({
      mode: 'live',
      baseUrl: 'https://example.atlassian.net',
      email: 'bot@example.com',
      apiToken: 'jira-secret-token',
    });
  });

  it('names every missing Jira variable at once', () => {
    expect(() => loadJiraConfig({ OC_CONNECTORS_MODE: 'live' })).toThrow(
      'jira connector: OC_CONNECTORS_MODE=live but JIRA_BASE_URL is required; JIRA_EMAIL is required; JIRA_API_TOKEN is required',
    );
  });

  it.each([
    ['plain http to a remote host', 'http://example.atlassian.net', 'JIRA_BASE_URL must use https'],
    ['not a URL', 'example.atlassian.net', 'JIRA_BASE_URL must be an absolute URL'],
    [
      'credentials in the URL',
      'https://u:p@example.atlassian.net',
      'JIRA_BASE_URL must not carry credentials',
    ],
  ])('refuses a base URL with %s', (_label, url, message) => {
    expect(() => loadJiraConfig({ ...liveJira, JIRA_BASE_URL: url })).toThrow(message);
  });

  it('allows plain http only on loopback (local test servers)', () => {
    expect(loadJiraConfig({ ...liveJira, JIRA_BASE_URL: 'http://127.0.0.1:9999' })).toMatchObject({
      baseUrl: 'http://127.0.0.1:9999',
    });
  });

  it('never puts a secret value in the error', () => {
    let message = '';
    try {
      loadJiraConfig({ ...liveJira, JIRA_EMAIL: 'not-an-email', JIRA_API_TOKEN: 'has spaces secret' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('JIRA_EMAIL must be an email address');
    expect(message).toContain('JIRA_API_TOKEN must be a single token');
    expect(message).not.toContain('secret');
    expect(message).not.toContain('not-an-email');
  });

  it('parses OC_CONNECTOR_FUNCTIONS', () => {
    expect(
      loadConnectorFunctionNames({ OC_CONNECTOR_FUNCTIONS: '{"slack":"fn-slack","jira":"fn-jira"}' }),
    ).toEqual({
      slack: 'fn-slack',
      jira: 'fn-jira',
    });
    expect(() => loadConnectorFunctionNames({})).toThrow('OC_CONNECTOR_FUNCTIONS is required');
    expect(() => loadConnectorFunctionNames({ OC_CONNECTOR_FUNCTIONS: '["fn"]' })).toThrow(
      /must be a JSON object/,
    );
  });
});

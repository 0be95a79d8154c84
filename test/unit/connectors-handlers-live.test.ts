/**
 * The connector Lambdas in live mode with credentials from Secrets Manager: an injected secret
 * reader (and, once, the real Powertools adapter over a mocked SDK) against a local fake upstream.
 */
import { jest } from '@jest/globals';
import { clearCaches } from '@aws-lambda-powertools/parameters';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { SecretReader } from '../../functions/connectors/config.js';
import { logger } from '../../functions/shared/powertools.js';
import { fixture, json, startUpstream, type UpstreamServer } from '../fixtures/connectors/upstream-server.js';

const SLACK_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:oc-connector-slack-AbCdEf';
const JIRA_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:oc-connector-jira-GhIjKl';
const COLD_START_TOKEN = 'xoxb-cold-start-token';

const slackEvent = () => JSON.parse(fixture('request-slack-msg-post.json')) as Record<string, unknown>;
const jiraEvent = () => JSON.parse(fixture('request-jira-issue-create.json')) as Record<string, unknown>;
const slackOk = json(200, { ok: true, channel: 'C123', ts: '1700000000.000100' });

const context = {
  functionName: 'oc-connector-slack',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:oc-connector-slack',
  memoryLimitInMB: '512',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  getRemainingTimeInMillis: () => 10_000,
} as unknown as Context;

// What CDK sets on the connector functions: live mode and the secret's ARN, no credential
// variables. The modules read their secret at import (cold start), through Powertools and the
// (mocked) SDK.
const savedEnv = { ...process.env };
Object.assign(process.env, {
  OC_CONNECTORS_MODE: 'live',
  OC_SLACK_SECRET_ARN: SLACK_ARN,
  OC_JIRA_SECRET_ARN: JIRA_ARN,
  AWS_REGION: 'eu-west-1',
});
for (const name of ['SLACK_BOT_TOKEN', 'JIRA_BASE_URL', 'JIRA_EMAIL', 'JIRA_API_TOKEN'])
  delete process.env[name];
const sm = mockClient(SecretsManagerClient);
sm.on(GetSecretValueCommand, { SecretId: SLACK_ARN }).resolves({
  SecretString: JSON.stringify({ bot_token: COLD_START_TOKEN }),
});
sm.on(GetSecretValueCommand, { SecretId: JIRA_ARN }).resolves({
  SecretString: JSON.stringify({
    base_url: 'https://acme.atlassian.net',
    email: 'bot@acme.example',
    api_token: 't',
  }),
});
const { createConnectorSlack, handler: slackHandler } =
  await import('../../functions/handlers/connector-slack.js');
const { createConnectorJira } = await import('../../functions/handlers/connector-jira.js');
const coldStartReads = sm.commandCalls(GetSecretValueCommand).map((call) => call.args[0].input);

let upstream: UpstreamServer;

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream.close();
  process.env = savedEnv;
  sm.restore();
  clearCaches();
});

beforeEach(() => {
  upstream.requests.length = 0;
});

afterEach(() => {
  jest.restoreAllMocks();
});

/** A secret store the test controls: `put` changes the value, `fail` makes the next reads throw. */
function fakeSecrets(initial: Record<string, unknown>) {
  let value = JSON.stringify(initial);
  let failure: Error | undefined;
  const readSecret = jest.fn<SecretReader>(async () => {
    if (failure) throw failure;
    return value;
  });
  return {
    readSecret,
    put: (next: Record<string, unknown> | string) => {
      value = typeof next === 'string' ? next : JSON.stringify(next);
    },
    fail: (error: Error | undefined) => {
      failure = error;
    },
  };
}

const liveSlackEnv = { OC_CONNECTORS_MODE: 'live', OC_SLACK_SECRET_ARN: SLACK_ARN };

const slackWith = (readSecret: SecretReader) =>
  createConnectorSlack({
    env: liveSlackEnv,
    readSecret,
    apiBaseUrl: `${upstream.baseUrl}/api`,
    timeoutMs: 2000,
  });

describe('connector-slack handler with its secret', () => {
  it('posts with the bot token from the secret', async () => {
    const secrets = fakeSecrets({ bot_token: 'xoxb-from-secret-1' });
    upstream.respond(slackOk);
    const connector = await slackWith(secrets.readSecret);

    const response = await connector(slackEvent());

    expect(response).toEqual({
      status: 'success',
      output: { ok: true, channel: 'C123', ts: '1700000000.000100' },
    });
    expect(secrets.readSecret).toHaveBeenCalledWith(SLACK_ARN);
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]).toMatchObject({ method: 'POST', url: '/api/chat.postMessage' });
    expect(upstream.requests[0]!.headers.authorization).toBe('Bearer xoxb-from-secret-1');
  });

  it('uses a re-put token on the next call', async () => {
    const secrets = fakeSecrets({ bot_token: 'xoxb-old' });
    upstream.respond(slackOk);
    const connector = await slackWith(secrets.readSecret);
    await connector(slackEvent());

    secrets.put({ bot_token: 'xoxb-new' });
    await connector(slackEvent());

    expect(upstream.requests.map((r) => r.headers.authorization)).toEqual([
      'Bearer xoxb-old',
      'Bearer xoxb-new',
    ]);
  });

  it.each([
    [
      'the read fails',
      (s: ReturnType<typeof fakeSecrets>) => s.fail(new Error(`secret ${SLACK_ARN} throttled`)),
    ],
    ['the new value is malformed', (s: ReturnType<typeof fakeSecrets>) => s.put('xoxb-not-json')],
  ])('keeps the last good token when %s', async (_label, breakIt) => {
    const secrets = fakeSecrets({ bot_token: 'xoxb-good' });
    upstream.respond(slackOk);
    const connector = await slackWith(secrets.readSecret);
    breakIt(secrets);

    const response = await connector(slackEvent());

    expect(response.status).toBe('success');
    expect(upstream.requests[0]!.headers.authorization).toBe('Bearer xoxb-good');
  });

  it('reads no secret for a payload it rejects', async () => {
    const secrets = fakeSecrets({ bot_token: 'xoxb-good' });
    const connector = await slackWith(secrets.readSecret);
    secrets.readSecret.mockClear();

    const response = await connector({ tool: 'slack' });

    expect(response.error?.code).toBe('INVALID_REQUEST');
    expect(secrets.readSecret).not.toHaveBeenCalled();
  });

  it('fails the cold start naming the secret, never its value', async () => {
    const secrets = fakeSecrets({});
    secrets.put('xoxb-pasted-without-json');

    const error = await slackWith(secrets.readSecret).then(
      () => undefined,
      (e: unknown) => e as Error,
    );

    expect(error?.message).toBe(
      `slack connector: secret ${SLACK_ARN} is not valid JSON; expected {"bot_token": "..."}`,
    );
    expect(upstream.requests).toHaveLength(0);
  });

  it('fails the cold start when the secret cannot be read', async () => {
    const secrets = fakeSecrets({});
    secrets.fail(new Error(`secret ${SLACK_ARN} was not found or has no value`));

    await expect(slackWith(secrets.readSecret)).rejects.toThrow(
      `slack connector: secret ${SLACK_ARN} was not found or has no value`,
    );
  });
});

describe('connector-slack Lambda entry point (Powertools over the mocked SDK)', () => {
  it("read each connector's secret once at cold start, by the ARN CDK passes", () => {
    expect(coldStartReads).toEqual([{ SecretId: SLACK_ARN }, { SecretId: JIRA_ARN }]);
  });

  it('serves calls with that token and no further read within the cache age', async () => {
    upstream.respond(slackOk);
    // The module's connector calls slack.com; send it to the fake upstream instead.
    const realFetch = globalThis.fetch;
    jest
      .spyOn(globalThis, 'fetch')
      .mockImplementation((input, init) =>
        realFetch(String(input).replace('https://slack.com/api', `${upstream.baseUrl}/api`), init),
      );

    const first = await slackHandler(slackEvent(), context);
    const second = await slackHandler(slackEvent(), context);

    expect([first.status, second.status]).toEqual(['success', 'success']);
    expect(upstream.requests.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${COLD_START_TOKEN}`,
      `Bearer ${COLD_START_TOKEN}`,
    ]);
    expect(sm.commandCalls(GetSecretValueCommand, { SecretId: SLACK_ARN })).toHaveLength(1);
  });
});

describe('connector-jira handler with its secret', () => {
  it('creates an issue with the credentials from the secret', async () => {
    const secrets = fakeSecrets({
      base_url: `${upstream.baseUrl}/`,
      email: 'bot@acme.example',
      api_token: 'jira-t1',
    });
    upstream.respond(
      json(201, { id: '10001', key: 'OPS-42', self: `${upstream.baseUrl}/rest/api/3/issue/10001` }),
    );
    const connector = await createConnectorJira({
      env: { OC_CONNECTORS_MODE: 'live', OC_JIRA_SECRET_ARN: JIRA_ARN },
      readSecret: secrets.readSecret,
      timeoutMs: 2000,
    });

    const response = await connector(jiraEvent());

    expect(response.status).toBe('success');
    expect(secrets.readSecret).toHaveBeenCalledWith(JIRA_ARN);
    expect(upstream.requests[0]).toMatchObject({ method: 'POST', url: '/rest/api/3/issue' });
    expect(upstream.requests[0]!.headers.authorization).toBe(
      `Basic ${Buffer.from('bot@acme.example:jira-t1').toString('base64')}`,
    );
  });
});

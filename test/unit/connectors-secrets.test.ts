/**
 * The secret loader: `store/secrets.ts` (Powertools Parameters over the Secrets Manager SDK,
 * mocked here) behind the connectors' config sources.
 */
import { jest } from '@jest/globals';
import { clearCaches } from '@aws-lambda-powertools/parameters';
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import {
  ConnectorConfigError,
  jiraConfigSource,
  slackConfigSource,
  type SecretReader,
} from '../../functions/connectors/config.js';
import { readSecretString, SECRET_MAX_AGE_SEC } from '../../functions/store/secrets.js';

const SLACK_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:oc-connector-slack-AbCdEf';
const JIRA_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:oc-connector-jira-GhIjKl';
const SLACK_TOKEN = 'xoxb-from-secrets-manager-789';
const liveSlack = { OC_CONNECTORS_MODE: 'live', OC_SLACK_SECRET_ARN: SLACK_ARN };
const liveJira = { OC_CONNECTORS_MODE: 'live', OC_JIRA_SECRET_ARN: JIRA_ARN };

const sm = mockClient(SecretsManagerClient);
const slack = () => slackConfigSource({ env: liveSlack, readSecret: readSecretString });
const jira = () => jiraConfigSource({ env: liveJira, readSecret: readSecretString });
const putSecret = (value: string) => sm.on(GetSecretValueCommand).resolves({ SecretString: value });

/** The rejection of `promise`, for assertions on its message. */
async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

beforeAll(() => {
  process.env.AWS_REGION ??= 'eu-west-1';
});

beforeEach(() => {
  sm.reset();
  clearCaches();
});

afterEach(() => {
  jest.restoreAllMocks();
});

describe('secret found', () => {
  it('builds the live Slack config from {"bot_token"}', async () => {
    putSecret(JSON.stringify({ bot_token: ` ${SLACK_TOKEN} ` }));

    const config = await slack().load();

    expect(config).toEqual({ mode: 'live', botToken: SLACK_TOKEN });
    expect(sm.commandCalls(GetSecretValueCommand).map((call) => call.args[0].input)).toEqual([
      { SecretId: SLACK_ARN },
    ]);
  });

  it('builds the live Jira config from {"base_url","email","api_token"}', async () => {
    putSecret(
      JSON.stringify({
        base_url: 'https://acme.atlassian.net/',
        email: 'bot@acme.example',
        api_token: 'jira-token-1',
        note: 'ignored',
      }),
    );

    const config = await jira().load();

    expect(config).toEqual({
      mode: 'live',
      baseUrl: 'https://acme.atlassian.net',
      email: 'bot@acme.example',
      apiToken: 'jira-token-1',
    });
  });

  it('prefers the secret to SLACK_BOT_TOKEN when both are set', async () => {
    putSecret(JSON.stringify({ bot_token: SLACK_TOKEN }));
    const source = slackConfigSource({
      env: { ...liveSlack, SLACK_BOT_TOKEN: 'xoxb-env' },
      readSecret: readSecretString,
    });

    expect(source.fromSecret).toBe(true);
    expect(await source.load()).toEqual({ mode: 'live', botToken: SLACK_TOKEN });
  });
});

describe('secret missing or unreadable', () => {
  it('names the secret when it does not exist', async () => {
    sm.on(GetSecretValueCommand).rejects(
      new ResourceNotFoundException({
        message: "Secrets Manager can't find the specified secret.",
        $metadata: {},
      }),
    );

    const error = await failureOf(slack().load());

    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toBe(`slack connector: secret ${SLACK_ARN} was not found or has no value`);
  });

  it('treats an empty value as missing', async () => {
    putSecret('');

    await expect(jira().load()).rejects.toThrow(
      `jira connector: secret ${JIRA_ARN} was not found or has no value`,
    );
  });

  it('names the secret and the AWS error when access is denied', async () => {
    sm.on(GetSecretValueCommand).rejects(
      Object.assign(new Error('User is not authorized to perform GetSecretValue'), {
        name: 'AccessDeniedException',
      }),
    );

    await expect(slack().load()).rejects.toThrow(
      `slack connector: secret ${SLACK_ARN} could not be read (AccessDeniedException: User is not authorized to perform GetSecretValue)`,
    );
  });

  it('refuses a binary secret', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretBinary: new TextEncoder().encode('{}') });

    await expect(slack().load()).rejects.toThrow(
      `slack connector: secret ${SLACK_ARN} holds binary data; expected a JSON string`,
    );
  });
});

describe('secret malformed', () => {
  it('says the value is not JSON without quoting it (the generated placeholder, or a bare token)', async () => {
    putSecret(SLACK_TOKEN);

    const error = await failureOf(slack().load());

    expect(error.message).toBe(
      `slack connector: secret ${SLACK_ARN} is not valid JSON; expected {"bot_token": "..."}`,
    );
    expect(error.cause).toBeUndefined();
    expect(error.message).not.toContain('xoxb');
  });

  it('refuses JSON that is not an object', async () => {
    putSecret(JSON.stringify(SLACK_TOKEN));

    const error = await failureOf(slack().load());

    expect(error.message).toBe(
      `slack connector: secret ${SLACK_ARN} is not a JSON object; expected {"bot_token": "..."}`,
    );
    expect(error.message).not.toContain(SLACK_TOKEN);
  });

  it('names every bad field by its JSON key, never its value', async () => {
    putSecret(
      JSON.stringify({ base_url: 'http://jira.internal.example', email: 'hunter2', api_token: 4242 }),
    );

    const error = await failureOf(jira().load());

    expect(error.message).toBe(
      `jira connector: secret ${JIRA_ARN}: base_url must use https; email must be an email address; api_token must be a string`,
    );
    for (const value of ['jira.internal.example', 'hunter2', '4242'])
      expect(error.message).not.toContain(value);
  });

  it('says which key is missing', async () => {
    putSecret(JSON.stringify({ token: SLACK_TOKEN }));

    await expect(slack().load()).rejects.toThrow(
      `slack connector: secret ${SLACK_ARN}: bot_token is required`,
    );
  });

  it('refuses a token with whitespace without echoing it', async () => {
    putSecret(JSON.stringify({ bot_token: 'xoxb-one two-secret' }));

    const error = await failureOf(slack().load());

    expect(error.message).toBe(
      `slack connector: secret ${SLACK_ARN}: bot_token must be a single token without whitespace`,
    );
  });
});

describe('caching', () => {
  it('reads the secret once across invocations, and again only after 5 minutes', async () => {
    putSecret(JSON.stringify({ bot_token: SLACK_TOKEN }));
    const source = slack();

    const first = await source.load();
    const second = await source.load();
    const third = await slackConfigSource({ env: liveSlack, readSecret: readSecretString }).load();

    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(second).toBe(first);
    expect(third).toEqual(first);

    const later = Date.now() + (SECRET_MAX_AGE_SEC + 1) * 1000;
    jest.spyOn(Date, 'now').mockReturnValue(later);
    putSecret(JSON.stringify({ bot_token: 'xoxb-rotated' }));

    expect(await source.load()).toEqual({ mode: 'live', botToken: 'xoxb-rotated' });
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('still fetches within 5 minutes after a failed read (failures are not cached)', async () => {
    sm.on(GetSecretValueCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: 'not yet', $metadata: {} }))
      .resolves({ SecretString: JSON.stringify({ bot_token: SLACK_TOKEN }) });

    await expect(slack().load()).rejects.toThrow(/was not found/);
    expect(await slack().load()).toEqual({ mode: 'live', botToken: SLACK_TOKEN });
  });
});

describe('where the config comes from', () => {
  const reader = jest.fn<SecretReader>();

  beforeEach(() => reader.mockReset());

  it('reads no secret in mock mode, even with an ARN set', async () => {
    const source = slackConfigSource({
      env: { ...liveSlack, OC_CONNECTORS_MODE: 'mock' },
      readSecret: reader,
    });

    expect(source.fromSecret).toBe(false);
    expect(await source.load()).toEqual({ mode: 'mock' });
    expect(reader).not.toHaveBeenCalled();
  });

  it('keeps the environment variables for local live runs (no ARN)', async () => {
    const source = jiraConfigSource({
      env: {
        OC_CONNECTORS_MODE: 'live',
        JIRA_BASE_URL: 'https://acme.atlassian.net',
        JIRA_EMAIL: 'bot@acme.example',
        JIRA_API_TOKEN: 'env-token',
      },
      readSecret: reader,
    });

    expect(source.fromSecret).toBe(false);
    expect(await source.load()).toMatchObject({ mode: 'live', apiToken: 'env-token' });
    expect(reader).not.toHaveBeenCalled();
  });

  it('refuses an ARN without a secret reader', () => {
    expect(() => slackConfigSource({ env: liveSlack })).toThrow(
      'slack connector: OC_SLACK_SECRET_ARN is set but no secret reader was given',
    );
  });
});

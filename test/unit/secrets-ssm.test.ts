/**
 * Credentials in SSM Parameter Store (issue 26: no monthly charge, unlike a Secrets Manager
 * secret): `store/secrets.ts` reads a parameter ARN with one SigV4-signed GetParameter (no
 * `@aws-sdk/client-ssm` in the bundles), here against a loopback stand-in for SSM's JSON protocol
 * that checks each call's signature shape; a Secrets Manager id still goes to Secrets Manager
 * (its SDK client mocked). The connectors, the Slack signing secret and webhook secrets read
 * through the same reader.
 */
import { clearCaches } from '@aws-lambda-powertools/parameters';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { slackConfigSource } from '../../functions/connectors/config.js';
import {
  SECRET_MAX_AGE_SEC,
  SecretUnavailableError,
  secretReader,
  ssmParameterOf,
} from '../../functions/store/secrets.js';
import { secretsManagerWebhookSecrets } from '../../functions/store/webhook-secrets.js';
import { fakeSsm } from '../support/fake-ssm.js';

const ARN = (name: string) => `arn:aws:ssm:us-east-1:123456789012:parameter${name}`;
const SLACK = '/openclause/OpenClauseApp/connectors/slack';
const TOKEN = 'xoxb-from-ssm-123';

let ssm: ReturnType<typeof fakeSsm>;
let endpoint: string;
let now: number;
const credentials = () =>
  Promise.resolve({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'test', sessionToken: 'tok' });
const reader = () => secretReader({ ssm: { endpoint, credentials }, now: () => now });
const put = (name: string, value: string) => ssm.parameters.set(name, { value, type: 'SecureString' });

const sm = mockClient(SecretsManagerClient);

beforeEach(async () => {
  ssm = fakeSsm();
  endpoint = await ssm.start();
  now = 1_000_000;
  sm.reset();
  clearCaches();
});
afterEach(() => ssm.stop());

describe('a credential in SSM', () => {
  it('is told from a Secrets Manager id by its ARN alone', () => {
    expect(ssmParameterOf(ARN(SLACK))).toEqual({ region: 'us-east-1', name: SLACK });
    expect(ssmParameterOf('arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/a/b')).toEqual({
      region: 'us-gov-west-1',
      name: '/a/b',
    });
    for (const id of [
      'arn:aws:secretsmanager:us-east-1:123456789012:secret:oc-connector-slack-AbCdEf',
      'oc/webhooks/tenant1_webhook',
      '/openclause/OpenClauseApp/connectors/slack',
      'arn:aws:ssm:us-east-1:123456789012:document/x',
    ])
      expect(ssmParameterOf(id)).toBeUndefined();
  });

  it('is read decrypted by its name, with a signed call, and fills a connector config', async () => {
    put(SLACK, JSON.stringify({ bot_token: TOKEN }));
    const config = await slackConfigSource({
      env: { OC_CONNECTORS_MODE: 'live', OC_SLACK_SECRET_ARN: ARN(SLACK) },
      readSecret: reader(),
    }).load();

    expect(config).toEqual({ mode: 'live', botToken: TOKEN });
    expect(ssm.requests).toEqual([{ action: 'GetParameter', input: { Name: SLACK, WithDecryption: true } }]);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it("is read with the role credentials Lambda puts in the function's environment", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_SESSION_TOKEN: 'tok',
    });
    try {
      put(SLACK, 'from-the-role');
      // No credentials given: the stand-in refuses anything but these, signed for us-east-1/ssm.
      expect(await secretReader({ ssm: { endpoint } })(ARN(SLACK))).toBe('from-the-role');
    } finally {
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
    }
  });

  it("goes to the endpoint AWS_ENDPOINT_URL_SSM names, as the SDK's clients do", async () => {
    const saved = process.env.AWS_ENDPOINT_URL_SSM;
    process.env.AWS_ENDPOINT_URL_SSM = endpoint;
    try {
      put(SLACK, 'from-the-named-endpoint');
      // No endpoint option: without the variable this would go to ssm.us-east-1.amazonaws.com.
      expect(await secretReader({ ssm: { credentials } })(ARN(SLACK))).toBe('from-the-named-endpoint');
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_SSM;
      else process.env.AWS_ENDPOINT_URL_SSM = saved;
    }
  });

  it('is read once per instance until its cache ages out; then a re-put value is picked up', async () => {
    const read = reader();
    put(SLACK, 'v1');
    expect(await read(ARN(SLACK))).toBe('v1');
    put(SLACK, 'v2');
    expect(await Promise.all([read(ARN(SLACK)), read(ARN(SLACK))])).toEqual(['v1', 'v1']);
    expect(ssm.calls).toEqual(['GetParameter']);

    now += SECRET_MAX_AGE_SEC * 1000 + 1;
    expect(await read(ARN(SLACK))).toBe('v2');
    expect(ssm.calls).toHaveLength(2);
  });

  it('fails closed, naming the parameter, while it is missing, and does not keep the failure', async () => {
    const read = reader();
    const error = await read(ARN(SLACK)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SecretUnavailableError);
    expect((error as Error).message).toBe(`secret ${ARN(SLACK)} was not found or has no value`);

    put(SLACK, 'now-there');
    expect(await read(ARN(SLACK))).toBe('now-there');
  });

  it("fails closed on SSM's refusal with its reason, never a value", async () => {
    put(SLACK, 'the-value');
    ssm.failOnce();
    const error = (await reader()(ARN(SLACK)).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(SecretUnavailableError);
    expect(error.message).toMatch(/could not be read \(SsmError: SSM AccessDeniedException: denied\)/);
    expect(error.message).not.toContain('the-value');
  });

  it('refuses an empty parameter', async () => {
    put(SLACK, '');
    await expect(reader()(ARN(SLACK))).rejects.toThrow(/was not found or has no value/);
  });

  it('resolves a webhook secret_ref under the parameter prefix CDK gives the delivery worker', async () => {
    const prefix = ARN('/openclause/OpenClauseApp/webhooks/');
    put(
      '/openclause/OpenClauseApp/webhooks/tenant1_webhook',
      'whsec_' + Buffer.alloc(24, 7).toString('base64'),
    );
    const secrets = secretsManagerWebhookSecrets(prefix, reader());
    await expect(secrets.resolve('tenant1_webhook')).resolves.toMatch(/^whsec_/);
    // Another ref is another parameter: missing, so the delivery fails for good, unsigned never.
    await expect(secrets.resolve('other')).rejects.toThrow(/webhooks\/other was not found/);
  });
});

describe('a credential in Secrets Manager (-c secretStore=secretsmanager)', () => {
  it('is still read from Secrets Manager, never from SSM', async () => {
    const id = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:oc-connector-slack-AbCdEf';
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'from-secrets-manager' });
    expect(await reader()(id)).toBe('from-secrets-manager');
    expect(sm.commandCalls(GetSecretValueCommand)[0]!.args[0].input).toMatchObject({ SecretId: id });
    expect(ssm.calls).toEqual([]);
  });
});

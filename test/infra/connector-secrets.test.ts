/**
 * Operators' credentials (lib/credentials.ts): by default SSM SecureString parameters the stack
 * names and grants but never creates (no monthly charge); with `-c secretStore=secretsmanager`,
 * Secrets Manager secrets the stack creates. Either way each function reads its own and nothing else.
 */
import { Match } from 'aws-cdk-lib/assertions';
import {
  CONNECTOR_SECRET_ENV,
  CONNECTORS,
  ENV,
  FUNCTION_URLS,
  ROUTES,
  SCHEDULES,
  STREAM_CONSUMERS,
  ARCHIVER,
  NOTIFICATIONS,
  STACKS,
} from '../../functions/shared/constants.js';
import { UPSTREAM_CONNECTOR } from '../../functions/core/upstream-types.js';
import { connectorSecretOutputKey } from '../../lib/connectors.js';
import { ssmParameterOf } from '../../functions/store/secrets.js';
import { asArray, lambdaFor, roleOf, statementsOfRole, synthesize, type Synthesized } from './synth.js';

let s: Synthesized;
beforeAll(() => {
  s = synthesize({ secretStore: 'secretsmanager' });
});

const ALL_HANDLERS = [
  // One Lambda per handler (the console's two routes share one), plus the Function URLs'.
  ...new Set(ROUTES.map((r) => r.handler)),
  ...FUNCTION_URLS.map((f) => f.handler),
  ...CONNECTORS.map((c) => `connector-${c}`),
  ...STREAM_CONSUMERS.map((c) => c.handler),
  ...SCHEDULES.map((c) => c.handler),
  ARCHIVER.handler,
];

/** The logical id of a connector's secret (found by its description, not by a hashed id). */
function secretIdOf(connector: string): string {
  const found = Object.keys(
    s.appTemplate.findResources('AWS::SecretsManager::Secret', {
      Properties: { Description: Match.stringLikeRegexp(`^OpenClause connector-${connector} credentials`) },
    }),
  );
  if (found.length !== 1) throw new Error(`expected one secret for ${connector}, found ${found.length}`);
  return found[0]!;
}

const secretStatements = (handler: string) =>
  statementsOfRole(s.appTemplate, roleOf(lambdaFor(s.appTemplate, handler).resource)).filter((st) =>
    asArray(st.Action as string | string[]).some((a) => a.startsWith('secretsmanager:')),
  );

describe('connector secrets with -c secretStore=secretsmanager', () => {
  it("keeps each secret_ref's signing secret in Secrets Manager, readable by the delivery Lambda only", () => {
    expect(
      lambdaFor(s.appTemplate, NOTIFICATIONS.deliveryHandler).resource.Properties.Environment.Variables[
        ENV.webhookSecretPrefix
      ],
    ).toBe('oc/webhooks/');
    const secrets = s.appTemplate.findResources('AWS::SecretsManager::Secret', {
      Properties: { Name: 'oc/webhooks/tenant1_webhook' },
    });
    const [secretId] = Object.keys(secrets);
    expect(secretId).toBeDefined();
    const readers = Object.values(s.appTemplate.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify(p.Properties.PolicyDocument).includes(`"Ref":"${secretId}"`),
    );
    const delivery = roleOf(lambdaFor(s.appTemplate, NOTIFICATIONS.deliveryHandler).resource);
    expect(readers.flatMap((p) => p.Properties.Roles.map((r: { Ref: string }) => r.Ref))).toEqual([delivery]);
  });

  it('gives each connector its own secret, retained, under the AWS managed key', () => {
    // The connectors', one webhook signing secret per secret_ref (policy/tenants.json has one) and
    // the Slack app's signing secret (test below).
    s.appTemplate.resourceCountIs('AWS::SecretsManager::Secret', CONNECTORS.length + 2);
    const ids = CONNECTORS.map(secretIdOf);
    expect(new Set(ids).size).toBe(CONNECTORS.length);
    for (const id of ids) {
      const secret = s.appTemplate.findResources('AWS::SecretsManager::Secret')[id]!;
      expect(secret).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
      expect(secret.Properties.KmsKeyId).toBeUndefined();
      // Generated, never a value in the template.
      expect(secret.Properties.SecretString).toBeUndefined();
    }
  });

  it.each(CONNECTORS)('connector-%s gets its own secret ARN, not a credential', (c) => {
    const vars = lambdaFor(s.appTemplate, `connector-${c}`).resource.Properties.Environment.Variables;
    expect(vars[CONNECTOR_SECRET_ENV[c]]).toEqual({ Ref: secretIdOf(c) });
    for (const other of CONNECTORS.filter((o) => o !== c)) {
      expect(vars[CONNECTOR_SECRET_ENV[other]]).toBeUndefined();
    }
    for (const name of ['SLACK_BOT_TOKEN', 'JIRA_BASE_URL', 'JIRA_EMAIL', 'JIRA_API_TOKEN']) {
      expect(vars[name]).toBeUndefined();
    }
  });

  it.each(CONNECTORS)("connector-%s's role may read its own secret and nothing else", (c) => {
    expect(secretStatements(`connector-${c}`)).toEqual([
      {
        Effect: 'Allow',
        Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        Resource: { Ref: secretIdOf(c) },
      },
    ]);
  });

  it('lets slack-interactions read the Slack signing secret and, live, the Slack bot token (users.info), nothing else', () => {
    const signing = Object.keys(
      s.appTemplate.findResources('AWS::SecretsManager::Secret', {
        Properties: { Description: Match.stringLikeRegexp('Slack app signing secret') },
      }),
    );
    expect(signing).toHaveLength(1);
    const statements = secretStatements('slack-interactions');
    expect(
      statements.map((st) => st.Resource).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toEqual(
      [{ Ref: secretIdOf('slack') }, { Ref: signing[0] }].sort((a, b) =>
        JSON.stringify(a).localeCompare(JSON.stringify(b)),
      ),
    );
    const vars = lambdaFor(s.appTemplate, 'slack-interactions').resource.Properties.Environment.Variables;
    expect(vars[ENV.slackSigningSecretArn]).toEqual({ Ref: signing[0] });
    expect(vars[CONNECTOR_SECRET_ENV.jira]).toBeUndefined();
  });

  it('lets no other function read a secret or know a secret ARN', () => {
    for (const handler of ALL_HANDLERS.filter(
      (h) => !h.startsWith('connector-') && h !== 'slack-interactions',
    )) {
      const vars = lambdaFor(s.appTemplate, handler).resource.Properties.Environment?.Variables ?? {};
      const arns = CONNECTORS.map((c) => vars[CONNECTOR_SECRET_ENV[c]]).filter((v) => v !== undefined);
      expect({ handler, statements: secretStatements(handler), arns }).toEqual({
        handler,
        statements: [],
        arns: [],
      });
    }
  });

  it('uses no KMS permission for the secrets (the AWS managed key is used through Secrets Manager)', () => {
    for (const c of CONNECTORS) {
      const kms = statementsOfRole(s.appTemplate, roleOf(lambdaFor(s.appTemplate, `connector-${c}`).resource))
        .flatMap((st) => asArray(st.Action as string | string[]))
        .filter((a) => a.startsWith('kms:'));
      expect(kms).toEqual([]);
    }
  });

  it.each(CONNECTORS)('outputs the name of the %s secret for operators', (c) => {
    const outputs = s.appTemplate.findOutputs(connectorSecretOutputKey(c));
    expect(Object.keys(outputs)).toEqual([connectorSecretOutputKey(c)]);
    expect(JSON.stringify(outputs[connectorSecretOutputKey(c)]!.Value)).toContain(
      JSON.stringify({ Ref: secretIdOf(c) }),
    );
  });
});

/** A CloudFormation string (`Fn::Join` of pseudo parameters) as it resolves in us-east-1, account 123456789012. */
function resolved(value: unknown): string {
  if (typeof value === 'string') return value;
  const o = value as Record<string, any>;
  const pseudo: Record<string, string> = {
    'AWS::Partition': 'aws',
    'AWS::Region': 'us-east-1',
    'AWS::AccountId': '123456789012',
  };
  if (typeof o?.Ref === 'string' && pseudo[o.Ref]) return pseudo[o.Ref]!;
  if (Array.isArray(o?.['Fn::Join']))
    return (o['Fn::Join'][1] as unknown[]).map(resolved).join(o['Fn::Join'][0]);
  throw new Error(`not a resolvable string: ${JSON.stringify(value)}`);
}

describe('connector credentials by default (SSM SecureString parameters)', () => {
  let d: Synthesized;
  beforeAll(() => {
    d = synthesize();
  });
  const ssmStatements = (handler: string) =>
    statementsOfRole(d.appTemplate, roleOf(lambdaFor(d.appTemplate, handler).resource)).filter((st) =>
      asArray(st.Action as string | string[]).some(
        (a) => a.startsWith('ssm:') || a.startsWith('secretsmanager:'),
      ),
    );
  const parameter = (path: string) => `/openclause/${STACKS.app}/${path}`;

  it('creates no Secrets Manager secret (each is $0.40 a month) and no parameter (CloudFormation cannot make a SecureString)', () => {
    d.appTemplate.resourceCountIs('AWS::SecretsManager::Secret', 0);
    d.appTemplate.resourceCountIs('AWS::SSM::Parameter', 0);
    d.dataTemplate.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  it.each(CONNECTORS)(
    'connector-%s gets the ARN of its own parameter, which the runtime reads from SSM',
    (c) => {
      const vars = lambdaFor(d.appTemplate, `connector-${c}`).resource.Properties.Environment.Variables;
      const arn = resolved(vars[CONNECTOR_SECRET_ENV[c]]);
      expect(arn).toBe(`arn:aws:ssm:us-east-1:123456789012:parameter${parameter(`connectors/${c}`)}`);
      // The runtime's reader takes it for a parameter (not a Secrets Manager id) of that name and region.
      expect(ssmParameterOf(arn)).toEqual({ region: 'us-east-1', name: parameter(`connectors/${c}`) });
      for (const other of CONNECTORS.filter((o) => o !== c))
        expect(vars[CONNECTOR_SECRET_ENV[other]]).toBeUndefined();
    },
  );

  it.each(CONNECTORS)(
    "connector-%s's role may read its own parameter and nothing else (no KMS grant: aws/ssm)",
    (c) => {
      const statements = ssmStatements(`connector-${c}`);
      expect(statements.map((st) => ({ ...st, Resource: resolved(st.Resource) }))).toEqual([
        {
          Effect: 'Allow',
          Action: 'ssm:GetParameter',
          Resource: `arn:aws:ssm:us-east-1:123456789012:parameter${parameter(`connectors/${c}`)}`,
        },
      ]);
      const kms = statementsOfRole(d.appTemplate, roleOf(lambdaFor(d.appTemplate, `connector-${c}`).resource))
        .flatMap((st) => asArray(st.Action as string | string[]))
        .filter((a) => a.startsWith('kms:'));
      expect(kms).toEqual([]);
    },
  );

  it('lets slack-interactions read the signing secret and the bot token parameters, nothing else', () => {
    const resources = ssmStatements('slack-interactions').map((st) => resolved(st.Resource));
    expect(resources.sort()).toEqual(
      [parameter('connectors/slack'), parameter('slack/signing-secret')]
        .map((n) => `arn:aws:ssm:us-east-1:123456789012:parameter${n}`)
        .sort(),
    );
    const vars = lambdaFor(d.appTemplate, 'slack-interactions').resource.Properties.Environment.Variables;
    expect(ssmParameterOf(resolved(vars[ENV.slackSigningSecretArn]))?.name).toBe(
      parameter('slack/signing-secret'),
    );
  });

  it("lets the delivery worker read each secret_ref's parameter, named by the prefix it is given", () => {
    const fn = lambdaFor(d.appTemplate, NOTIFICATIONS.deliveryHandler).resource;
    const prefix = resolved(fn.Properties.Environment.Variables[ENV.webhookSecretPrefix]);
    expect(prefix).toBe(`arn:aws:ssm:us-east-1:123456789012:parameter${parameter('webhooks/')}`);
    // policy/tenants.json names one secret_ref.
    expect(ssmStatements(NOTIFICATIONS.deliveryHandler).map((st) => resolved(st.Resource))).toEqual([
      `${prefix}tenant1_webhook`,
    ]);
    expect(ssmParameterOf(`${prefix}tenant1_webhook`)?.name).toBe(parameter('webhooks/tenant1_webhook'));
  });

  it('lets no other function read a credential', () => {
    const readers = [
      'slack-interactions',
      NOTIFICATIONS.deliveryHandler,
      'mcp',
      `connector-${UPSTREAM_CONNECTOR}`,
    ];
    for (const handler of ALL_HANDLERS.filter((h) => !h.startsWith('connector-') && !readers.includes(h)))
      expect({ handler, statements: ssmStatements(handler) }).toEqual({ handler, statements: [] });
  });

  it.each(CONNECTORS)('outputs the %s parameter and the command that fills it', (c) => {
    const output = d.appTemplate.findOutputs(connectorSecretOutputKey(c))[connectorSecretOutputKey(c)]!;
    expect(output.Value).toBe(parameter(`connectors/${c}`));
    expect(output.Description).toContain(
      `aws ssm put-parameter --type SecureString --overwrite --name ${parameter(`connectors/${c}`)}`,
    );
  });
});

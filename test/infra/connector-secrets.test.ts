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
} from '../../functions/shared/constants.js';
import { connectorSecretOutputKey } from '../../lib/connectors.js';
import { asArray, lambdaFor, roleOf, statementsOfRole, synthesize, type Synthesized } from './synth.js';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
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

describe('connector secrets', () => {
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

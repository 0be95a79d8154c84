/**
 * The template connector in CDK (`-c templateConnector=true`): its own Lambda with its
 * credential's ARN (lib/credentials.ts), a role that reads that credential only, and the
 * executors' permission to invoke it with its name in their connector map. A default stack
 * deploys none of it (idle cost).
 */
import { CONNECTOR_SECRET_ENV, ENV } from '../../functions/shared/constants.js';
import { asArray, lambdaFor, roleOf, statementsOfRole, synthesize, type Synthesized } from './synth.js';

let withTemplate: Synthesized;
beforeAll(() => {
  withTemplate = synthesize({ templateConnector: true });
});

const lambdaStatements = (s: Synthesized, handler: string, prefix: string) =>
  statementsOfRole(s.appTemplate, roleOf(lambdaFor(s.appTemplate, handler).resource)).filter((st) =>
    asArray(st.Action as string | string[]).some((a) => a.startsWith(prefix)),
  );

describe('the template connector in CDK', () => {
  it('is its own Lambda with its own credential (an SSM parameter), readable by it alone', () => {
    const fn = lambdaFor(withTemplate.appTemplate, 'connector-template');
    const parameter = JSON.stringify(
      fn.resource.Properties.Environment.Variables[CONNECTOR_SECRET_ENV.template],
    );
    expect(parameter).toContain(':parameter/openclause/OpenClauseApp/connectors/template');
    const statements = lambdaStatements(withTemplate, 'connector-template', 'ssm:');
    expect(statements.map((st) => [st.Action, JSON.stringify(st.Resource)])).toEqual([
      ['ssm:GetParameter', parameter],
    ]);
    expect(lambdaStatements(withTemplate, 'connector-template', 'secretsmanager:')).toEqual([]);
    for (const other of ['connector-slack', 'connector-jira', 'submit-toolcall']) {
      const statements = lambdaStatements(withTemplate, other, 'ssm:');
      expect(JSON.stringify(statements)).not.toContain('connectors/template');
    }
  });

  it.each(['submit-toolcall', 'execute-toolcall'])(
    '%s may invoke it and finds it by tool name',
    (handler) => {
      const template = lambdaFor(withTemplate.appTemplate, 'connector-template');
      const invoke = lambdaStatements(withTemplate, handler, 'lambda:');
      expect(JSON.stringify(invoke)).toContain(JSON.stringify({ 'Fn::GetAtt': [template.id, 'Arn'] }));
      const names = JSON.stringify(
        lambdaFor(withTemplate.appTemplate, handler).resource.Properties.Environment.Variables[
          ENV.connectorFunctions
        ],
      );
      expect(names).toContain('\\"template\\":\\"');
      expect(names).toContain(JSON.stringify({ Ref: template.id }));
    },
  );

  it('is not deployed by default', () => {
    expect(() => lambdaFor(synthesize().appTemplate, 'connector-template')).toThrow();
  });
});

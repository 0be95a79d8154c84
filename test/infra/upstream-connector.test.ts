/**
 * The upstream MCP connector in CDK (issue 25): its own Lambda the executors invoke as
 * `mcp-upstream`, reading the catalog (table, read only) and the upstream credentials under the
 * upstream prefixes only; outside any VPC (public https upstreams only) unless `upstreamVpc`.
 */
import { ENV } from '../../functions/shared/constants.js';
import { parseUpstreamVpc } from '../../lib/upstream-connector.js';
import { asArray, lambdaFor, roleOf, statementsOfRole, synthesize, type Synthesized } from './synth.js';

let plain: Synthesized;
let inVpc: Synthesized;
beforeAll(() => {
  plain = synthesize();
  inVpc = synthesize({ upstreamVpc: parseUpstreamVpc('vpc-0abc/subnet-01,subnet-02') });
});

const statements = (s: Synthesized, handler: string) =>
  statementsOfRole(s.appTemplate, roleOf(lambdaFor(s.appTemplate, handler).resource));

describe('the upstream MCP connector in CDK', () => {
  it('reads upstream credentials under the upstream prefixes only, never a native connector secret', () => {
    const all = statements(plain, 'connector-mcp-upstream');
    const secrets = all.filter((st) =>
      asArray(st.Action as string | string[]).some((a) => a.startsWith('secretsmanager:')),
    );
    expect(secrets).toHaveLength(1);
    expect(JSON.stringify(secrets[0]!.Resource)).toContain(':secret:openclause-upstream/*');
    const ssm = all.filter((st) => asArray(st.Action as string | string[]).some((a) => a.startsWith('ssm:')));
    expect(ssm).toHaveLength(1);
    expect(JSON.stringify(ssm[0]!.Resource)).toContain(':parameter/openclause-upstream/*');
    // Read on the table; its only write is PutItem in the tenants' UPSTREAM partitions and the
    // drift fact's own event partition (the pre-call drift check records what it finds).
    const writes = all.filter((st) =>
      asArray(st.Action as string | string[]).some((a) =>
        /^dynamodb:(Put|Update|Delete|BatchWrite|TransactWrite)/.test(a),
      ),
    );
    expect(writes).toHaveLength(1);
    expect(writes[0]!.Action).toEqual('dynamodb:PutItem');
    expect(writes[0]!.Condition).toEqual({
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['T#*#UPSTREAM', 'T#*#EVT#*'] },
    });
  });

  it.each(['submit-toolcall', 'execute-toolcall'])(
    '%s may invoke it and finds it as mcp-upstream',
    (handler) => {
      const fn = lambdaFor(plain.appTemplate, 'connector-mcp-upstream');
      const invoke = statements(plain, handler).filter((st) =>
        asArray(st.Action as string | string[]).includes('lambda:InvokeFunction'),
      );
      expect(JSON.stringify(invoke)).toContain(JSON.stringify({ 'Fn::GetAtt': [fn.id, 'Arn'] }));
      const names = JSON.stringify(
        lambdaFor(plain.appTemplate, handler).resource.Properties.Environment.Variables[
          ENV.connectorFunctions
        ],
      );
      expect(names).toContain('\\"mcp-upstream\\":\\"');
    },
  );

  it('is outside any VPC and refuses private upstreams by default', () => {
    const fn = lambdaFor(plain.appTemplate, 'connector-mcp-upstream').resource;
    expect(fn.Properties.VpcConfig).toBeUndefined();
    expect(fn.Properties.Environment.Variables[ENV.upstreamAllowPrivate]).toBeUndefined();
  });

  it('with upstreamVpc runs in those subnets and allows private upstreams', () => {
    const fn = lambdaFor(inVpc.appTemplate, 'connector-mcp-upstream').resource;
    expect(fn.Properties.VpcConfig.SubnetIds).toEqual(['subnet-01', 'subnet-02']);
    expect(fn.Properties.Environment.Variables[ENV.upstreamAllowPrivate]).toBe('true');
    // Only this function moves into the VPC.
    expect(lambdaFor(inVpc.appTemplate, 'execute-toolcall').resource.Properties.VpcConfig).toBeUndefined();
  });

  it("raises the account's Lambda errors alarm on its own crashes and Lambda timeouts (not upstream answers)", () => {
    // One alarm, no dimension: every function, this one included; with -c errorAlarms=per-function
    // it has its own (test/infra/stacks.test.ts checks every function's).
    const errors = Object.values(
      plain.appTemplate.findResources('AWS::CloudWatch::Alarm', {
        Properties: { Namespace: 'AWS/Lambda', MetricName: 'Errors' },
      }),
    );
    expect(errors.map((a) => a.Properties.Dimensions)).toEqual([undefined]);
  });

  it('refuses a malformed upstreamVpc', () => {
    expect(() => parseUpstreamVpc('vpc-1')).toThrow(/<vpc-id>\/<subnet-id>/);
  });
});

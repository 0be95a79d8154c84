import type { Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { ENV, ROUTES, STACKS } from '../../functions/shared/constants.js';
import { approverJwtEnvironment } from '../../lib/api.js';
import { lambdaFor, synthesize, type Synthesized } from './synth.js';

const COGNITO_ISSUER = 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123';

describe('stack props', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synthesize({
      publicBaseUrl: 'https://gateway.example.com',
      rateLimitPerSec: 7,
      rateLimitBurst: 11,
      connectorsMode: 'mock',
      apiThrottle: { rateLimit: 50, burstLimit: 60 },
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:oc-alarms',
      approverIssuer: COGNITO_ISSUER,
      approverAudience: 'app-client-1',
      approverJwksUrl: `${COGNITO_ISSUER}/.well-known/jwks.json`,
      approverTenantClaim: 'custom:tenant_id',
    });
  });

  it.each(ROUTES.filter((r) => r.auth === 'jwt' || r.auth === 'api_key_or_jwt').map((r) => r.handler))(
    '%s verifies approver JWTs with the OIDC provider',
    (handler) => {
      const vars = lambdaFor(s.appTemplate, handler).resource.Properties.Environment.Variables;
      expect(vars).toMatchObject({
        [ENV.jwtMode]: 'oidc',
        [ENV.jwtIssuer]: COGNITO_ISSUER,
        [ENV.jwtAudience]: 'app-client-1',
        [ENV.jwtJwksUrl]: `${COGNITO_ISSUER}/.well-known/jwks.json`,
        [ENV.jwtTenantClaim]: 'custom:tenant_id',
      });
      expect(vars[ENV.devJwtSecret]).toBeUndefined();
    },
  );

  it('tells the agent routes nothing about approver JWTs (they refuse them)', () => {
    for (const route of ROUTES.filter(
      (r) => r.auth !== 'jwt' && r.auth !== 'api_key_or_jwt' && r.handler !== 'console',
    )) {
      const vars = lambdaFor(s.appTemplate, route.handler).resource.Properties.Environment.Variables;
      expect(Object.keys(vars).filter((k) => k.startsWith('OC_JWT') || k === ENV.devJwtSecret)).toEqual([]);
    }
  });

  it("tells the console the provider's public sign-in settings (no keys URL, no secret)", () => {
    const vars = lambdaFor(s.appTemplate, 'console').resource.Properties.Environment.Variables;
    expect(
      Object.keys(vars)
        .filter((k) => k.startsWith('OC_JWT') || k === ENV.devJwtSecret)
        .sort(),
    ).toEqual([ENV.jwtAudience, ENV.jwtIssuer, ENV.jwtMode, ENV.jwtTenantClaim].sort());
    expect(vars[ENV.jwtMode]).toBe('oidc');
  });

  it('does not warn about approvers when the provider is given', () => {
    const stack = s.app.node.findChild(STACKS.app) as Stack;
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('approver'));
  });

  it('hands publicBaseUrl, the rate limits and the connector mode to the route handlers', () => {
    const vars = lambdaFor(s.appTemplate, 'submit-toolcall').resource.Properties.Environment.Variables;
    expect(vars).toMatchObject({
      [ENV.publicBaseUrl]: 'https://gateway.example.com',
      [ENV.rateLimitPerSec]: '7',
      [ENV.rateLimitBurst]: '11',
      [ENV.connectorsMode]: 'mock',
    });
  });

  it('runs the connectors in the given mode', () => {
    expect(
      lambdaFor(s.appTemplate, 'connector-slack').resource.Properties.Environment.Variables[
        ENV.connectorsMode
      ],
    ).toBe('mock');
  });

  it('throttles the stage as told', () => {
    s.appTemplate.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 60 },
    });
  });

  it('notifies the alarm topic on every alarm, in and out', () => {
    const alarms = Object.values(s.appTemplate.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(0);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual(['arn:aws:sns:eu-west-1:123456789012:oc-alarms']);
      expect(alarm.Properties.OKActions).toEqual(['arn:aws:sns:eu-west-1:123456789012:oc-alarms']);
    }
  });

  it('keeps the stack names the CLI looks for', () => {
    expect(s.app.node.findChild(STACKS.data)).toBeDefined();
    expect(s.app.node.findChild(STACKS.app)).toBeDefined();
  });
});

describe('approver identity provider settings', () => {
  it('defaults the tenant claim to tenant_id and discovers the JWKS from the issuer', () => {
    expect(approverJwtEnvironment({ issuer: COGNITO_ISSUER, audience: 'client' })).toEqual({
      [ENV.jwtMode]: 'oidc',
      [ENV.jwtIssuer]: COGNITO_ISSUER,
      [ENV.jwtAudience]: 'client',
      [ENV.jwtTenantClaim]: 'tenant_id',
    });
  });

  it('refuses every approver token (mode none) without a provider', () => {
    expect(approverJwtEnvironment()).toEqual({ [ENV.jwtMode]: 'none' });
    expect(approverJwtEnvironment({})).toEqual({ [ENV.jwtMode]: 'none' });
  });

  it.each([
    [{ issuer: 'http://idp.example.com', audience: 'a' }, /approverIssuer must be an https URL/],
    [{ issuer: 'idp.example.com', audience: 'a' }, /approverIssuer must be an https URL/],
    [{ issuer: COGNITO_ISSUER, audience: ' ' }, /approverAudience must not be empty/],
    [{ issuer: COGNITO_ISSUER }, /approverIssuer and approverAudience go together/],
    [{ audience: 'a' }, /approverIssuer and approverAudience go together/],
    [
      { issuer: COGNITO_ISSUER, audience: 'a', jwksUrl: 'http://x/jwks' },
      /approverJwksUrl must be an https URL/,
    ],
    [{ issuer: COGNITO_ISSUER, audience: 'a', tenantClaim: '' }, /approverTenantClaim must not be empty/],
    [{ tenantClaim: 'custom:tenant_id' }, /need approverIssuer and approverAudience/],
  ])('rejects %j', (approvers, message) => {
    expect(() => approverJwtEnvironment(approvers)).toThrow(message);
  });

  it('fails synthesis with the same clear error', () => {
    expect(() => synthesize({ approverIssuer: 'http://idp.example.com', approverAudience: 'a' })).toThrow(
      /approverIssuer must be an https URL/,
    );
  });
});

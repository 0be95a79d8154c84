/**
 * Agents' OAuth on /mcp, deployed (lib/mcp-oauth.ts): off by default; `mcpOAuth: 'cognito'`
 * creates the pool, the resource server for the canonical /mcp URI and client-credentials clients,
 * and points the MCP function at them under the Cognito profile; `mcpOAuthIssuer` points it at an
 * external RFC 9068 issuer. cdk-nag runs on the Cognito variant.
 */
import { Validations, type App } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, ServerlessChecks, type NagPack } from 'cdk-nag';
import { ENV } from '../../functions/shared/constants.js';
import { validateMcpOAuthProps } from '../../lib/mcp-oauth.js';
import { lambdaFor, roleOf, statementsOfRole, synthesize, type Synthesized } from './synth.js';

const BASE = 'https://gateway.example.com';
const RESOURCE = `${BASE}/mcp`;
const OAUTH_ENV = [ENV.mcpOAuthIssuers, ENV.mcpOAuthCognitoIssuers, ENV.mcpOAuthScope];
const COGNITO_TYPES = [
  'AWS::Cognito::UserPool',
  'AWS::Cognito::UserPoolDomain',
  'AWS::Cognito::UserPoolResourceServer',
  'AWS::Cognito::UserPoolClient',
];

const oauthOutputs = (t: Template): string[] =>
  Object.keys(t.findOutputs('*'))
    .filter((k) => k.startsWith('McpOAuth'))
    .sort();

const envOf = (t: Template, handler: string): Record<string, unknown> =>
  lambdaFor(t, handler).resource.Properties.Environment.Variables as Record<string, unknown>;

describe('by default', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synthesize({ publicBaseUrl: BASE });
  });

  it('deploys no Cognito resource and no OAuth output', () => {
    for (const type of COGNITO_TYPES) s.appTemplate.resourceCountIs(type, 0);
    expect(oauthOutputs(s.appTemplate)).toEqual([]);
  });

  it('tells the MCP function no issuer (/mcp takes API keys only, serves no metadata)', () => {
    const vars = envOf(s.appTemplate, 'mcp');
    for (const name of OAUTH_ENV) expect(vars[name]).toBeUndefined();
  });
});

describe('mcpOAuth: cognito', () => {
  let s: Synthesized;
  let packs: NagPack[];
  let app: App;
  beforeAll(() => {
    s = synthesize({ publicBaseUrl: BASE, mcpOAuth: 'cognito', mcpOAuthClients: ['billing', 'ops'] }, (a) => {
      packs = [new AwsSolutionsChecks(a), new ServerlessChecks(a)];
      Validations.of(a).addPlugins(...packs);
    });
    app = s.app;
  });

  it('creates a pool nobody signs up to, on the Lite plan, removed with the stack', () => {
    s.appTemplate.resourceCountIs('AWS::Cognito::UserPool', 1);
    s.appTemplate.hasResource('AWS::Cognito::UserPool', {
      Properties: Match.objectLike({
        AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
        UserPoolTier: 'LITE',
      }),
      DeletionPolicy: 'Delete',
    });
    s.appTemplate.resourceCountIs('AWS::Cognito::UserPoolDomain', 1);
  });

  it('names the resource server by the canonical /mcp URI, with the one scope', () => {
    s.appTemplate.hasResourceProperties('AWS::Cognito::UserPoolResourceServer', {
      Identifier: RESOURCE,
      Scopes: [Match.objectLike({ ScopeName: 'mcp:tools' })],
    });
  });

  it('creates one client-credentials client per agent: a secret, that scope only, one-hour tokens', () => {
    const clients = Object.values(s.appTemplate.findResources('AWS::Cognito::UserPoolClient'));
    expect(clients.map((c) => c.Properties.ClientName).sort()).toEqual([
      'openclause-mcp-billing',
      'openclause-mcp-ops',
    ]);
    for (const c of clients) {
      expect(c.Properties).toMatchObject({
        GenerateSecret: true,
        AllowedOAuthFlows: ['client_credentials'],
        AllowedOAuthFlowsUserPoolClient: true,
        AccessTokenValidity: 60,
        TokenValidityUnits: { AccessToken: 'minutes' },
      });
      expect(c.Properties.CallbackURLs).toBeUndefined();
      expect(c.Properties.ExplicitAuthFlows).toEqual(['ALLOW_REFRESH_TOKEN_AUTH']);
      // `<identifier>/<scope>`, joined from the resource server's identifier at deploy time.
      expect(JSON.stringify(c.Properties.AllowedOAuthScopes)).toContain('/mcp:tools');
      expect(c.Properties.AllowedOAuthScopes).toHaveLength(1);
    }
  });

  it('points the MCP function at the pool under the Cognito profile, with the full scope name', () => {
    const vars = envOf(s.appTemplate, 'mcp');
    expect(vars[ENV.mcpOAuthIssuers]).toBeUndefined();
    expect(vars[ENV.mcpOAuthScope]).toBe(`${RESOURCE}/mcp:tools`);
    const issuer = JSON.stringify(vars[ENV.mcpOAuthCognitoIssuers]);
    expect(issuer).toContain('https://cognito-idp.');
    expect(issuer).toMatch(/"Ref":"McpOAuthPool[0-9A-F]+"/);
  });

  it('tells no other function about agent OAuth', () => {
    for (const [, fn] of Object.entries(s.appTemplate.findResources('AWS::Lambda::Function'))) {
      if (fn.Properties.Description === 'OpenClause mcp') continue;
      const vars = (fn.Properties.Environment?.Variables ?? {}) as Record<string, unknown>;
      expect(OAUTH_ENV.filter((k) => k in vars)).toEqual([]);
    }
  });

  it('grants the MCP function nothing of Cognito (the keys are public)', () => {
    const statements = statementsOfRole(s.appTemplate, roleOf(lambdaFor(s.appTemplate, 'mcp').resource));
    expect(JSON.stringify(statements)).not.toMatch(/cognito/i);
  });

  it('outputs the pool, issuer, scope, token endpoint and each client id', () => {
    expect(oauthOutputs(s.appTemplate)).toEqual([
      'McpOAuthClientbillingId',
      'McpOAuthClientopsId',
      'McpOAuthIssuer',
      'McpOAuthScope',
      'McpOAuthTokenEndpoint',
      'McpOAuthUserPoolId',
    ]);
    expect(JSON.stringify(s.appTemplate.findOutputs('McpOAuthTokenEndpoint'))).toContain('/oauth2/token');
  });

  it('passes cdk-nag with specific acknowledgements', () => {
    const findings = packs.flatMap((pack) =>
      pack
        .validateScope(app)
        .violations.filter((v) => v.severity === 'error' || v.severity === 'warning')
        .flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`)),
    );
    expect(findings).toEqual([]);
  });
});

describe('mcpOAuth: cognito on an existing pool', () => {
  it('adds the resource server and client to it and creates no pool or domain', () => {
    const s = synthesize({
      publicBaseUrl: BASE,
      mcpOAuth: 'cognito',
      mcpOAuthUserPoolId: 'eu-west-1_AbCdEf123',
    });
    s.appTemplate.resourceCountIs('AWS::Cognito::UserPool', 0);
    s.appTemplate.resourceCountIs('AWS::Cognito::UserPoolDomain', 0);
    s.appTemplate.hasResourceProperties('AWS::Cognito::UserPoolResourceServer', {
      UserPoolId: 'eu-west-1_AbCdEf123',
      Identifier: RESOURCE,
    });
    s.appTemplate.resourceCountIs('AWS::Cognito::UserPoolClient', 1);
    expect(JSON.stringify(envOf(s.appTemplate, 'mcp')[ENV.mcpOAuthCognitoIssuers])).toContain(
      '/eu-west-1_AbCdEf123',
    );
  });
});

describe('mcpOAuthIssuer: an external RFC 9068 issuer', () => {
  it('points the MCP function at it (JWKS and scope as given) and creates nothing', () => {
    const s = synthesize({
      publicBaseUrl: BASE,
      mcpOAuthIssuer: 'https://idp.example.com/oauth2/default',
      mcpOAuthJwksUrl: 'https://idp.example.com/oauth2/default/v1/keys',
      mcpOAuthScope: 'gateway.tools',
    });
    for (const type of COGNITO_TYPES) s.appTemplate.resourceCountIs(type, 0);
    const vars = envOf(s.appTemplate, 'mcp');
    expect(vars[ENV.mcpOAuthIssuers]).toBe(
      'https://idp.example.com/oauth2/default|https://idp.example.com/oauth2/default/v1/keys',
    );
    expect(vars[ENV.mcpOAuthCognitoIssuers]).toBeUndefined();
    expect(vars[ENV.mcpOAuthScope]).toBe('gateway.tools');
    s.appTemplate.hasOutput('McpOAuthResource', { Value: RESOURCE });
  });
});

describe('settings that cannot work fail synthesis', () => {
  it.each([
    [{ provider: 'okta' as 'cognito' }, /must be cognito/],
    [{ provider: 'cognito' as const, issuer: 'https://idp.example' }, /choose one/],
    [{ clients: ['a'] }, /need mcpOAuth=cognito/],
    [{ userPoolId: 'eu-west-1_x' }, /need mcpOAuth=cognito/],
    [{ provider: 'cognito' as const, userPoolId: 'p', domainPrefix: 'd' }, /keeps its own/],
    [{ jwksUrl: 'https://idp.example/keys' }, /needs mcpOAuthIssuer/],
    [{ issuer: 'http://idp.example' }, /https/],
    [{ issuer: 'https://idp.example', scope: 'a/b' }, /scope name/],
    [{ provider: 'cognito' as const, clients: [] }, /at least one/],
    [{ provider: 'cognito' as const, clients: ['bad-name'] }, /letters and digits/],
    [{ provider: 'cognito' as const, clients: ['a', 'a'] }, /twice/],
  ])('%j', (props, message) => {
    expect(() => validateMcpOAuthProps(props)).toThrow(message);
  });
});

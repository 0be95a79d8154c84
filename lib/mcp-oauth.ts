/**
 * OAuth for agents on `/mcp`, deployed (off by default: nothing here exists unless asked for).
 *
 * `-c mcpOAuth=cognito`: an Amazon Cognito user pool for machine agents (or an existing one,
 * `mcpOAuthUserPoolId`), a resource server whose identifier is the canonical `/mcp` URI with one
 * scope, and app clients allowed the client-credentials grant for that scope only. The MCP function
 * then verifies the pool's access tokens under the Cognito profile (`store/agent-tokens.ts`): they
 * carry no `typ: at+jwt` and no `aud`, and are bound to `/mcp` by the scope
 * `<canonical /mcp URI>/<scope>`, which only this resource server grants. Cognito bills each app
 * client and each token request (bench/cost.ts, docs/operators.md).
 *
 * `-c mcpOAuthIssuer=<https url>`: an external RFC 9068 authorization server instead (Okta, Entra
 * ID, Keycloak, ...), whose tokens must carry `typ: at+jwt` and `aud` = the canonical `/mcp` URI.
 *
 * Either way which tenant and agent a client is, `tenants.json` says (`oauth_clients`), never the
 * token; the function needs no AWS permission for this (the issuer's keys are public, over https).
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import {
  AccountRecovery,
  FeaturePlan,
  OAuthScope,
  ResourceServerScope,
  UserPool,
  type IUserPool,
  type UserPoolClient,
  type UserPoolDomain,
} from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';
import { ENV } from '../functions/shared/constants.js';
import { mcpResourceUri } from '../functions/store/agent-tokens.js';
import type { OcFunction } from './function.js';

export interface McpOAuthProps {
  /**
   * `cognito`: a Cognito user pool (created, or `userPoolId`), resource server and app clients.
   * @default - no Cognito
   */
  readonly provider?: 'cognito';
  /**
   * An existing user pool to add the resource server and clients to (it keeps its own domain).
   * @default - a new pool, machine agents only
   */
  readonly userPoolId?: string;
  /**
   * The new pool's domain prefix (`https://<prefix>.auth.<region>.amazoncognito.com/oauth2/token`).
   * @default - `<stack name>-mcp-<account id>`, lower case
   */
  readonly domainPrefix?: string;
  /**
   * App clients to create, one per agent (letters and digits): each gets a client id and secret.
   * @default ['agent']
   */
  readonly clients?: readonly string[];
  /**
   * An external RFC 9068 issuer (https), instead of Cognito.
   * @default - none
   */
  readonly issuer?: string;
  /**
   * The external issuer's JWKS URL (https).
   * @default - `<issuer>/.well-known/jwks.json`
   */
  readonly jwksUrl?: string;
  /**
   * The scope an agent's token must carry. With Cognito the token carries it as
   * `<canonical /mcp URI>/<scope>`, and that full name is what the function requires.
   * @default 'mcp:tools'
   */
  readonly scope?: string;
}

/** Cognito's scope-name rule (no `/`), which also keeps the name one RFC 6749 scope token. */
const SCOPE_NAME = /^[\x21\x23-\x2e\x30-\x5b\x5d-\x7e]{1,256}$/;
const CLIENT_NAME = /^[A-Za-z0-9]{1,32}$/;
/** Cognito's default and our verifier's cap (`MAX_AGENT_TOKEN_LIFETIME_SEC`). */
const ACCESS_TOKEN_VALIDITY = Duration.hours(1);

/** Whether the props ask for OAuth at all (the default deployment does not). */
export const mcpOAuthRequested = (props: McpOAuthProps): boolean =>
  props.provider !== undefined || props.issuer !== undefined;

/** Throws on settings that cannot work, before anything is created. */
export function validateMcpOAuthProps(props: McpOAuthProps): void {
  const { provider, userPoolId, domainPrefix, clients, issuer, jwksUrl, scope } = props;
  if (provider !== undefined && provider !== 'cognito')
    throw new Error(`mcpOAuth must be cognito, got "${String(provider)}"`);
  if (provider && issuer !== undefined)
    throw new Error(
      'mcpOAuth=cognito and mcpOAuthIssuer both set: choose one provider for agents (their scope names differ)',
    );
  if (!provider) {
    const cognitoOnly = Object.entries({ userPoolId, domainPrefix, clients })
      .filter(([, v]) => v !== undefined)
      .map(([k]) => `mcpOAuth${k[0]!.toUpperCase()}${k.slice(1)}`);
    if (cognitoOnly.length) throw new Error(`${cognitoOnly.join(', ')} need mcpOAuth=cognito`);
  }
  if (userPoolId !== undefined && domainPrefix !== undefined)
    throw new Error(
      'mcpOAuthDomainPrefix is for a new pool; an existing pool (mcpOAuthUserPoolId) keeps its own',
    );
  if (issuer === undefined && jwksUrl !== undefined) throw new Error('mcpOAuthJwksUrl needs mcpOAuthIssuer');
  if (issuer !== undefined) assertHttps('mcpOAuthIssuer', issuer);
  if (jwksUrl !== undefined) assertHttps('mcpOAuthJwksUrl', jwksUrl);
  if (scope !== undefined && !SCOPE_NAME.test(scope))
    throw new Error(`mcpOAuthScope must be one scope name without "/" or spaces, got "${scope}"`);
  if (clients !== undefined) {
    if (clients.length === 0) throw new Error('mcpOAuthClients must name at least one client');
    for (const name of clients)
      if (!CLIENT_NAME.test(name))
        throw new Error(`mcpOAuthClients: "${name}" must be 1-32 letters and digits`);
    if (new Set(clients).size !== clients.length) throw new Error('mcpOAuthClients: a name is listed twice');
  }
}

function assertHttps(name: string, value: string): void {
  if (Token.isUnresolved(value)) return;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || !url.hostname)
    throw new Error(`${name} must be an https URL, got "${value}"`);
}

/**
 * Agents' OAuth, wired to the MCP function: its environment names the issuer (and profile) and
 * the scope; with Cognito, the pool, resource server and clients are created here.
 */
export class McpOAuth extends Construct {
  /** The issuer whose tokens `/mcp` accepts (a Cognito pool's `iss`, or the external issuer). */
  readonly issuer: string;
  /** The scope a token must carry, as the token carries it. */
  readonly requiredScope: string;
  /** The canonical `/mcp` URI: the resource server's identifier, the tokens' audience. */
  readonly resource: string;
  readonly userPool?: IUserPool;
  readonly domain?: UserPoolDomain;
  readonly clients: ReadonlyMap<string, UserPoolClient>;

  constructor(
    scope: Construct,
    id: string,
    props: McpOAuthProps & { mcpFunction: OcFunction; publicBaseUrl: string },
  ) {
    super(scope, id);
    validateMcpOAuthProps(props);
    const stack = Stack.of(this);
    const scopeName = props.scope ?? 'mcp:tools';
    this.resource = mcpResourceUri(props.publicBaseUrl);
    const clients = new Map<string, UserPoolClient>();
    this.clients = clients;

    if (props.provider !== 'cognito') {
      if (props.issuer === undefined) throw new Error('McpOAuth needs mcpOAuth=cognito or mcpOAuthIssuer');
      this.issuer = props.issuer;
      this.requiredScope = scopeName;
      props.mcpFunction.addEnvironment(
        ENV.mcpOAuthIssuers,
        props.jwksUrl ? `${props.issuer}|${props.jwksUrl}` : props.issuer,
      );
      props.mcpFunction.addEnvironment(ENV.mcpOAuthScope, scopeName);
      new CfnOutput(stack, 'McpOAuthIssuer', {
        value: this.issuer,
        description: "The agents' OAuth issuer (its tokens' aud must be McpOAuthResource)",
      });
      new CfnOutput(stack, 'McpOAuthResource', {
        value: this.resource,
        description: 'The canonical /mcp URI: the resource (RFC 8707) agents ask tokens for',
      });
      return;
    }

    let pool: IUserPool;
    if (props.userPoolId) pool = UserPool.fromUserPoolId(this, 'Pool', props.userPoolId);
    else ({ pool, domain: this.domain } = this.newPool(props.domainPrefix));
    this.userPool = pool;
    const toolsScope = new ResourceServerScope({
      scopeName,
      scopeDescription: 'Call governed tools on /mcp',
    });
    const resourceServer = pool.addResourceServer('Mcp', {
      identifier: this.resource,
      userPoolResourceServerName: 'OpenClause MCP',
      scopes: [toolsScope],
    });
    const oauthScope = OAuthScope.resourceServer(resourceServer, toolsScope);
    for (const name of props.clients ?? ['agent']) {
      const client = pool.addClient(`Agent${name}`, {
        userPoolClientName: `openclause-mcp-${name}`,
        generateSecret: true,
        // Client credentials only: no user sign-in flow (CloudFormation's default, with none
        // given, allows SRP and custom auth; CDK always keeps refresh, which issues nothing here).
        authFlows: { userSrp: false, custom: false },
        oAuth: { flows: { clientCredentials: true }, scopes: [oauthScope] },
        accessTokenValidity: ACCESS_TOKEN_VALIDITY,
        enableTokenRevocation: true,
        preventUserExistenceErrors: true,
      });
      clients.set(name, client);
      new CfnOutput(stack, `McpOAuthClient${name}Id`, {
        value: client.userPoolClientId,
        description:
          `Agent "${name}": its client id (list it in tenants.json oauth_clients); its secret: aws cognito-idp ` +
          'describe-user-pool-client --user-pool-id <McpOAuthUserPoolId> --client-id <this> --query UserPoolClient.ClientSecret',
      });
    }
    this.issuer = `https://cognito-idp.${stack.region}.${stack.urlSuffix}/${pool.userPoolId}`;
    this.requiredScope = `${this.resource}/${scopeName}`;
    props.mcpFunction.addEnvironment(ENV.mcpOAuthCognitoIssuers, this.issuer);
    props.mcpFunction.addEnvironment(ENV.mcpOAuthScope, this.requiredScope);

    new CfnOutput(stack, 'McpOAuthUserPoolId', {
      value: pool.userPoolId,
      description: "The agents' Cognito user pool",
    });
    new CfnOutput(stack, 'McpOAuthIssuer', {
      value: this.issuer,
      description: "The agents' OAuth issuer (tenants.json oauth_clients[].issuer)",
    });
    new CfnOutput(stack, 'McpOAuthScope', {
      value: this.requiredScope,
      description: 'The scope agents ask for in the client-credentials grant',
    });
    if (this.domain)
      new CfnOutput(stack, 'McpOAuthTokenEndpoint', {
        value: `${this.domain.baseUrl()}/oauth2/token`,
        description:
          'Where agents get tokens (grant_type=client_credentials, HTTP Basic client id and secret)',
      });
  }

  /** A pool for machine agents only: nobody signs up or in, so it bills no monthly active user. */
  private newPool(domainPrefix: string | undefined): { pool: UserPool; domain: UserPoolDomain } {
    const stack = Stack.of(this);
    const pool = new UserPool(this, 'Pool', {
      selfSignUpEnabled: false,
      // Lite bills nothing without users; client credentials are billed apart (per client, per token).
      featurePlan: FeaturePlan.LITE,
      passwordPolicy: {
        minLength: 14,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
      },
      accountRecovery: AccountRecovery.NONE,
      // Nothing to keep: clients and secrets are re-issued with a new pool, and agents re-listed.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(pool).acknowledge(
      {
        id: 'AwsSolutions-COG2',
        reason:
          'The pool has no users (self sign-up off, no user flow on any client): only machine agents with client credentials, to which MFA does not apply.',
      },
      {
        id: 'AwsSolutions-COG3',
        reason:
          'Threat protection protects user sign-ins; the pool has none, and it needs the Plus plan (billed per user).',
      },
      {
        id: 'AwsSolutions-COG8',
        reason:
          'The Plus plan prices users; the pool has none (machine agents only, billed per client and token).',
      },
    );
    const prefix =
      domainPrefix ?? `${stack.stackName.toLowerCase().replace(/[^a-z0-9-]/g, '-')}-mcp-${stack.account}`;
    return { pool, domain: pool.addDomain('Domain', { cognitoDomain: { domainPrefix: prefix } }) };
  }
}

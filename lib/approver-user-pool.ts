/**
 * An optional Cognito user pool for human approvers (`-c approverUserPoolDomain=<prefix>`): the
 * approver routes and the console then verify its ID tokens, with the tenant in
 * `custom:tenant_id`.
 *
 * Identities mean what they say only if users cannot write them: the app client may read the
 * tenant and the email but write neither (a user who could set `custom:tenant_id` would approve
 * in any tenant; one who could set `email` would wait for the gateway to trust it, which it does
 * only with `email_verified: true`). Administrators create approvers and set both
 * (`admin-create-user`, `admin-update-user-attributes`); nobody signs themselves up.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import {
  AccountRecovery,
  CfnUserPoolClient,
  ClientAttributes,
  Mfa,
  OAuthScope,
  StringAttribute,
  UserPool,
  UserPoolClient,
  UserPoolDomain,
} from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';

/** The claim the pool's ID tokens name the tenant in. */
export const USER_POOL_TENANT_CLAIM = 'custom:tenant_id';

export interface ApproverUserPoolProps {
  /** The hosted UI's domain prefix (`https://<prefix>.auth.<region>.amazoncognito.com`), unique in the region. */
  readonly domainPrefix: string;
}

export class ApproverUserPool extends Construct {
  readonly pool: UserPool;
  readonly client: UserPoolClient;
  readonly domain: UserPoolDomain;

  constructor(scope: Construct, id: string, props: ApproverUserPoolProps) {
    super(scope, id);
    this.pool = new UserPool(this, 'Pool', {
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      autoVerify: { email: true },
      // An email change takes effect only once the new address is verified.
      keepOriginal: { email: true },
      standardAttributes: { email: { required: true, mutable: true } },
      customAttributes: { tenant_id: new StringAttribute({ minLen: 1, maxLen: 64, mutable: true }) },
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      mfa: Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      accountRecovery: AccountRecovery.EMAIL_ONLY,
      // Approvers' accounts outlive a stack replacement, like the table.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.pool).acknowledge(
      {
        id: 'AwsSolutions-COG2',
        reason:
          'MFA is offered (TOTP) but not forced: the operator decides per organization; approvers are created by administrators only.',
      },
      {
        id: 'AwsSolutions-COG8',
        reason:
          'Threat protection needs the Plus feature plan (priced per user); operators who want it enable it on the pool.',
      },
    );
    this.domain = this.pool.addDomain('Domain', { cognitoDomain: { domainPrefix: props.domainPrefix } });
    this.client = this.pool.addClient('Console', {
      generateSecret: false,
      authFlows: {},
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [OAuthScope.OPENID, OAuthScope.EMAIL, OAuthScope.PROFILE],
      },
      readAttributes: new ClientAttributes()
        .withStandardAttributes({ email: true, emailVerified: true, fullname: true })
        .withCustomAttributes('tenant_id'),
      // Never the tenant, never the email: see the file comment.
      writeAttributes: new ClientAttributes().withStandardAttributes({ fullname: true }),
      preventUserExistenceErrors: true,
    });
  }

  /**
   * The pool's issuer, exactly as its tokens' `iss` (`https://cognito-idp.<region>.amazonaws.com/<id>`;
   * CloudFormation's `ProviderURL` lacks the scheme).
   */
  get issuer(): string {
    const stack = Stack.of(this);
    return `https://cognito-idp.${stack.region}.${stack.urlSuffix}/${this.pool.userPoolId}`;
  }

  /** Sets the console's sign-in callback once the gateway's URL is known (it is created after). */
  setCallbackUrl(url: string): void {
    const cfn = this.client.node.defaultChild as CfnUserPoolClient;
    cfn.callbackUrLs = [url];
  }
}

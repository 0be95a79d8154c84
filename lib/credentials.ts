/**
 * Where operators put the credentials the gateway's functions read (connectors, the Slack signing
 * secret, webhook signing secrets): an SSM Parameter Store SecureString by default, or a Secrets
 * Manager secret with `-c secretStore=secretsmanager` (docs/operators.md "Credentials").
 *
 * - `ssm`: no monthly charge (standard tier, the account's `aws/ssm` key, which SSM uses for any
 *   principal of the account allowed to read the parameter). CloudFormation cannot create a
 *   SecureString and a value must not pass through the template, so the stack creates nothing:
 *   it names the parameter (`/openclause/<stack>/<path>`), grants `ssm:GetParameter` on exactly
 *   that ARN, and the operator puts the value with `aws ssm put-parameter --type SecureString`.
 *   Until then the reader finds nothing and fails closed, naming the parameter.
 * - `secretsmanager`: a secret created (and retained) by the stack, $0.40 a month each, for
 *   accounts whose rules want Secrets Manager (resource policies, replication, rotation Lambdas).
 *
 * The function gets an identifier in its environment, never a value: the parameter's ARN or the
 * secret's ARN; `functions/store/secrets.ts` reads either.
 */
import { Arn, ArnFormat, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Secret, type SecretProps } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export type SecretStore = 'ssm' | 'secretsmanager';
export const SECRET_STORES: readonly SecretStore[] = ['ssm', 'secretsmanager'];
/** CDK context (and app stack prop `secretStore`): which store the app's credentials live in. */
export const SECRET_STORE_CONTEXT = 'openclause:secretStore';

/** The store the stack was configured with (the app stack sets the context from its prop). */
export function secretStoreOf(scope: Construct): SecretStore {
  const raw: unknown = scope.node.tryGetContext(SECRET_STORE_CONTEXT);
  return raw === 'secretsmanager' ? 'secretsmanager' : 'ssm';
}

/** The SSM parameter name of a credential: `/openclause/<stack name>/<path>`. */
export const credentialParameterName = (stackName: string, path: string): string =>
  `/openclause/${stackName}/${path}`;

export interface CredentialProps {
  /** Below `/openclause/<stack>/` in SSM, e.g. `connectors/slack`. */
  readonly path: string;
  readonly description: string;
  /** Why Secrets Manager's rotation is not used (cdk-nag AwsSolutions-SMG4), in that store. */
  readonly noRotationReason: string;
  /** What a created secret holds until the operator puts the value. */
  readonly generateSecretString?: SecretProps['generateSecretString'];
  /** A fixed secret name (Secrets Manager store only). */
  readonly secretName?: string;
}

/** One operator-filled credential, in the store the stack was configured with. */
export class Credential extends Construct {
  readonly store: SecretStore;
  /** What a function is given: the parameter's or the secret's ARN. */
  readonly id: string;
  /** What the operator fills: the parameter's or the secret's name. */
  readonly name: string;
  /** The created secret (Secrets Manager store only). */
  readonly secret?: Secret;

  constructor(scope: Construct, id: string, props: CredentialProps) {
    super(scope, id);
    this.store = secretStoreOf(this);
    if (this.store === 'secretsmanager') {
      this.secret = new Secret(this, 'Secret', {
        secretName: props.secretName,
        description: `${props.description}; set with aws secretsmanager put-secret-value`,
        // The AWS managed key (aws/secretsmanager): usable only through Secrets Manager in this
        // account, so the IAM grant is the whole access control.
        generateSecretString: props.generateSecretString,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      Validations.of(this.secret).acknowledge({ id: 'AwsSolutions-SMG4', reason: props.noRotationReason });
      this.id = this.secret.secretArn;
      this.name = this.secret.secretName;
      return;
    }
    const stack = Stack.of(this);
    this.name = credentialParameterName(stack.stackName, props.path);
    this.id = parameterArn(stack, this.name);
  }

  /** Lets `grantee` read the value (and nothing else). */
  grantRead(grantee: IGrantable): void {
    if (this.secret) {
      this.secret.grantRead(grantee);
      return;
    }
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['ssm:GetParameter'], resources: [this.id] }),
    );
  }

  /** The command that puts a value, for stack outputs and error messages. */
  putCommand(value: string): string {
    return this.store === 'ssm'
      ? `aws ssm put-parameter --type SecureString --overwrite --name ${this.name} --value '${value}'`
      : `aws secretsmanager put-secret-value --secret-id ${this.name} --secret-string '${value}'`;
  }
}

/** `arn:<partition>:ssm:<region>:<account>:parameter/<name without its leading slash>`. */
export function parameterArn(stack: Stack, name: string): string {
  return Arn.format(
    {
      service: 'ssm',
      resource: 'parameter',
      resourceName: name.replace(/^\//, ''),
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    },
    stack,
  );
}

/**
 * Credentials under one prefix (webhook signing secrets: `<prefix><secret_ref>`), read by a
 * function that learns the ref at run time: the prefix is what it is given.
 */
export function parameterPrefixArn(stack: Stack, path: string): string {
  return `${parameterArn(stack, credentialParameterName(stack.stackName, path))}/`;
}

/**
 * A witness (C2SP tlog-witness) as its own small stack, `OcWitness`: meant for another account
 * than the gateway's (`cdk deploy OcWitness --profile <witness account>`), so that whoever runs the
 * gateway cannot also make the witness cosign a rolled-back or forked log. Its parts:
 * - its own table: the latest cosigned size and root per log origin (on demand: nothing idle),
 * - its own Ed25519 key in KMS (sign only by this function; the one fixed monthly cost),
 * - one Lambda behind a Function URL (auth NONE: the protocol authenticates the checkpoint's
 *   signature, not the caller; `POST <url>add-checkpoint`).
 * Context: `witnessName` (its key name, e.g. `witness.example.com/oc`), `witnessLogs` (the log
 * vkeys it follows, comma separated: the gateway's `oc`-printed log vkey).
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key, KeySpec, KeyUsage } from 'aws-cdk-lib/aws-kms';
import { FunctionUrlAuthType, InvokeMode, type FunctionUrl } from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { WITNESS_ENV } from '../functions/shared/constants.js';
import { OcFunction } from './function.js';

export const WITNESS_STACK = 'OcWitness';

export const WITNESS_CONTEXT = { name: 'witnessName', logs: 'witnessLogs' } as const;

export const WITNESS_OUTPUTS = {
  url: 'WitnessUrl',
  signingKey: 'WitnessSigningKey',
  table: 'WitnessTable',
} as const;

export interface OcWitnessStackProps extends StackProps {
  /** The witness's key name in its cosignatures and vkey. @default context `witnessName` */
  readonly witnessName?: string;
  /** The log vkeys it follows. @default context `witnessLogs` (comma separated) */
  readonly logs?: readonly string[];
}

/** A signed-note key name: no spaces, no `+` (C2SP signed-note). */
const KEY_NAME = /^[^\s+]{1,256}$/;

export class OcWitnessStack extends Stack {
  readonly table: Table;
  readonly signingKey: Key;
  readonly function: OcFunction;
  readonly url: FunctionUrl;

  constructor(scope: Construct, id: string, props: OcWitnessStackProps = {}) {
    super(scope, id, props);
    const name = props.witnessName ?? (this.node.tryGetContext(WITNESS_CONTEXT.name) as string | undefined);
    if (!name || !KEY_NAME.test(name))
      throw new Error(
        `the witness needs a name (context ${WITNESS_CONTEXT.name}, e.g. witness.example.com/oc): a key name without spaces or '+'`,
      );
    const logs =
      props.logs ??
      String(this.node.tryGetContext(WITNESS_CONTEXT.logs) ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    if (logs.length === 0)
      throw new Error(
        `the witness follows no log: give context ${WITNESS_CONTEXT.logs}=<the gateway's log vkey> (comma separated)`,
      );

    this.table = new Table(this, 'State', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      // The AWS owned key (no monthly key charge): the state is a size and a root hash per log, public by design.
      encryption: TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.signingKey = new Key(this, 'SigningKey', {
      description: `OpenClause witness ${name}: Ed25519 cosignatures (C2SP tlog-cosignature)`,
      keySpec: KeySpec.ECC_NIST_EDWARDS25519,
      keyUsage: KeyUsage.SIGN_VERIFY,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.function = new OcFunction(this, 'Function', {
      handlerName: 'witness',
      invocation: 'function-url',
      timeout: Duration.seconds(10),
      memorySize: 256,
      environment: {
        [WITNESS_ENV.table]: this.table.tableName,
        [WITNESS_ENV.kmsKeyId]: this.signingKey.keyArn,
        [WITNESS_ENV.name]: name,
        [WITNESS_ENV.logs]: logs.join(','),
      },
    });
    // Only what the witness does: read and conditionally write its state, sign, read its public key.
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        resources: [this.table.tableArn],
      }),
    );
    this.function.addToRolePolicy(
      new PolicyStatement({ actions: ['kms:Sign', 'kms:GetPublicKey'], resources: [this.signingKey.keyArn] }),
    );
    this.url = this.function.addFunctionUrl({
      authType: FunctionUrlAuthType.NONE,
      invokeMode: InvokeMode.BUFFERED,
    });

    new CfnOutput(this, WITNESS_OUTPUTS.url, {
      key: WITNESS_OUTPUTS.url,
      value: this.url.url,
      description:
        'The witness submission prefix: the gateway posts <url>add-checkpoint (its `witnesses` context)',
    });
    new CfnOutput(this, WITNESS_OUTPUTS.signingKey, {
      key: WITNESS_OUTPUTS.signingKey,
      value: this.signingKey.keyArn,
      description: "The witness's KMS key: `aws kms get-public-key` gives the key its vkey is made of",
    });
    new CfnOutput(this, WITNESS_OUTPUTS.table, { key: WITNESS_OUTPUTS.table, value: this.table.tableName });
  }
}

/**
 * The evidence archive in AWS (SPEC §8). Two parts, in the two stacks:
 * - `EvidenceVault` (stateful, data stack): the bucket (versioned, Object Lock in COMPLIANCE mode,
 *   SSE-KMS, public access blocked, TLS only, lifecycle to cheaper classes, access logs), its KMS
 *   key, the Ed25519 checkpoint signing key, and the read-only auditor role.
 * - `EvidenceArchiver` (app stack): the archiver Lambda on an EventBridge schedule, allowed to
 *   put objects and sign, never to delete or shorten retention; its alarms (chain break, archive
 *   failure, archive lag).
 */
import { CfnOutput, Duration, Fn, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { AccountRootPrincipal, Effect, PolicyStatement, Role } from 'aws-cdk-lib/aws-iam';
import { Key, KeySpec, KeyUsage, type IKey } from 'aws-cdk-lib/aws-kms';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  CfnBucket,
  ObjectLockRetention,
  StorageClass,
  type IBucket,
} from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ARCHIVE_LOG_MISSING_METRIC, ARCHIVE_LOG_REFUSED_METRIC } from '../functions/core/archive.js';
import { ARCHIVER, ENV, WITNESS_ENV } from '../functions/shared/constants.js';
import { gatewayMetric } from './observability.js';
import { ScheduledFunction } from './scheduled-function.js';

/** CDK context keys (`cdk deploy -c archiveRateMinutes=10`). */
export const ARCHIVE_CONTEXT = {
  rateMinutes: 'archiveRateMinutes',
  retentionDays: 'evidenceRetentionDays',
  lagAlarmEntries: 'archiveLagAlarmEntries',
} as const;

const contextNumber = (scope: Construct, key: string, fallback: number): number => {
  const raw: unknown = scope.node.tryGetContext(key);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`context ${key} must be a positive whole number, got ${String(raw)}`);
  return value;
};

export interface EvidenceVaultProps {
  /**
   * The bucket's SSE-KMS key: the stateful stack's customer table key (`-c tableKey=customer`:
   * rotating, retained), so the archive adds one key (the signing key) to the bill, not two.
   * @default - SSE-S3 (the default `tableKey=aws-managed`: the AWS-managed `aws/s3` key cannot be
   * granted to another account, and a cross-account auditor reads SSE-S3 with the bucket policy alone)
   */
  readonly encryptionKey?: IKey;
  /**
   * Object Lock retention (COMPLIANCE: nobody, root included, can delete or overwrite a version
   * before it ends). Context `evidenceRetentionDays`.
   * @default 2555 (7 years)
   */
  readonly retentionDays?: number;
}

export class EvidenceVault extends Construct {
  readonly bucket: Bucket;
  /** The bucket's SSE-KMS key; none under SSE-S3. */
  readonly bucketKey?: IKey;
  readonly signingKey: Key;
  readonly auditorRole: Role;
  /** The export that holds the bucket's ARN (for the archiver in the app stack). */
  readonly bucketArnExport: string;

  constructor(scope: Construct, id: string, props: EvidenceVaultProps) {
    super(scope, id);
    // Log delivery by bucket policy, not by the deprecated ACL (a feature flag, set for these buckets only).
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    const retentionDays = props.retentionDays ?? contextNumber(this, ARCHIVE_CONTEXT.retentionDays, 2555);

    this.bucketKey = props.encryptionKey;
    // KMS offers Ed25519 (ECC_NIST_EDWARDS25519, ED25519_SHA_512 over the raw message): checkpoints
    // verify with any Ed25519 implementation, Node's crypto included. Asymmetric keys do not rotate.
    this.signingKey = new Key(this, 'SigningKey', {
      description: 'OpenClause evidence checkpoint signing key (Ed25519)',
      keySpec: KeySpec.ECC_NIST_EDWARDS25519,
      keyUsage: KeyUsage.SIGN_VERIFY,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const logs = new Bucket(this, 'AccessLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(logs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the access-log bucket of the evidence bucket; logging it into itself would loop.',
    });

    this.bucket = new Bucket(this, 'Bucket', {
      versioned: true,
      objectLockEnabled: true,
      objectLockDefaultRetention: ObjectLockRetention.compliance(Duration.days(retentionDays)),
      ...(this.bucketKey
        ? { encryption: BucketEncryption.KMS, encryptionKey: this.bucketKey, bucketKeyEnabled: true }
        : { encryption: BucketEncryption.S3_MANAGED }),
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      serverAccessLogsBucket: logs,
      serverAccessLogsPrefix: 'evidence/',
      lifecycleRules: [
        {
          // Bundles are read by audits, rarely: cheaper classes as they age (retention is unaffected).
          // Only under evidence/: the Merkle log's tiles and checkpoints (log/) are small objects
          // that IA and Glacier IR would bill as 128 KB each, and proofs read them often.
          prefix: 'evidence/',
          transitions: [
            { storageClass: StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) },
            { storageClass: StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) },
          ],
          noncurrentVersionTransitions: [
            { storageClass: StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(30) },
          ],
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Read-only for auditors: list and read the archive, decrypt it, read the public key.
    this.auditorRole = new Role(this, 'AuditorRole', {
      assumedBy: new AccountRootPrincipal(),
      description: 'OpenClause evidence auditor: read the archive and the signing public key, nothing else',
    });
    this.auditorRole.addToPolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket', 's3:ListBucketVersions'],
        resources: [this.bucket.bucketArn],
      }),
    );
    this.auditorRole.addToPolicy(
      new PolicyStatement({
        actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectRetention'],
        resources: [this.bucket.arnForObjects('evidence/*'), this.bucket.arnForObjects('log/*')],
      }),
    );
    if (this.bucketKey)
      this.auditorRole.addToPolicy(
        new PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [this.bucketKey.keyArn],
          // The key is the table's too: the auditor may use it only to read S3 objects.
          conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
        }),
      );
    this.auditorRole.addToPolicy(
      new PolicyStatement({ actions: ['kms:GetPublicKey'], resources: [this.signingKey.keyArn] }),
    );
    // The bucket's ARN under a fixed export name: the app stack imports it by that name, so the
    // archiver's policy names a resource cdk-nag can be told about precisely.
    this.bucketArnExport = `${Stack.of(this).stackName}-EvidenceBucketArn`;
    new CfnOutput(this, 'BucketArnExport', {
      value: this.bucket.bucketArn,
      exportName: this.bucketArnExport,
    });
    const bucketLogicalId = Stack.of(this).getLogicalId(this.bucket.node.defaultChild as CfnBucket);
    Validations.of(this.auditorRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/evidence/*]`,
      reason:
        'The auditor reads every object under evidence/ (one tenant prefix per tenant, unknown at deploy time).',
    });
    Validations.of(this.auditorRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/log/*]`,
      reason:
        "The auditor reads every tenant's Merkle log under log/ (one prefix per tenant, unknown at deploy time).",
    });
  }
}

export interface EvidenceArchiverProps {
  readonly table: ITable;
  /** The vault's bucket ARN export (EvidenceVault.bucketArnExport). */
  readonly bucketArnExport: string;
  /** The bucket's SSE-KMS key; none under SSE-S3. */
  readonly bucketKey?: IKey;
  readonly signingKey: IKey;
  /** Context `archiveRateMinutes`. @default 5 */
  readonly rateMinutes?: number;
  /** Entries sealed but not archived that raise the lag alarm. Context `archiveLagAlarmEntries`. @default 50000 */
  readonly lagAlarmEntries?: number;
  readonly logRetention?: RetentionDays;
}

export class EvidenceArchiver extends Construct {
  readonly schedule: ScheduledFunction;
  /** Their notifications are wired once per stack (lib/alarms.ts). */
  readonly alarms: Alarm[] = [];

  private readonly bucket: IBucket;
  private readonly bucketArnExport: string;
  private readonly bucketKey?: IKey;
  private readonly rateMinutes: number;

  constructor(scope: Construct, id: string, props: EvidenceArchiverProps) {
    super(scope, id);
    const rateMinutes =
      props.rateMinutes ?? contextNumber(this, ARCHIVE_CONTEXT.rateMinutes, ARCHIVER.defaultRateMinutes);
    const lagEntries = props.lagAlarmEntries ?? contextNumber(this, ARCHIVE_CONTEXT.lagAlarmEntries, 50_000);
    this.schedule = new ScheduledFunction(this, 'Schedule', {
      table: props.table,
      schedule: { handler: ARCHIVER.handler, rateMinutes },
      // Reads the chain, writes its checkpoint items (the claim and the advance) and parks a tenant it cannot archive.
      access: 'readwrite',
      logRetention: props.logRetention,
    });
    const fn = this.schedule.function;
    const bucket = Bucket.fromBucketArn(this, 'Bucket', Fn.importValue(props.bucketArnExport));
    this.bucket = bucket;
    this.bucketArnExport = props.bucketArnExport;
    this.bucketKey = props.bucketKey;
    this.rateMinutes = rateMinutes;
    fn.addEnvironment(ENV.evidenceBucket, bucket.bucketName);
    // The witnesses each new checkpoint is submitted to (context `witnesses`, JSON; none by default).
    const witnesses: unknown = this.node.tryGetContext(WITNESSES_CONTEXT);
    if (witnesses !== undefined)
      fn.addEnvironment(
        WITNESS_ENV.witnesses,
        typeof witnesses === 'string' ? witnesses : JSON.stringify(witnesses),
      );
    fn.addEnvironment(ENV.evidenceKmsKeyId, props.signingKey.keyArn);
    // Stop starting bundles a minute before the function's timeout (the next run continues).
    fn.addEnvironment(
      ENV.archiveRunBudgetSec,
      String(Math.max(20, Math.min(rateMinutes * 60 - 10, 300) - 60)),
    );
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects('evidence/*'), bucket.arnForObjects('log/*')],
      }),
    );
    // The public key; the log it checks once per run (its checkpoint, tiles for the consistency
    // proof) and the newest bundle's presence (HEAD needs s3:GetObject).
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects('evidence/*'), bucket.arnForObjects('log/*')],
      }),
    );
    if (props.bucketKey)
      fn.addToRolePolicy(
        new PolicyStatement({
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [props.bucketKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
        }),
      );
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['kms:Sign', 'kms:GetPublicKey'],
        resources: [props.signingKey.keyArn],
      }),
    );
    // Whatever else is granted later: this role can never remove evidence or loosen its lock.
    fn.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.DENY,
        actions: [
          's3:DeleteObject',
          's3:DeleteObjectVersion',
          's3:PutObjectRetention',
          's3:PutObjectLegalHold',
          's3:BypassGovernanceRetention',
          's3:PutBucketObjectLockConfiguration',
          's3:PutLifecycleConfiguration',
          's3:PutBucketPolicy',
          's3:DeleteBucket',
        ],
        resources: [bucket.bucketArn, bucket.arnForObjects('*')],
      }),
    );
    Validations.of(this).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${props.bucketArnExport}/evidence/*]`,
      reason:
        'The archiver writes bundles and checkpoints under evidence/<tenant>/ for tenants found at run time.',
    });
    Validations.of(this).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${props.bucketArnExport}/log/*]`,
      reason:
        "The archiver writes and reads each tenant's Merkle log (tiles, checkpoint) under log/<tenant>/ for tenants found at run time.",
    });

    const period = Duration.minutes(Math.max(5, rateMinutes));
    // Its own alarms, not the app dashboard's: another function there would take the dashboard
    // past the 50 metrics of a free one ($3 a month). Its Lambda errors are the app's error alarm's
    // (lib/observability.ts): the archiver is one of its alarm-only functions.
    this.alarm(
      'DlqDepth',
      this.schedule.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period,
        statistic: 'Maximum',
      }),
      1,
      1,
      TreatMissingData.NOT_BREACHING,
      `${ARCHIVER.handler}'s DLQ holds failed runs or undeliverable schedule events (the next run redoes the work).`,
    );
    this.alarm(
      'ChainBreak',
      gatewayMetric('archive_chain_break', 'Sum', period),
      1,
      1,
      TreatMissingData.NOT_BREACHING,
      "A tenant's evidence chain does not verify: nothing of it is archived from the broken seq (`oc archive` and `oc verify --tenant` name it).",
    );
    this.alarm(
      'ArchiveFailure',
      gatewayMetric('archive_failures', 'Sum', period),
      1,
      1,
      TreatMissingData.NOT_BREACHING,
      "Archiving a tenant's evidence failed (S3, KMS or DynamoDB); it is retried on the next run.",
    );
    this.alarm(
      'LogMissing',
      gatewayMetric(ARCHIVE_LOG_MISSING_METRIC, 'Sum', period),
      1,
      1,
      TreatMissingData.NOT_BREACHING,
      'Evidence the archiver published is missing or changed (the log checkpoint, a tile or the newest bundle): someone deleted or rewrote it. Run `oc verify --bucket` with a checkpoint you kept.',
    );
    this.alarm(
      'LogRefused',
      gatewayMetric(ARCHIVE_LOG_REFUSED_METRIC, 'Sum', period),
      1,
      1,
      TreatMissingData.NOT_BREACHING,
      "A tenant's new log checkpoint could not be proven consistent with the one published before and was not published; the tenant is parked (RecordsParked).",
    );
    // Published by every run: missing data means the archiver is not running at all.
    this.alarm(
      'ArchiveLag',
      gatewayMetric('archive_lag_entries', 'Maximum', period),
      lagEntries,
      3,
      TreatMissingData.BREACHING,
      `More than ${lagEntries} sealed entries wait to be archived for three periods, or the archiver has not run.`,
    );
  }

  private alarm(
    id: string,
    metric: Metric,
    threshold: number,
    evaluationPeriods: number,
    treatMissingData: TreatMissingData,
    description: string,
  ): void {
    const alarm = new Alarm(this, id, {
      metric,
      threshold,
      evaluationPeriods,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData,
      alarmDescription: description,
    });
    this.alarms.push(alarm);
  }

  /**
   * The proof route (GET /v1/toolcalls/{event_id}/proof) reads the log's checkpoint and tiles:
   * GetObject under `log/` only (not the bundles), decrypted through S3, and it is told the
   * archiver's rate (its 409's Retry-After).
   */
  grantLogReads(fn: ScheduledFunction['function']): void {
    fn.addEnvironment(ENV.evidenceBucket, this.bucket.bucketName);
    fn.addEnvironment(ENV.archiveIntervalSec, String(this.rateMinutes * 60));
    fn.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:GetObject'], resources: [this.bucket.arnForObjects('log/*')] }),
    );
    Validations.of(fn.role ?? fn).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${this.bucketArnExport}/log/*]`,
      reason:
        "The proof route reads each tenant's Merkle log (its checkpoint and tiles) under log/<tenant>/, for the caller's tenant known only at request time; never the bundles.",
    });
    if (this.bucketKey)
      fn.addToRolePolicy(
        new PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [this.bucketKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
        }),
      );
  }
}

/** CDK context naming the witnesses the archiver submits to: JSON `[{ "name", "url", "vkey" }]`. */
export const WITNESSES_CONTEXT = 'witnesses';

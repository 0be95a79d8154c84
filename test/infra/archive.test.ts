/** The evidence archive in AWS: the vault (data stack) and the archiver (app stack). */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { ARCHIVER, ENV, STACKS } from '../../functions/shared/constants.js';
import { ARCHIVE_CONTEXT } from '../../lib/evidence-archive.js';
import { createOpenClause } from '../../lib/openclause.js';
import { asArray, lambdaFor, roleOf, statementsOfRole, synthesize, type Synthesized } from './synth.js';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

/** The stacks built with this CDK context (no bundling). */
const withContext = (context: Record<string, unknown>) =>
  createOpenClause(
    new App({
      outdir: mkdtempSync(path.join(process.env.OC_TEST_TMP ?? os.tmpdir(), 'cdk.out-')),
      context: { ...context, 'aws:cdk:bundling-stacks': [] },
    }),
  );

const bucketId = () =>
  Object.keys(
    s.dataTemplate.findResources('AWS::S3::Bucket', { Properties: { ObjectLockEnabled: true } }),
  )[0]!;

describe('the evidence vault (data stack)', () => {
  it('locks the bucket in COMPLIANCE mode for 7 years by default, versioned, SSE-S3, public access blocked', () => {
    s.dataTemplate.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        ObjectLockEnabled: true,
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 2555 } },
        },
        VersioningConfiguration: { Status: 'Enabled' },
        // The default table key is AWS-managed: SSE-S3, which a cross-account auditor reads with
        // the bucket policy alone (SSE-KMS with the customer key: test/infra/table-key.test.ts).
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'evidence/' }),
        LifecycleConfiguration: {
          Rules: [
            Match.objectLike({
              Status: 'Enabled',
              // Only the bundles: the Merkle log's small objects (log/) stay in S3 Standard.
              Prefix: 'evidence/',
              Transitions: [
                { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
                { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
              ],
            }),
          ],
        },
      },
    });
  });

  it('takes the retention from context', () => {
    const { data } = withContext({ [ARCHIVE_CONTEXT.retentionDays]: 400 });
    Template.fromStack(data).hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockConfiguration: { Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 400 } } },
    });
  });

  it('refuses requests without TLS (bucket policy)', () => {
    s.dataTemplate.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId() },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('signs with an Ed25519 KMS key (SIGN_VERIFY), retained', () => {
    s.dataTemplate.hasResource('AWS::KMS::Key', {
      DeletionPolicy: 'Retain',
      Properties: { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' },
    });
  });

  it('outputs the bucket, the signing key and a read-only auditor role', () => {
    const outputs = s.dataTemplate.findOutputs('*');
    for (const name of [
      STACKS.outputs.evidenceBucket,
      STACKS.outputs.evidenceSigningKey,
      STACKS.outputs.evidenceAuditorRole,
    ])
      expect(outputs[name]).toBeDefined();
    const roleId = outputs[STACKS.outputs.evidenceAuditorRole]!.Value['Fn::GetAtt'][0] as string;
    const actions = statementsOfRole(s.dataTemplate, roleId).flatMap((st) =>
      asArray(st.Action as string | string[]),
    );
    // No kms:Decrypt under SSE-S3 (with the customer key: test/infra/table-key.test.ts).
    expect(actions.sort()).toEqual(
      [
        'kms:GetPublicKey',
        's3:GetObject',
        's3:GetObjectRetention',
        's3:GetObjectVersion',
        's3:ListBucket',
        's3:ListBucketVersions',
      ].sort(),
    );
  });
});

describe('the archiver (app stack)', () => {
  it('runs every 5 minutes by default, the rate from context otherwise', () => {
    s.appTemplate.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [
        Match.objectLike({ Arn: { 'Fn::GetAtt': [lambdaFor(s.appTemplate, ARCHIVER.handler).id, 'Arn'] } }),
      ],
    });
    const { app } = withContext({ [ARCHIVE_CONTEXT.rateMinutes]: 10 });
    Template.fromStack(app).hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(10 minutes)',
      Description: Match.stringLikeRegexp(ARCHIVER.handler),
    });
  });

  it('is told the bucket and the signing key, and how long a run may take', () => {
    const { resource } = lambdaFor(s.appTemplate, ARCHIVER.handler);
    expect(resource.Properties.Environment.Variables).toMatchObject({
      [ENV.evidenceBucket]: expect.anything(),
      [ENV.evidenceKmsKeyId]: expect.anything(),
      [ENV.archiveRunBudgetSec]: '230',
    });
  });

  it('may put objects and sign, and is denied deleting evidence or loosening its lock', () => {
    const { resource } = lambdaFor(s.appTemplate, ARCHIVER.handler);
    const statements = statementsOfRole(s.appTemplate, roleOf(resource));
    const allowed = statements
      .filter((st) => st.Effect === 'Allow')
      .flatMap((st) => asArray(st.Action as string | string[]));
    expect(allowed).toEqual(expect.arrayContaining(['s3:PutObject', 'kms:Sign', 'kms:GetPublicKey']));
    // Tenants come from the sealer's registry (a Query), never a Scan of the table.
    expect(allowed).not.toContain('dynamodb:Scan');
    for (const forbidden of [
      's3:DeleteObject',
      's3:DeleteObjectVersion',
      's3:PutObjectRetention',
      's3:BypassGovernanceRetention',
    ])
      expect(allowed).not.toContain(forbidden);
    const denied = statements
      .filter((st) => st.Effect === 'Deny')
      .flatMap((st) => asArray(st.Action as string | string[]));
    expect(denied).toEqual(
      expect.arrayContaining([
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        's3:PutObjectRetention',
        's3:BypassGovernanceRetention',
        's3:PutBucketObjectLockConfiguration',
      ]),
    );
    // Writes only under evidence/ (no s3:* and no bucket-wide object wildcard).
    const put = statements.find(
      (st) => st.Effect === 'Allow' && asArray(st.Action).includes('s3:PutObject'),
    )!;
    expect(JSON.stringify(put.Resource)).toMatch(/\/evidence\/\*/);
  });

  it('alarms on a chain break, an archive failure and archive lag (missing data: the archiver is not running)', () => {
    for (const [metric, missing] of [
      ['archive_chain_break', 'notBreaching'],
      ['archive_failures', 'notBreaching'],
      ['archive_lag_entries', 'breaching'],
      // The Merkle log (issue 23): published evidence gone, a checkpoint refused.
      ['archive_log_missing', 'notBreaching'],
      ['archive_log_refused', 'notBreaching'],
    ])
      s.appTemplate.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'OpenClause',
        MetricName: metric,
        TreatMissingData: missing,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    // Its crashes raise the account's Lambda errors alarm (no dimension: every function), or its
    // own with -c errorAlarms=per-function (both in test/infra/stacks.test.ts).
    const errors = Object.values(
      s.appTemplate.findResources('AWS::CloudWatch::Alarm', {
        Properties: { Namespace: 'AWS/Lambda', MetricName: 'Errors' },
      }),
    );
    expect(errors.map((a) => a.Properties.Dimensions)).toEqual([undefined]);
  });
});

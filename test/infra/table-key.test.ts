/**
 * `-c tableKey=customer` (issue 26, docs/operators.md "Idle cost"): a customer-managed rotating key
 * instead of the default AWS-managed `aws/dynamodb`. It then also encrypts the evidence archive
 * (SSE-KMS) and the alarm topic, and every reader of the table, the archive or the topic is granted
 * it. It costs $1 a month, $3 from the third year (two billed rotations). cdk-nag still passes. The
 * default (AWS-managed table key, SSE-S3 archive, topic without a key) is tested in
 * test/infra/stacks.test.ts, archive.test.ts and alarms.test.ts.
 */
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks, type NagPack } from 'cdk-nag';
import { idleCostPerMonth } from '../../bench/cost.js';
import { asArray, lambdaFor, roleOf, statementsOfRole, synthesize, type Synthesized } from './synth.js';

let s: Synthesized;
let packs: NagPack[] = [];
beforeAll(() => {
  s = synthesize({ tableKey: 'customer' }, (a) => {
    packs = [new AwsSolutionsChecks(a), new ServerlessChecks(a)];
    Validations.of(a).addPlugins(...packs);
  });
});

/** The customer table key's logical id (exactly one). */
const tableKeyId = (): string => {
  const keys = Object.keys(
    s.dataTemplate.findResources('AWS::KMS::Key', {
      Properties: { Description: 'OpenClause table, stream and backups' },
    }),
  );
  expect(keys).toHaveLength(1);
  return keys[0]!;
};

describe('-c tableKey=customer', () => {
  it('encrypts the table with its own rotating, retained KMS key', () => {
    const keyId = tableKeyId();
    expect(s.dataTemplate.findResources('AWS::KMS::Key')[keyId]).toMatchObject({
      DeletionPolicy: 'Retain',
      Properties: { EnableKeyRotation: true },
    });
    s.dataTemplate.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: {
        SSEEnabled: true,
        SSEType: 'KMS',
        KMSMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      },
    });
    // The table key and the signing key; none in the app stack.
    s.dataTemplate.resourceCountIs('AWS::KMS::Key', 2);
    s.appTemplate.resourceCountIs('AWS::KMS::Key', 0);
  });

  it('encrypts the archive with it (SSE-KMS, bucket key) and lets the auditor role decrypt through S3 only', () => {
    const bucket = Object.values(s.dataTemplate.findResources('AWS::S3::Bucket')).find(
      (b) => b.Properties.ObjectLockEnabled,
    );
    expect(bucket?.Properties.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
      {
        BucketKeyEnabled: true,
        ServerSideEncryptionByDefault: {
          SSEAlgorithm: 'aws:kms',
          KMSMasterKeyID: { 'Fn::GetAtt': [tableKeyId(), 'Arn'] },
        },
      },
    ]);
    const roles = s.dataTemplate.findResources('AWS::IAM::Role', {
      Properties: {
        Description: 'OpenClause evidence auditor: read the archive and the signing public key, nothing else',
      },
    });
    const [roleId] = Object.keys(roles);
    const decrypt = statementsOfRole(s.dataTemplate, roleId!).filter((st) =>
      asArray(st.Action as string | string[]).includes('kms:Decrypt'),
    );
    expect(decrypt).toHaveLength(1);
    expect(JSON.stringify(decrypt[0]!.Condition)).toContain('kms:ViaService');
  });

  it('encrypts the alarm topic with it, and lets CloudWatch (this account) use it', () => {
    const topic = Object.values(s.dataTemplate.findResources('AWS::SNS::Topic'))[0]!;
    expect(topic.Properties.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [tableKeyId(), 'Arn'] });
    const key = s.dataTemplate.findResources('AWS::KMS::Key')[tableKeyId()]!;
    const statements = key.Properties.KeyPolicy.Statement as Array<Record<string, any>>;
    const cloudwatch = statements.filter((st) => st.Principal?.Service === 'cloudwatch.amazonaws.com');
    expect(cloudwatch).toHaveLength(1);
    expect(asArray(cloudwatch[0]!.Action).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
    expect(cloudwatch[0]!.Condition.StringEquals['aws:SourceAccount']).toBeDefined();
  });

  it("grants a table reader the key's Decrypt and DescribeKey, nothing more", () => {
    const keyActions = statementsOfRole(
      s.appTemplate,
      roleOf(lambdaFor(s.appTemplate, 'get-toolcall').resource),
    )
      .flatMap((st) => asArray(st.Action as string | string[]))
      .filter((a) => a.startsWith('kms:'));
    expect(keyActions.sort()).toEqual(['kms:Decrypt', 'kms:DescribeKey']);
  });

  it('passes cdk-nag', () => {
    const findings = packs.flatMap((pack) =>
      pack
        .validateScope(s.app)
        .violations.filter((v) => v.severity === 'error' || v.severity === 'warning')
        .flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`)),
    );
    expect(findings).toEqual([]);
  });

  it('costs $1 a month more idle than the default in year 1, $3 from year 3 (two billed rotations)', () => {
    const templates = [s.dataTemplate.toJSON(), s.appTemplate.toJSON()];
    const year1 = idleCostPerMonth(templates);
    const year3 = idleCostPerMonth(templates, { keyRotations: 2 });
    const kms = (r: typeof year1) => r.lines.find((l) => l.item === 'KMS customer-managed keys')?.usd;
    // The signing key ($1, never rotated) and the table key ($1, +$1 for each of two rotations).
    expect(kms(year1)).toBe(2);
    expect(kms(year3)).toBe(4);
    expect(year3.usdPerMonth - year1.usdPerMonth).toBeCloseTo(2, 9);
  });
});

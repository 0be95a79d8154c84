/**
 * `-c tableKey=aws-owned` (issue 26, docs/operators.md "Idle cost"): DynamoDB's AWS-owned key
 * instead of the customer-managed table key, which then encrypts nothing else either: the archive
 * is under SSE-S3 and the alarm topic unencrypted. One KMS key is left, the checkpoint signing
 * key, which stays a customer key (asymmetric: only KMS can hold it). cdk-nag still passes, with
 * the unencrypted topic acknowledged. The default keeps the customer key (test/infra/stacks.test.ts).
 */
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks, type NagPack } from 'cdk-nag';
import { idleCostPerMonth } from '../../bench/cost.js';
import { asArray, synthesize, type Synthesized } from './synth.js';

let s: Synthesized;
let packs: NagPack[] = [];
beforeAll(() => {
  s = synthesize({ tableKey: 'aws-owned' }, (a) => {
    packs = [new AwsSolutionsChecks(a), new ServerlessChecks(a)];
    Validations.of(a).addPlugins(...packs);
  });
});

const only = <T>(found: Record<string, T>): T => {
  const values = Object.values(found);
  expect(values).toHaveLength(1);
  return values[0]!;
};

describe('-c tableKey=aws-owned', () => {
  it("encrypts the table with DynamoDB's AWS-owned key, and keeps only the signing key", () => {
    const table = only(s.dataTemplate.findResources('AWS::DynamoDB::Table'));
    // SSEEnabled false is DynamoDB's default encryption: an AWS-owned key (never unencrypted).
    expect(table.Properties.SSESpecification ?? { SSEEnabled: false }).toEqual({ SSEEnabled: false });
    const key = only(s.dataTemplate.findResources('AWS::KMS::Key'));
    expect(key.Properties).toMatchObject({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
    s.appTemplate.resourceCountIs('AWS::KMS::Key', 0);
  });

  it('leaves the archive under SSE-S3 and the alarm topic without a key', () => {
    const bucket = Object.values(s.dataTemplate.findResources('AWS::S3::Bucket')).find(
      (b) => b.Properties.ObjectLockEnabled,
    );
    expect(bucket?.Properties.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
      { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
    ]);
    expect(only(s.dataTemplate.findResources('AWS::SNS::Topic')).Properties.KmsMasterKeyId).toBeUndefined();
  });

  it('grants no KMS permission but signing with the checkpoint key', () => {
    const actions = [s.dataTemplate, s.appTemplate]
      .flatMap((t) => Object.values(t.findResources('AWS::IAM::Policy')))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Array<{ Action: string | string[] }>)
      .flatMap((st) => asArray(st.Action))
      .filter((a) => a.startsWith('kms:'));
    expect([...new Set(actions)].sort()).toEqual(['kms:GetPublicKey', 'kms:Sign']);
  });

  it('passes cdk-nag (the unencrypted topic acknowledged with its reason)', () => {
    const findings = packs.flatMap((pack) =>
      pack
        .validateScope(s.app)
        .violations.filter((v) => v.severity === 'error' || v.severity === 'warning')
        .flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`)),
    );
    expect(findings).toEqual([]);
  });

  it('costs $1 a month less idle than the default, and nothing more as the years go by', () => {
    const templates = [s.dataTemplate.toJSON(), s.appTemplate.toJSON()];
    const cheap = idleCostPerMonth(templates);
    expect(cheap.usdPerMonth).toBeLessThanOrEqual(5);
    // The signing key does not rotate (asymmetric): year 3 is year 1.
    expect(idleCostPerMonth(templates, { keyRotations: 2 }).usdPerMonth).toBeCloseTo(cheap.usdPerMonth, 9);
    const kms = cheap.lines.find((l) => l.item === 'KMS customer-managed keys');
    expect(kms?.usd).toBe(1);
  });
});

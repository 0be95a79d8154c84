/**
 * The witness stack `OcWitness` (lib/witness-stack.ts): its own table, its own KMS Ed25519 key,
 * one Lambda behind a Function URL, least privilege, cdk-nag clean; refused without a name or a
 * followed log; added by bin/app.ts only with context `witnessName`. Its deployed handler signs
 * with KMS (mocked, answering with a real Ed25519 key, as the other signer tests do).
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { mockClient } from 'aws-sdk-client-mock';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import {
  parseCheckpointBody,
  parseNote,
  rawEd25519,
  verifierKey,
  verifyCosignature,
  checkpointBody,
  formatNote,
  signNote,
} from '../../functions/core/signed-note.js';
import { parseVerifierKey } from '../../functions/core/signed-note.js';
import { ENV, WITNESS_ENV } from '../../functions/shared/constants.js';
import { KmsCheckpointSigner } from '../../functions/store/checkpoint-signer.js';
import { Witness, type WitnessStateStore } from '../../functions/store/witness.js';
import { createOpenClause } from '../../lib/openclause.js';
import { OcWitnessStack } from '../../lib/witness-stack.js';
import { asArray, lambdaFor, roleOf, statementsOfRole } from './synth.js';

const LOG_VKEY = verifierKey('OpenClauseData', rawEd25519(generateKeyPairSync('ed25519').publicKey));

function synth(context: Record<string, string> = {}) {
  const app = new App({
    outdir: mkdtempSync(path.join(process.env.OC_TEST_TMP ?? os.tmpdir(), 'cdk.out-')),
    context: { 'aws:cdk:bundling-stacks': [], ...context },
  });
  const packs = [new AwsSolutionsChecks(app), new ServerlessChecks(app)];
  Validations.of(app).addPlugins(...packs);
  const stack = new OcWitnessStack(app, 'OcWitness');
  app.synth();
  const findings = packs.flatMap((pack) =>
    pack
      .validateScope(app)
      .violations.filter((v) => v.severity === 'error' || v.severity === 'warning')
      .flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`)),
  );
  return { template: Template.fromStack(stack), findings };
}

describe('the witness stack', () => {
  const { template, findings } = synth({ witnessName: 'witness.example.com/oc', witnessLogs: LOG_VKEY });

  it('has its own on-demand table keyed by log origin, and an Ed25519 signing key of its own', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::KMS::Key', {
      KeySpec: 'ECC_NIST_EDWARDS25519',
      KeyUsage: 'SIGN_VERIFY',
    });
  });

  it('runs one Lambda behind a Function URL (auth NONE: the protocol authenticates the checkpoint), told its name, table, key and logs', () => {
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'NONE', InvokeMode: 'BUFFERED' });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'OpenClause witness',
      Environment: {
        Variables: Match.objectLike({
          [WITNESS_ENV.name]: 'witness.example.com/oc',
          [WITNESS_ENV.logs]: LOG_VKEY,
          [WITNESS_ENV.table]: Match.anyValue(),
          [WITNESS_ENV.kmsKeyId]: Match.anyValue(),
        }),
      },
    });
    template.hasOutput('WitnessUrl', {});
  });

  it('grants only GetItem/PutItem/UpdateItem on its table and Sign/GetPublicKey on its key', () => {
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (p) =>
        (p as { Properties: { PolicyDocument: { Statement: { Action: string | string[] }[] } } }).Properties
          .PolicyDocument.Statement,
    );
    const actions = statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();
    expect(actions.filter((a) => a.startsWith('dynamodb:') || a.startsWith('kms:'))).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'kms:GetPublicKey',
      'kms:Sign',
    ]);
  });

  it('passes cdk-nag (AwsSolutions, Serverless) with no unacknowledged finding', () => {
    expect(findings).toEqual([]);
  });

  it('is refused without a name or without a log to follow', () => {
    expect(() => synth({ witnessLogs: LOG_VKEY })).toThrow(/needs a name/);
    expect(() => synth({ witnessName: 'w.example/oc' })).toThrow(/follows no log/);
  });
});

describe('the deployed witness signs with KMS', () => {
  const kms = mockClient(KMSClient);
  const real = generateKeyPairSync('ed25519');
  const logKey = generateKeyPairSync('ed25519');
  beforeEach(() => {
    kms.reset();
    kms.on(GetPublicKeyCommand).resolves({
      KeySpec: 'ECC_NIST_EDWARDS25519',
      PublicKey: real.publicKey.export({ format: 'der', type: 'spki' }),
    });
    kms.on(SignCommand).callsFake((input: { Message: Uint8Array }) => ({
      Signature: sign(null, Buffer.from(input.Message), real.privateKey),
      SigningAlgorithm: 'ED25519_SHA_512',
    }));
  });

  it('answers a cosignature (type 0x04) made by the KMS key over the cosigned message', async () => {
    const state = new Map<string, { size: number; root: Buffer }>();
    const store = {
      latest: (o: string) => Promise.resolve(state.get(o)),
      advance: (o: string, _from: unknown, to: { size: number; root: Buffer }) => (
        state.set(o, to),
        Promise.resolve(true)
      ),
    } as unknown as WitnessStateStore;
    const witness = new Witness({
      name: 'witness.example.com/oc',
      logs: [{ name: 'OpenClauseData', key: rawEd25519(logKey.publicKey) }],
      store,
      signer: new KmsCheckpointSigner(
        new KMSClient({ region: 'eu-west-1' }),
        'arn:aws:kms:eu-west-1:1:key/w',
      ),
      now: () => new Date('2026-06-01T00:00:00Z'),
    });
    const body = checkpointBody({
      origin: 'OpenClauseData/t/tenant1',
      size: 3,
      root: Buffer.alloc(32, 1),
      extensions: [],
    });
    const note = formatNote(body, [
      await signNote(body, 'OpenClauseData/t/tenant1', rawEd25519(logKey.publicKey), (m) =>
        Promise.resolve(sign(null, m, logKey.privateKey)),
      ),
    ]);
    const line = await witness.addCheckpoint(`old 0\n\n${note}`);
    const vkey = parseVerifierKey(await witness.vkey());
    const sig = parseNote(`${body}\n${line}`).signatures[0]!;
    expect(parseCheckpointBody(body).size).toBe(3);
    expect(verifyCosignature(body, sig, vkey.name, vkey.publicKey)).toEqual({
      ok: true,
      timestamp: 1780272000,
    });
    expect(kms.commandCalls(SignCommand)[0]!.args[0].input).toMatchObject({
      MessageType: 'RAW',
      SigningAlgorithm: 'ED25519_SHA_512',
    });
  });
});

describe('the gateway side: proofs and witnesses in the app stack', () => {
  const app = new App({
    outdir: mkdtempSync(path.join(process.env.OC_TEST_TMP ?? os.tmpdir(), 'cdk.out-')),
    context: {
      'aws:cdk:bundling-stacks': [],
      witnesses: JSON.stringify([{ name: 'w', url: 'https://w.example', vkey: 'w+00000000+AA==' }]),
    },
  });
  const { app: appStack } = createOpenClause(app);
  const template = Template.fromStack(appStack);

  it('lets the proof route read only the log/ prefix of the evidence bucket, decrypting through S3, and tells it the archiver interval', () => {
    const fn = lambdaFor(template, 'get-toolcall-proof').resource;
    expect(fn.Properties.Environment.Variables).toMatchObject({
      [ENV.evidenceBucket]: expect.objectContaining({ 'Fn::Select': expect.any(Array) }),
      [ENV.archiveIntervalSec]: '300',
    });
    const statements = statementsOfRole(template, roleOf(fn));
    const s3 = statements.filter((st) =>
      asArray(st.Action as string | string[]).some((a) => a.startsWith('s3:')),
    );
    expect(s3.flatMap((st) => asArray(st.Action as string | string[]))).toEqual(['s3:GetObject']);
    expect(JSON.stringify(s3[0]!.Resource)).toMatch(/\/log\/\*"/);
    expect(JSON.stringify(s3[0]!.Resource)).not.toMatch(/evidence\//);
  });

  it('tells the archiver the witnesses from context `witnesses`', () => {
    const vars = lambdaFor(template, 'archive-evidence').resource.Properties.Environment.Variables;
    expect(JSON.parse(vars[WITNESS_ENV.witnesses] as string)).toEqual([
      { name: 'w', url: 'https://w.example', vkey: 'w+00000000+AA==' },
    ]);
  });
});

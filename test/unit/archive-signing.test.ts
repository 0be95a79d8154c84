/**
 * Checkpoint signers and the archive's byte formats. KMS has no emulator: it is mocked with
 * aws-sdk-client-mock, answering with a real Ed25519 key so that Node's crypto checks what it signed.
 */
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import canonicalize from 'canonicalize';
import {
  archiveKeys,
  BundleWriter,
  CHECKPOINT_FORMAT,
  checkpointBytes,
  checkpointSigningBytes,
  type CheckpointStatement,
} from '../../functions/core/archive.js';
import { sealFacts, type FactRecord } from '../../functions/core/evidence.js';
import {
  FileCheckpointSigner,
  KmsCheckpointSigner,
  localKeyId,
} from '../../functions/store/checkpoint-signer.js';

const tmp = () => mkdtempSync(path.join(process.env.OC_TEST_TMP ?? os.tmpdir(), 'signer-'));
const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('KmsCheckpointSigner', () => {
  const kms = mockClient(KMSClient);
  const real = generateKeyPairSync('ed25519');
  beforeEach(() => {
    kms.reset();
    kms.on(GetPublicKeyCommand).resolves({
      KeyId: KEY_ARN,
      KeySpec: 'ECC_NIST_EDWARDS25519',
      PublicKey: real.publicKey.export({ format: 'der', type: 'spki' }),
    });
    kms.on(SignCommand).callsFake((input: { Message: Uint8Array }) => ({
      KeyId: KEY_ARN,
      Signature: sign(null, Buffer.from(input.Message), real.privateKey),
      SigningAlgorithm: 'ED25519_SHA_512',
    }));
  });

  it('signs the raw message with ED25519_SHA_512 (pure Ed25519), which Node verifies with the PEM it gives', async () => {
    const signer = new KmsCheckpointSigner(new KMSClient({ region: 'eu-west-1' }), 'alias/oc-evidence');
    const message = Buffer.from('{"seq":1}');
    const signature = await signer.sign(message);
    expect(kms.commandCalls(SignCommand)[0]!.args[0].input).toEqual({
      KeyId: 'alias/oc-evidence',
      Message: message,
      MessageType: 'RAW',
      SigningAlgorithm: 'ED25519_SHA_512',
    });
    const pem = await signer.publicKeyPem();
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(verify(null, message, createPublicKey(pem), signature)).toBe(true);
    expect(verify(null, Buffer.from('{"seq":2}'), createPublicKey(pem), signature)).toBe(false);
    expect(await signer.keyId()).toBe(KEY_ARN);
    // The public key is read once per container.
    await signer.publicKeyPem();
    expect(kms.commandCalls(GetPublicKeyCommand)).toHaveLength(1);
  });

  it('refuses a key that is not Ed25519 (checkpoints would not verify as documented)', async () => {
    kms
      .on(GetPublicKeyCommand)
      .resolves({ KeyId: KEY_ARN, KeySpec: 'ECC_NIST_P256', PublicKey: new Uint8Array(65) });
    const signer = new KmsCheckpointSigner(new KMSClient({ region: 'eu-west-1' }), KEY_ARN);
    await expect(signer.publicKeyPem()).rejects.toThrow('is ECC_NIST_P256, not ECC_NIST_EDWARDS25519');
  });

  it('retries reading the public key after a transient failure', async () => {
    kms
      .on(GetPublicKeyCommand)
      .rejectsOnce(new Error('throttled'))
      .resolves({
        KeyId: KEY_ARN,
        KeySpec: 'ECC_NIST_EDWARDS25519',
        PublicKey: real.publicKey.export({ format: 'der', type: 'spki' }),
      });
    const signer = new KmsCheckpointSigner(new KMSClient({ region: 'eu-west-1' }), KEY_ARN);
    await expect(signer.keyId()).rejects.toThrow('throttled');
    expect(await signer.keyId()).toBe(KEY_ARN);
  });
});

describe('FileCheckpointSigner', () => {
  it('creates an Ed25519 key once (mode 0600) and reuses it', async () => {
    const file = path.join(tmp(), 'nested', 'key.pem');
    const first = FileCheckpointSigner.open(file);
    expect(first.created).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const second = FileCheckpointSigner.open(file);
    expect(second.created).toBe(false);
    expect(await second.publicKeyPem()).toBe(await first.publicKeyPem());
    const message = Buffer.from('checkpoint');
    expect(
      verify(null, message, createPublicKey(await first.publicKeyPem()), await second.sign(message)),
    ).toBe(true);
    expect(await first.keyId()).toBe(localKeyId(createPublicKey(readFileSync(file))));
  });

  it('refuses a key file of another kind', () => {
    const file = path.join(tmp(), 'rsa.pem');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    expect(() => FileCheckpointSigner.open(file)).toThrow('holds a rsa key, not Ed25519');
  });
});

describe('the bundle and checkpoint bytes', () => {
  const fact = (n: number): FactRecord => ({
    v: 1,
    tenant_id: 't1',
    kind: 'toolcall.decided',
    event_id: `e${n}`,
    fact_id: `f${n}`,
    at: '2026-01-01T00:00:00.000Z',
    z: 'last key first in JCS order',
    a: n,
  });

  it('is deterministic, valid JSON, one entry per line, with JCS records and the archive header (functions/core/archive.ts)', () => {
    const entries = sealFacts({ seq: 0, hash: '' }, [fact(1), fact(2), fact(3)]);
    const build = () => {
      const w = new BundleWriter('t1', 1, '');
      for (const e of entries) w.add(e);
      return w.finish();
    };
    const a = build();
    const b = build();
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(a.sha256).toBe(b.sha256);
    const lines = a.bytes.toString('utf8').split('\n');
    expect(lines).toHaveLength(6); // header, 3 entries, closing, final newline
    expect(lines[1]).toBe(
      `{"seq":1,"prev_hash":"","hash":"${entries[0]!.hash}","record":${canonicalize(entries[0]!.record)}},`,
    );
    expect(JSON.parse(a.bytes.toString('utf8'))).toEqual({
      format: 'oc-evidence-bundle/v1',
      tenant_id: 't1',
      from_seq: 1,
      to_seq: 3,
      prev_hash: '',
      last_hash: entries[2]!.hash,
      entries: entries.map((e) => ({ seq: e.seq, prev_hash: e.prev_hash, hash: e.hash, record: e.record })),
    });
    expect(archiveKeys.bundle('t1', 1, 3)).toBe('evidence/t1/000000000001-000000000003.json');
    expect(archiveKeys.checkpoint('t1', 3)).toBe('evidence/t1/checkpoints/000000000003.json');
  });

  it('signs JCS of the checkpoint without its signature', () => {
    const statement: CheckpointStatement = {
      format: CHECKPOINT_FORMAT,
      tenant_id: 't1',
      from_seq: 1,
      seq: 3,
      prev_hash: '',
      last_hash: 'ab',
      bundle_key: 'evidence/t1/000000000001-000000000003.json',
      bundle_sha256: 'cd',
      key_id: 'local:sha256:00',
      algorithm: 'Ed25519',
    };
    expect(checkpointSigningBytes(statement).toString()).toBe(canonicalize(statement));
    const bytes = checkpointBytes({ ...statement, signature: 'c2ln' });
    const { signature, ...rest } = JSON.parse(bytes.toString()) as Record<string, unknown>;
    expect(signature).toBe('c2ln');
    expect(rest).toEqual(statement);
  });
});

/**
 * Who signs archive checkpoints (Ed25519, RFC 8032): an AWS KMS asymmetric key
 * (ECC_NIST_EDWARDS25519, `ED25519_SHA_512` over the raw message: pure Ed25519) in AWS, and a key
 * file in the local data folder, generated on first use. Both verify with Node's own `crypto`
 * (`crypto.verify(null, message, publicKey, signature)`), as the auditor's verifier does.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GetPublicKeyCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';

export interface CheckpointSigner {
  /** Named in every checkpoint: which key signed it. */
  keyId(): Promise<string>;
  /** The public key as PEM (SPKI), written beside the bundles as `evidence/public-key.pem`. */
  publicKeyPem(): Promise<string>;
  /** A 64-byte Ed25519 signature over `message`. */
  sign(message: Buffer): Promise<Buffer>;
}

/** A public key's id for a local key: its SPKI fingerprint, so a checkpoint names the exact key. */
export function localKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return `local:sha256:${createHash('sha256').update(der).digest('hex')}`;
}

export class KmsCheckpointSigner implements CheckpointSigner {
  private key: Promise<{ arn: string; pem: string }> | undefined;

  constructor(
    private readonly kms: KMSClient,
    private readonly keyIdOrArn: string,
  ) {}

  private describe(): Promise<{ arn: string; pem: string }> {
    return (this.key ??= this.kms
      .send(new GetPublicKeyCommand({ KeyId: this.keyIdOrArn }))
      .then((out) => {
        if (out.KeySpec !== 'ECC_NIST_EDWARDS25519' || !out.PublicKey)
          throw new Error(
            `KMS key ${this.keyIdOrArn} is ${out.KeySpec ?? 'unknown'}, not ECC_NIST_EDWARDS25519`,
          );
        const pem = createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' })
          .export({ format: 'pem', type: 'spki' })
          .toString();
        return { arn: out.KeyId ?? this.keyIdOrArn, pem };
      })
      .catch((error: unknown) => {
        this.key = undefined; // a transient failure is retried on the next call
        throw error;
      }));
  }

  async keyId(): Promise<string> {
    return (await this.describe()).arn;
  }

  async publicKeyPem(): Promise<string> {
    return (await this.describe()).pem;
  }

  async sign(message: Buffer): Promise<Buffer> {
    const out = await this.kms.send(
      new SignCommand({
        KeyId: this.keyIdOrArn,
        Message: message,
        MessageType: 'RAW',
        SigningAlgorithm: 'ED25519_SHA_512',
      }),
    );
    if (!out.Signature) throw new Error(`KMS returned no signature for key ${this.keyIdOrArn}`);
    return Buffer.from(out.Signature);
  }
}

/**
 * The local signer: a PKCS#8 PEM key file, created (mode 0600) on first use. Two processes that
 * start at once cannot both create it: the loser of the exclusive create reads the winner's.
 */
export class FileCheckpointSigner implements CheckpointSigner {
  private constructor(
    private readonly privateKey: KeyObject,
    private readonly publicKey: KeyObject,
    /** True when this call generated the key (the local stack prints the public key then). */
    readonly created: boolean,
  ) {}

  static open(file: string): FileCheckpointSigner {
    mkdirSync(path.dirname(file), { recursive: true });
    let created = false;
    try {
      const { privateKey } = generateKeyPairSync('ed25519');
      writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { flag: 'wx', mode: 0o600 });
      created = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const privateKey = createPrivateKey(readFileSync(file));
    if (privateKey.asymmetricKeyType !== 'ed25519')
      throw new Error(`${file} holds a ${privateKey.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
    return new FileCheckpointSigner(privateKey, createPublicKey(privateKey), created);
  }

  keyId(): Promise<string> {
    return Promise.resolve(localKeyId(this.publicKey));
  }

  publicKeyPem(): Promise<string> {
    return Promise.resolve(this.publicKey.export({ format: 'pem', type: 'spki' }).toString());
  }

  sign(message: Buffer): Promise<Buffer> {
    return Promise.resolve(sign(null, message, this.privateKey));
  }
}

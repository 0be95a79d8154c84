/**
 * The evidence archive's formats (SPEC §8), pure: object keys, the bundle's bytes and the signed
 * checkpoint. The archiver (functions/store/archiver.ts) writes them; the auditor's verifier
 * (bin/audit/verify-archive.ts) reads them without this module, from the formats as documented.
 *
 * A bundle is JSON, one entry per line, so that its bytes can be built entry by entry and are the
 * same for the same range whoever builds them:
 *
 *   {"format":"oc-evidence-bundle/v1","tenant_id":…,"from_seq":…,"to_seq":…,"prev_hash":…,"last_hash":…,"entries":[
 *   {"seq":…,"prev_hash":…,"hash":…,"record":<JCS(record)>},
 *   …
 *   ]}
 */
import { createHash } from 'node:crypto';
import { canon, type ChainEntry } from './evidence.js';

export const BUNDLE_FORMAT = 'oc-evidence-bundle/v1';
export const CHECKPOINT_FORMAT = 'oc-evidence-checkpoint/v1';
/** At most this many entries per bundle: what one archiver step holds in memory. */
export const MAX_BUNDLE_ENTRIES = 10_000;
export const PUBLIC_KEY_KEY = 'evidence/public-key.pem';

const seq12 = (seq: number) => String(seq).padStart(12, '0');

export const archiveKeys = {
  tenantPrefix: (tenantId: string) => `evidence/${tenantId}/`,
  bundle: (tenantId: string, fromSeq: number, toSeq: number) =>
    `evidence/${tenantId}/${seq12(fromSeq)}-${seq12(toSeq)}.json`,
  checkpoint: (tenantId: string, toSeq: number) => `evidence/${tenantId}/checkpoints/${seq12(toSeq)}.json`,
};

/**
 * Builds a bundle's bytes entry by entry (the entries arrive page by page from the chain) while
 * hashing them; the header, which names the last hash, is prepended at the end.
 */
export class BundleWriter {
  private readonly body: Buffer[] = [];
  private readonly digestOfBody = createHash('sha256');
  private count = 0;
  private last: ChainEntry | undefined;

  constructor(
    readonly tenantId: string,
    readonly fromSeq: number,
    readonly prevHash: string,
  ) {}

  add(entry: ChainEntry): void {
    const line = Buffer.from(
      `${this.count === 0 ? '' : ',\n'}{"seq":${entry.seq},"prev_hash":${JSON.stringify(entry.prev_hash)},"hash":${JSON.stringify(entry.hash)},"record":${canon(entry.record)}}`,
      'utf8',
    );
    this.body.push(line);
    this.digestOfBody.update(line);
    this.count += 1;
    this.last = entry;
  }

  get entries(): number {
    return this.count;
  }

  /** The bundle's bytes and their SHA-256 (hex). */
  finish(): { toSeq: number; lastHash: string; bytes: Buffer; sha256: string } {
    if (!this.last) throw new Error('a bundle needs at least one entry');
    const header = Buffer.from(
      `{"format":${JSON.stringify(BUNDLE_FORMAT)},"tenant_id":${JSON.stringify(this.tenantId)},` +
        `"from_seq":${this.fromSeq},"to_seq":${this.last.seq},"prev_hash":${JSON.stringify(this.prevHash)},` +
        `"last_hash":${JSON.stringify(this.last.hash)},"entries":[\n`,
      'utf8',
    );
    const trailer = Buffer.from('\n]}\n', 'utf8');
    const bytes = Buffer.concat([header, ...this.body, trailer]);
    this.body.length = 0;
    return {
      toSeq: this.last.seq,
      lastHash: this.last.hash,
      bytes,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    };
  }
}

/** What a checkpoint states; the signature covers JCS of exactly these fields. */
export interface CheckpointStatement {
  format: typeof CHECKPOINT_FORMAT;
  tenant_id: string;
  from_seq: number;
  seq: number;
  prev_hash: string;
  last_hash: string;
  bundle_key: string;
  bundle_sha256: string;
  /** Which key signed (a KMS key ARN, or `local:<sha256 of the public key>`). */
  key_id: string;
  algorithm: 'Ed25519';
}

export interface SignedCheckpoint extends CheckpointStatement {
  /** Base64 Ed25519 signature over UTF-8 JCS(statement). */
  signature: string;
}

export function checkpointSigningBytes(statement: CheckpointStatement): Buffer {
  return Buffer.from(canon(statement), 'utf8');
}

/** A checkpoint object's bytes: JCS of the signed checkpoint, so equal input gives equal bytes. */
export function checkpointBytes(checkpoint: SignedCheckpoint): Buffer {
  return Buffer.from(`${canon(checkpoint)}\n`, 'utf8');
}

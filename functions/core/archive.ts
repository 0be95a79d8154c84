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
import { canon, type ChainEntry, type ChainHead } from './evidence.js';
import { checkpointBody, formatChainHead } from './signed-note.js';
import { leafHashOfText, tilePath, type TreeEdge } from './tlog.js';

export const BUNDLE_FORMAT = 'oc-evidence-bundle/v1';
export const CHECKPOINT_FORMAT = 'oc-evidence-checkpoint/v1';
/** At most this many entries per bundle: what one archiver step holds in memory. */
export const MAX_BUNDLE_ENTRIES = 10_000;
export const PUBLIC_KEY_KEY = 'evidence/public-key.pem';
/** Alarmed metrics of the log (lib/evidence-archive.ts): published evidence gone, a checkpoint refused. */
export const ARCHIVE_LOG_MISSING_METRIC = 'archive_log_missing';
export const ARCHIVE_LOG_REFUSED_METRIC = 'archive_log_refused';

const seq12 = (seq: number) => String(seq).padStart(12, '0');

export const archiveKeys = {
  tenantPrefix: (tenantId: string) => `evidence/${tenantId}/`,
  bundle: (tenantId: string, fromSeq: number, toSeq: number) =>
    `evidence/${tenantId}/${seq12(fromSeq)}-${seq12(toSeq)}.json`,
  checkpoint: (tenantId: string, toSeq: number) => `evidence/${tenantId}/checkpoints/${seq12(toSeq)}.json`,
};

/** Room kept before the entries for the header (which names the last hash, so it comes last). */
const HEADER_ROOM = 1024;

/**
 * One growable buffer a run's bundles are written into, one after the other: a bundle's bytes are
 * a view of it, valid until the next bundle starts. Memory then stays that of the largest bundle,
 * instead of a new buffer per bundle waiting for the garbage collector.
 */
export class BundleArena {
  buffer = Buffer.allocUnsafe(1 << 20);

  ensure(bytes: number): void {
    if (bytes <= this.buffer.length) return;
    let size = this.buffer.length;
    while (size < bytes) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buffer.copy(bigger);
    this.buffer = bigger;
  }
}

/**
 * Builds a bundle's bytes entry by entry (the entries arrive page by page from the chain); the
 * header, which names the last hash, is written in front of them at the end.
 */
export class BundleWriter {
  private end = HEADER_ROOM;
  private count = 0;
  private last: ChainEntry | undefined;

  constructor(
    readonly tenantId: string,
    readonly fromSeq: number,
    readonly prevHash: string,
    private readonly arena = new BundleArena(),
  ) {}

  private write(text: string, at: number): number {
    this.arena.ensure(at + Buffer.byteLength(text, 'utf8'));
    return this.arena.buffer.write(text, at, 'utf8');
  }

  /** Appends an entry; `canonical` is its record's JCS text if the caller has it already. */
  add(entry: ChainEntry, canonical = canon(entry.record)): void {
    this.end += this.write(
      `${this.count === 0 ? '' : ',\n'}{"seq":${entry.seq},"prev_hash":${JSON.stringify(entry.prev_hash)},"hash":${JSON.stringify(entry.hash)},"record":${canonical}}`,
      this.end,
    );
    this.count += 1;
    this.last = entry;
  }

  get entries(): number {
    return this.count;
  }

  /** The bundle's bytes (a view of the arena: use them before the next bundle) and their SHA-256. */
  finish(): { toSeq: number; lastHash: string; bytes: Buffer; sha256: string } {
    if (!this.last) throw new Error('a bundle needs at least one entry');
    const header =
      `{"format":${JSON.stringify(BUNDLE_FORMAT)},"tenant_id":${JSON.stringify(this.tenantId)},` +
      `"from_seq":${this.fromSeq},"to_seq":${this.last.seq},"prev_hash":${JSON.stringify(this.prevHash)},` +
      `"last_hash":${JSON.stringify(this.last.hash)},"entries":[\n`;
    const headerBytes = Buffer.byteLength(header, 'utf8');
    if (headerBytes > HEADER_ROOM) throw new Error('bundle header too long');
    this.arena.buffer.write(header, HEADER_ROOM - headerBytes, 'utf8');
    this.end += this.write('\n]}\n', this.end);
    const bytes = this.arena.buffer.subarray(HEADER_ROOM - headerBytes, this.end);
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

/**
 * The per-tenant Merkle log (issue 23; RFC 6962 tree, C2SP tlog-tiles and tlog-checkpoint): leaf
 * i is the exact RFC 8785 bytes of the record at seq i+1 (what the chain hashes). The JSON bundles
 * stay the entries' data; the log adds the tree's tiles and the signed checkpoint, under a prefix
 * of their own that the bucket's storage-class transitions leave out (small objects).
 */
export const logKeys = {
  prefix: (tenantId: string) => `log/${tenantId}/`,
  checkpoint: (tenantId: string) => `log/${tenantId}/checkpoint`,
  tile: (tenantId: string, level: number, index: number, width?: number) =>
    `log/${tenantId}/${tilePath(level, index, width)}`,
};

/** A log's origin line: `<deployment>/t/<tenant>`; the name its checkpoints are signed under too. */
export const logOrigin = (deployment: string, tenantId: string) => `${deployment}/t/${tenantId}`;

/** A deployment name is an origin's first part (and so of a note key name): no spaces, `+` or `/`. */
export const DEPLOYMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The leaf hash of a record: SHA-256(0x00 ‖ its canonical bytes). */
export const recordLeaf = (canonical: string) => leafHashOfText(canonical);

/** The unsigned checkpoint of a tenant's log at `edge` (its size is the archived head's seq). */
export function logCheckpoint(deployment: string, tenantId: string, edge: TreeEdge, head: ChainHead): string {
  if (edge.size !== head.seq)
    throw new Error(`the tree has ${edge.size} leaves, the chain head is seq ${head.seq}`);
  return checkpointBody({
    origin: logOrigin(deployment, tenantId),
    size: edge.size,
    root: edge.root(),
    // The extension line binding the tree to the hash chain: `oc-chain-head <seq> <hash>`.
    extensions: [formatChainHead(head.seq, head.hash)],
  });
}

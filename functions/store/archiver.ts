/**
 * The evidence archiver (SPEC §8): for each tenant with sealed entries past its archive
 * checkpoint, reads the chain from the checkpoint in ranges of at most `maxEntriesPerBundle`,
 * verifies each range from the checkpoint's hash, writes its bundle and its signed checkpoint to
 * S3, then advances the checkpoint (functions/store/archive-checkpoints.ts).
 *
 * Memory is bounded by one bundle: entries stream from DynamoDB page by page into the bundle's
 * bytes. A crash at any point leaves the range claimed and the head where it was; the next run
 * rebuilds the same range, so the same bytes land on the same keys, and advances. A chain that does
 * not verify archives nothing for that range (its tenant's report names the seq), raises the
 * `archive_chain_break` metric, and the other tenants are archived.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  archiveKeys,
  BundleArena,
  BundleWriter,
  CHECKPOINT_FORMAT,
  checkpointBytes,
  checkpointSigningBytes,
  MAX_BUNDLE_ENTRIES,
  PUBLIC_KEY_KEY,
  type CheckpointStatement,
} from '../core/archive.js';
import { ChainVerifier, type ChainHead } from '../core/evidence.js';
import { logger, metrics } from '../shared/powertools.js';
import type { ArchiveCheckpointStore } from './archive-checkpoints.js';
import type { CheckpointSigner } from './checkpoint-signer.js';

/** Where bundles go: S3 in AWS and on the local stack (s3rver). */
export interface ArchiveObjects {
  put(key: string, body: Buffer, contentType: string): Promise<void>;
  /** The object's bytes, or undefined if there is none. */
  get(key: string): Promise<Buffer | undefined>;
}

export function s3ArchiveObjects(s3: S3Client, bucket: string): ArchiveObjects {
  return {
    async put(key, body, contentType) {
      // A checksum on every put: S3 requires one for objects under Object Lock.
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          ChecksumAlgorithm: 'SHA256',
        }),
      );
    },
    async get(key) {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const bytes = await out.Body!.transformToByteArray();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
        throw error;
      }
    },
  };
}

/** What the archiver tells operators: metrics (alarmed in AWS) and logs. */
export interface ArchiveEvents {
  chainBroken(tenantId: string, seq: number, problem: string): void;
  tenantFailed(tenantId: string, error: unknown): void;
  archived(tenantId: string, bundle: ArchivedBundle): void;
  /** Entries sealed but not archived after the run, over all tenants. */
  lag(entries: number): void;
}

export const powertoolsArchiveEvents: ArchiveEvents = {
  chainBroken(tenantId, seq, problem) {
    logger.error('evidence chain does not verify: nothing archived from this seq', {
      tenantId,
      seq,
      problem,
    });
    metrics.addMetric('archive_chain_break', MetricUnit.Count, 1);
  },
  tenantFailed(tenantId, error) {
    logger.error('archiving a tenant failed; retried on the next run', { tenantId, error: error as Error });
    metrics.addMetric('archive_failures', MetricUnit.Count, 1);
  },
  archived(tenantId, bundle) {
    logger.info('evidence bundle archived', { tenantId, ...bundle });
    metrics.addMetric('archived_entries', MetricUnit.Count, bundle.toSeq - bundle.fromSeq + 1);
  },
  lag(entries) {
    metrics.addMetric('archive_lag_entries', MetricUnit.Count, entries);
  },
};

export interface ArchivedBundle {
  key: string;
  fromSeq: number;
  toSeq: number;
  sha256: string;
}

export interface TenantArchiveReport {
  tenantId: string;
  /** archived: caught up; partial: stopped at the deadline, more next run; broken/failed: see below. */
  status: 'archived' | 'up-to-date' | 'partial' | 'broken' | 'failed';
  /** Bundles this run advanced the checkpoint past (another archiver's are not counted). */
  bundles: ArchivedBundle[];
  head: ChainHead;
  /** Entries sealed but not archived yet. */
  behind: number;
  break?: { seq: number; problem: string };
  error?: string;
}

export interface ArchiveRunReport {
  ok: boolean;
  tenants: TenantArchiveReport[];
}

export interface ArchiverOptions {
  store: ArchiveCheckpointStore;
  objects: ArchiveObjects;
  signer: CheckpointSigner;
  events?: ArchiveEvents;
  maxEntriesPerBundle?: number;
  now?: () => Date;
}

export interface RunOptions {
  /** Only this tenant. */
  tenantId?: string;
  /** Stop starting bundles after this time (epoch ms); the next run continues. */
  deadline?: number;
  /** Tenants left out of this run (parked, waiting for their next try). */
  skip?: ReadonlySet<string>;
  /** Find tenants by scanning the chains' first items (and register them) instead of the registry. */
  discover?: boolean;
}

/** Claims lost in a row before a tenant is left to the archiver that keeps winning them. */
const MAX_CLAIM_RACES = 5;

class ChainBreakError extends Error {
  constructor(
    readonly seq: number,
    readonly problem: string,
  ) {
    super(`chain broken at seq ${seq}: ${problem}`);
  }
}

export class Archiver {
  private readonly events: ArchiveEvents;
  private readonly maxEntries: number;
  private readonly now: () => Date;
  private publicKeyWritten = false;
  private running = false;
  /** Every bundle of this archiver is built in the same buffer (one bundle at a time). */
  private readonly arena = new BundleArena();

  constructor(private readonly options: ArchiverOptions) {
    this.events = options.events ?? powertoolsArchiveEvents;
    this.maxEntries = options.maxEntriesPerBundle ?? MAX_BUNDLE_ENTRIES;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1 || this.maxEntries > MAX_BUNDLE_ENTRIES)
      throw new Error(`maxEntriesPerBundle must be 1-${MAX_BUNDLE_ENTRIES}`);
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Archives every tenant with a chain (or only `tenantId`), each on its own: one tenant's break
   * or failure is reported and the others go on. `deadline` (epoch ms): stop starting bundles
   * after it (a Lambda run must end before its timeout; the next run continues).
   */
  async run(options: RunOptions = {}): Promise<ArchiveRunReport> {
    // One run at a time per instance (they share the bundle buffer); other processes may run too.
    if (this.running) throw new Error('this archiver is already running');
    this.running = true;
    try {
      return await this.runOnce(options);
    } finally {
      this.running = false;
    }
  }

  private async runOnce(options: RunOptions): Promise<ArchiveRunReport> {
    await this.ensurePublicKey();
    const tenants = options.tenantId
      ? [options.tenantId]
      : options.discover
        ? await this.options.store.discover()
        : await this.options.store.tenants();
    const reports: TenantArchiveReport[] = [];
    for (const tenantId of tenants) {
      if (options.skip?.has(tenantId)) continue;
      try {
        reports.push(await this.archiveTenant(tenantId, options.deadline));
      } catch (error) {
        this.events.tenantFailed(tenantId, error);
        const checkpoint = await this.options.store.checkpoint(tenantId).catch(() => undefined);
        reports.push({
          tenantId,
          status: 'failed',
          bundles: [],
          head: checkpoint?.head ?? { seq: 0, hash: '' },
          behind: 0,
          error: (error as Error).message,
        });
      }
    }
    this.events.lag(reports.reduce((sum, r) => sum + r.behind, 0));
    return { ok: reports.every((r) => r.status !== 'broken' && r.status !== 'failed'), tenants: reports };
  }

  /** The signer's public key beside the bundles, written once; a different key there is refused. */
  private async ensurePublicKey(): Promise<void> {
    if (this.publicKeyWritten) return;
    const pem = await this.options.signer.publicKeyPem();
    const existing = await this.options.objects.get(PUBLIC_KEY_KEY);
    if (existing === undefined)
      await this.options.objects.put(PUBLIC_KEY_KEY, Buffer.from(pem), 'application/x-pem-file');
    else if (existing.toString('utf8').trim() !== pem.trim())
      throw new Error(
        `${PUBLIC_KEY_KEY} in the bucket is another key than the archiver's signer: checkpoints signed now would not verify against it`,
      );
    this.publicKeyWritten = true;
  }

  async archiveTenant(tenantId: string, deadline?: number): Promise<TenantArchiveReport> {
    const { store } = this.options;
    const bundles: ArchivedBundle[] = [];
    let races = 0;
    for (;;) {
      const checkpoint = await store.checkpoint(tenantId);
      const tail = await store.tail(tenantId);
      const report = (status: TenantArchiveReport['status'], extra: Partial<TenantArchiveReport> = {}) => ({
        tenantId,
        status: status === 'archived' && bundles.length === 0 ? ('up-to-date' as const) : status,
        bundles,
        head: checkpoint.head,
        behind: Math.max(0, tail.seq - checkpoint.head.seq),
        ...extra,
      });
      let range = checkpoint.pending;
      if (!range) {
        if (tail.seq <= checkpoint.head.seq) return report('archived');
        if (deadline !== undefined && Date.now() > deadline) return report('partial');
        range = {
          fromSeq: checkpoint.head.seq + 1,
          toSeq: Math.min(checkpoint.head.seq + this.maxEntries, tail.seq),
        };
        if (!(await store.claim(tenantId, checkpoint.head, range))) {
          if (++races >= MAX_CLAIM_RACES) return report('partial');
          continue; // another archiver claimed or advanced: read its checkpoint
        }
      } else if (deadline !== undefined && Date.now() > deadline) return report('partial');

      let bundle: { key: string; sha256: string; head: ChainHead };
      try {
        bundle = await this.writeRange(tenantId, checkpoint.head, range);
      } catch (error) {
        if (!(error instanceof ChainBreakError)) throw error;
        this.events.chainBroken(tenantId, error.seq, error.problem);
        return report('broken', { break: { seq: error.seq, problem: error.problem } });
      }
      if (await store.advance(tenantId, checkpoint.head, bundle.head, bundle, this.now())) {
        const archived = {
          key: bundle.key,
          fromSeq: range.fromSeq,
          toSeq: range.toSeq,
          sha256: bundle.sha256,
        };
        bundles.push(archived);
        this.events.archived(tenantId, archived);
      }
      // Advanced by us or by another archiver of the same range: either way, read on.
    }
  }

  /** Reads, verifies and writes one range's bundle and signed checkpoint (same bytes every time). */
  private async writeRange(
    tenantId: string,
    head: ChainHead,
    range: { fromSeq: number; toSeq: number },
  ): Promise<{ key: string; sha256: string; head: ChainHead }> {
    const writer = new BundleWriter(tenantId, range.fromSeq, head.hash, this.arena);
    // Each record is canonicalized once: hashed to verify it, and written as that text.
    const verifier = new ChainVerifier(tenantId, head);
    for await (const entry of this.options.store.range(tenantId, range.fromSeq, range.toSeq)) {
      const checked = verifier.next(entry);
      if (!checked.ok) throw new ChainBreakError(checked.break.seq, checked.break.problem);
      writer.add(entry, checked.canonical);
    }
    const verified = verifier.head;
    if (verified.seq !== range.toSeq)
      throw new ChainBreakError(
        verified.seq + 1,
        `the chain has no entry at seq ${verified.seq + 1} (range ends at ${range.toSeq})`,
      );
    const { bytes, sha256, lastHash } = writer.finish();
    const key = archiveKeys.bundle(tenantId, range.fromSeq, range.toSeq);
    await this.options.objects.put(key, bytes, 'application/json');
    const statement: CheckpointStatement = {
      format: CHECKPOINT_FORMAT,
      tenant_id: tenantId,
      from_seq: range.fromSeq,
      seq: range.toSeq,
      prev_hash: head.hash,
      last_hash: lastHash,
      bundle_key: key,
      bundle_sha256: sha256,
      key_id: await this.options.signer.keyId(),
      algorithm: 'Ed25519',
    };
    const signature = await this.options.signer.sign(checkpointSigningBytes(statement));
    await this.options.objects.put(
      archiveKeys.checkpoint(tenantId, range.toSeq),
      checkpointBytes({ ...statement, signature: signature.toString('base64') }),
      'application/json',
    );
    return { key, sha256, head: { seq: range.toSeq, hash: lastHash } };
  }
}

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
 *
 * The Merkle log (issue 23): each record's canonical bytes are also a leaf of the tenant's RFC 6962
 * tree. Its right edge moves with the checkpoint (`advance`), full tiles are written as they fill
 * (immutable: same bytes whoever writes them), and once per run the partial tiles and a signed
 * C2SP checkpoint note are published under `log/<tenant>/`, after proving the new tree consistent
 * with the one published before (`publishLog`). What cannot be proven is not published.
 */
import { createHash } from 'node:crypto';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
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
import { ChainVerifier, GENESIS, type ChainHead } from '../core/evidence.js';
import {
  ARCHIVE_LOG_MISSING_METRIC,
  ARCHIVE_LOG_REFUSED_METRIC,
  DEPLOYMENT_NAME,
  logCheckpoint,
  logKeys,
  logOrigin,
  recordLeaf,
} from '../core/archive.js';
import {
  formatNote,
  parseCheckpointBody,
  parseNote,
  rawEd25519,
  signNote,
  verifyNoteSignature,
} from '../core/signed-note.js';
import {
  consistencyProof,
  TileHashes,
  TreeEdge,
  verifyConsistency,
  type FullTile,
  type TileReader,
} from '../core/tlog.js';
import { logger, metrics } from '../shared/powertools.js';
import type { ArchiveCheckpoint, ArchiveCheckpointStore } from './archive-checkpoints.js';
import type { CheckpointSigner } from './checkpoint-signer.js';

/** Where bundles go: S3 in AWS and on the local stack (s3rver). */
export interface ArchiveObjects {
  /** `sha256`: the body's SHA-256 if the caller computed it already (the bundle's digest). */
  put(key: string, body: Buffer, contentType: string, sha256?: Buffer): Promise<void>;
  /** The object's bytes, or undefined if there is none. */
  get(key: string): Promise<Buffer | undefined>;
  /** Whether the object exists (without reading it); `get` stands in when absent. */
  exists?(key: string): Promise<boolean>;
}

export function s3ArchiveObjects(s3: S3Client, bucket: string): ArchiveObjects {
  return {
    async put(key, body, contentType, sha256) {
      // A checksum on every put: S3 requires one for objects under Object Lock. Given here (node's
      // own SHA-256, or the digest the bundle already has), the SDK's checksum step is skipped.
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          ChecksumAlgorithm: 'SHA256',
          ChecksumSHA256: (sha256 ?? createHash('sha256').update(body).digest()).toString('base64'),
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
    async exists(key) {
      try {
        await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (error) {
        const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404)
          return false;
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
  /**
   * Something the archiver published is gone or changed (the log checkpoint, a tile, the newest
   * bundle): someone deleted or rewrote evidence. Alarmed (`archive_log_missing`).
   */
  logMissing?(tenantId: string, key: string, problem: string): void;
  /**
   * A new log checkpoint could not be proven consistent with the one published before, so it was
   * not published. Alarmed (`archive_log_refused`), and the tenant is parked (`RecordsParked`).
   */
  logRefused?(tenantId: string, problem: string): void;
  /** A log checkpoint was published. */
  logPublished?(tenantId: string, size: number, oldSize: number): void;
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
  logMissing(tenantId, key, problem) {
    logger.error('published evidence is missing or changed', { tenantId, key, problem });
    metrics.addMetric(ARCHIVE_LOG_MISSING_METRIC, MetricUnit.Count, 1);
  },
  logRefused(tenantId, problem) {
    logger.error('log checkpoint not published: not consistent with the previous one', { tenantId, problem });
    metrics.addMetric(ARCHIVE_LOG_REFUSED_METRIC, MetricUnit.Count, 1);
  },
  logPublished(tenantId, size, oldSize) {
    logger.info('log checkpoint published', { tenantId, size, oldSize });
  },
};

/** A new log checkpoint, signed by the archiver, handed to the witnesses before it is published. */
export interface NewLogCheckpoint {
  tenantId: string;
  /** The signed note (checkpoint body, blank line, the archiver's signature line). */
  note: string;
  /** The size of the checkpoint published before (0: none), and the proof from it to this one. */
  oldSize: number;
  proof: Buffer[];
}

/**
 * The witness step of a run: given the new checkpoint, returns cosignature lines
 * (`— <name> <base64>\n` each) to append to the note before it is published. None by default.
 */
export type WitnessStep = (checkpoint: NewLogCheckpoint) => Promise<string[]>;

/** A log checkpoint that cannot be proven consistent: not published, the tenant fails this run. */
export class LogRefusedError extends Error {}

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
  /** Evidence published before and now gone or changed (alarmed): `oc archive` prints them. */
  missing?: { key: string; problem: string }[];
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
  /** Full tiles put at once while a range is read. @default TILE_PUTS */
  maxTilePuts?: number;
  now?: () => Date;
  /** The origin's first part and the note key's name (the stack's name in AWS). @default 'local' */
  deployment?: string;
  /** Cosigns each new log checkpoint before it is published (C2SP tlog-witness). */
  witness?: WitnessStep;
  /** Keep the Merkle log. Off only to measure what it costs (bench/archive.ts). @default true */
  log?: boolean;
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

/**
 * Full tiles in flight at once while a range is read (the default of `maxTilePuts`). A tile put is
 * bound by the store's latency, not its bandwidth (8 KB each, on s3rver a chain of file writes), so
 * they are issued as they fill: bounded at 4, the tiles fell behind the reads and then held up the
 * range's checkpoint (measured, issue 26). The bound keeps the connections under the client's
 * socket pool (50) whatever the range size; a full range fills at most 40.
 */
export const TILE_PUTS = 32;

/**
 * Puts run at most `limit` at a time, in the order added. `drain` waits for all of them and
 * throws the first failure (the others still finish or are dropped: nothing is half-written,
 * a put is whole or absent, and the range is retried whole).
 */
export class PutQueue {
  private readonly waiting: (() => Promise<void>)[] = [];
  private active = 0;
  private failure: { error: unknown } | undefined;
  private idle: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  add(put: () => Promise<void>): void {
    if (this.failure) return; // the range fails anyway: no more puts for it
    this.waiting.push(put);
    this.pump();
  }

  /** Drops the puts not started yet (the range failed); those in flight finish. */
  abandon(): void {
    this.waiting.length = 0;
  }

  async drain(): Promise<void> {
    if (this.active > 0 || this.waiting.length > 0) await new Promise<void>((done) => this.idle.push(done));
    if (this.failure) throw this.failure.error;
  }

  private pump(): void {
    while (this.active < this.limit && this.waiting.length > 0) {
      const put = this.waiting.shift()!;
      this.active += 1;
      // A put that throws at once fails like one that rejects.
      new Promise<void>((done) => done(put()))
        .catch((error: unknown) => {
          this.failure ??= { error };
          this.waiting.length = 0;
        })
        .finally(() => {
          this.active -= 1;
          this.pump();
          if (this.active === 0 && this.waiting.length === 0) for (const done of this.idle.splice(0)) done();
        });
    }
  }
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
  private readonly deployment: string;
  private readonly keepLog: boolean;
  private logKey: Promise<Buffer> | undefined;

  constructor(private readonly options: ArchiverOptions) {
    this.events = options.events ?? powertoolsArchiveEvents;
    this.maxEntries = options.maxEntriesPerBundle ?? MAX_BUNDLE_ENTRIES;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1 || this.maxEntries > MAX_BUNDLE_ENTRIES)
      throw new Error(`maxEntriesPerBundle must be 1-${MAX_BUNDLE_ENTRIES}`);
    this.now = options.now ?? (() => new Date());
    this.deployment = options.deployment ?? 'local';
    if (!DEPLOYMENT_NAME.test(this.deployment))
      throw new Error(
        `deployment must match ${String(DEPLOYMENT_NAME)}, got ${JSON.stringify(this.deployment)}`,
      );
    this.keepLog = options.log ?? true;
  }

  /** The signer's raw 32-byte Ed25519 public key (for the note's key id). */
  private publicKey32(): Promise<Buffer> {
    return (this.logKey ??= this.options.signer.publicKeyPem().then(rawEd25519));
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
      let edge: TreeEdge | undefined;
      if (this.keepLog) {
        if (checkpoint.edge) edge = TreeEdge.decode(checkpoint.edge);
        else if (checkpoint.head.seq === 0) edge = TreeEdge.empty();
        else {
          // Archived before the log existed: build the tree from seq 1 once (the migration).
          let rebuilt: TreeEdge;
          try {
            rebuilt = await this.rebuildEdge(tenantId, checkpoint.head);
          } catch (error) {
            if (!(error instanceof ChainBreakError)) throw error;
            this.events.chainBroken(tenantId, error.seq, error.problem);
            return {
              tenantId,
              status: 'broken',
              bundles,
              head: checkpoint.head,
              behind: 0,
              break: { seq: error.seq, problem: error.problem },
            };
          }
          await store.setEdge(tenantId, checkpoint.head, rebuilt.encode());
          continue; // read the checkpoint again, with its edge
        }
        if (edge.size !== checkpoint.head.seq)
          throw new Error(
            `the archive checkpoint's tree has ${edge.size} leaves but its head is seq ${checkpoint.head.seq}`,
          );
      }
      const tail = await store.tail(tenantId);
      const report = async (
        status: TenantArchiveReport['status'],
        extra: Partial<TenantArchiveReport> = {},
        moved = false,
      ): Promise<TenantArchiveReport> => {
        // Once per run, whether or not anything was archived: what was published is checked.
        // The checkpoint just read is the state to publish, unless another archiver moved it.
        const missing =
          this.keepLog && status !== 'broken'
            ? await this.publishLog(tenantId, moved ? undefined : checkpoint)
            : [];
        return {
          tenantId,
          status: status === 'archived' && bundles.length === 0 ? ('up-to-date' as const) : status,
          bundles,
          head: checkpoint.head,
          behind: Math.max(0, tail.seq - checkpoint.head.seq),
          ...(missing.length > 0 ? { missing } : {}),
          ...extra,
        };
      };
      let range = checkpoint.pending;
      if (!range) {
        if (tail.seq <= checkpoint.head.seq) return report('archived');
        if (deadline !== undefined && Date.now() > deadline) return report('partial');
        range = {
          fromSeq: checkpoint.head.seq + 1,
          toSeq: Math.min(checkpoint.head.seq + this.maxEntries, tail.seq),
        };
        if (!(await store.claim(tenantId, checkpoint.head, range))) {
          if (++races >= MAX_CLAIM_RACES) return report('partial', {}, true);
          continue; // another archiver claimed or advanced: read its checkpoint
        }
      } else if (deadline !== undefined && Date.now() > deadline) return report('partial');

      let bundle: { key: string; sha256: string; head: ChainHead };
      try {
        bundle = await this.writeRange(tenantId, checkpoint.head, range, edge);
      } catch (error) {
        if (!(error instanceof ChainBreakError)) throw error;
        this.events.chainBroken(tenantId, error.seq, error.problem);
        return report('broken', { break: { seq: error.seq, problem: error.problem } });
      }
      if (await store.advance(tenantId, checkpoint.head, bundle.head, bundle, this.now(), edge?.encode())) {
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
    edge?: TreeEdge,
  ): Promise<{ key: string; sha256: string; head: ChainHead }> {
    const writer = new BundleWriter(tenantId, range.fromSeq, head.hash, this.arena);
    // The full tiles this range fills (≤ 40 of 8 KB for 10,000 entries) are put as they fill,
    // while the range is still read (at most `maxTilePuts` at once). All are done before the
    // range's checkpoint; the first failure fails the range (retried whole, same bytes).
    const tiles = new PutQueue(this.options.maxTilePuts ?? TILE_PUTS);
    try {
      // Each record is canonicalized once: hashed to verify it, written as that text, and a leaf.
      const verifier = new ChainVerifier(tenantId, head);
      for await (const entry of this.options.store.range(tenantId, range.fromSeq, range.toSeq)) {
        const checked = verifier.next(entry);
        if (!checked.ok) throw new ChainBreakError(checked.break.seq, checked.break.problem);
        writer.add(entry, checked.canonical);
        if (edge)
          for (const tile of edge.append(recordLeaf(checked.canonical)))
            tiles.add(() =>
              this.options.objects.put(
                logKeys.tile(tenantId, tile.level, tile.index),
                tile.hashes,
                'application/octet-stream',
              ),
            );
      }
      const verified = verifier.head;
      if (verified.seq !== range.toSeq)
        throw new ChainBreakError(
          verified.seq + 1,
          `the chain has no entry at seq ${verified.seq + 1} (range ends at ${range.toSeq})`,
        );
    } catch (error) {
      tiles.abandon();
      throw error;
    }
    const { bytes, sha256, lastHash } = writer.finish();
    const key = archiveKeys.bundle(tenantId, range.fromSeq, range.toSeq);
    await Promise.all([
      this.options.objects.put(key, bytes, 'application/json', Buffer.from(sha256, 'hex')),
      tiles.drain(),
    ]);
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

  /** Full tiles (immutable: the same bytes whoever writes them), put side by side. */
  private async putTiles(tenantId: string, tiles: FullTile[]): Promise<void> {
    await Promise.all(
      tiles.map((tile) =>
        this.options.objects.put(
          logKeys.tile(tenantId, tile.level, tile.index),
          tile.hashes,
          'application/octet-stream',
        ),
      ),
    );
  }

  /** The tree of a tenant archived before the log existed, from the chain's seq 1 to `head`. */
  private async rebuildEdge(tenantId: string, head: ChainHead): Promise<TreeEdge> {
    const edge = TreeEdge.empty();
    const verifier = new ChainVerifier(tenantId, GENESIS);
    let tiles: FullTile[] = [];
    for await (const entry of this.options.store.range(tenantId, 1, head.seq)) {
      const checked = verifier.next(entry);
      if (!checked.ok) throw new ChainBreakError(checked.break.seq, checked.break.problem);
      for (const tile of edge.append(recordLeaf(checked.canonical))) tiles.push(tile);
      if (tiles.length >= 40) {
        await this.putTiles(tenantId, tiles);
        tiles = [];
      }
    }
    await this.putTiles(tenantId, tiles);
    if (verifier.head.seq !== head.seq || verifier.head.hash !== head.hash)
      throw new ChainBreakError(
        verifier.head.seq + 1,
        `the chain does not lead to the archived head seq ${head.seq} (it ends at seq ${verifier.head.seq} ${verifier.head.hash})`,
      );
    return edge;
  }

  /**
   * Once per run and tenant: checks that what was published is still there (the log checkpoint,
   * the newest full tile, the newest bundle: alarmed if not), then publishes the partial tiles and
   * a new signed checkpoint if the tree grew, after proving it consistent with the checkpoint
   * published before (from the tiles, the edge's partial tiles in memory). A tree that cannot be
   * proven consistent is refused: nothing published, alarm, the tenant fails this run.
   */
  private async publishLog(
    tenantId: string,
    held?: ArchiveCheckpoint,
  ): Promise<{ key: string; problem: string }[]> {
    const found: { key: string; problem: string }[] = [];
    const { store, objects } = this.options;
    // The run's own last read of the checkpoint when nothing moved since (not read twice).
    const checkpoint = held ?? (await store.checkpoint(tenantId));
    if (checkpoint.head.seq === 0 || !checkpoint.edge) return found;
    const edge = TreeEdge.decode(checkpoint.edge);
    const refuse = (problem: string): never => {
      (this.events.logRefused ?? powertoolsArchiveEvents.logRefused)!(tenantId, problem);
      throw new LogRefusedError(`log checkpoint not published: ${problem}`);
    };
    const missing = (key: string, problem: string) => {
      found.push({ key, problem });
      (this.events.logMissing ?? powertoolsArchiveEvents.logMissing)!(tenantId, key, problem);
    };
    if (edge.size !== checkpoint.head.seq)
      refuse(`the tree has ${edge.size} leaves but the archived head is seq ${checkpoint.head.seq}`);
    const published = checkpoint.published;
    if (published && published.size > edge.size)
      refuse(`the tree (${edge.size} leaves) is smaller than the one published (${published.size})`);

    const partial = new Map(edge.partialTiles().map((t) => [`${t.level}/${t.index}`, t]));
    const read: TileReader = async (level, index, width) => {
      const own = partial.get(`${level}/${index}`);
      if (own && own.width >= width) return own.hashes.subarray(0, width * 32);
      const key = logKeys.tile(tenantId, level, index);
      const bytes = await objects.get(key);
      if (bytes === undefined || bytes.length !== 256 * 32) {
        missing(
          key,
          bytes === undefined ? 'a full tile the archiver wrote is missing' : 'a full tile is not 8192 bytes',
        );
        return refuse(`tile ${key} is missing or changed`);
      }
      return bytes.subarray(0, width * 32);
    };
    const hashes = new TileHashes(edge.size, read);
    const checkpointKey = logKeys.checkpoint(tenantId);
    const pub32 = await this.publicKey32();

    // A tree larger than the one published is published below unless refused, so its partial
    // tiles and its signed note are made while the bucket is checked rather than after (the end of
    // a run waited on each in turn). Partial tiles are a function of the archived chain: written
    // and then refused, they are the bytes the next run writes again, and nothing names them
    // until a checkpoint of their size is published, which waits for them.
    const growing = !published || published.size < edge.size;
    const putPartials = () =>
      Promise.all(
        [...partial.values()].map((tile) =>
          objects.put(
            logKeys.tile(tenantId, tile.level, tile.index, tile.width),
            tile.hashes,
            'application/octet-stream',
          ),
        ),
      );
    const signed = () => {
      const body = logCheckpoint(this.deployment, tenantId, edge, checkpoint.head);
      // The key's name is the origin (C2SP tlog-checkpoint): one key, a key id per tenant's log.
      return signNote(body, logOrigin(this.deployment, tenantId), pub32, (message) =>
        this.options.signer.sign(message),
      ).then((signature) => formatNote(body, [signature]));
    };
    const early = growing ? { partials: putPartials(), note: signed() } : undefined;
    // Awaited below, or dropped if the tree is refused first: never an unhandled rejection.
    early?.partials.catch(() => undefined);
    early?.note.catch(() => undefined);

    // What was published before must still be there, unchanged (the three reads side by side).
    const lastFull = published ? Math.floor(published.size / 256) - 1 : -1;
    const [previous, lastTileThere, bundleThere] = await Promise.all([
      objects.get(checkpointKey),
      lastFull >= 0 ? this.exists(logKeys.tile(tenantId, 0, lastFull)) : true,
      published && checkpoint.bundleKey ? this.exists(checkpoint.bundleKey) : true,
    ]);
    let previousOk = false;
    if (previous !== undefined) {
      const found = this.ownCheckpoint(tenantId, previous.toString('utf8'), pub32);
      if (found && found.size <= edge.size && (await hashes.subtree(0, found.size)).equals(found.root))
        previousOk = !published || found.size >= published.size;
      if (!previousOk)
        missing(checkpointKey, 'the published log checkpoint was replaced by one this log did not publish');
    } else if (published) missing(checkpointKey, 'the published log checkpoint is missing');
    if (!lastTileThere)
      missing(logKeys.tile(tenantId, 0, lastFull), 'a full tile the archiver wrote is missing');
    if (!bundleThere) missing(checkpoint.bundleKey!, 'the newest bundle is missing');
    if (previousOk && published && published.size === edge.size) return found; // nothing new

    const root = edge.root();
    let proof: Buffer[] = [];
    const oldSize = published?.size ?? 0;
    if (published && published.size > 0) {
      proof = await consistencyProof(published.size, edge.size, hashes);
      if (!verifyConsistency(published.size, edge.size, proof, published.root, root))
        refuse(
          `the tree of ${edge.size} leaves is not consistent with the published tree of ${published.size}`,
        );
    }
    // The checkpoint names the partial tiles: they are in the bucket before a witness or a reader
    // can see it.
    await (early?.partials ?? putPartials());
    const note = await (early?.note ?? signed());
    const cosignatures = this.options.witness
      ? await this.options.witness({ tenantId, note, oldSize, proof })
      : [];
    await objects.put(
      checkpointKey,
      Buffer.from(note + cosignatures.join(''), 'utf8'),
      'text/plain; charset=utf-8',
    );
    await store.recordPublished(tenantId, edge.size, root);
    this.events.logPublished?.(tenantId, edge.size, oldSize);
    return found;
  }

  private async exists(key: string): Promise<boolean> {
    const { objects } = this.options;
    return objects.exists ? objects.exists(key) : (await objects.get(key)) !== undefined;
  }

  /** A checkpoint note this log signed for this tenant: its size and root, or undefined. */
  private ownCheckpoint(
    tenantId: string,
    text: string,
    pub32: Buffer,
  ): { size: number; root: Buffer } | undefined {
    const origin = logOrigin(this.deployment, tenantId);
    try {
      const note = parseNote(text);
      if (!note.signatures.some((s) => s.name === origin && verifyNoteSignature(note.body, s, origin, pub32)))
        return undefined;
      const body = parseCheckpointBody(note.body);
      if (body.origin !== origin) return undefined;
      return { size: body.size, root: body.root };
    } catch {
      return undefined;
    }
  }
}

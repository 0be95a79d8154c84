/**
 * Per-decision proofs from the archive bucket (issue 23): a tenant's signed checkpoint note at
 * `log/<tenant>/checkpoint` and its C2SP tlog-tiles under `log/<tenant>/tile/...` (written by the
 * archiver), read through `TileHashes` so that a proof costs the fewest tile GETs. The API route
 * and `oc proof --bucket` both read here.
 *
 * A proof is built against the checkpoint read first: tiles are addressed by the size they belong
 * to (full tiles never change; a partial tile's path names its width), so a run that publishes a
 * newer checkpoint meanwhile does not change what this one reads. A partial tile that was since
 * removed in favour of its full tile is read from the full tile (its first hashes are the same).
 * Every proof is checked against the checkpoint's root before it is handed out: a bucket that
 * does not hold together fails closed (an error, never a proof that would not verify).
 */
import { canon, type SealedRecord } from '../core/evidence.js';
import { factProofFile, type FactProof } from '../core/decision-proof.js';
import { parseCheckpointBody, parseNote, type Checkpoint } from '../core/signed-note.js';
import { logKeys } from '../core/archive.js';
import {
  inclusionProof,
  leafHash,
  TileHashes,
  verifyInclusion,
  TILE_WIDTH,
  type TileReader,
} from '../core/tlog.js';
import type { ArchiveObjects } from './archiver.js';

export { logKeys };

/** The fact a proof is asked for: its place in the chain and its record as sealed. */
export interface ProvableFact {
  seq: number;
  fact_id: string;
  kind: string;
  /** The record as the chain holds it (with its `seq`). */
  record: SealedRecord;
}

export type EventProofs =
  | {
      status: 'proved';
      checkpoint: Checkpoint;
      checkpointNote: string;
      facts: FactProof[];
      tileReads: number;
    }
  | { status: 'not-archived'; archivedSize: number; waitingSeq: number };

/** Immutable tile bytes by key, shared across requests of a container (small: at most `max` tiles). */
export class TileCache {
  private readonly entries = new Map<string, Buffer>();
  constructor(private readonly max = 512) {}
  get(key: string): Buffer | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }
  set(key: string, value: Buffer): void {
    this.entries.set(key, value);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }
}

export class LogProofs {
  constructor(
    private readonly objects: Pick<ArchiveObjects, 'get'>,
    private readonly cache = new TileCache(),
  ) {}

  /** The tenant's latest signed checkpoint, or undefined before its first archive run. */
  async checkpoint(tenantId: string): Promise<{ note: string; checkpoint: Checkpoint } | undefined> {
    const bytes = await this.objects.get(logKeys.checkpoint(tenantId));
    if (!bytes) return undefined;
    const note = bytes.toString('utf8');
    return { note, checkpoint: parseCheckpointBody(parseNote(note).body) };
  }

  /** Proofs for every fact, or which seq is not in the log yet. */
  async forFacts(tenantId: string, facts: readonly ProvableFact[]): Promise<EventProofs> {
    const latest = await this.checkpoint(tenantId);
    const size = latest?.checkpoint.size ?? 0;
    const waiting = facts.find((f) => f.seq > size);
    if (!latest || waiting)
      return { status: 'not-archived', archivedSize: size, waitingSeq: waiting?.seq ?? 1 };
    let tileReads = 0;
    const hashes = new TileHashes(
      size,
      this.tileReader(tenantId, () => (tileReads += 1)),
    );
    const out: FactProof[] = [];
    for (const fact of facts) {
      const recordCanonical = canon(fact.record);
      const proof = await inclusionProof(fact.seq - 1, size, hashes);
      if (
        !verifyInclusion(
          leafHash(Buffer.from(recordCanonical, 'utf8')),
          fact.seq - 1,
          size,
          proof,
          latest.checkpoint.root,
        )
      )
        throw new Error(
          `the log of tenant ${tenantId} does not prove seq ${fact.seq} against its checkpoint (size ${size}): the archive and the chain disagree`,
        );
      out.push({
        seq: fact.seq,
        fact_id: fact.fact_id,
        kind: fact.kind,
        record: recordCanonical,
        proof: factProofFile({ recordCanonical, seq: fact.seq, proof, checkpointNote: latest.note }),
      });
    }
    return {
      status: 'proved',
      checkpoint: latest.checkpoint,
      checkpointNote: latest.note,
      facts: out,
      tileReads,
    };
  }

  /** Reads a tenant's tiles from the bucket (through the cache), checking each tile's length. */
  tileReader(tenantId: string, counted: () => void = () => undefined): TileReader {
    return async (level, index, width) => {
      const bytes = await this.tile(tenantId, level, index, width, counted);
      if (bytes.length !== width * 32)
        throw new Error(
          `tile ${logKeys.tile(tenantId, level, index, width)} holds ${bytes.length} bytes, not ${width * 32}`,
        );
      return bytes;
    };
  }

  private async tile(
    tenantId: string,
    level: number,
    index: number,
    width: number,
    counted: () => void,
  ): Promise<Buffer> {
    const key = logKeys.tile(tenantId, level, index, width);
    const cached = this.cache.get(key);
    if (cached) return cached;
    counted();
    let bytes = await this.objects.get(key);
    if (!bytes && width < TILE_WIDTH) {
      // The partial tile was superseded by its full tile: the same first hashes.
      counted();
      const full = await this.objects.get(logKeys.tile(tenantId, level, index));
      bytes = full?.subarray(0, width * 32);
    }
    if (!bytes) throw new Error(`tile ${key} is missing from the archive`);
    this.cache.set(key, bytes);
    return bytes;
  }
}

/**
 * The archiver's side of C2SP tlog-witness: each new checkpoint note goes to every configured
 * witness with a consistency proof from the size that witness last cosigned, and the cosignature
 * lines that verify against the witness's vkey come back, to be published in the checkpoint note.
 *
 * A witness is never in the way of the log's own signature: one that is down, slow, refuses or
 * answers something that does not verify is reported (the `witness_cosign_failures` metric and a
 * log line) and left out, and the published note shows which cosignatures it lacks. A witness
 * that answers 409 with its own size is asked once more from that size (it missed a run); one
 * whose size is above the checkpoint's has seen a longer log than this one: a fork or a rollback,
 * reported as such.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  b64,
  parseCheckpointBody,
  parseNote,
  parseVerifierKey,
  verifyCosignature,
  type Checkpoint,
} from '../core/signed-note.js';
import { consistencyProof, TileHashes } from '../core/tlog.js';
import type { ArchiveObjects, WitnessStep } from './archiver.js';
import { LogProofs, TileCache } from './log-proofs.js';
import { logger, metrics } from '../shared/powertools.js';

/** A witness the archiver submits to (CDK context / OC_WITNESSES: JSON list of these). */
export interface WitnessConfig {
  name: string;
  /** The submission prefix: `<url>/add-checkpoint` is posted to. */
  url: string;
  /** The witness's cosignature verifier key (type 0x04). */
  vkey: string;
}

export interface WitnessEvents {
  /** A witness gave no valid cosignature this time (down, refused, or unverifiable). */
  failed(witness: string, origin: string, reason: string): void;
  /** A witness has cosigned a larger tree of this origin than the one being published. */
  ahead(witness: string, origin: string, witnessSize: number, size: number): void;
}

export const powertoolsWitnessEvents: WitnessEvents = {
  failed(witness, origin, reason) {
    logger.warn('witness gave no cosignature: the checkpoint is published without it', {
      witness,
      origin,
      reason,
    });
    metrics.addMetric('witness_cosign_failures', MetricUnit.Count, 1);
  },
  ahead(witness, origin, witnessSize, size) {
    logger.error('a witness has cosigned a longer log than this one: a rollback or a fork', {
      witness,
      origin,
      witnessSize,
      size,
    });
    metrics.addMetric('witness_rollback_detected', MetricUnit.Count, 1);
  },
};

export interface CosignInput {
  /** The new checkpoint note, signed by the log. */
  note: string;
  checkpoint: Checkpoint;
  /** The size of the checkpoint the log published before this one (what the witnesses should hold). */
  oldSize: number;
  /** A consistency proof from `oldSize` to the new checkpoint's size (empty from 0). */
  consistency: (oldSize: number) => Promise<Buffer[]>;
}

/** What the archiver's seam calls: cosignature lines for a new checkpoint, never a throw. */
export interface CheckpointWitnesses {
  cosign(input: CosignInput): Promise<string[]>;
}

/** The witnesses from their JSON configuration (empty or unset: none). Throws on a malformed list. */
export function parseWitnessConfig(text: string | undefined): WitnessConfig[] {
  if (!text?.trim()) return [];
  const list = JSON.parse(text) as unknown;
  if (!Array.isArray(list)) throw new Error('witnesses must be a JSON list of { name, url, vkey }');
  return list.map((w: Partial<WitnessConfig>, i) => {
    if (typeof w?.name !== 'string' || typeof w.url !== 'string' || typeof w.vkey !== 'string')
      throw new Error(`witness ${i}: name, url and vkey must be strings`);
    const url = new URL(w.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new Error(`witness ${w.name}: url must be http(s)`);
    const key = parseVerifierKey(w.vkey);
    if (key.type !== 0x04)
      throw new Error(`witness ${w.name}: its vkey must be a cosignature key (type 0x04)`);
    return { name: w.name, url: w.url.replace(/\/+$/, ''), vkey: w.vkey };
  });
}

/** The add-checkpoint request body (tlog-witness). */
export function addCheckpointBody(oldSize: number, proof: readonly Buffer[], note: string): string {
  return `old ${oldSize}\n${proof.map((h) => `${b64(h)}\n`).join('')}\n${note}`;
}

export class HttpWitnesses implements CheckpointWitnesses {
  constructor(
    private readonly witnesses: readonly WitnessConfig[],
    private readonly options: { timeoutMs?: number; events?: WitnessEvents } = {},
  ) {}

  async cosign(input: CosignInput): Promise<string[]> {
    const events = this.options.events ?? powertoolsWitnessEvents;
    const origin = input.checkpoint.origin;
    const answers = await Promise.all(
      this.witnesses.map(async (w) => {
        try {
          return await this.cosignWith(w, input, events);
        } catch (error) {
          events.failed(w.name, origin, (error as Error).message);
          return [];
        }
      }),
    );
    return answers.flat();
  }

  private async cosignWith(w: WitnessConfig, input: CosignInput, events: WitnessEvents): Promise<string[]> {
    const { size, origin } = input.checkpoint;
    let oldSize = input.oldSize;
    for (let attempt = 0; ; attempt++) {
      const proof = oldSize === 0 || oldSize === size ? [] : await input.consistency(oldSize);
      const res = await fetch(`${w.url}/add-checkpoint`, {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain; charset=utf-8' },
        body: addCheckpointBody(oldSize, proof, input.note),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      });
      const text = await res.text();
      if (res.status === 409 && attempt === 0 && /^(0|[1-9][0-9]*)\n$/.test(text)) {
        const theirs = Number(text.trim());
        if (theirs > size) {
          events.ahead(w.name, origin, theirs, size);
          throw new Error(`the witness holds size ${theirs}, above this checkpoint's ${size}`);
        }
        if (theirs !== oldSize) {
          oldSize = theirs; // it missed a checkpoint (or this is its first): prove from its size
          continue;
        }
      }
      if (res.status !== 200)
        throw new Error(`add-checkpoint answered ${res.status}: ${text.slice(0, 200).trim()}`);
      return verifiedCosignatures(w, input.note, text);
    }
  }
}

/** The response's lines that are valid cosignatures by this witness on this note (others are ignored). */
export function verifiedCosignatures(w: WitnessConfig, note: string, response: string): string[] {
  const key = parseVerifierKey(w.vkey);
  const lines = response.split('\n').filter((l) => l !== '');
  const { body } = parseNote(note);
  const valid = lines.filter((line) => {
    try {
      const sig = parseNote(`${body}\n${line}\n`).signatures[0]!;
      return (
        sig.name === key.name &&
        sig.keyId.equals(key.keyId) &&
        verifyCosignature(body, sig, key.name, key.publicKey).ok
      );
    } catch {
      return false;
    }
  });
  if (valid.length === 0) throw new Error('no cosignature in the answer verifies with the witness key');
  return valid.map((l) => `${l}\n`);
}

/**
 * The archiver's witness step (its seam, store/archiver.ts): the new note goes to the witnesses
 * with the proof from the published size; a witness at another size gets a proof from its own,
 * computed from the tiles already in the bucket (the run writes them before this step).
 */
export function witnessStep(
  witnesses: CheckpointWitnesses,
  objects: Pick<ArchiveObjects, 'get'>,
): WitnessStep {
  return async ({ tenantId, note, oldSize, proof }) => {
    const checkpoint = parseCheckpointBody(parseNote(note).body);
    const tiles = new LogProofs(objects, new TileCache(64));
    return witnesses.cosign({
      note,
      checkpoint,
      oldSize,
      consistency: async (old) =>
        old === oldSize
          ? proof
          : consistencyProof(
              old,
              checkpoint.size,
              new TileHashes(checkpoint.size, tiles.tileReader(tenantId)),
            ),
    });
  };
}

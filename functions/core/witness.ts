/**
 * A C2SP tlog-witness (c2sp.org/tlog-witness): `POST /add-checkpoint` with `old <size>`, the
 * consistency proof lines, a blank line and a signed checkpoint. The witness knows which logs it
 * follows (their origins and keys), keeps the latest size and root it cosigned per origin, and
 * answers a cosignature (c2sp.org/tlog-cosignature, type 0x04) only for a checkpoint consistent
 * with that record. The checks and their order are the spec's; this module is pure (the store
 * persists, the handler answers).
 *
 * Our logs are one per tenant (origin `<deployment>/t/<tenant>`), each signed by the deployment's
 * key under its origin as the key name (the C2SP convention), so a witness follows a deployment by
 * that key and the deployment's name: each tenant's log is known without a witness-side list of
 * tenants.
 */
import {
  parseCheckpointBody,
  parseNote,
  unb64,
  verifyNoteSignature,
  type Checkpoint,
  type NoteSignature,
} from './signed-note.js';
import { verifyConsistency } from './tlog.js';

/** A refusal with the status the spec prescribes (409 carries the witness's latest size). */
export class WitnessRefusal extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 422,
    message: string,
    readonly latestSize?: number,
  ) {
    super(message);
  }
}

/** A deployment's logs the witness follows: every origin `<name>/t/<tenant>`, signed by `key` as `name`. */
export interface FollowedLogs {
  /** The deployment (the log key's name), e.g. `local`. */
  name: string;
  /** The log's raw 32-byte Ed25519 public key. */
  key: Buffer;
}

export interface AddCheckpointRequest {
  oldSize: number;
  proof: Buffer[];
  /** The checkpoint note as sent (its body is what is cosigned). */
  note: string;
  body: string;
  checkpoint: Checkpoint;
  signatures: NoteSignature[];
}

/** The latest checkpoint the witness cosigned for an origin. */
export interface WitnessedState {
  size: number;
  root: Buffer;
}

/** The largest request body a witness reads (63 proof lines and a note with 100 signatures fit). */
export const MAX_ADD_CHECKPOINT_BYTES = 64 * 1024;

const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

/** Parses an add-checkpoint body strictly; anything else is a 400. */
export function parseAddCheckpoint(text: string): AddCheckpointRequest {
  const bad = (why: string) => new WitnessRefusal(400, `malformed add-checkpoint request: ${why}`);
  const blank = text.indexOf('\n\n');
  if (blank < 0) throw bad('no blank line before the checkpoint');
  const head = text.slice(0, blank).split('\n');
  const note = text.slice(blank + 2);
  const old = /^old (.*)$/.exec(head[0] ?? '');
  if (!old || !DECIMAL.test(old[1]!)) throw bad('the first line must be `old <size>` in decimal');
  const oldSize = Number(old[1]);
  if (!Number.isSafeInteger(oldSize)) throw bad('old size too large');
  const lines = head.slice(1);
  if (lines.length > 63) throw bad('more than 63 consistency proof lines');
  const proof: Buffer[] = [];
  for (const line of lines) {
    const hash = unb64(line);
    if (!hash || hash.length !== 32) throw bad('a consistency proof line is not a base64 SHA-256 hash');
    proof.push(hash);
  }
  let parsedNote: { body: string; signatures: NoteSignature[] };
  let checkpoint: Checkpoint;
  try {
    parsedNote = parseNote(note);
    checkpoint = parseCheckpointBody(parsedNote.body);
  } catch (error) {
    throw bad(`the checkpoint: ${(error as Error).message}`);
  }
  return { oldSize, proof, note, body: parsedNote.body, checkpoint, signatures: parsedNote.signatures };
}

/** The followed deployment an origin belongs to, if any. */
export function followedLog(origin: string, logs: readonly FollowedLogs[]): FollowedLogs | undefined {
  return logs.find((l) => {
    const prefix = `${l.name}/t/`;
    return (
      origin.startsWith(prefix) && origin.length > prefix.length && !origin.slice(prefix.length).includes('/')
    );
  });
}

/**
 * The spec's checks, in its order, against the witness's latest state for the origin (undefined:
 * never cosigned, size 0). Returns what to persist (undefined when the state already says it:
 * the same checkpoint again). Throws `WitnessRefusal` (404 unknown origin, 403 no trusted
 * signature, 400 old size above the new, 409 not the latest size or another root at the same
 * size, 422 a consistency proof that does not verify).
 */
export function checkAddCheckpoint(
  req: AddCheckpointRequest,
  logs: readonly FollowedLogs[],
  latest: WitnessedState | undefined,
): WitnessedState | undefined {
  const { checkpoint, oldSize, proof } = req;
  const log = followedLog(checkpoint.origin, logs);
  if (!log) throw new WitnessRefusal(404, `unknown log origin ${checkpoint.origin}`);
  // Signatures from unknown keys are ignored; the log signs with its origin as the key name.
  const signed = req.signatures.some((sig) => {
    try {
      return sig.name === checkpoint.origin && verifyNoteSignature(req.body, sig, sig.name, log.key);
    } catch {
      return false;
    }
  });
  if (!signed)
    throw new WitnessRefusal(
      403,
      `no signature on the checkpoint verifies with the key of ${checkpoint.origin}`,
    );
  if (oldSize > checkpoint.size)
    throw new WitnessRefusal(400, `old size ${oldSize} is above the checkpoint's size ${checkpoint.size}`);
  const size = latest?.size ?? 0;
  if (oldSize !== size)
    throw new WitnessRefusal(409, `old size ${oldSize} is not the latest cosigned size ${size}`, size);
  if (oldSize === checkpoint.size) {
    if (latest && !latest.root.equals(checkpoint.root))
      throw new WitnessRefusal(409, `another root at the cosigned size ${size}: a fork`, size);
    if (proof.length !== 0)
      throw new WitnessRefusal(422, 'a consistency proof between equal sizes must be empty');
    return latest ? undefined : { size: checkpoint.size, root: checkpoint.root };
  }
  if (oldSize === 0) {
    if (proof.length !== 0) throw new WitnessRefusal(422, 'the consistency proof must be empty from size 0');
  } else if (!verifyConsistency(oldSize, checkpoint.size, proof, latest!.root, checkpoint.root)) {
    throw new WitnessRefusal(
      422,
      `the consistency proof from ${oldSize} to ${checkpoint.size} does not verify`,
    );
  }
  return { size: checkpoint.size, root: checkpoint.root };
}

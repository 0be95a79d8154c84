/**
 * Checking one record against a `tlog-proof@v1` file offline (issue 23): with nothing but the file,
 * the record's bytes and the keys an auditor trusts. Pure; the steps are those docs/auditors.md
 * gives ("The log's formats, byte by byte").
 */
import {
  cosignatureKeyId,
  ed25519KeyId,
  NoteError,
  parseCheckpointBody,
  parseNote,
  parseTlogProof,
  verifyCosignature,
  verifyNoteSignature,
  type Checkpoint,
} from './signed-note.js';
import { leafHash, verifyInclusion } from './tlog.js';

export interface ProofPolicy {
  /** The log's origin, also its key name. */
  origin: string;
  /** The log's Ed25519 public key (32 bytes). */
  logKey: Uint8Array;
  /** Witnesses whose Ed25519 cosignatures (type 0x04) count. */
  witnesses?: { name: string; key: Uint8Array }[];
  /** How many of them must have cosigned; all listed by default. */
  quorum?: number;
}

export type ProofCheck =
  | { ok: true; index: number; checkpoint: Checkpoint; note: string; witnessed: string[] }
  | { ok: false; problem: string };

const fail = (problem: string): ProofCheck => ({ ok: false, problem });

export function checkTlogProof(text: string, record: Uint8Array, policy: ProofPolicy): ProofCheck {
  let parsed;
  let note;
  let checkpoint: Checkpoint;
  try {
    parsed = parseTlogProof(text);
    note = parseNote(parsed.checkpointNote);
    checkpoint = parseCheckpointBody(note.body);
  } catch (error) {
    if (error instanceof NoteError) return fail(`malformed proof: ${error.message}`);
    throw error;
  }
  if (checkpoint.origin !== policy.origin) return fail(`checkpoint origin is not ${policy.origin}`);

  // Signatures from keys the policy does not name are ignored; a named key's must verify.
  const logId = ed25519KeyId(policy.origin, policy.logKey);
  const logSigs = note.signatures.filter((s) => s.name === policy.origin && s.keyId.equals(logId));
  if (logSigs.length === 0) return fail("checkpoint carries no signature by the log's key");
  if (!logSigs.every((s) => verifyNoteSignature(note.body, s, policy.origin, policy.logKey))) {
    return fail("the log's signature on the checkpoint does not verify");
  }
  const witnesses = policy.witnesses ?? [];
  const witnessed: string[] = [];
  for (const w of witnesses) {
    const id = cosignatureKeyId(w.name, w.key);
    const sigs = note.signatures.filter((s) => s.name === w.name && s.keyId.equals(id));
    if (sigs.length === 0) continue;
    if (!sigs.every((s) => verifyCosignature(note.body, s, w.name, w.key).ok)) {
      return fail(`the cosignature of ${w.name} does not verify`);
    }
    witnessed.push(w.name);
  }
  const quorum = policy.quorum ?? witnesses.length;
  if (witnessed.length < quorum) {
    return fail(`checkpoint cosigned by ${witnessed.length} of the ${quorum} witnesses required`);
  }

  if (parsed.index >= checkpoint.size)
    return fail(`index ${parsed.index} is not in a tree of ${checkpoint.size}`);
  if (!verifyInclusion(leafHash(record), parsed.index, checkpoint.size, parsed.proof, checkpoint.root)) {
    return fail(`the record is not leaf ${parsed.index} of the checkpointed tree (inclusion proof fails)`);
  }
  return { ok: true, index: parsed.index, checkpoint, note: parsed.checkpointNote, witnessed };
}

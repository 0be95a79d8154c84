/**
 * A proof per decision (issue 23): one file per fact of an event, a C2SP tlog-proof@v1
 * (c2sp.org/tlog-proof) whose `extra` line carries the fact's record as its exact RFC 8785 bytes
 * (the bytes the chain hashes and the log's leaf i = seq - 1 is), followed by the index, the
 * inclusion proof and the signed checkpoint with the witnesses' cosignatures. Verifying one needs
 * the file and the log's public key, nothing else: the record's bytes hash to the leaf, the proof
 * leads from it to the checkpoint's root, the checkpoint is signed by the key, and the record's
 * tenant is the log's (origin `<deployment>/t/<tenant>`). A tlog-policy adds the witness quorum.
 *
 * Pure: the Merkle and note formats are core/tlog.ts and core/signed-note.ts.
 */
import { canon, type SealedRecord } from './evidence.js';
import {
  parseCheckpointBody,
  parseNote,
  parseTlogProof,
  formatTlogProof,
  verifyCosignature,
  verifyNoteSignature,
  type Checkpoint,
  type NoteSignature,
} from './signed-note.js';
import { leafHash, verifyInclusion } from './tlog.js';
import { quorumMet, type TlogPolicy } from './tlog-policy.js';

/** What `GET /v1/toolcalls/{event_id}/proof` answers per fact. */
export interface FactProof {
  seq: number;
  fact_id: string;
  kind: string;
  /** The record's canonical (RFC 8785) text: what the chain hashed. */
  record: string;
  /** The tlog-proof@v1 file (its `extra` is the record's bytes in base64). */
  proof: string;
}

/** The file name `oc proof` writes a fact's proof under (C2SP suggests `.tlog-proof`). */
export const proofFileName = (eventId: string, seq: number) => `${eventId}.${seq}.tlog-proof`;

/** One fact's proof file: its record's bytes as `extra`, index seq - 1, the proof and the note. */
export function factProofFile(input: {
  recordCanonical: string;
  seq: number;
  proof: Buffer[];
  checkpointNote: string;
}): string {
  return formatTlogProof({
    index: input.seq - 1,
    proof: input.proof,
    extra: Buffer.from(input.recordCanonical, 'utf8'),
    checkpointNote: input.checkpointNote,
  });
}

/** The tenant a log's origin names: `<deployment>/t/<tenant>`. */
export function originTenant(origin: string): string | undefined {
  const at = origin.lastIndexOf('/t/');
  return at > 0 ? origin.slice(at + 3) : undefined;
}

/** The chain head our checkpoints carry as an extension line (`oc-chain-head <seq> <hex>`). */
export function chainHeadExtension(extensions: readonly string[]): { seq: number; hash: string } | undefined {
  for (const line of extensions) {
    const m = /^oc-chain-head ([1-9][0-9]*|0) ([0-9a-f]{64})$/.exec(line);
    if (m) return { seq: Number(m[1]), hash: m[2]! };
  }
  return undefined;
}

/** A log key the verifier trusts: the raw Ed25519 key, and its name when a vkey gave one. */
export interface TrustedLogKey {
  key: Buffer;
  name?: string;
}

export interface ProofVerdict {
  ok: boolean;
  problems: string[];
  index?: number;
  record?: SealedRecord;
  checkpoint?: Checkpoint;
  /** The policy's names of the witnesses whose cosignatures verified. */
  cosigners: string[];
}

/**
 * Checks a proof file offline. Never throws on bad input: every problem is in `problems`.
 * `policy`: its logs are trusted too (a log vkey's name must be the origin), and its quorum of
 * witness cosignatures is required.
 */
export function verifyFactProof(
  text: string,
  trust: { logKeys: readonly TrustedLogKey[]; policy?: TlogPolicy },
): ProofVerdict {
  const problems: string[] = [];
  const verdict = (extra: Partial<ProofVerdict> = {}): ProofVerdict => ({
    ok: problems.length === 0,
    problems,
    cosigners: [],
    ...extra,
  });
  let parsed: ReturnType<typeof parseTlogProof>;
  let note: { body: string; signatures: NoteSignature[] };
  let checkpoint: Checkpoint;
  try {
    parsed = parseTlogProof(text);
    note = parseNote(parsed.checkpointNote);
    checkpoint = parseCheckpointBody(note.body);
  } catch (error) {
    problems.push(`not a tlog-proof@v1 file with a signed checkpoint: ${(error as Error).message}`);
    return verdict();
  }
  const { index, proof } = parsed;
  if (!parsed.extra) {
    problems.push('the proof carries no record (its extra line is missing)');
    return verdict({ index, checkpoint });
  }
  // The record: exactly its canonical JSON, in UTF-8 (what the chain hashed and the leaf is).
  let record: SealedRecord | undefined;
  const text8 = parsed.extra.toString('utf8');
  try {
    if (!Buffer.from(text8, 'utf8').equals(parsed.extra)) throw new Error('not UTF-8');
    const value = JSON.parse(text8) as SealedRecord;
    if (canon(value) !== text8) throw new Error('not in its RFC 8785 canonical form');
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    record = value;
  } catch (error) {
    problems.push(`the record is not canonical JSON: ${(error as Error).message}`);
  }
  if (record) {
    if (record.seq !== index + 1)
      problems.push(
        `the record's seq ${String(record.seq)} is not the leaf's (index ${index} is seq ${index + 1})`,
      );
    const tenant = originTenant(checkpoint.origin);
    if (tenant === undefined || record.tenant_id !== tenant)
      problems.push(
        `the record's tenant ${String(record.tenant_id)} is not the log's (origin ${checkpoint.origin})`,
      );
  }
  if (index >= checkpoint.size)
    problems.push(`index ${index} is outside the checkpoint's tree of size ${checkpoint.size}`);
  else if (!verifyInclusion(leafHash(parsed.extra), index, checkpoint.size, proof, checkpoint.root))
    problems.push(
      `the inclusion proof does not lead from the record to the checkpoint's root (size ${checkpoint.size})`,
    );

  // The log's own signature: by a trusted key, under the origin as the key name (C2SP). One key
  // signs every tenant's log of a deployment, so a vkey named after the deployment (the origin's
  // first part) is trusted for each of its tenants' origins, as is a vkey named after the origin.
  const logKeys: TrustedLogKey[] = [
    ...trust.logKeys,
    ...(trust.policy?.logs ?? []).map((l) => ({ key: l.key, name: l.name })),
  ];
  const ownsOrigin = (name: string) =>
    checkpoint.origin === name || checkpoint.origin.startsWith(`${name}/t/`);
  const logSigned = note.signatures.some(
    (sig) =>
      sig.name === checkpoint.origin &&
      logKeys.some(
        (k) =>
          (k.name === undefined || ownsOrigin(k.name)) &&
          verifyNoteSignature(note.body, sig, sig.name, k.key),
      ),
  );
  if (logKeys.length === 0)
    problems.push('no log key to verify the checkpoint with (--public-key or a policy log line)');
  else if (!logSigned)
    problems.push(`the checkpoint (${checkpoint.origin}) is not signed by the trusted log key`);

  const cosigners: string[] = [];
  if (trust.policy) {
    for (const [name, w] of trust.policy.witnesses) {
      const ok = note.signatures.some(
        (sig) =>
          sig.name === w.name &&
          sig.keyId.equals(w.keyId) &&
          verifyCosignature(note.body, sig, w.name, w.key).ok,
      );
      if (ok) cosigners.push(name);
    }
    if (!quorumMet(trust.policy, new Set(cosigners)))
      problems.push(
        `the checkpoint's cosignatures do not meet the policy's quorum ${trust.policy.quorum} (verified: ${cosigners.join(', ') || 'none'})`,
      );
  }
  return { ...verdict({ index, checkpoint, cosigners }), ...(record ? { record } : {}) };
}

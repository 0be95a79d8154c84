/**
 * The log's text formats (issue 23), pure: C2SP signed-note (https://c2sp.org/signed-note),
 * tlog-checkpoint, tlog-cosignature (Ed25519, type 0x04) and tlog-proof@v1. Every parser is strict:
 * one spelling per value, so that what an auditor checks is exactly what was signed.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';

export class NoteError extends Error {
  override name = 'NoteError';
}

/** Signature types (signed-note §Signature types) this log uses. */
export const SIG_ED25519 = 0x01;
export const SIG_COSIGNATURE_V1 = 0x04;
/** Go's sumdb/note stops at 100 signatures; C2SP asks for at least 16. */
export const MAX_SIGNATURES = 100;
export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';
export const CHAIN_HEAD_EXTENSION = 'oc-chain-head';

// ---------------------------------------------------------------------------------------------
// Strict base64 (RFC 4648 §4)

export const b64 = (buf: Uint8Array): string => Buffer.from(buf).toString('base64');

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 with padding, canonical only (Node's decoder skips junk and ignores spare bits). */
export function unb64(text: string): Buffer | undefined {
  if (typeof text !== 'string' || !B64.test(text)) return undefined;
  const buf = Buffer.from(text, 'base64');
  return buf.toString('base64') === text ? buf : undefined;
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;
/** ASCII decimal without leading zeroes, as a safe integer. */
const parseDecimal = (text: string): number | undefined => {
  if (!DECIMAL.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
};

// ---------------------------------------------------------------------------------------------
// Keys

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** Key names: non-empty, no Unicode space, no `+`, no control character. */
// eslint-disable-next-line no-control-regex
const BAD_NAME = /[\s+\u0000-\u001f\u007f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
export const isKeyName = (name: unknown): name is string =>
  typeof name === 'string' && name.length > 0 && !BAD_NAME.test(name);

const checkKey = (name: string, key: Uint8Array) => {
  if (!isKeyName(name)) throw new NoteError('bad key name');
  if (!(key instanceof Uint8Array) || key.length !== 32)
    throw new NoteError('an Ed25519 public key is 32 bytes');
};

/** key ID = SHA-256(name ‖ 0x0A ‖ type ‖ key)[:4] (signed-note §Signatures). */
export function keyId(name: string, type: number, publicKey32: Uint8Array): Buffer {
  checkKey(name, publicKey32);
  return sha256(Buffer.from(`${name}\n`, 'utf8'), Buffer.from([type]), publicKey32).subarray(0, 4);
}
export const ed25519KeyId = (name: string, publicKey32: Uint8Array): Buffer =>
  keyId(name, SIG_ED25519, publicKey32);
export const cosignatureKeyId = (name: string, publicKey32: Uint8Array): Buffer =>
  keyId(name, SIG_COSIGNATURE_V1, publicKey32);

/** The vkey text `<name>+<8 hex key id>+<base64(type ‖ key)>`. */
export function verifierKey(name: string, publicKey32: Uint8Array, type: number = SIG_ED25519): string {
  if (type !== SIG_ED25519 && type !== SIG_COSIGNATURE_V1) throw new NoteError('unsupported signature type');
  const id = keyId(name, type, publicKey32).toString('hex');
  return `${name}+${id}+${b64(Buffer.concat([Buffer.from([type]), publicKey32]))}`;
}

export interface VerifierKey {
  name: string;
  keyId: Buffer;
  type: number;
  publicKey: Buffer;
}

/** Parses a vkey; its key id must be the one its name, type and key give. */
export function parseVerifierKey(text: string): VerifierKey {
  // The name holds no `+`, the key id neither; base64 may (Go's NewVerifier cuts twice, too).
  const m = typeof text === 'string' ? /^([^+]*)\+([^+]*)\+(.*)$/s.exec(text) : null;
  if (!m) throw new NoteError('malformed verifier key');
  const [, name, hex, encoded] = m as unknown as [string, string, string, string];
  if (!isKeyName(name) || !/^[0-9a-f]{8}$/.test(hex)) throw new NoteError('malformed verifier key');
  const raw = unb64(encoded);
  if (!raw || raw.length !== 33) throw new NoteError('malformed verifier key');
  const type = raw[0]!;
  if (type !== SIG_ED25519 && type !== SIG_COSIGNATURE_V1) throw new NoteError('unsupported signature type');
  const publicKey = Buffer.from(raw.subarray(1));
  const id = keyId(name, type, publicKey);
  if (id.toString('hex') !== hex) throw new NoteError('verifier key id does not match its key');
  return { name, keyId: id, type, publicKey };
}

/** The 32 raw bytes of an Ed25519 public key given as PEM (SPKI) or a KeyObject. */
export function rawEd25519(key: string | KeyObject): Buffer {
  const object = typeof key === 'string' ? createPublicKey(key) : key;
  const pub = object.type === 'private' ? createPublicKey(object) : object;
  if (pub.asymmetricKeyType !== 'ed25519') throw new NoteError('not an Ed25519 key');
  const x = pub.export({ format: 'jwk' }).x;
  return Buffer.from(x!, 'base64url');
}

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const ed25519Verify = (publicKey32: Uint8Array, message: Buffer, signature: Buffer): boolean => {
  try {
    const key = createPublicKey({
      key: Buffer.concat([SPKI_ED25519, publicKey32]),
      format: 'der',
      type: 'spki',
    });
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
};

// ---------------------------------------------------------------------------------------------
// Checkpoints (tlog-checkpoint)

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  extensions: string[];
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f]/;
const isLine = (line: unknown): line is string =>
  typeof line === 'string' && line.length > 0 && !line.includes('\n') && !CONTROL.test(line);

/** `origin\nsize\nbase64(root)\n` then each extension line and its newline. */
export function checkpointBody(cp: Checkpoint): string {
  if (!isLine(cp.origin)) throw new NoteError('bad checkpoint origin');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw new NoteError('bad checkpoint size');
  if (!Buffer.isBuffer(cp.root) || cp.root.length !== 32) throw new NoteError('a root hash is 32 bytes');
  if (!cp.extensions.every(isLine)) throw new NoteError('bad checkpoint extension line');
  return [cp.origin, String(cp.size), b64(cp.root), ...cp.extensions].map((l) => `${l}\n`).join('');
}

/** The inverse of `checkpointBody`: anything it would not have written throws `NoteError`. */
export function parseCheckpointBody(text: string): Checkpoint {
  if (typeof text !== 'string' || !text.endsWith('\n'))
    throw new NoteError('checkpoint must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new NoteError('checkpoint has fewer than three lines');
  if (!lines.every(isLine)) throw new NoteError('checkpoint has an empty or malformed line');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  const size = parseDecimal(sizeText);
  if (size === undefined) throw new NoteError('bad checkpoint size');
  const root = unb64(rootText);
  if (!root || root.length !== 32) throw new NoteError('bad checkpoint root hash');
  return { origin, size, root, extensions };
}

/** Our extension line: the hash chain's head at the tree's size (seq = size, hash in hex). */
export const formatChainHead = (seq: number, lastHash: string): string => {
  if (!Number.isSafeInteger(seq) || seq < 0 || !/^[0-9a-f]{64}$/.test(lastHash)) {
    throw new NoteError('bad chain head');
  }
  return `${CHAIN_HEAD_EXTENSION} ${seq} ${lastHash}`;
};

export function parseChainHead(line: string): { seq: number; lastHash: string } {
  const m = /^oc-chain-head (0|[1-9][0-9]*) ([0-9a-f]{64})$/.exec(line);
  const seq = m ? parseDecimal(m[1]!) : undefined;
  if (!m || seq === undefined) throw new NoteError('malformed oc-chain-head line');
  return { seq, lastHash: m[2]! };
}

// ---------------------------------------------------------------------------------------------
// Signed notes

export interface NoteSignature {
  name: string;
  /** 4 bytes. */
  keyId: Buffer;
  signature: Buffer;
}

const EM_DASH = '\u2014';

const checkBody = (body: string) => {
  if (typeof body !== 'string' || body.length === 0 || !body.endsWith('\n')) {
    throw new NoteError('note text must end with a newline');
  }
  if (CONTROL.test(body)) throw new NoteError('note text holds a control character');
};

export function formatNote(body: string, sigs: NoteSignature[]): string {
  checkBody(body);
  if (sigs.length === 0 || sigs.length > MAX_SIGNATURES)
    throw new NoteError('a note carries 1 to 100 signatures');
  const lines = sigs.map((s) => {
    if (!isKeyName(s.name) || s.keyId.length !== 4 || s.signature.length === 0)
      throw new NoteError('bad signature');
    return `${EM_DASH} ${s.name} ${b64(Buffer.concat([s.keyId, s.signature]))}\n`;
  });
  return `${body}\n${lines.join('')}`;
}

const SIG_LINE = /^\u2014 ([^ ]+) ([^ ]+)$/;

/** Splits a signed note into its text and signature lines, strictly (C2SP signed-note §Format). */
export function parseNote(input: string | Uint8Array): { body: string; signatures: NoteSignature[] } {
  let text: string;
  if (typeof input === 'string') {
    text = input;
    if (!text.isWellFormed()) throw new NoteError('note is not valid UTF-8');
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch {
      throw new NoteError('note is not valid UTF-8');
    }
  }
  if (CONTROL.test(text)) throw new NoteError('note holds a control character');
  const split = text.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('note has no signature block');
  const body = text.slice(0, split + 1);
  const block = text.slice(split + 2);
  if (body.length === 0 || !block.endsWith('\n')) throw new NoteError('malformed note');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteError('too many signatures');
  const signatures = lines.map((line) => {
    const m = SIG_LINE.exec(line);
    const raw = m ? unb64(m[2]!) : undefined;
    if (!m || !isKeyName(m[1]) || !raw || raw.length < 5) throw new NoteError('malformed signature line');
    return { name: m[1], keyId: Buffer.from(raw.subarray(0, 4)), signature: Buffer.from(raw.subarray(4)) };
  });
  return { body, signatures };
}

/** Ed25519 over the note text, as the log signs its checkpoint (the KMS key, message type RAW). */
export async function signNote(
  body: string,
  name: string,
  publicKey32: Uint8Array,
  sign: (message: Buffer) => Promise<Buffer>,
): Promise<NoteSignature> {
  checkBody(body);
  const id = ed25519KeyId(name, publicKey32);
  const signature = await sign(Buffer.from(body, 'utf8'));
  if (signature.length !== 64) throw new NoteError('an Ed25519 signature is 64 bytes');
  return { name, keyId: id, signature: Buffer.from(signature) };
}

const sameKey = (sig: NoteSignature, name: string, id: Buffer) => sig.name === name && sig.keyId.equals(id);

export function verifyNoteSignature(
  body: string,
  sig: NoteSignature,
  name: string,
  publicKey32: Uint8Array,
): boolean {
  try {
    if (!sameKey(sig, name, ed25519KeyId(name, publicKey32)) || sig.signature.length !== 64) return false;
    return ed25519Verify(publicKey32, Buffer.from(body, 'utf8'), sig.signature);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Cosignatures (tlog-cosignature, Ed25519, type 0x04)

const MAX_TIMESTAMP = BigInt(Number.MAX_SAFE_INTEGER);

/** `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's whole text. */
export function cosignedMessage(body: string, timestamp: number): Buffer {
  checkBody(body);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new NoteError('bad cosignature timestamp');
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${body}`, 'utf8');
}

export async function signCosignature(
  body: string,
  name: string,
  publicKey32: Uint8Array,
  timestamp: number,
  sign: (message: Buffer) => Promise<Buffer>,
): Promise<NoteSignature> {
  const id = cosignatureKeyId(name, publicKey32);
  const signature = await sign(cosignedMessage(body, timestamp));
  if (signature.length !== 64) throw new NoteError('an Ed25519 signature is 64 bytes');
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(timestamp));
  return { name, keyId: id, signature: Buffer.concat([ts, signature]) };
}

/** Checks a witness's cosignature (8-byte big-endian timestamp ‖ 64-byte signature). */
export function verifyCosignature(
  body: string,
  sig: NoteSignature,
  name: string,
  publicKey32: Uint8Array,
): { ok: boolean; timestamp?: number } {
  try {
    if (!sameKey(sig, name, cosignatureKeyId(name, publicKey32)) || sig.signature.length !== 72)
      return { ok: false };
    const ts = sig.signature.readBigUInt64BE(0);
    if (ts > MAX_TIMESTAMP) return { ok: false };
    const timestamp = Number(ts);
    const ok = ed25519Verify(publicKey32, cosignedMessage(body, timestamp), sig.signature.subarray(8));
    return ok ? { ok, timestamp } : { ok: false };
  } catch {
    return { ok: false };
  }
}

// ---------------------------------------------------------------------------------------------
// Proof files (tlog-proof@v1)

export interface TlogProof {
  index: number;
  proof: Buffer[];
  /** Opaque and unauthenticated (C2SP): never trusted by itself. */
  extra?: Buffer;
  /** The signed checkpoint, verbatim. */
  checkpointNote: string;
}

export function formatTlogProof(p: TlogProof): string {
  if (!Number.isSafeInteger(p.index) || p.index < 0) throw new NoteError('bad proof index');
  if (!p.proof.every((h) => Buffer.isBuffer(h) && h.length === 32))
    throw new NoteError('a proof hash is 32 bytes');
  if (p.extra !== undefined && p.extra.length === 0) throw new NoteError('empty extra data');
  parseNote(p.checkpointNote);
  const lines = [TLOG_PROOF_HEADER];
  if (p.extra !== undefined) lines.push(`extra ${b64(p.extra)}`);
  lines.push(`index ${p.index}`, ...p.proof.map(b64));
  return `${lines.join('\n')}\n\n${p.checkpointNote}`;
}

/** Strict parse of a `.tlog-proof` file; its checkpoint must be a well-formed signed checkpoint. */
export function parseTlogProof(text: string): TlogProof {
  if (typeof text !== 'string') throw new NoteError('proof is not text');
  const split = text.indexOf('\n\n');
  if (split < 0) throw new NoteError('proof has no checkpoint');
  const head = text.slice(0, split).split('\n');
  const checkpointNote = text.slice(split + 2);
  if (head.shift() !== TLOG_PROOF_HEADER) throw new NoteError(`proof must start with ${TLOG_PROOF_HEADER}`);
  let extra: Buffer | undefined;
  if (head[0]?.startsWith('extra ')) {
    extra = unb64(head.shift()!.slice('extra '.length));
    if (!extra || extra.length === 0) throw new NoteError('extra data is not base64');
  }
  const indexLine = head.shift();
  const index = indexLine?.startsWith('index ') ? parseDecimal(indexLine.slice('index '.length)) : undefined;
  if (index === undefined) throw new NoteError('proof has no valid index line');
  const proof = head.map((line) => {
    const hash = unb64(line);
    if (!hash || hash.length !== 32) throw new NoteError('proof hash is not 32 bytes of base64');
    return hash;
  });
  parseCheckpointBody(parseNote(checkpointNote).body);
  return extra === undefined ? { index, proof, checkpointNote } : { index, proof, extra, checkpointNote };
}

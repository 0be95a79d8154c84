/**
 * Evidence (SPEC §7): immutable facts, sealed by the sequencer into a per-tenant hash chain.
 *   hash = hex SHA-256( L("oc-evidence/v1") || L(prev_hash) || L(canon(record)) )
 * with L(x) = 8-byte big-endian length of x, then x; canon = RFC 8785 (JCS).
 */
import crypto, { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { FactKind } from '../shared/constants.js';
import { AppError } from '../shared/errors.js';

export const CHAIN_TAG = 'oc-evidence/v1';

/** The registry's kinds (`FACT_KINDS`, shared/constants.ts). */
export type { FactKind };

/** A fact as written, before the sequencer gives it a place in the chain. */
export interface FactRecord {
  v: 1;
  tenant_id: string;
  kind: FactKind;
  event_id: string;
  fact_id: string;
  at: string;
  [field: string]: unknown;
}

/** A fact with its place in the chain. */
export interface SealedRecord extends FactRecord {
  seq: number;
}

export interface ChainEntry {
  seq: number;
  prev_hash: string;
  hash: string;
  record: SealedRecord;
}

export function canon(value: unknown): string {
  const out = canonicalize(value);
  if (out === undefined) throw new Error('value has no canonical JSON form');
  return out;
}

/**
 * A fact the sequencer could not seal must never be written: the chain would stop at it. Every
 * fact write calls this first (the store's fact attributes). Client input is refused at the edge
 * by the shared input rules; reaching this is a 422 for what slipped through, never a stored fact.
 */
export function assertSealable(fact: FactRecord): void {
  try {
    canon(fact);
  } catch (error) {
    throw new AppError(
      422,
      'VALIDATION_ERROR',
      'the request holds a value that cannot be recorded as evidence',
      {
        details: [{ path: fact.kind, message: (error as Error).message }],
      },
    );
  }
}

/**
 * Data from outside the request (a connector's output) made sealable: lone surrogates become
 * U+FFFD, non-finite numbers null. What a tool answered is recorded, never refused after it ran.
 */
export function toSealableJson(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.toWellFormed();
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (value === null || typeof value !== 'object' || depth > 64) return depth > 64 ? null : value;
  if (Array.isArray(value)) return value.map((v) => toSealableJson(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      k.toWellFormed(),
      toSealableJson(v, depth + 1),
    ]),
  );
}

function lengthPrefixed(bytes: Buffer): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64BE(BigInt(bytes.length));
  return Buffer.concat([prefix, bytes]);
}

export function chainHash(prevHash: string, record: SealedRecord): string {
  return chainHashOfCanonical(prevHash, canon(record));
}

/** `chainHash` of a record already in its canonical form (the archiver writes that text too). */
export function chainHashOfCanonical(prevHash: string, canonicalRecord: string): string {
  return chainHashOfCanonicalBytes(prevHash, Buffer.from(canonicalRecord, 'utf8'));
}

const TAG_PREFIXED = lengthPrefixed(Buffer.from(CHAIN_TAG, 'utf8'));
// One-shot hashing of one reused buffer: a verifier hashes every record of an archive, and a Hash
// object per record costs about as much as the SHA-256 of it. (`crypto.hash` is Node ≥ 20.12.)
const sha256HexOf: (data: Uint8Array) => string = crypto.hash
  ? (data) => crypto.hash('sha256', data, 'hex')
  : (data) => createHash('sha256').update(data).digest('hex');
let message = Buffer.alloc(16_384);

/**
 * `chainHashOfCanonical` of the record's canonical text already encoded as UTF-8: a verifier that
 * also hashes those bytes as a log leaf encodes them once. The same bytes are hashed, laid out in
 * one buffer: L(tag) || L(prev_hash) || L(record).
 */
export function chainHashOfCanonicalBytes(prevHash: string, canonicalRecord: Uint8Array): string {
  const prevLength = Buffer.byteLength(prevHash, 'utf8');
  const total = TAG_PREFIXED.length + 8 + prevLength + 8 + canonicalRecord.length;
  if (message.length < total) message = Buffer.alloc(Math.max(total, message.length * 2));
  let at = TAG_PREFIXED.copy(message, 0);
  at = message.writeBigUInt64BE(BigInt(prevLength), at);
  at += message.write(prevHash, at, 'utf8');
  at = message.writeBigUInt64BE(BigInt(canonicalRecord.length), at);
  message.set(canonicalRecord, at);
  return sha256HexOf(message.subarray(0, at + canonicalRecord.length));
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export interface ChainHead {
  seq: number;
  hash: string;
}

export const GENESIS: ChainHead = { seq: 0, hash: '' };

/**
 * Extends the chain from `head` with `facts`, in order, up to the first fact that has no canonical
 * form (which it names instead of throwing). Pure: the caller persists the entries.
 */
export function sealPrefix(
  head: ChainHead,
  facts: readonly FactRecord[],
): { entries: ChainEntry[]; failed?: { index: number; reason: string } } {
  const entries: ChainEntry[] = [];
  let prev = head;
  for (const [index, fact] of facts.entries()) {
    const record: SealedRecord = { ...fact, seq: prev.seq + 1 };
    let hash: string;
    try {
      hash = chainHash(prev.hash, record);
    } catch (error) {
      return { entries, failed: { index, reason: (error as Error).message } };
    }
    entries.push({ seq: record.seq, prev_hash: prev.hash, hash, record });
    prev = { seq: record.seq, hash };
  }
  return { entries };
}

/** Extends the chain from `head` with `facts`, in order; throws on a fact with no canonical form. */
export function sealFacts(head: ChainHead, facts: readonly FactRecord[]): ChainEntry[] {
  const { entries, failed } = sealPrefix(head, facts);
  if (failed) throw new Error(failed.reason);
  return entries;
}

export interface ChainBreak {
  seq: number;
  problem: string;
}

/**
 * Verifies entries one at a time in seq order from `start` (genesis for a whole chain):
 * contiguous seq numbers, each prev_hash the previous hash, each hash recomputed, the record's own
 * seq and tenant, and no fact sealed twice (among the entries this verifier saw).
 */
export class ChainVerifier {
  private prev: ChainHead;
  private readonly seen = new Set<string>();
  private verified = 0;

  constructor(
    readonly tenantId: string,
    start: ChainHead = GENESIS,
  ) {
    this.prev = start;
  }

  get head(): ChainHead {
    return this.prev;
  }

  get count(): number {
    return this.verified;
  }

  /** Checks the next entry: its record's canonical text (hashed once), or the first break. */
  next(entry: ChainEntry): { ok: true; canonical: string } | { ok: false; break: ChainBreak } {
    const expectedSeq = this.prev.seq + 1;
    const fail = (problem: string) => ({ ok: false as const, break: { seq: entry.seq, problem } });
    if (entry.seq !== expectedSeq) return fail(`expected seq ${expectedSeq}, found ${entry.seq}`);
    if (entry.record.seq !== entry.seq) return fail(`record seq ${entry.record.seq} differs from entry seq`);
    if (entry.record.tenant_id !== this.tenantId)
      return fail(`record belongs to tenant ${entry.record.tenant_id}`);
    if (entry.prev_hash !== this.prev.hash)
      return fail(`prev_hash does not match the hash of seq ${this.prev.seq}`);
    let canonical: string;
    try {
      canonical = canon(entry.record);
    } catch {
      return fail('record cannot be canonicalized');
    }
    if (chainHashOfCanonical(this.prev.hash, canonical) !== entry.hash)
      return fail('hash does not match the record');
    if (this.seen.has(entry.record.fact_id)) return fail(`fact ${entry.record.fact_id} sealed twice`);
    this.seen.add(entry.record.fact_id);
    this.prev = { seq: entry.seq, hash: entry.hash };
    this.verified += 1;
    return { ok: true, canonical };
  }
}

/** Verifies a list of entries from `start` (see ChainVerifier). Returns the first break, or the new head. */
export function verifyChain(
  tenantId: string,
  entries: readonly ChainEntry[],
  start: ChainHead = GENESIS,
): { ok: true; head: ChainHead; count: number } | { ok: false; break: ChainBreak } {
  const verifier = new ChainVerifier(tenantId, start);
  for (const entry of entries) {
    const result = verifier.next(entry);
    if (!result.ok) return result;
  }
  return { ok: true, head: verifier.head, count: verifier.count };
}

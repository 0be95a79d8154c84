/**
 * The auditor's verification of a tenant's evidence archive (SPEC §7-8), from the bucket or a
 * downloaded copy alone: no gateway, no database. It reads only the objects and the public key,
 * and imports nothing from the gateway but pure code: the SPEC §7 hash function, the approval
 * view, and the transparency-log formats (functions/core/tlog.ts, signed-note.ts).
 *
 * Checks, bundle by bundle in seq order: every entry's hash recomputed, seq contiguous from 1,
 * every `prev_hash` linked (across bundles too), the bundle's header against its key and entries,
 * its signed checkpoint (Ed25519 signature, bundle SHA-256, seq, hashes), no gap and no overlap
 * between bundles, and that the newest checkpoint covers the newest bundle. Reports the first break.
 *
 * The Merkle log (issue 23): the tree is rebuilt from the bundles' records (leaf i = the canonical
 * bytes of seq i+1) and checked against the published signed checkpoint (`log/<tenant>/checkpoint`)
 * and every tile it covers; checkpoints the auditor kept (`trusted`) must be covered by the archive
 * and agree with it (a log cut short or forked fails). A fact id sealed twice anywhere in the log is
 * found with 8 bytes per entry: a sorted array of SHA-256 prefixes, then a confirming pass over the
 * bundles only if two prefixes collide. Checkpoints are read strictly, old JSON and new notes alike:
 * exact bytes, RFC 4648 §4 base64, no duplicate keys, nothing trailing.
 */
import { ViewEvidence } from '../../functions/core/view-evidence.js';
import crypto, { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import canonicalize from 'canonicalize';
import { chainHashOfCanonicalBytes, type SealedRecord } from '../../functions/core/evidence.js';
import { canonicalJson } from '../../functions/core/jcs.js';
import {
  ed25519KeyId,
  parseChainHead,
  parseCheckpointBody,
  parseNote,
  rawEd25519,
  unb64,
  verifyNoteSignature,
} from '../../functions/core/signed-note.js';
import { leafHash, TILE_WIDTH, tilePath, TreeEdge } from '../../functions/core/tlog.js';

/** Where the archive is read from: the bucket, or a folder that mirrors it. */
export interface ArchiveSource {
  /** For messages: `s3://bucket` or the folder. */
  readonly where: string;
  /** Every key under `prefix`. */
  list(prefix: string): Promise<string[]>;
  /** The object's bytes, or undefined if there is none. */
  get(key: string): Promise<Buffer | undefined>;
}

export function s3Source(s3: S3Client, bucket: string): ArchiveSource {
  return {
    where: `s3://${bucket}`,
    async list(prefix) {
      const found: string[] = [];
      let token: string | undefined;
      do {
        const out = await s3.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of out.Contents ?? []) if (o.Key) found.push(o.Key);
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      return found;
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

/** A folder that mirrors the bucket (`aws s3 sync s3://B D`, or `oc verify --bucket B --save D`). */
export function dirSource(dir: string): ArchiveSource {
  const root = path.resolve(dir);
  return {
    where: root,
    async list(prefix) {
      const base = path.join(root, ...prefix.split('/').filter(Boolean));
      const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch(
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return [];
          throw error;
        },
      );
      return entries
        .filter((e) => e.isFile())
        .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
    },
    async get(key) {
      try {
        return await readFile(path.join(root, ...key.split('/')));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    },
  };
}

/** Reads from `source` and keeps a copy of every object read under `dir` (a mirror `--dir` reads). */
export function savingSource(source: ArchiveSource, dir: string): ArchiveSource {
  return {
    where: source.where,
    list: (prefix) => source.list(prefix),
    async get(key) {
      const bytes = await source.get(key);
      if (bytes !== undefined) {
        const file = path.join(path.resolve(dir), ...key.split('/'));
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, bytes);
      }
      return bytes;
    },
  };
}

export const PUBLIC_KEY_OBJECT = 'evidence/public-key.pem';

export interface ArchiveBreak {
  /** The object the break is in. */
  key: string;
  seq?: number;
  problem: string;
}

export interface ArchiveVerifyReport {
  ok: boolean;
  tenant_id: string;
  source: string;
  public_key: string;
  bundles: number;
  checkpoints: number;
  entries: number;
  from_seq: number;
  to_seq: number;
  first_hash: string;
  last_hash: string;
  /** The published log checkpoint verified (absent for an archive made before the log). */
  log?: { size: number; root: string };
  /**
   * The checkpoint verified, as its exact text, ready to keep for `--trusted-checkpoint`: the
   * signed log checkpoint, or for an archive made before the log its newest JSON checkpoint.
   */
  checkpoint?: string;
  /** Checkpoints the auditor kept that the archive was checked against. */
  trusted: number;
  break?: ArchiveBreak;
}

const seqOf = (text: string | undefined) => Number(text);

/** One-shot SHA-256: no Hash object per entry (`crypto.hash` is Node ≥ 20.12). */
const sha256: (data: Buffer) => Buffer = crypto.hash
  ? (data) => crypto.hash('sha256', data, 'buffer')
  : (data) => createHash('sha256').update(data).digest();

/** Entries checked between two turns of the event loop (≈ 25 ms of work at most). */
const YIELD_EVERY = 500;

interface BundleHeader {
  format?: unknown;
  tenant_id?: unknown;
  from_seq?: unknown;
  to_seq?: unknown;
  prev_hash?: unknown;
  last_hash?: unknown;
  entries?: unknown;
}

interface Checkpoint {
  format?: unknown;
  tenant_id?: unknown;
  from_seq?: unknown;
  seq?: unknown;
  prev_hash?: unknown;
  last_hash?: unknown;
  bundle_key?: unknown;
  bundle_sha256?: unknown;
  key_id?: unknown;
  algorithm?: unknown;
  signature?: unknown;
}

class Break extends Error {
  constructor(readonly found: ArchiveBreak) {
    super(found.problem);
  }
}

const fail = (key: string, problem: string, seq?: number): never => {
  throw new Break({ key, problem, ...(seq === undefined ? {} : { seq }) });
};

function parseJson<T>(key: string, bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (error) {
    return fail(key, `${what} is not valid JSON (truncated or altered): ${(error as Error).message}`);
  }
}

/** A checkpoint the auditor kept: a signed log checkpoint note or an older JSON checkpoint. */
export interface KeptCheckpoint {
  /** For messages: the file it was read from. */
  where: string;
  bytes: Buffer;
}

export interface VerifyArchiveOptions {
  source: ArchiveSource;
  tenantId: string;
  /** The archive must cover each of these and agree with it (`--trusted-checkpoint`). */
  trusted?: KeptCheckpoint[];
  /** PEM of the public key to check signatures with; default: the archive's own public-key.pem. */
  publicKeyPem?: string;
  publicKeyWhere?: string;
  /** Told after each bundle: entries verified so far, of about `total`. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Handed each bundle's records once the whole bundle verified (its checkpoint included), in seq
   * order, before the next bundle is read: a reader (`oc policy replay`) streams verified records
   * with the memory of one bundle. Nothing of a bundle that does not verify is handed over.
   */
  onRecords?: (records: SealedRecord[]) => void | Promise<void>;
  /**
   * Called once, once the first bundle's request is sent and before its bytes are awaited: CPU
   * work the caller needs only for `onRecords` (`oc policy replay` loads its candidate policy)
   * overlaps the download instead of preceding the walk.
   */
  whileReading?: () => void;
}

export async function verifyArchive(options: VerifyArchiveOptions): Promise<ArchiveVerifyReport> {
  const { source, tenantId } = options;
  const report: ArchiveVerifyReport = {
    ok: false,
    tenant_id: tenantId,
    source: source.where,
    public_key: options.publicKeyWhere ?? `${source.where}/${PUBLIC_KEY_OBJECT}`,
    bundles: 0,
    checkpoints: 0,
    entries: 0,
    from_seq: 0,
    to_seq: 0,
    first_hash: '',
    last_hash: '',
    trusted: options.trusted?.length ?? 0,
  };
  try {
    await walk(options, report);
    report.ok = true;
  } catch (error) {
    if (!(error instanceof Break)) throw error;
    report.break = error.found;
  }
  return report;
}

async function walk(options: VerifyArchiveOptions, report: ArchiveVerifyReport): Promise<void> {
  const { source, tenantId } = options;
  // The first reads do not depend on one another: all in flight at once, then checked in order.
  const logPrefix = `log/${tenantId}/`;
  const noteKey = `${logPrefix}checkpoint`;
  const prefix = `evidence/${tenantId}/`;
  const early = <T>(promise: Promise<T>) => {
    promise.catch(() => undefined); // awaited below, unless the walk stops first
    return promise;
  };
  const pemRead = options.publicKeyPem === undefined ? early(source.get(PUBLIC_KEY_OBJECT)) : undefined;
  const noteRead = early(source.get(noteKey));
  const listed = early(source.list(prefix));
  let publicKey: KeyObject;
  const pem = options.publicKeyPem ?? (await pemRead)?.toString('utf8');
  if (pem === undefined)
    return fail(PUBLIC_KEY_OBJECT, 'no public key: the archive has none, and none was given (--public-key)');
  try {
    publicKey = createPublicKey(pem);
  } catch (error) {
    return fail(report.public_key, `not a public key: ${(error as Error).message}`);
  }
  if (publicKey.asymmetricKeyType !== 'ed25519')
    return fail(
      report.public_key,
      `the public key is ${publicKey.asymmetricKeyType ?? 'unknown'}, not Ed25519`,
    );

  const pub32 = rawEd25519(publicKey);

  // What the archive must agree with: its own log checkpoint and the ones the auditor kept.
  const noteBytes = await noteRead;
  const note = noteBytes === undefined ? undefined : readNote(noteKey, noteBytes, tenantId, pub32);
  if (note === undefined && (await source.list(logPrefix)).length > 0)
    fail(noteKey, "the log's tiles are in the archive but its signed checkpoint is missing (deleted?)");
  const kept = (options.trusted ?? []).map((k) => readKept(k, tenantId, publicKey, pub32));
  /** Sizes whose root (and chain hash) the walk keeps: the note's and the kept checkpoints'. */
  const wanted = new Set<number>([...(note ? [note.size] : []), ...kept.map((k) => k.size)]);
  const atSize = new Map<number, { root: Buffer; hash: string }>();
  const edge = TreeEdge.empty();
  const facts = new FactIds();

  const bundleKey = new RegExp(`^${prefix.replace(/[.]/g, '\\.')}(\\d{12})-(\\d{12})\\.json$`);
  const checkpointKey = new RegExp(`^${prefix.replace(/[.]/g, '\\.')}checkpoints/(\\d{12})\\.json$`);
  const bundles: { key: string; from: number; to: number }[] = [];
  const checkpoints = new Map<number, string>();
  for (const key of await listed) {
    const b = bundleKey.exec(key);
    const c = checkpointKey.exec(key);
    if (b) bundles.push({ key, from: seqOf(b[1]), to: seqOf(b[2]) });
    else if (c) checkpoints.set(seqOf(c[1]), key);
    else fail(key, "an object that is neither a bundle nor a checkpoint is in the tenant's archive");
  }
  if (bundles.length === 0 && checkpoints.size === 0)
    return fail(prefix, `no bundles for tenant ${tenantId} in ${source.where}`);
  bundles.sort((a, b) => a.from - b.from || a.to - b.to);
  const total = bundles.length > 0 ? bundles[bundles.length - 1]!.to : 0;

  let prevHash = '';
  let nextSeq = 1;
  let newestCheckpoint: Buffer | undefined;
  const views = new ViewEvidence();
  // The full tiles a bundle's entries complete, read with the bundle (one round trip each, in
  // parallel, rather than one after another inside the walk): at most two bundles' tiles are held.
  const tileReads = new Map<string, Promise<Buffer | undefined>>();
  const readTiles = (from: number, to: number) => {
    if (!note) return;
    const last = Math.min(to, note.size);
    for (let level = 0, span = TILE_WIDTH; span <= last; level++, span *= TILE_WIDTH)
      for (let index = Math.ceil(from / span) - 1; (index + 1) * span <= last; index++) {
        if (index < 0) continue;
        const key = `${logPrefix}${tilePath(level, index)}`;
        const bytes = source.get(key);
        bytes.catch(() => undefined); // awaited by sameTile, unless the walk stops first
        tileReads.set(key, bytes);
      }
  };
  const tile = (key: string) => {
    const bytes = tileReads.get(key) ?? source.get(key);
    tileReads.delete(key);
    return bytes;
  };
  // The next bundle and its checkpoint are read while this one is checked (at most two bundles in
  // memory): reading is otherwise idle time of a CPU-bound walk.
  const read = (i: number) => {
    const b = bundles[i];
    if (!b) return undefined;
    const cpName = checkpoints.get(b.to);
    const both = Promise.all([source.get(b.key), cpName === undefined ? undefined : source.get(cpName)]);
    both.catch(() => undefined); // awaited below, unless the walk stops first
    readTiles(b.from, b.to); // after the bundle: it is needed first
    return both;
  };
  let ahead = read(0);
  if (options.whileReading && ahead) {
    await new Promise((resolve) => setImmediate(resolve)); // the request goes out
    options.whileReading();
  }
  for (const [index, bundle] of bundles.entries()) {
    const [readBytes, readCheckpoint] = (await ahead)!;
    ahead = read(index + 1);
    if (bundle.to < bundle.from)
      fail(bundle.key, `its key's range ends (${bundle.to}) before it starts (${bundle.from})`);
    if (bundle.from > nextSeq)
      fail(
        bundle.key,
        `gap: entries ${nextSeq}-${bundle.from - 1} are in no bundle (a bundle is missing)`,
        nextSeq,
      );
    if (bundle.from < nextSeq)
      fail(
        bundle.key,
        `overlap: it starts at seq ${bundle.from}, but seq ${nextSeq - 1} is already in an earlier bundle`,
        bundle.from,
      );
    const bytes = readBytes;
    if (bytes === undefined) return fail(bundle.key, 'the bundle is listed but cannot be read');
    const digest = createHash('sha256').update(bytes).digest('hex');
    const checkpointName = checkpoints.get(bundle.to);
    const header = parseJson<BundleHeader>(bundle.key, bytes, 'the bundle');
    if (header.format !== 'oc-evidence-bundle/v1')
      fail(bundle.key, `format is ${JSON.stringify(header.format)}, not oc-evidence-bundle/v1`);
    if (header.tenant_id !== tenantId)
      fail(bundle.key, `tenant_id is ${JSON.stringify(header.tenant_id)}, not ${tenantId}`);
    if (header.from_seq !== bundle.from || header.to_seq !== bundle.to)
      fail(
        bundle.key,
        `its header says seq ${String(header.from_seq)}-${String(header.to_seq)}, its key ${bundle.from}-${bundle.to}`,
      );
    if (header.prev_hash !== prevHash)
      fail(
        bundle.key,
        `prev_hash ${JSON.stringify(header.prev_hash)} is not the previous bundle's last hash ${JSON.stringify(prevHash)}`,
        bundle.from,
      );
    if (!Array.isArray(header.entries)) return fail(bundle.key, 'entries is not an array');
    const records: SealedRecord[] | undefined = options.onRecords ? [] : undefined;
    let expected = bundle.from;
    for (const raw of header.entries as unknown[]) {
      const entry = raw as { seq?: unknown; prev_hash?: unknown; hash?: unknown; record?: SealedRecord };
      const at = typeof entry.seq === 'number' ? entry.seq : expected;
      if (entry.seq !== expected)
        fail(
          bundle.key,
          `expected seq ${expected}, found ${String(entry.seq)} (entries missing or out of order)`,
          at,
        );
      if (expected > bundle.to)
        fail(bundle.key, `entry seq ${expected} is past the bundle's to_seq ${bundle.to}`, at);
      const record = entry.record;
      if (typeof record !== 'object' || record === null || Array.isArray(record))
        fail(bundle.key, 'record is not an object', at);
      if (record!.seq !== expected)
        fail(bundle.key, `record seq ${String(record!.seq)} differs from the entry's seq`, at);
      if (record!.tenant_id !== tenantId)
        fail(bundle.key, `record belongs to tenant ${String(record!.tenant_id)}`, at);
      if (entry.prev_hash !== prevHash)
        fail(bundle.key, `prev_hash does not match the hash of seq ${expected - 1}`, at);
      let recomputed: string;
      let canonical: Buffer;
      try {
        // Encoded once: the chain hash and the log leaf hash the same bytes.
        canonical = Buffer.from(canonicalJson(record)!, 'utf8');
        recomputed = chainHashOfCanonicalBytes(prevHash, canonical);
      } catch {
        return fail(bundle.key, 'record cannot be canonicalized', at);
      }
      if (recomputed !== entry.hash)
        fail(
          bundle.key,
          `hash does not match the record (stored ${String(entry.hash)}, recomputed ${recomputed})`,
          at,
        );
      // The approval view a record names is re-rendered from its recorded request and version.
      const viewProblem = views.check(record!);
      if (viewProblem) fail(bundle.key, `approval view: ${viewProblem}`, at);
      if (typeof record!.fact_id === 'string') facts.add(record!.fact_id);
      // The record's canonical bytes are leaf seq-1 of the log; full tiles the note covers must match.
      for (const full of edge.append(leafHash(canonical)))
        if (note && (full.index + 1) * 256 ** (full.level + 1) <= note.size)
          await sameTile(tile, `${logPrefix}${tilePath(full.level, full.index)}`, full.hashes);
      if (wanted.has(edge.size)) atSize.set(edge.size, { root: edge.root(), hash: recomputed });
      if (note && edge.size === note.size)
        for (const partial of edge.partialTiles())
          await sameTile(
            tile,
            `${logPrefix}${tilePath(partial.level, partial.index, partial.width)}`,
            partial.hashes,
          );
      records?.push(record!);
      if (report.entries === 0) report.first_hash = recomputed;
      prevHash = recomputed;
      expected += 1;
      report.entries += 1;
      // A response is read only when the event loop turns: without this the next bundle, asked
      // for ahead, would download only once this one is done, not while it is checked.
      if (report.entries % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    if (expected !== bundle.to + 1)
      fail(
        bundle.key,
        `the bundle ends at seq ${expected - 1}, but its key and header say ${bundle.to} (truncated)`,
        expected,
      );
    if (header.last_hash !== prevHash)
      fail(bundle.key, `last_hash is not the hash of its last entry`, bundle.to);

    // The signed checkpoint vouches for exactly these bytes.
    if (checkpointName === undefined)
      fail(
        bundle.key,
        `no checkpoint for this bundle (${prefix}checkpoints/${String(bundle.to).padStart(12, '0')}.json)`,
        bundle.to,
      );
    const cpBytes = readCheckpoint;
    if (cpBytes === undefined) return fail(checkpointName!, 'the checkpoint is listed but cannot be read');
    const cp = strictCheckpoint(checkpointName!, cpBytes);
    checkSignature(checkpointName!, cp, publicKey);
    newestCheckpoint = cpBytes;
    const want: [keyof Checkpoint, unknown][] = [
      ['format', 'oc-evidence-checkpoint/v1'],
      ['tenant_id', tenantId],
      ['from_seq', bundle.from],
      ['seq', bundle.to],
      ['prev_hash', header.prev_hash],
      ['last_hash', prevHash],
      ['bundle_key', bundle.key],
    ];
    for (const [field, value] of want)
      if (cp[field] !== value)
        fail(
          checkpointName!,
          `${field} is ${JSON.stringify(cp[field])}, the bundle's is ${JSON.stringify(value)}`,
          bundle.to,
        );
    if (cp.bundle_sha256 !== digest)
      fail(
        bundle.key,
        `its SHA-256 ${digest} is not the one its signed checkpoint names (${String(cp.bundle_sha256)})`,
        bundle.to,
      );
    checkpoints.delete(bundle.to);
    if (records) await options.onRecords!(records);
    report.bundles += 1;
    report.checkpoints += 1;
    report.from_seq = report.from_seq || bundle.from;
    report.to_seq = bundle.to;
    report.last_hash = prevHash;
    nextSeq = bundle.to + 1;
    options.onProgress?.(report.entries, total);
  }
  // A checkpoint left over names a bundle that is gone (the newest, if none is left after it).
  for (const [seq, key] of [...checkpoints].sort((a, b) => a[0] - b[0])) {
    const cp = await source.get(key);
    const named = cp
      ? (parseJson<Checkpoint>(key, cp, 'the checkpoint').bundle_key as string | undefined)
      : undefined;
    fail(
      key,
      `checkpoint for seq ${seq} names bundle ${named ?? '(unreadable)'}, which is not in the archive (the newest checkpoint must cover the newest bundle)`,
      seq,
    );
  }

  // The log: the published checkpoint is the tree of the bundles' first `size` records.
  if (note) {
    const found = atSize.get(note.size);
    if (!found)
      fail(
        noteKey,
        `the log's checkpoint covers ${note.size} entries but the bundles end at seq ${report.to_seq}: bundles are missing`,
        report.to_seq + 1,
      );
    if (!found!.root.equals(note.root))
      fail(noteKey, `the root of entries 1-${note.size} is not the checkpoint's root`, note.size);
    if (found!.hash !== note.head.hash)
      fail(noteKey, `its chain head (seq ${note.head.seq}) names another hash than the chain's`, note.size);
    report.log = { size: note.size, root: note.root.toString('hex') };
    report.checkpoint = noteBytes!.toString('utf8');
  } else if (newestCheckpoint) report.checkpoint = newestCheckpoint.toString('utf8');

  // What the auditor kept: the archive must reach as far and agree with it.
  for (const k of kept) {
    if (k.size > report.to_seq)
      fail(
        k.where,
        `the archive's log ends at seq ${report.to_seq}, before seq ${k.size} of a checkpoint you kept: the archive was cut short or rolled back`,
        report.to_seq + 1,
      );
    if (note && k.size > note.size)
      fail(
        k.where,
        `the archive's published checkpoint (size ${note.size}) is older than one you kept (size ${k.size}): it was rolled back`,
        note.size,
      );
    const found = atSize.get(k.size)!;
    if (k.root && !found.root.equals(k.root))
      fail(
        k.where,
        `fork: entries 1-${k.size} of the archive do not hash to the root of the checkpoint you kept`,
        k.size,
      );
    if (k.hash !== undefined && found.hash !== k.hash)
      fail(
        k.where,
        `fork: the archive's hash at seq ${k.size} is ${found.hash}, the checkpoint you kept says ${k.hash}`,
        k.size,
      );
  }

  // A fact id twice anywhere in the log: prefixes first, then a pass to confirm and name the seqs.
  const suspects = facts.collisions();
  if (suspects.size > 0) {
    const first = new Map<string, number>();
    for (const bundle of bundles) {
      const parsed = parseJson<BundleHeader>(bundle.key, (await source.get(bundle.key))!, 'the bundle');
      for (const raw of parsed.entries as { seq: number; record: SealedRecord }[]) {
        const id = raw.record.fact_id;
        if (!suspects.has(FactIds.prefix(id))) continue;
        const seen = first.get(id);
        if (seen !== undefined)
          fail(bundle.key, `fact ${id} is sealed twice: at seq ${seen} and at seq ${raw.seq}`, raw.seq);
        first.set(id, raw.seq);
      }
    }
  }
}

/**
 * Fact ids seen, as the first 8 bytes of their SHA-256 in one growing array (8 bytes per entry,
 * whatever the log's length); two equal prefixes are then confirmed (or not) by a second pass.
 */
class FactIds {
  private prefixes = new BigUint64Array(1024);
  private count = 0;

  static prefix(id: string): bigint {
    return sha256(Buffer.from(id, 'utf8')).readBigUInt64BE(0);
  }

  add(id: string): void {
    if (this.count === this.prefixes.length) {
      const bigger = new BigUint64Array(this.prefixes.length * 2);
      bigger.set(this.prefixes);
      this.prefixes = bigger;
    }
    this.prefixes[this.count++] = FactIds.prefix(id);
  }

  /** Prefixes seen more than once. */
  collisions(): Set<bigint> {
    const sorted = this.prefixes.subarray(0, this.count).sort();
    const found = new Set<bigint>();
    for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) found.add(sorted[i]!);
    return found;
  }
}

async function sameTile(
  read: (key: string) => Promise<Buffer | undefined>,
  key: string,
  hashes: Buffer,
): Promise<void> {
  const bytes = await read(key);
  if (bytes === undefined) fail(key, 'a tile of the log is missing');
  if (!bytes!.equals(hashes)) fail(key, "the tile is not the tree's hashes (altered)");
}

interface LogNote {
  size: number;
  root: Buffer;
  head: { seq: number; hash: string };
}

/** A signed log checkpoint of this tenant, signed by the public key; strict (C2SP signed-note). */
function readNote(where: string, bytes: Buffer, tenantId: string, pub32: Buffer): LogNote {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) fail(where, 'the checkpoint is not UTF-8');
  let body: ReturnType<typeof parseCheckpointBody>;
  let signed: ReturnType<typeof parseNote>;
  try {
    signed = parseNote(text);
    body = parseCheckpointBody(signed.body);
  } catch (error) {
    return fail(where, `not a signed checkpoint note: ${(error as Error).message}`);
  }
  const match = /^([^/]+)\/t\/(.+)$/.exec(body.origin);
  if (!match || match[2] !== tenantId)
    fail(
      where,
      `its origin ${JSON.stringify(body.origin)} is not tenant ${tenantId}'s log (<deployment>/t/${tenantId})`,
    );
  // Signed under the origin as key name (C2SP tlog-checkpoint).
  const name = body.origin;
  const keyId = ed25519KeyId(name, pub32);
  const ours = signed.signatures.filter((s) => s.name === name && s.keyId.equals(keyId));
  if (ours.length === 0)
    fail(where, `no signature by the public key (key name ${name}, key id ${keyId.toString('hex')})`);
  if (!ours.some((s) => verifyNoteSignature(signed.body, s, name, pub32)))
    fail(where, 'signature does not verify with the public key');
  const heads = body.extensions.filter((l) => l.startsWith('oc-chain-head '));
  let head: { seq: number; lastHash: string } | undefined;
  try {
    head = heads.length === 1 ? parseChainHead(heads[0]!) : undefined;
  } catch {
    head = undefined;
  }
  if (!head || head.seq !== body.size)
    fail(where, `it has no single chain head line \`oc-chain-head ${body.size} <hash>\``);
  return { size: body.size, root: body.root, head: { seq: head!.seq, hash: head!.lastHash } };
}

/** A checkpoint the auditor kept: a note (size and root) or an older JSON checkpoint (seq and hash). */
function readKept(
  kept: KeptCheckpoint,
  tenantId: string,
  publicKey: KeyObject,
  pub32: Buffer,
): { where: string; size: number; root?: Buffer; hash?: string } {
  if (kept.bytes[0] === 0x7b) {
    const cp = strictCheckpoint(kept.where, kept.bytes);
    checkSignature(kept.where, cp, publicKey);
    if (cp.tenant_id !== tenantId)
      fail(kept.where, `it is tenant ${String(cp.tenant_id)}'s checkpoint, not ${tenantId}'s`);
    if (typeof cp.seq !== 'number' || typeof cp.last_hash !== 'string')
      fail(kept.where, 'it has no seq and last_hash');
    return { where: kept.where, size: cp.seq as number, hash: cp.last_hash as string };
  }
  const n = readNote(kept.where, kept.bytes, tenantId, pub32);
  return { where: kept.where, size: n.size, root: n.root, hash: n.head.hash };
}

/**
 * An old JSON checkpoint, strictly: UTF-8, no key twice, exactly its canonical bytes (RFC 8785) and
 * one newline, a signature in RFC 4648 §4 base64 of 64 bytes.
 */
function strictCheckpoint(key: string, bytes: Buffer): Checkpoint {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) fail(key, 'the checkpoint is not UTF-8');
  const twice = duplicateKey(text);
  if (twice !== undefined) fail(key, `the checkpoint has the duplicate key ${JSON.stringify(twice)}`);
  const cp = parseJson<Checkpoint>(key, bytes, 'the checkpoint');
  if (typeof cp !== 'object' || cp === null || Array.isArray(cp))
    return fail(key, 'the checkpoint is not an object');
  if (`${canonicalize(cp)}\n` !== text)
    fail(key, 'the checkpoint is not its canonical bytes (RFC 8785 JSON and one newline, nothing else)');
  return cp;
}

/** The first object key that appears twice in one object of `text` (JSON.parse keeps the last silently). */
function duplicateKey(text: string): string | undefined {
  const stack: Set<string>[] = [];
  const token = /"(?:[^"\\]|\\.)*"|[{}[\]]/g;
  for (let m = token.exec(text); m; m = token.exec(text)) {
    const t = m[0];
    if (t === '{') stack.push(new Set());
    else if (t === '}') stack.pop();
    else if (t === '[' || t === ']') continue;
    else if (/^\s*:/.test(text.slice(token.lastIndex)) && stack.length > 0) {
      let name: string;
      try {
        name = JSON.parse(t) as string;
      } catch {
        return undefined; // not JSON: the parser says so
      }
      const keys = stack[stack.length - 1]!;
      if (keys.has(name)) return name;
      keys.add(name);
    }
  }
  return undefined;
}

function checkSignature(key: string, cp: Checkpoint, publicKey: KeyObject): void {
  if (cp.algorithm !== 'Ed25519') fail(key, `algorithm is ${JSON.stringify(cp.algorithm)}, not Ed25519`);
  if (typeof cp.signature !== 'string') return fail(key, 'the checkpoint has no signature');
  const { signature, ...statement } = cp;
  const message = canonicalize(statement);
  if (message === undefined) return fail(key, 'the checkpoint cannot be canonicalized');
  const bytes = unb64(signature);
  if (bytes === undefined || bytes.length !== 64)
    return fail(key, 'the signature is not base64 (RFC 4648 §4) of 64 bytes');
  const ok = verify(null, Buffer.from(message, 'utf8'), publicKey, bytes);
  if (!ok)
    fail(
      key,
      `signature does not verify with the public key (the checkpoint says it was signed by ${String(cp.key_id)})`,
      typeof cp.seq === 'number' ? cp.seq : undefined,
    );
}

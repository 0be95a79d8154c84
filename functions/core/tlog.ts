/**
 * The per-tenant Merkle log (issue 23), pure: RFC 6962 / RFC 9162 tree hashing and proofs, and the
 * C2SP tlog-tiles layout the archiver writes to S3 (https://c2sp.org/tlog-tiles).
 *
 * Sizes and indexes are JavaScript numbers (safe up to 2^53), so every bit operation below is done
 * with division and remainder: `>>` would cut them to 32 bits.
 */
import crypto from 'node:crypto';

export const HASH_SIZE = 32;
/** A tile holds 2^8 hashes: C2SP fixes the height at 8. */
export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
/** C2SP allows levels 0..63; with sizes below 2^53 only levels 0..6 ever hold a hash. */
const MAX_LEVEL = 63;

// One-shot hashing over a reused buffer: a tree hashes millions of 65-byte messages, and building a
// Hash object for each costs more than the SHA-256 itself. (`crypto.hash` is Node ≥ 20.12.)
const sha256: (data: Uint8Array) => Buffer = crypto.hash
  ? (data) => crypto.hash('sha256', data, 'buffer')
  : (data) => crypto.createHash('sha256').update(data).digest();
const scratch = Buffer.alloc(1 + 2 * HASH_SIZE);

/** RFC 6962 §2.1: the hash of one entry, SHA-256(0x00 ‖ data). */
export const leafHash = (data: Uint8Array): Buffer => {
  const message =
    data.length <= 2 * HASH_SIZE ? scratch.subarray(0, 1 + data.length) : Buffer.alloc(1 + data.length);
  message[0] = 0x00;
  message.set(data, 1);
  return sha256(message);
};
/** The text messages of `leafHashOfText` are encoded into (grown as needed, never shrunk). */
let textScratch = Buffer.allocUnsafe(4096);

/**
 * `leafHash` of a string's UTF-8 bytes, encoded straight behind the 0x00 in a reused buffer: the
 * archiver hashes every record's canonical text, and two fresh buffers per record (the bytes, then
 * the message) cost about as much as the SHA-256.
 */
export const leafHashOfText = (text: string): Buffer => {
  // A UTF-16 code unit is at most 3 UTF-8 bytes.
  const room = 1 + 3 * text.length;
  if (room > textScratch.length) textScratch = Buffer.allocUnsafe(Math.max(room, 2 * textScratch.length));
  textScratch[0] = 0x00;
  const written = textScratch.write(text, 1, 'utf8');
  return sha256(textScratch.subarray(0, 1 + written));
};
/** RFC 6962 §2.1: an interior node, SHA-256(0x01 ‖ left ‖ right). */
export const nodeHash = (left: Uint8Array, right: Uint8Array): Buffer => {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE)
    throw new RangeError('a node hash is 32 bytes');
  scratch[0] = 0x01;
  scratch.set(left, 1);
  scratch.set(right, 1 + HASH_SIZE);
  return sha256(scratch);
};
/** MTH({}) = SHA-256() — the root of the empty tree. */
export const EMPTY_ROOT: Buffer = sha256(Buffer.alloc(0));

const isIndex = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isHash = (h: unknown): h is Buffer => Buffer.isBuffer(h) && h.length === HASH_SIZE;
const pow256 = (level: number) => TILE_WIDTH ** level;
const isPowerOfTwo = (n: number) => n > 0 && 2 ** Math.floor(Math.log2(n)) === n;
/** The largest power of two strictly smaller than n (n ≥ 2): where RFC 6962 splits a tree. */
const splitPoint = (n: number): number => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};

/** The root of a perfect run of hashes (its length a power of two), pairwise. */
const perfectRoot = (hashes: Buffer[]): Buffer => {
  let row = hashes;
  while (row.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < row.length; i += 2) next.push(nodeHash(row[i]!, row[i + 1]!));
    row = next;
  }
  return row[0]!;
};

// ---------------------------------------------------------------------------------------------
// Tile paths

export class TilePathError extends Error {
  override name = 'TilePathError';
}

/** `tile/<L>/<N>[.p/<W>]`, N in 3-digit groups, all but the last prefixed `x` (C2SP tlog-tiles). */
export function tilePath(level: number, index: number, width: number = TILE_WIDTH): string {
  if (!isIndex(level) || level > MAX_LEVEL) throw new TilePathError(`bad tile level ${String(level)}`);
  if (!isIndex(index)) throw new TilePathError(`bad tile index ${String(index)}`);
  if (!isIndex(width) || width < 1 || width > TILE_WIDTH)
    throw new TilePathError(`bad tile width ${String(width)}`);
  const groups = [String(index % 1000).padStart(3, '0')];
  for (let n = Math.floor(index / 1000); n > 0; n = Math.floor(n / 1000)) {
    groups.unshift(`x${String(n % 1000).padStart(3, '0')}`);
  }
  return `tile/${level}/${groups.join('/')}${width === TILE_WIDTH ? '' : `.p/${width}`}`;
}

const TILE_PATH = /^tile\/(0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

/** The inverse of `tilePath`; anything but the canonical spelling throws. */
export function parseTilePath(path: string): { level: number; index: number; width: number } {
  const m = typeof path === 'string' ? TILE_PATH.exec(path) : null;
  if (!m) throw new TilePathError('not a tile path');
  const level = Number(m[1]);
  const index = Number(m[2]!.replace(/[x/]/g, ''));
  const width = m[3] === undefined ? TILE_WIDTH : Number(m[3]);
  const partialTooWide = m[3] !== undefined && width >= TILE_WIDTH;
  if (level > MAX_LEVEL || partialTooWide || !Number.isSafeInteger(index))
    throw new TilePathError('not a tile path');
  // Only one spelling per tile: `x000/067` or `.p/256` would name the same bytes twice.
  if (tilePath(level, index, width) !== path) throw new TilePathError('not a canonical tile path');
  return { level, index, width };
}

// ---------------------------------------------------------------------------------------------
// The right edge of the tile tree

export interface FullTile {
  level: number;
  index: number;
  /** 256 × 32 bytes. */
  hashes: Buffer;
}
export interface PartialTile extends FullTile {
  /** 1..255 hashes. */
  width: number;
}

export class TreeEdgeError extends Error {
  override name = 'TreeEdgeError';
}

/**
 * The right edge of the tile tree: per level, the hashes of its partial tile. That is all a run
 * needs to append, to write every tile it fills and the partial tiles it leaves, and to compute
 * the frontier and the root, without reading a tile back.
 */
export class TreeEdge {
  private constructor(
    private _size: number,
    /** levels[L] = the partial tile at level L (< 256 hashes). */
    private readonly levels: Buffer[][],
  ) {}

  static empty(): TreeEdge {
    return new TreeEdge(0, []);
  }

  get size(): number {
    return this._size;
  }

  /** Appends one leaf hash; returns the tiles that became full, lowest level first. */
  append(leaf: Buffer): FullTile[] {
    if (!isHash(leaf)) throw new TreeEdgeError('a leaf hash is 32 bytes');
    if (this._size >= Number.MAX_SAFE_INTEGER) throw new TreeEdgeError('tree full');
    this._size += 1;
    const full: FullTile[] = [];
    let carry: Buffer | undefined = leaf;
    for (let level = 0; carry; level++) {
      const row = (this.levels[level] ??= []);
      row.push(carry);
      carry = undefined;
      if (row.length === TILE_WIDTH) {
        full.push({
          level,
          index: Math.floor(this._size / pow256(level + 1)) - 1,
          hashes: Buffer.concat(row),
        });
        carry = perfectRoot(row);
        this.levels[level] = [];
      }
    }
    return full;
  }

  /** The partial tile of every level that has one, lowest level first. */
  partialTiles(): PartialTile[] {
    const out: PartialTile[] = [];
    this.levels.forEach((row, level) => {
      if (row.length > 0) {
        out.push({
          level,
          index: Math.floor(this._size / pow256(level + 1)),
          width: row.length,
          hashes: Buffer.concat(row),
        });
      }
    });
    return out;
  }

  /** The roots of the perfect subtrees that make up the tree, largest first (≤ 53 hashes). */
  frontier(): Buffer[] {
    const out: Buffer[] = [];
    for (let level = this.levels.length - 1; level >= 0; level--) {
      const row = this.levels[level]!;
      let at = 0;
      for (let bit = TILE_WIDTH / 2; bit >= 1; bit /= 2) {
        if (row.length - at >= bit) {
          out.push(perfectRoot(row.slice(at, at + bit)));
          at += bit;
        }
      }
    }
    return out;
  }

  /** RFC 6962 MTH of the whole tree; `EMPTY_ROOT` for size 0. */
  root(): Buffer {
    const f = this.frontier();
    if (f.length === 0) return EMPTY_ROOT;
    let root = f[f.length - 1]!;
    for (let i = f.length - 2; i >= 0; i--) root = nodeHash(f[i]!, root);
    return root;
  }

  /** size (8 bytes, big-endian), then per level a count byte and that many hashes. */
  encode(): Buffer {
    let top = this.levels.length;
    while (top > 0 && this.levels[top - 1]!.length === 0) top--;
    const parts: Buffer[] = [Buffer.alloc(8)];
    parts[0]!.writeBigUInt64BE(BigInt(this._size));
    for (let level = 0; level < top; level++) {
      const row = this.levels[level]!;
      parts.push(Buffer.from([row.length]), ...row);
    }
    return Buffer.concat(parts);
  }

  /** Strict inverse of `encode`: the counts must add up to the size, with nothing left over. */
  static decode(buf: Uint8Array): TreeEdge {
    if (!(buf instanceof Uint8Array)) throw new TreeEdgeError('tree edge: not bytes');
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (b.length < 8) throw new TreeEdgeError('tree edge: too short');
    const size = b.readBigUInt64BE(0);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new TreeEdgeError('tree edge: size too large');
    const levels: Buffer[][] = [];
    let at = 8;
    let total = 0;
    while (at < b.length) {
      const level = levels.length;
      if (level > MAX_LEVEL) throw new TreeEdgeError('tree edge: too many levels');
      const count = b[at]!;
      at += 1;
      if (at + count * HASH_SIZE > b.length) throw new TreeEdgeError('tree edge: truncated');
      const row: Buffer[] = [];
      for (let i = 0; i < count; i++, at += HASH_SIZE) row.push(Buffer.from(b.subarray(at, at + HASH_SIZE)));
      levels.push(row);
      total += count * pow256(level);
    }
    if (levels.length > 0 && levels[levels.length - 1]!.length === 0) {
      throw new TreeEdgeError('tree edge: empty top level');
    }
    if (BigInt(total) !== size) throw new TreeEdgeError('tree edge: counts do not add up to the size');
    return new TreeEdge(Number(size), levels);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading hashes from tiles

/** Returns the tile's bytes: exactly width × 32. */
export type TileReader = (level: number, index: number, width: number) => Promise<Buffer>;

/**
 * MTH(D[start:end]) for any range of a tree of `size`, from its tiles: a perfect aligned subtree is
 * one tile hash (or the root of a run of at most 128 hashes inside one tile); anything else splits
 * as RFC 6962 does. Tiles are read once per instance.
 */
export class TileHashes {
  private readonly tiles = new Map<string, Promise<Buffer>>();

  constructor(
    readonly size: number,
    private readonly read: TileReader,
  ) {
    if (!isIndex(size)) throw new RangeError('tree size must be a non-negative integer');
  }

  async subtree(start: number, end: number): Promise<Buffer> {
    if (!isIndex(start) || !isIndex(end) || start > end || end > this.size) {
      throw new RangeError(`range [${start}, ${end}) outside a tree of ${this.size}`);
    }
    return this.mth(start, end);
  }

  private async mth(start: number, end: number): Promise<Buffer> {
    const n = end - start;
    if (n === 0) return EMPTY_ROOT;
    if (isPowerOfTwo(n) && start % n === 0) return this.perfect(Math.log2(n), start / n);
    const k = splitPoint(n);
    const [left, right] = await Promise.all([this.mth(start, start + k), this.mth(start + k, end)]);
    return nodeHash(left, right);
  }

  /** The hash of the perfect subtree of height `height` at position `index` in its row. */
  private async perfect(height: number, index: number): Promise<Buffer> {
    const tileLevel = Math.floor(height / TILE_HEIGHT);
    const below = height - tileLevel * TILE_HEIGHT; // rows to hash inside the tile
    const span = 2 ** below;
    const first = index * span; // position of the first hash in the tile level's row
    const tileIndex = Math.floor(first / TILE_WIDTH);
    const tile = await this.tile(tileLevel, tileIndex);
    const at = first - tileIndex * TILE_WIDTH;
    const hashes: Buffer[] = [];
    for (let i = at; i < at + span; i++) hashes.push(tile.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
    return span === 1 ? Buffer.from(hashes[0]!) : perfectRoot(hashes);
  }

  private tile(level: number, index: number): Promise<Buffer> {
    const key = `${level}/${index}`;
    let tile = this.tiles.get(key);
    if (!tile) {
      // The tile as the tree of `size` has it: full, or as wide as the size reaches into it.
      const width = Math.min(TILE_WIDTH, Math.floor(this.size / pow256(level)) - index * TILE_WIDTH);
      tile = this.read(level, index, width).then((bytes) => {
        if (!Buffer.isBuffer(bytes) || bytes.length !== width * HASH_SIZE) {
          throw new RangeError(`tile ${tilePath(level, index, width)} is not ${width * HASH_SIZE} bytes`);
        }
        return bytes;
      });
      tile.catch(() => this.tiles.delete(key));
      this.tiles.set(key, tile);
    }
    return tile;
  }
}

/**
 * Tiles held in memory, as the archiver's S3 layout holds them: full tiles, and per tile position
 * the widest partial tile written. A partial tile of width W is served from any wider tile at the
 * same position (a tile only grows at its end), as C2SP lets a client fall back to the full tile.
 */
export class MemoryTiles {
  readonly objects = new Map<string, Buffer>();
  private readonly widest = new Map<string, Buffer>();

  put(tile: FullTile | PartialTile): void {
    const width = 'width' in tile ? tile.width : TILE_WIDTH;
    this.objects.set(tilePath(tile.level, tile.index, width), tile.hashes);
    const key = `${tile.level}/${tile.index}`;
    if ((this.widest.get(key)?.length ?? 0) < tile.hashes.length) this.widest.set(key, tile.hashes);
  }

  readonly reader: TileReader = async (level, index, width) => {
    const tile = this.widest.get(`${level}/${index}`);
    if (!tile || tile.length < width * HASH_SIZE)
      throw new RangeError(`no tile ${tilePath(level, index, width)}`);
    return tile.subarray(0, width * HASH_SIZE);
  };
}

// ---------------------------------------------------------------------------------------------
// Proofs (RFC 9162 §2.1.3, §2.1.4), as lists of subtree ranges whose MTHs are the proof

type Range = readonly [start: number, end: number];

/** PATH(m, D[0:n]) of RFC 6962 §2.1.1, leaf sibling first. */
function inclusionRanges(index: number, size: number): Range[] {
  if (!isIndex(index) || !isIndex(size) || index >= size) {
    throw new RangeError(`no leaf ${index} in a tree of ${size}`);
  }
  const out: Range[] = [];
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      out.push([lo + k, hi]);
      hi = lo + k;
    } else {
      out.push([lo, lo + k]);
      lo += k;
    }
  }
  return out.reverse();
}

/** PROOF(m, D[0:n]) of RFC 6962 §2.1.2 (SUBPROOF unrolled), in the RFC's order. */
function consistencyRanges(oldSize: number, newSize: number): Range[] {
  if (!isIndex(oldSize) || !isIndex(newSize) || oldSize > newSize) {
    throw new RangeError(`no consistency from ${oldSize} to ${newSize}`);
  }
  if (oldSize === 0 || oldSize === newSize) return [];
  // In absolute positions the old tree's end m never moves; the range [lo, hi) narrows around it.
  const m = oldSize;
  const out: Range[] = [];
  let lo = 0;
  let hi = newSize;
  let complete = true; // SUBPROOF's b: the old tree is still a complete subtree of the range
  while (m !== hi) {
    const k = splitPoint(hi - lo);
    if (m - lo <= k) {
      out.push([lo + k, hi]);
      hi = lo + k;
    } else {
      out.push([lo, lo + k]);
      lo += k;
      complete = false;
    }
  }
  if (!complete) out.push([lo, hi]);
  return out.reverse();
}

export async function inclusionProof(index: number, size: number, hashes: TileHashes): Promise<Buffer[]> {
  if (size > hashes.size) throw new RangeError(`tree of ${size} larger than the tiles' ${hashes.size}`);
  return Promise.all(inclusionRanges(index, size).map(([s, e]) => hashes.subtree(s, e)));
}

export async function consistencyProof(
  oldSize: number,
  newSize: number,
  hashes: TileHashes,
): Promise<Buffer[]> {
  if (newSize > hashes.size) throw new RangeError(`tree of ${newSize} larger than the tiles' ${hashes.size}`);
  return Promise.all(consistencyRanges(oldSize, newSize).map(([s, e]) => hashes.subtree(s, e)));
}

/** MTH(D[start:end]) over leaf hashes held in memory. */
function mthOfLeaves(leaves: readonly Buffer[], start: number, end: number): Buffer {
  const n = end - start;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leaves[start]!;
  const k = splitPoint(n);
  return nodeHash(mthOfLeaves(leaves, start, start + k), mthOfLeaves(leaves, start + k, end));
}

const checkPrefix = (leaves: readonly Buffer[], size: number) => {
  if (!isIndex(size) || size > leaves.length)
    throw new RangeError(`tree of ${size} beyond ${leaves.length} leaves`);
};

/** RFC 6962 MTH of the first `size` leaf hashes (all of them by default). */
export function rootFromLeaves(leaves: readonly Buffer[], size: number = leaves.length): Buffer {
  checkPrefix(leaves, size);
  return mthOfLeaves(leaves, 0, size);
}

export function inclusionProofFromLeaves(
  index: number,
  leaves: readonly Buffer[],
  size = leaves.length,
): Buffer[] {
  checkPrefix(leaves, size);
  return inclusionRanges(index, size).map(([s, e]) => mthOfLeaves(leaves, s, e));
}

export function consistencyProofFromLeaves(
  oldSize: number,
  newSize: number,
  leaves: readonly Buffer[],
): Buffer[] {
  checkPrefix(leaves, newSize);
  return consistencyRanges(oldSize, newSize).map(([s, e]) => mthOfLeaves(leaves, s, e));
}

// ---------------------------------------------------------------------------------------------
// Verification (RFC 9162 §2.1.3.2, §2.1.4.2): false on anything wrong, never a throw

const half = (n: number) => Math.floor(n / 2);
const odd = (n: number) => n % 2 === 1;
const validProof = (proof: unknown): proof is Buffer[] => Array.isArray(proof) && proof.every(isHash);

export function verifyInclusion(
  leaf: Buffer,
  index: number,
  size: number,
  proof: Buffer[],
  root: Buffer,
): boolean {
  if (!isHash(leaf) || !isHash(root) || !isIndex(index) || !isIndex(size) || !validProof(proof)) return false;
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && r.equals(root);
}

export function verifyConsistency(
  oldSize: number,
  newSize: number,
  proof: Buffer[],
  oldRoot: Buffer,
  newRoot: Buffer,
): boolean {
  if (!isIndex(oldSize) || !isIndex(newSize) || !validProof(proof) || !isHash(oldRoot) || !isHash(newRoot)) {
    return false;
  }
  if (oldSize > newSize) return false;
  if (oldSize === newSize) return proof.length === 0 && oldRoot.equals(newRoot);
  // Everything extends the empty tree, whose root is fixed.
  if (oldSize === 0) return proof.length === 0 && oldRoot.equals(EMPTY_ROOT);
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return fr.equals(oldRoot) && sr.equals(newRoot) && sn === 0;
}

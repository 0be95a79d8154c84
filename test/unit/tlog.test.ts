/**
 * The Merkle log core against published vectors (test/fixtures/tlog-vectors, each naming its
 * source): RFC 6962 hashing and proofs as Certificate Transparency, Trillian and Go's checksum
 * database compute them, C2SP tile paths and tile shapes; then properties over generated trees.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  consistencyProof,
  consistencyProofFromLeaves,
  EMPTY_ROOT,
  inclusionProof,
  inclusionProofFromLeaves,
  leafHash,
  MemoryTiles,
  nodeHash,
  parseTilePath,
  rootFromLeaves,
  TileHashes,
  tilePath,
  TreeEdge,
  verifyConsistency,
  verifyInclusion,
  type FullTile,
  type PartialTile,
  type TileReader,
} from '../../functions/core/tlog.js';

const vectors = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../fixtures/tlog-vectors/${name}`, import.meta.url), 'utf8')) as T;
const hex = (h: string) => Buffer.from(h, 'hex');
const b64 = (h: string) => Buffer.from(h, 'base64');
const flip = (proof: Buffer[], i: number, mask = 8) =>
  proof.map((h, j) => (j === i ? Buffer.from(h.map((b, k) => (k === 0 ? b ^ mask : b))) : h));

interface Rfc6962 {
  leaf_inputs: string[];
  root_hashes: string[];
  node_hashes: string[][];
  inclusion_proofs: { leaf: number; size: number; proof: string[] }[];
  consistency_proofs: { size1: number; size2: number; proof: string[] }[];
}
const rfc = vectors<Rfc6962>('rfc6962-merkle.json');
const rfcLeaves = rfc.leaf_inputs.map((h) => leafHash(hex(h)));
const rfcRoot = (size: number) => hex(rfc.root_hashes[size]!);

/** Leaf hashes of a larger tree, and its tiles as the archiver would have written them. */
const BIG = 70_000;
const bigLeaves = Array.from({ length: BIG }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
const bigTiles = new MemoryTiles();
const bigEdge = TreeEdge.empty();
const rootsAt = new Map<number, Buffer>();
/** The full tiles in the order append returned them, and the partial tiles of the tree of 256. */
const fullTiles: FullTile[] = [];
let partialAt256: PartialTile[] = [];
const CHECKED_SIZES = new Set([65_536, 65_537, BIG]);
for (const leaf of bigLeaves) {
  for (const tile of bigEdge.append(leaf)) {
    bigTiles.put(tile);
    fullTiles.push(tile);
  }
  if (CHECKED_SIZES.has(bigEdge.size)) rootsAt.set(bigEdge.size, bigEdge.root());
  if (bigEdge.size === 256) partialAt256 = bigEdge.partialTiles();
}
for (const tile of bigEdge.partialTiles()) bigTiles.put(tile);

describe('RFC 6962 hashing (transparency-dev/merkle vectors)', () => {
  it('gives the published root of every prefix of the 8-leaf tree, the empty one included', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe(rfc.root_hashes[0]);
    for (let size = 0; size <= 8; size++)
      expect(rootFromLeaves(rfcLeaves, size).toString('hex')).toBe(rfc.root_hashes[size]);
  });

  it('gives the published hash of every complete subtree', async () => {
    const tiles = new MemoryTiles();
    const edge = TreeEdge.empty();
    for (const leaf of rfcLeaves) edge.append(leaf);
    for (const tile of edge.partialTiles()) tiles.put(tile);
    const hashes = new TileHashes(8, tiles.reader);
    for (const [level, row] of rfc.node_hashes.entries()) {
      for (const [i, h] of row.entries()) {
        const span = 2 ** level;
        expect((await hashes.subtree(i * span, (i + 1) * span)).toString('hex')).toBe(h);
      }
    }
    expect(nodeHash(hex(rfc.node_hashes[0]![0]!), hex(rfc.node_hashes[0]![1]!)).toString('hex')).toBe(
      rfc.node_hashes[1]![0],
    );
  });

  it.each(rfc.inclusion_proofs)(
    'builds and checks the inclusion proof of leaf $leaf in a tree of $size',
    (v) => {
      const index = v.leaf - 1;
      const proof = v.proof.map(hex);
      expect(inclusionProofFromLeaves(index, rfcLeaves, v.size).map((h) => h.toString('hex'))).toEqual(
        v.proof,
      );
      const leaf = rfcLeaves[index]!;
      const root = rfcRoot(v.size);
      expect(verifyInclusion(leaf, index, v.size, proof, root)).toBe(true);
      // transparency-dev's corruptions, each of which must fail.
      const some = hex('abacaba000000000000000000000000000000000000000000060061e00123456');
      const bad: [number, number, Buffer[], Buffer, Buffer][] = [
        [index - 1, v.size, proof, root, leaf],
        [index + 1, v.size, proof, root, leaf],
        [index ^ 2, v.size, proof, root, leaf],
        [index, v.size * 2, proof, root, leaf],
        [index, Math.floor(v.size / 2), proof, root, leaf],
        [index, v.size, proof, root, leafHash(Buffer.from('WrongLeaf'))],
        [index, v.size, proof, EMPTY_ROOT, leaf],
        [index, v.size, proof, some, leaf],
        [index, v.size, [...proof, Buffer.alloc(0)], root, leaf],
        [index, v.size, [...proof, root], root, leaf],
        [index, v.size, [Buffer.alloc(0), ...proof], root, leaf],
        [index, v.size, [root, ...proof], root, leaf],
        ...proof.map((_, i): [number, number, Buffer[], Buffer, Buffer] => [
          index,
          v.size,
          flip(proof, i),
          root,
          leaf,
        ]),
      ];
      if (proof.length > 0) bad.push([index, v.size, proof.slice(0, -1), root, leaf]);
      if (proof.length > 1) bad.push([index, v.size, [proof[0]!, some, ...proof.slice(1)], root, leaf]);
      for (const [i, n, p, r, l] of bad) expect(verifyInclusion(l, i, n, p, r)).toBe(false);
    },
  );

  it.each(rfc.consistency_proofs)('builds and checks the consistency proof from $size1 to $size2', (v) => {
    const proof = v.proof.map(hex);
    expect(consistencyProofFromLeaves(v.size1, v.size2, rfcLeaves).map((h) => h.toString('hex'))).toEqual(
      v.proof,
    );
    const [r1, r2] = [rfcRoot(v.size1), rfcRoot(v.size2)];
    expect(verifyConsistency(v.size1, v.size2, proof, r1, r2)).toBe(true);
    if (proof.length === 0) return;
    const bad: [number, number, Buffer[], Buffer, Buffer][] = [
      [v.size1 - 1, v.size2, proof, r1, r2],
      [v.size1 + 1, v.size2, proof, r1, r2],
      [v.size1 ^ 2, v.size2, proof, r1, r2],
      [v.size1, v.size2 * 2, proof, r1, r2],
      [v.size1, Math.floor(v.size2 / 2), proof, r1, r2],
      [v.size1, v.size2, proof, Buffer.from('WrongRoot'), r2],
      [v.size1, v.size2, proof, r1, Buffer.from('WrongRoot')],
      [v.size1, v.size2, proof, r2, r1],
      [v.size1, v.size2, [], r1, r2],
      [v.size1, v.size2, [...proof, Buffer.alloc(0)], r1, r2],
      [v.size1, v.size2, [...proof, r1], r1, r2],
      [v.size1, v.size2, [...proof, r2], r1, r2],
      [v.size1, v.size2, [Buffer.alloc(0), ...proof], r1, r2],
      [v.size1, v.size2, [r1, ...proof], r1, r2],
      [v.size1, v.size2, [r2, ...proof], r1, r2],
      [v.size1, v.size2, [proof[0]!, ...proof], r1, r2],
      [v.size1, v.size2, proof.slice(0, -1), r1, r2],
      ...proof.map((_, i): [number, number, Buffer[], Buffer, Buffer] => [
        v.size1,
        v.size2,
        flip(proof, i, 16),
        r1,
        r2,
      ]),
    ];
    for (const [a, b, p, x, y] of bad) expect(verifyConsistency(a, b, p, x, y)).toBe(false);
  });

  it('refuses what cannot be consistent, and proves the empty and equal trees with nothing', () => {
    const [r1, r2] = [rfcRoot(1), rfcRoot(2)];
    expect(verifyConsistency(1, 0, [], r1, EMPTY_ROOT)).toBe(false);
    expect(verifyConsistency(2, 1, [], r2, r1)).toBe(false);
    expect(verifyConsistency(1, 2, [], r1, r2)).toBe(false);
    expect(verifyConsistency(1, 1, [], r1, r2)).toBe(false);
    expect(verifyConsistency(1, 1, [EMPTY_ROOT], r1, r1)).toBe(false);
    expect(verifyConsistency(0, 1, [EMPTY_ROOT], EMPTY_ROOT, r1)).toBe(false);
    expect(verifyConsistency(0, 1, [], r2, r1)).toBe(false); // the empty tree's root is fixed
    expect(verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)).toBe(true);
    expect(verifyConsistency(0, 5, [], EMPTY_ROOT, rfcRoot(5))).toBe(true);
    expect(verifyConsistency(3, 3, [], rfcRoot(3), rfcRoot(3))).toBe(true);
    expect(verifyInclusion(rfcLeaves[0]!, 0, 0, [], EMPTY_ROOT)).toBe(false);
    expect(verifyInclusion(rfcLeaves[0]!, 0, 1, [], rfcLeaves[0]!)).toBe(true);
  });

  it('never throws on junk: wrong types and sizes are simply false', () => {
    const junk = [undefined, null, -1, 1.5, Number.MAX_SAFE_INTEGER + 2, 'x', {}, [1]] as unknown[];
    for (const j of junk) {
      const n = j as number;
      const b = j as Buffer;
      expect(verifyInclusion(b, 0, 1, [], rfcRoot(1))).toBe(false);
      expect(verifyInclusion(rfcLeaves[0]!, n, 1, [], rfcRoot(1))).toBe(false);
      expect(verifyInclusion(rfcLeaves[0]!, 0, n, [], rfcRoot(1))).toBe(false);
      expect(verifyInclusion(rfcLeaves[0]!, 0, 1, j as Buffer[], rfcRoot(1))).toBe(false);
      expect(verifyConsistency(n, 2, [], rfcRoot(1), rfcRoot(2))).toBe(false);
      expect(verifyConsistency(1, 2, [b], rfcRoot(1), rfcRoot(2))).toBe(false);
      expect(verifyConsistency(1, 2, [], b, rfcRoot(2))).toBe(false);
    }
  });
});

describe('a real Certificate Transparency log (Argon 2020, from Go’s sumdb tests)', () => {
  const ct = vectors<{
    tree_size: number;
    sha256_root_hash: string;
    leaf_index: number;
    leaf_input: string;
    audit_path: string[];
    old_size: number;
    old_root: string;
    consistency: string[];
  }>('ct-argon2020.json');

  it('verifies the log’s inclusion proof for entry 10000 in a tree of 961,984,013', () => {
    const leaf = leafHash(b64(ct.leaf_input));
    const path = ct.audit_path.map(b64);
    expect(verifyInclusion(leaf, ct.leaf_index, ct.tree_size, path, b64(ct.sha256_root_hash))).toBe(true);
    expect(verifyInclusion(leaf, ct.leaf_index + 1, ct.tree_size, path, b64(ct.sha256_root_hash))).toBe(
      false,
    );
    expect(
      verifyInclusion(leaf, ct.leaf_index, ct.tree_size, flip(path, 29, 1), b64(ct.sha256_root_hash)),
    ).toBe(false);
  });

  it('verifies the log’s consistency proof from 3,654,490 entries', () => {
    const proof = ct.consistency.map(b64);
    const [oldRoot, newRoot] = [b64(ct.old_root), b64(ct.sha256_root_hash)];
    expect(verifyConsistency(ct.old_size, ct.tree_size, proof, oldRoot, newRoot)).toBe(true);
    expect(verifyConsistency(ct.old_size + 1, ct.tree_size, proof, oldRoot, newRoot)).toBe(false);
    expect(verifyConsistency(ct.old_size, ct.tree_size, flip(proof, 0, 1), oldRoot, newRoot)).toBe(false);
  });
});

describe('tile paths (C2SP tlog-tiles; Go’s sumdb/tlog table without its height)', () => {
  const paths = vectors<{
    c2sp: { index: number; n_path: string }[];
    go: {
      level?: number;
      index?: number;
      width?: number;
      height?: number;
      c2sp_path?: string;
      invalid?: string;
    }[];
  }>('tile-paths.json');

  it('spells the index in x-prefixed groups of three digits, as the spec’s example', () => {
    for (const v of paths.c2sp) {
      expect(tilePath(0, v.index)).toBe(`tile/0/${v.n_path}`);
      expect(parseTilePath(`tile/0/${v.n_path}`)).toEqual({ level: 0, index: v.index, width: 256 });
    }
    expect(tilePath(2, 0)).toBe('tile/2/000');
    expect(tilePath(0, 1000, 1)).toBe('tile/0/x001/000.p/1');
  });

  it('agrees with Go’s tile path table once the height is taken out', () => {
    for (const v of paths.go) {
      if (v.invalid !== undefined) {
        expect(() => parseTilePath(v.invalid!)).toThrow();
        continue;
      }
      const full = v.width === 2 ** v.height!;
      expect(tilePath(v.level!, v.index!, full ? 256 : v.width)).toBe(v.c2sp_path);
      expect(parseTilePath(v.c2sp_path!)).toEqual({
        level: v.level,
        index: v.index,
        width: full ? 256 : v.width,
      });
    }
  });

  it('accepts one spelling per tile and nothing else', () => {
    const bad = [
      'tile/0/x000/067', // leading zero group
      'tile/0/067.p/256',
      'tile/0/067.p/0',
      'tile/0/067.p/07',
      'tile/64/000',
      'tile/00/000',
      'tile/0/67',
      'tile/0/x067',
      '/tile/0/067',
      'tile/0/067/',
      'tile/entries/000',
      'tile/8/0/001',
      'tile/0/0670',
      'tile/-1/000',
    ];
    for (const p of bad) expect(() => parseTilePath(p)).toThrow();
    for (const [l, n, w] of [
      [-1, 0, 256],
      [64, 0, 256],
      [0, -1, 256],
      [0, 1.5, 256],
      [0, 0, 0],
      [0, 0, 257],
    ] as const) {
      expect(() => tilePath(l, n, w)).toThrow();
    }
  });
});

describe('TreeEdge', () => {
  const shapes = vectors<{
    tree_70000: { size: number; full: Record<string, number>; partial: { level: number; width: number }[] };
    tree_256: { size: number; full: Record<string, number>; partial: { level: number; width: number }[] };
  }>('tile-paths.json');

  it.each(['tree_70000', 'tree_256'] as const)('leaves the tiles C2SP describes for %s', (name) => {
    const shape = shapes[name];
    const full: Record<string, number> = {};
    // The tree was built once, above: its tiles up to this size, in the order append gave them.
    for (const t of fullTiles.filter((f) => (f.index + 1) * 256 ** (f.level + 1) <= shape.size)) {
      expect(t.index).toBe(full[t.level] ?? 0); // each level's full tiles come in order
      expect(t.hashes.length).toBe(8192);
      full[t.level] = (full[t.level] ?? 0) + 1;
    }
    expect(full).toEqual(shape.full);
    const partial = shape.size === BIG ? bigEdge.partialTiles() : partialAt256;
    expect(partial.map(({ level, width }) => ({ level, width }))).toEqual(shape.partial);
    // Lowest level first: the 256th level-0 tile comes before the level-1 tile it completes.
    expect(fullTiles.findIndex((t) => t.level === 1)).toBe(256);
  });

  it('has the root rootFromLeaves computes, at every size from 0 to 1,100 and at large sizes', () => {
    const edge = TreeEdge.empty();
    expect(edge.root()).toEqual(EMPTY_ROOT);
    for (let size = 1; size <= 1100; size++) {
      edge.append(bigLeaves[size - 1]!);
      expect(edge.root()).toEqual(rootFromLeaves(bigLeaves, size));
    }
    // One perfect subtree per set bit of the size.
    expect(edge.frontier().length).toBe((1100).toString(2).replace(/0/g, '').length);
    for (const [size, root] of rootsAt) expect(root).toEqual(rootFromLeaves(bigLeaves, size));
    expect(rootsAt.size).toBe(CHECKED_SIZES.size);
  });

  it('round-trips through its binary encoding, and the decoder refuses anything else', () => {
    const edge = TreeEdge.decode(bigEdge.encode());
    expect(edge.size).toBe(BIG);
    expect(edge.root()).toEqual(bigEdge.root());
    expect(edge.partialTiles()).toEqual(bigEdge.partialTiles());
    expect(TreeEdge.decode(TreeEdge.empty().encode()).size).toBe(0);
    expect(TreeEdge.empty().encode()).toEqual(Buffer.alloc(8));
    const good = bigEdge.encode();
    const sizeOff = Buffer.from(good);
    sizeOff.writeBigUInt64BE(BigInt(BIG + 1));
    const emptyTop = Buffer.concat([Buffer.alloc(8), Buffer.from([0])]);
    const huge = Buffer.alloc(8);
    huge.writeBigUInt64BE(2n ** 60n);
    for (const bad of [
      Buffer.alloc(7),
      good.subarray(0, -1),
      Buffer.concat([good, Buffer.from([0])]),
      sizeOff,
      emptyTop,
      huge,
    ]) {
      expect(() => TreeEdge.decode(bad)).toThrow();
    }
    // Appending after a decode carries on the same tree.
    const a = TreeEdge.decode(good);
    const extra = leafHash(Buffer.from('one more'));
    a.append(extra);
    expect(a.root()).toEqual(rootFromLeaves([...bigLeaves, extra]));
  });

  it('refuses a leaf hash that is not 32 bytes', () => {
    expect(() => TreeEdge.empty().append(Buffer.alloc(31))).toThrow();
  });
});

describe('TileHashes (hashes read from tiles) against the in-memory variants', () => {
  const big = new TileHashes(BIG, bigTiles.reader);

  it('computes MTH(D[start:end]) of any range, and the proofs, as the in-memory tree does', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 2100 })
          .chain((size) =>
            fc.tuple(
              fc.constant(size),
              fc.integer({ min: 0, max: size - 1 }),
              fc.integer({ min: 0, max: size }),
            ),
          ),
        async ([size, a, b]) => {
          const hashes = new TileHashes(size, bigTiles.reader);
          const [start, end] = a <= b ? [a, b] : [b, a];
          expect(await hashes.subtree(start, end)).toEqual(rootFromLeaves(bigLeaves.slice(start, end)));
          expect(await inclusionProof(a, size, hashes)).toEqual(inclusionProofFromLeaves(a, bigLeaves, size));
          expect(await consistencyProof(b, size, hashes)).toEqual(
            consistencyProofFromLeaves(b, size, bigLeaves),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('proves from three tile levels: beyond 65,536 leaves', async () => {
    expect(await big.subtree(0, BIG)).toEqual(rootsAt.get(BIG));
    const at = new TileHashes(65_537, bigTiles.reader);
    expect(await inclusionProof(65_536, 65_537, at)).toEqual(
      inclusionProofFromLeaves(65_536, bigLeaves, 65_537),
    );
    expect(await consistencyProof(65_536, BIG, big)).toEqual(
      consistencyProofFromLeaves(65_536, BIG, bigLeaves),
    );
    for (const [index, oldSize] of [
      [0, 1],
      [65_535, 65_536],
      [69_999, 65_537],
      [31_337, 1_000],
    ] as const) {
      const proof = await inclusionProof(index, BIG, big);
      expect(verifyInclusion(bigLeaves[index]!, index, BIG, proof, rootsAt.get(BIG)!)).toBe(true);
      const old = await new TileHashes(oldSize, bigTiles.reader).subtree(0, oldSize);
      expect(
        verifyConsistency(oldSize, BIG, await consistencyProof(oldSize, BIG, big), old, rootsAt.get(BIG)!),
      ).toBe(true);
    }
  });

  it('reads a handful of tiles for a proof, each once', async () => {
    const reads: string[] = [];
    const counting: TileReader = (l, n, w) => {
      reads.push(tilePath(l, n, w));
      return bigTiles.reader(l, n, w);
    };
    const hashes = new TileHashes(BIG, counting);
    await inclusionProof(12_345, BIG, hashes);
    await inclusionProof(12_346, BIG, hashes);
    expect(new Set(reads).size).toBe(reads.length);
    expect(reads.length).toBeLessThanOrEqual(6);
    expect(reads).toContain('tile/0/048'); // the leaf's own tile
  });

  it('refuses a tile of the wrong length, and ranges outside the tree', async () => {
    const short = new TileHashes(300, async (l, n, w) => Buffer.alloc(Math.max(0, w - 1) * 32));
    await expect(short.subtree(0, 1)).rejects.toThrow(/not 8192 bytes/);
    await expect(big.subtree(0, BIG + 1)).rejects.toThrow(RangeError);
    await expect(big.subtree(5, 4)).rejects.toThrow(RangeError);
    await expect(inclusionProof(BIG, BIG, big)).rejects.toThrow(RangeError);
    await expect(consistencyProof(2, 1, big)).rejects.toThrow(RangeError);
    await expect(inclusionProof(0, BIG + 1, big)).rejects.toThrow(RangeError);
  });
});

describe('properties: every proof verifies, and a flipped bit does not', () => {
  it('inclusion', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 1100 })
          .chain((size) =>
            fc.tuple(
              fc.constant(size),
              fc.integer({ min: 0, max: size - 1 }),
              fc.nat(),
              fc.integer({ min: 0, max: 255 }),
            ),
          ),
        ([size, index, which, bit]) => {
          const proof = inclusionProofFromLeaves(index, bigLeaves, size);
          const root = rootFromLeaves(bigLeaves, size);
          expect(verifyInclusion(bigLeaves[index]!, index, size, proof, root)).toBe(true);
          if (proof.length === 0) return;
          const bad = proof.map((h) => Buffer.from(h));
          const h = bad[which % bad.length]!;
          h[bit >> 3]! ^= 1 << (bit & 7);
          expect(verifyInclusion(bigLeaves[index]!, index, size, bad, root)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('consistency', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 2, max: 1100 })
          .chain((size) =>
            fc.tuple(
              fc.integer({ min: 1, max: size - 1 }),
              fc.constant(size),
              fc.nat(),
              fc.integer({ min: 0, max: 255 }),
            ),
          ),
        ([oldSize, size, which, bit]) => {
          const proof = consistencyProofFromLeaves(oldSize, size, bigLeaves);
          const [r1, r2] = [rootFromLeaves(bigLeaves, oldSize), rootFromLeaves(bigLeaves, size)];
          expect(verifyConsistency(oldSize, size, proof, r1, r2)).toBe(true);
          const bad = proof.map((h) => Buffer.from(h));
          const h = bad[which % bad.length]!;
          h[bit >> 3]! ^= 1 << (bit & 7);
          expect(verifyConsistency(oldSize, size, bad, r1, r2)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});

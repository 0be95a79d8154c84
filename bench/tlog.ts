/**
 * Proof benchmark (issue 23): inclusion proofs per second and the size of a `tlog-proof` file, at
 * tree sizes 10^4, 10^5 and 10^6, from tiles held in memory (what the proof endpoint does after
 * fetching its tiles, without S3's latency). Each proof starts from a cold `TileHashes`, as one
 * request would, so it reads and hashes its tiles afresh; the tree is built with `TreeEdge`, as the
 * archiver builds it, and the proof file carries a real checkpoint note signed by the log and
 * cosigned by one witness (Ed25519).
 *
 *   npx tsx bench/tlog.ts     # alone; `npm run bench` runs it too
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import path from 'node:path';
import {
  checkpointBody,
  formatChainHead,
  formatNote,
  formatTlogProof,
  rawEd25519,
  signCosignature,
  signNote,
} from '../functions/core/signed-note.js';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  MemoryTiles,
  TileHashes,
  TreeEdge,
  verifyInclusion,
} from '../functions/core/tlog.js';

export interface TlogRun {
  size: number;
  /** Appending every leaf hash to a TreeEdge and keeping the tiles it fills. */
  buildMs: number;
  proofsPerSec: number;
  /** Bytes of a tlog-proof file: mean and largest over the sampled leaves. */
  proofBytesMean: number;
  proofBytesMax: number;
  /** Hashes in the inclusion path (⌈log2 size⌉ at most). */
  proofHashesMax: number;
  consistencyPerSec: number;
}

const ORIGIN = 'bench/t/tenant1';

/** A stand-in record of the size of a real one (≈ 300 bytes of JCS). */
const record = (i: number) =>
  Buffer.from(
    `{"at":"2026-01-01T00:00:00.000Z","decision":"allow","event_id":"00000000-0000-4000-8000-${String(i).padStart(12, '0')}","fact_id":"10000000-0000-4000-8000-${String(i).padStart(12, '0')}","kind":"toolcall.decided","policy_version":"p-1","reason":"policy allow","seq":${i + 1},"tenant_id":"tenant1","v":1}`,
  );

export async function measureTlogOne(size: number, samples = 2_000): Promise<TlogRun> {
  const log = generateKeyPairSync('ed25519');
  const witness = generateKeyPairSync('ed25519');
  const tiles = new MemoryTiles();
  const edge = TreeEdge.empty();
  let t = performance.now();
  for (let i = 0; i < size; i++) for (const tile of edge.append(leafHash(record(i)))) tiles.put(tile);
  for (const tile of edge.partialTiles()) tiles.put(tile);
  const buildMs = performance.now() - t;

  const root = edge.root();
  const body = checkpointBody({
    origin: ORIGIN,
    size,
    root,
    extensions: [formatChainHead(size, leafHash(Buffer.from('chain head')).toString('hex'))],
  });
  const note = formatNote(body, [
    await signNote(body, ORIGIN, rawEd25519(log.publicKey), async (m) => sign(null, m, log.privateKey)),
    await signCosignature(
      body,
      'witness.example/w1',
      rawEd25519(witness.publicKey),
      1_767_225_600,
      async (m) => sign(null, m, witness.privateKey),
    ),
  ]);

  // Spread the sampled leaves over the whole tree, the last one included (the right edge's paths).
  const indexes = Array.from({ length: samples }, (_, k) =>
    Math.min(size - 1, Math.floor((k * size) / (samples - 1))),
  );
  let bytes = 0;
  let maxBytes = 0;
  let maxHashes = 0;
  t = performance.now();
  for (const index of indexes) {
    const proof = await inclusionProof(index, size, new TileHashes(size, tiles.reader));
    const file = formatTlogProof({ index, proof, checkpointNote: note });
    bytes += file.length;
    maxBytes = Math.max(maxBytes, file.length);
    maxHashes = Math.max(maxHashes, proof.length);
  }
  const proofMs = performance.now() - t;

  // Sanity, outside the timing: a sampled proof verifies.
  const check = indexes[samples >> 1]!;
  const proof = await inclusionProof(check, size, new TileHashes(size, tiles.reader));
  if (!verifyInclusion(leafHash(record(check)), check, size, proof, root))
    throw new Error('proof did not verify');

  t = performance.now();
  const olds = indexes.slice(0, 200).map((i) => Math.max(1, i));
  for (const old of olds) await consistencyProof(old, size, new TileHashes(size, tiles.reader));
  const consistencyMs = performance.now() - t;

  return {
    size,
    buildMs: Math.round(buildMs),
    proofsPerSec: Math.round((samples / proofMs) * 1000),
    proofBytesMean: Math.round(bytes / samples),
    proofBytesMax: maxBytes,
    proofHashesMax: maxHashes,
    consistencyPerSec: Math.round((olds.length / consistencyMs) * 1000),
  };
}

export async function measureTlog(sizes = [10_000, 100_000, 1_000_000]): Promise<TlogRun[]> {
  const runs: TlogRun[] = [];
  for (const size of sizes) runs.push(await measureTlogOne(size));
  return runs;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  console.log(JSON.stringify(await measureTlog(), null, 2));
}

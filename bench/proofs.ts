/**
 * Proof benchmark (issue 23): proofs per second through the proof route's own code
 * (store/log-proofs.ts: the checkpoint GET, the tiles through `TileHashes` and the cache, the
 * inclusion proof, its check against the root, the tlog-proof file), the S3 GETs one proof costs
 * and the size of a proof file, for a log of 100,000 entries (quick: 20,000) written as the archiver
 * writes it (full tiles, partial tiles, a signed checkpoint note with a cosignature).
 *
 * The objects are in memory, counted per GET: the figure is the route's CPU path; in AWS each GET
 * that is not cached adds an S3 round trip (about 10-30 ms, in parallel with nothing: the reads
 * are sequential), which the "GETs per proof" figure prices.
 *
 *   npx tsx bench/proofs.ts [--quick]     # alone; `npm run bench` runs it too
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { logKeys } from '../functions/core/archive.js';
import { canon, type SealedRecord } from '../functions/core/evidence.js';
import {
  checkpointBody,
  formatNote,
  rawEd25519,
  signCosignature,
  signNote,
} from '../functions/core/signed-note.js';
import { leafHash, TreeEdge } from '../functions/core/tlog.js';
import { LogProofs, TileCache, type ProvableFact } from '../functions/store/log-proofs.js';

export interface ProofBench {
  entries: number;
  /** Cold container (empty tile cache): one proof at a time. */
  coldPerSec: number;
  coldGetsPerProof: number;
  /** Warm container (the route's tile cache kept between requests). */
  warmPerSec: number;
  warmGetsPerProof: number;
  /** Bytes of one fact's .tlog-proof file (the record, ~17 hashes, the note with a cosignature). */
  proofBytes: number;
  /** Bytes of the whole JSON answer for one fact. */
  answerBytes: number;
}

const TENANT = 'tenant1';

function record(seq: number): SealedRecord {
  return {
    v: 1,
    tenant_id: TENANT,
    kind: 'toolcall.decided',
    event_id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    fact_id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}:decided`,
    at: '2026-01-01T00:00:00.000Z',
    decision: 'allow',
    reason: 'allowed by policy slack-default',
    policy_version: 'sha256:' + 'ab'.repeat(32),
    request: {
      agent_id: 'agent-1',
      tool: 'slack',
      action: 'msg.post',
      params: { channel: '#general', text: 'Hello' },
    },
    seq,
  } as SealedRecord;
}

export async function measureProofs(options: { entries: number; proofs?: number }): Promise<ProofBench> {
  const { entries } = options;
  const samples = options.proofs ?? 300;
  const objects = new Map<string, Buffer>();
  let gets = 0;
  const store = {
    get: (key: string) => {
      gets += 1;
      return Promise.resolve(objects.get(key));
    },
  };
  // The log as the archiver leaves it: every full tile, the partial tiles, the signed note.
  const edge = TreeEdge.empty();
  for (let seq = 1; seq <= entries; seq++)
    for (const tile of edge.append(leafHash(Buffer.from(canon(record(seq)), 'utf8'))))
      objects.set(logKeys.tile(TENANT, tile.level, tile.index), tile.hashes);
  for (const tile of edge.partialTiles())
    objects.set(logKeys.tile(TENANT, tile.level, tile.index, tile.width), tile.hashes);
  const log = generateKeyPairSync('ed25519').privateKey;
  const witness = generateKeyPairSync('ed25519').privateKey;
  const body = checkpointBody({
    origin: `local/t/${TENANT}`,
    size: entries,
    root: edge.root(),
    extensions: [`oc-chain-head ${entries} ${'c'.repeat(64)}`],
  });
  const note = formatNote(body, [
    await signNote(body, 'local', rawEd25519(log), (m) => Promise.resolve(sign(null, m, log))),
    await signCosignature(body, 'witness.example/oc', rawEd25519(witness), 1_767_225_600, (m) =>
      Promise.resolve(sign(null, m, witness)),
    ),
  ]);
  objects.set(logKeys.checkpoint(TENANT), Buffer.from(note, 'utf8'));

  // Spread over the whole log (a fixed stride, so every run asks for the same leaves).
  const seqs = Array.from(
    { length: samples },
    (_, i) => 1 + Math.floor(((i * 7919) % samples) * (entries / samples)),
  );
  const fact = (seq: number): ProvableFact => ({
    seq,
    fact_id: `f-${seq}`,
    kind: 'toolcall.decided',
    record: record(seq),
  });

  const run = async (proofsFor: () => LogProofs) => {
    gets = 0;
    const start = process.hrtime.bigint();
    let last: Awaited<ReturnType<LogProofs['forFacts']>> | undefined;
    for (const seq of seqs) last = await proofsFor().forFacts(TENANT, [fact(seq)]);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    return { perSec: Math.round((samples / ms) * 1000), getsPerProof: gets / samples, last };
  };
  const cold = await run(() => new LogProofs(store, new TileCache()));
  const shared = new LogProofs(store, new TileCache());
  await run(() => shared); // fills the container's cache
  const warm = await run(() => shared);
  if (cold.last?.status !== 'proved') throw new Error('bench: no proof');
  const one = cold.last.facts[0]!;
  const answer = JSON.stringify({
    event_id: record(one.seq).event_id,
    tenant_id: TENANT,
    checkpoint: { origin: `local/t/${TENANT}`, size: entries, note },
    facts: [one],
  });
  return {
    entries,
    coldPerSec: cold.perSec,
    coldGetsPerProof: Math.round(cold.getsPerProof * 10) / 10,
    warmPerSec: warm.perSec,
    warmGetsPerProof: Math.round(warm.getsPerProof * 10) / 10,
    proofBytes: Buffer.byteLength(one.proof),
    answerBytes: Buffer.byteLength(answer),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const quick = process.argv.includes('--quick');
  measureProofs({ entries: quick ? 20_000 : 100_000 })
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
}

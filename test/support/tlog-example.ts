/**
 * The worked example of docs/auditors.md ("The log's formats, byte by byte"): a 3-leaf tenant log
 * built by the core with fixed keys, so the guide shows bytes the code really writes (a unit test
 * holds the guide to this output, and Go's verifier checks its proof file).
 *
 * Regenerate the block after a format change: `npx tsx test/support/tlog-example.ts`.
 */
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { canon, GENESIS, sealFacts, type FactRecord } from '../../functions/core/evidence.js';
import {
  checkpointBody,
  ed25519KeyId,
  formatChainHead,
  formatNote,
  formatTlogProof,
  rawEd25519,
  signCosignature,
  signNote,
  verifierKey,
} from '../../functions/core/signed-note.js';
import {
  inclusionProofFromLeaves,
  leafHash,
  nodeHash,
  rootFromLeaves,
  TreeEdge,
} from '../../functions/core/tlog.js';

export const EXAMPLE_ORIGIN = 'local/t/tenant1';
export const EXAMPLE_WITNESS = 'witness.example/w1';
const TIMESTAMP = 1_767_225_600; // 2026-01-01T00:00:00Z

/** An Ed25519 key from a fixed seed: SHA-256 of a label, so anyone can rebuild the example. */
const seeded = (label: string): KeyObject =>
  createPrivateKey({
    key: Buffer.concat([
      Buffer.from('302e020100300506032b657004220420', 'hex'),
      createHash('sha256').update(label).digest(),
    ]),
    format: 'der',
    type: 'pkcs8',
  });

export interface TlogExample {
  /** The fenced block the guide shows. */
  text: string;
  vkey: string;
  witnessVkey: string;
  /** The third record's bytes (leaf 2) and its proof file. */
  record: Buffer;
  proof: string;
}

export async function tlogExample(): Promise<TlogExample> {
  const logKey = seeded('openclause docs example log key');
  const witnessKey = seeded('openclause docs example witness key');
  const logPub = rawEd25519(createPublicKey(logKey));
  const witnessPub = rawEd25519(createPublicKey(witnessKey));
  const at = (i: number) => `2026-01-01T00:00:0${i}.000Z`;
  const facts: FactRecord[] = [0, 1, 2].map((i) => ({
    v: 1,
    tenant_id: 'tenant1',
    kind: i === 0 ? 'toolcall.decided' : i === 1 ? 'toolcall.executed' : 'execution.completed',
    event_id: '00000000-0000-4000-8000-000000000001',
    fact_id: `10000000-0000-4000-8000-00000000000${i + 1}`,
    at: at(i),
  }));
  const entries = sealFacts(GENESIS, facts);
  const records = entries.map((e) => Buffer.from(canon(e.record), 'utf8'));
  const leaves = records.map(leafHash);
  const edge = TreeEdge.empty();
  leaves.forEach((l) => edge.append(l));
  const [tile] = edge.partialTiles();
  const n01 = nodeHash(leaves[0]!, leaves[1]!);
  const root = rootFromLeaves(leaves);
  const body = checkpointBody({
    origin: EXAMPLE_ORIGIN,
    size: 3,
    root,
    extensions: [formatChainHead(3, entries[2]!.hash)],
  });
  const signer = (k: KeyObject) => async (m: Buffer) => sign(null, m, k);
  const note = formatNote(body, [
    await signNote(body, EXAMPLE_ORIGIN, logPub, signer(logKey)),
    await signCosignature(body, EXAMPLE_WITNESS, witnessPub, TIMESTAMP, signer(witnessKey)),
  ]);
  const proof = formatTlogProof({
    index: 2,
    proof: inclusionProofFromLeaves(2, leaves),
    checkpointNote: note,
  });
  const vkey = verifierKey(EXAMPLE_ORIGIN, logPub);
  const witnessVkey = verifierKey(EXAMPLE_WITNESS, witnessPub, 0x04);
  const hex = (b: Buffer) => b.toString('hex');
  const text = [
    ...records.map((r, i) => `leaf ${i} = JCS(record seq ${i + 1}) = ${r.toString('utf8')}`),
    '',
    ...leaves.map((l, i) => `L${i} = SHA-256(00 ‖ leaf ${i})  = ${hex(l)}`),
    `N01 = SHA-256(01 ‖ L0 ‖ L1) = ${hex(n01)}`,
    `root = SHA-256(01 ‖ N01 ‖ L2) = ${hex(root)}   (base64 ${root.toString('base64')})`,
    '',
    `tile/0/000.p/3 (${tile!.hashes.length} bytes) = L0 ‖ L1 ‖ L2; no full tile yet`,
    'frontier (roots of the perfect subtrees, largest first) = [N01, L2]',
    '',
    `log public key (hex)   ${hex(logPub)}`,
    `key id = SHA-256("${EXAMPLE_ORIGIN}" ‖ 0A ‖ 01 ‖ key)[:4] = ${hex(ed25519KeyId(EXAMPLE_ORIGIN, logPub))}`,
    `vkey                   ${vkey}`,
    `witness vkey (type 04) ${witnessVkey}`,
    '',
    '--- <log prefix>/checkpoint ---',
    note.trimEnd(),
    '',
    '--- seq-3.tlog-proof (leaf index 2) ---',
    proof.trimEnd(),
  ].join('\n');
  return { text, vkey, witnessVkey, record: records[2]!, proof };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log((await tlogExample()).text);
}

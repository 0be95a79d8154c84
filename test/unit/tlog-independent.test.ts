/**
 * Deliverable 7 of issue 23: another codebase judges what ours writes. Go's checksum-database
 * packages (Debian's golang-golang-x-mod-dev, through test/support/go-verify) read the tiles,
 * checkpoints, cosignatures, consistency proofs and tlog-proof files our core produces, laid out
 * in a directory as the archiver lays them out under a tenant's S3 prefix, and must accept them;
 * a tampered tile, a rolled-back or forked log and a proof for another record must fail there too.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  checkpointBody,
  formatChainHead,
  formatNote,
  formatTlogProof,
  rawEd25519,
  signCosignature,
  signNote,
  verifierKey,
} from '../../functions/core/signed-note.js';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  MemoryTiles,
  TileHashes,
  tilePath,
  TreeEdge,
} from '../../functions/core/tlog.js';
import { buildGoVerifier, runGoVerifier, writeTiles } from '../support/go-verify.js';
import { EXAMPLE_ORIGIN, tlogExample } from '../support/tlog-example.js';

const ORIGIN = 'local/t/acme';
const WITNESS = 'witness.local/w1';
const signer = (key: KeyObject) => async (m: Buffer) => sign(null, m, key);
const log = generateKeyPairSync('ed25519');
const witness = generateKeyPairSync('ed25519');
const logKey = rawEd25519(log.publicKey);
const witnessKey = rawEd25519(witness.publicKey);
const VKEY = verifierKey(ORIGIN, logKey);
const WITNESS_VKEY = verifierKey(WITNESS, witnessKey, 0x04);

/** Record i's canonical bytes stand in for the chain's record at seq i+1. */
const record = (i: number, fork = -1) =>
  Buffer.from(JSON.stringify({ fact_id: `f-${i}${i === fork ? '-forked' : ''}`, seq: i + 1 }));
const chainHash = (size: number) => leafHash(Buffer.from(`chain ${size}`)).toString('hex');

/** A tenant's log as the archiver would publish it, one checkpoint per run, into `dir`. */
class LogWriter {
  readonly edge = TreeEdge.empty();
  readonly tiles = new MemoryTiles();
  constructor(
    readonly dir: string,
    private readonly fork = -1,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  async publish(size: number): Promise<string> {
    while (this.edge.size < size) {
      const full = this.edge.append(leafHash(record(this.edge.size, this.fork)));
      full.forEach((t) => this.tiles.put(t));
      writeTiles(this.dir, full);
    }
    const partial = this.edge.partialTiles();
    partial.forEach((t) => this.tiles.put(t));
    writeTiles(this.dir, partial);
    const body = checkpointBody({
      origin: ORIGIN,
      size,
      root: this.edge.root(),
      extensions: [formatChainHead(size, chainHash(size))],
    });
    const note = formatNote(body, [
      await signNote(body, ORIGIN, logKey, signer(log.privateKey)),
      await signCosignature(body, WITNESS, witnessKey, 1_760_000_000 + size, signer(witness.privateKey)),
    ]);
    writeFileSync(path.join(this.dir, 'checkpoint'), note);
    return note;
  }
}

const tmp = mkdtempSync(path.join(process.env.OC_TEST_TMP ?? os.tmpdir(), 'tlog-go-'));
const file = (name: string, data: string | Buffer) => {
  const f = path.join(tmp, name);
  writeFileSync(f, data);
  return f;
};

const SIZES = [5, 300, 70_000] as const;
const main = new LogWriter(path.join(tmp, 'log'));
const kept: Record<number, string> = {};
const consistency: Record<number, string> = {};
const proofs: { index: number; proof: string; record: string }[] = [];

beforeAll(async () => {
  buildGoVerifier(); // fails with the install line when Go is missing
  for (const size of SIZES) kept[size] = file(`kept-${size}.checkpoint`, await main.publish(size));
  const hashes = new TileHashes(main.edge.size, main.tiles.reader);
  for (const old of SIZES.slice(0, -1)) {
    consistency[old] = file(
      `consistency-${old}.txt`,
      (await consistencyProof(old, 70_000, hashes)).map((h) => `${h.toString('base64')}\n`).join(''),
    );
  }
  const note = readFileSync(kept[70_000]!, 'utf8');
  for (const index of [0, 255, 256, 65_535, 65_536, 69_999]) {
    const proof = formatTlogProof({
      index,
      proof: await inclusionProof(index, 70_000, hashes),
      checkpointNote: note,
    });
    proofs.push({
      index,
      proof: file(`p-${index}.tlog-proof`, proof),
      record: file(`r-${index}.json`, record(index)),
    });
  }
});

describe('Go’s sumdb/tlog and sumdb/note judge our log (independent verifier)', () => {
  it('accepts the checkpoint, its cosignature, the tiles, both kept checkpoints and every proof file', () => {
    const result = runGoVerifier({
      dir: main.dir,
      origin: ORIGIN,
      vkey: VKEY,
      witnesses: [WITNESS_VKEY],
      old: SIZES.slice(0, -1).map((s) => ({ checkpoint: kept[s]!, proof: consistency[s] })),
      proofs: proofs.map(({ proof, record }) => ({ proof, record })),
    });
    expect(result).toEqual({
      code: 0,
      lines: [
        ...proofs.map((p) => `ok proof index=${p.index} size=70000`),
        `ok checkpoint size=70000 root=${main.edge.root().toString('base64')}`,
        'ok consistent old=5 new=70000',
        'ok consistent old=300 new=70000',
      ],
    });
  });

  it('checks a proof file with nothing but the file, the record and the log’s vkey', async () => {
    const hashes = new TileHashes(300, main.tiles.reader);
    const proof = formatTlogProof({
      index: 299,
      proof: await inclusionProof(299, 300, hashes),
      extra: Buffer.from('seq 300'),
      checkpointNote: readFileSync(kept[300]!, 'utf8'),
    });
    const r = runGoVerifier({
      origin: ORIGIN,
      vkey: VKEY,
      proofs: [{ proof: file('p-299.tlog-proof', proof), record: file('r-299.json', record(299)) }],
    });
    expect(r).toEqual({ code: 0, lines: ['ok proof index=299 size=300'] });
  });

  it('refuses a proof for another record, under another key, or without the required witness', () => {
    const p = proofs[0]!;
    const other = runGoVerifier({
      origin: ORIGIN,
      vkey: VKEY,
      proofs: [{ proof: p.proof, record: proofs[1]!.record }],
    });
    expect(other.code).toBe(1);
    expect(other.lines.at(-1)).toMatch(/^FAIL proof p-0.tlog-proof: /);
    const stranger = verifierKey(ORIGIN, rawEd25519(generateKeyPairSync('ed25519').publicKey));
    const unknown = runGoVerifier({ origin: ORIGIN, vkey: stranger, proofs: [p] });
    expect(unknown.lines.at(-1)).toMatch(/^FAIL proof p-0.tlog-proof checkpoint: /);
    const w2 = verifierKey('witness.local/w2', rawEd25519(generateKeyPairSync('ed25519').publicKey), 0x04);
    const unwitnessed = runGoVerifier({ origin: ORIGIN, vkey: VKEY, witnesses: [w2], proofs: [p] });
    expect(unwitnessed.lines.at(-1)).toBe(
      'FAIL proof p-0.tlog-proof checkpoint: no cosignature by witness.local/w2',
    );
  });

  it('catches a tampered tile, on the right edge and deep inside', () => {
    for (const tile of [tilePath(0, 273, 112), tilePath(0, 0)]) {
      const copy = path.join(tmp, `tampered-${tile.replace(/\W/g, '_')}`);
      cpSync(main.dir, copy, { recursive: true });
      const bytes = readFileSync(path.join(copy, tile));
      bytes[40]! ^= 1;
      writeFileSync(path.join(copy, tile), bytes);
      const r = runGoVerifier({ dir: copy, origin: ORIGIN, vkey: VKEY, old: [{ checkpoint: kept[5]! }] });
      expect(r.code).toBe(1);
      // Go checks every tile it reads against the signed root: the untampered copy passes (above).
      expect(r.lines.at(-1)).toMatch(
        /^FAIL (tiles|old kept-5.checkpoint): (invalid transparency proof|downloaded inconsistent tile)/,
      );
    }
  });

  it('fails a rolled-back log against a kept checkpoint, and a forked one', async () => {
    const rolledBack = path.join(tmp, 'rolled-back');
    cpSync(main.dir, rolledBack, { recursive: true });
    cpSync(kept[300]!, path.join(rolledBack, 'checkpoint'));
    const shorter = runGoVerifier({
      dir: rolledBack,
      origin: ORIGIN,
      vkey: VKEY,
      old: [{ checkpoint: kept[70_000]! }],
    });
    expect(shorter.lines.at(-1)).toBe(
      'FAIL old kept-70000.checkpoint: log is shorter (300) than a kept checkpoint (70000)',
    );

    const forked = new LogWriter(path.join(tmp, 'forked'), 100);
    await forked.publish(400);
    const fine = runGoVerifier({
      dir: forked.dir,
      origin: ORIGIN,
      vkey: VKEY,
      old: [{ checkpoint: kept[5]! }],
    });
    expect(fine.code).toBe(0);
    const fork = runGoVerifier({
      dir: forked.dir,
      origin: ORIGIN,
      vkey: VKEY,
      old: [{ checkpoint: kept[300]! }],
    });
    expect(fork.code).toBe(1);
    expect(fork.lines.at(-1)).toMatch(/^FAIL old kept-300.checkpoint: /);
  });

  it('refuses our consistency proof when it is for another pair of trees', () => {
    const r = runGoVerifier({
      dir: main.dir,
      origin: ORIGIN,
      vkey: VKEY,
      old: [{ checkpoint: kept[5]!, proof: consistency[300] }],
    });
    expect(r.lines.at(-1)).toMatch(/^FAIL old-proof consistency-300.txt: /);
  });

  it('agrees with the auditors’ guide: its worked example is what the code writes, and Go checks it as shown', async () => {
    const example = await tlogExample();
    const guide = readFileSync(new URL('../../docs/auditors.md', import.meta.url), 'utf8');
    expect(guide).toContain(`\n${example.text}\n`);
    expect(guide).toContain(`-vkey '${example.vkey}'`);
    expect(guide).toContain(`-witness '${example.witnessVkey}'`);
    const r = runGoVerifier({
      origin: EXAMPLE_ORIGIN,
      vkey: example.vkey,
      witnesses: [example.witnessVkey],
      proofs: [
        { proof: file('seq-3.tlog-proof', example.proof), record: file('record-3.json', example.record) },
      ],
    });
    expect(r).toEqual({ code: 0, lines: ['ok proof index=2 size=3'] });
    expect(guide).toContain('# ok proof index=2 size=3');
  });
});

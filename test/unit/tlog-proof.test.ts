/**
 * One record checked offline against its tlog-proof file (functions/core/tlog-proof.ts): the
 * guide's worked example passes; every way of lying about the record, the log or the witnesses
 * fails with the reason.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { checkTlogProof, type ProofPolicy } from '../../functions/core/tlog-proof.js';
import {
  checkpointBody,
  formatNote,
  formatTlogProof,
  parseNote,
  parseTlogProof,
  parseVerifierKey,
  rawEd25519,
  signCosignature,
  signNote,
} from '../../functions/core/signed-note.js';
import { inclusionProofFromLeaves, leafHash, rootFromLeaves } from '../../functions/core/tlog.js';
import { EXAMPLE_ORIGIN, EXAMPLE_WITNESS, tlogExample } from '../support/tlog-example.js';

const key = () => {
  const k = generateKeyPairSync('ed25519');
  return { raw: rawEd25519(k.publicKey), sign: async (m: Buffer) => sign(null, m, k.privateKey) };
};

describe('checkTlogProof', () => {
  it('accepts the auditors’ guide example with the vkeys it prints', async () => {
    const ex = await tlogExample();
    const policy: ProofPolicy = {
      origin: EXAMPLE_ORIGIN,
      logKey: parseVerifierKey(ex.vkey).publicKey,
      witnesses: [{ name: EXAMPLE_WITNESS, key: parseVerifierKey(ex.witnessVkey).publicKey }],
    };
    const r = checkTlogProof(ex.proof, ex.record, policy);
    expect(r).toMatchObject({ ok: true, index: 2, witnessed: [EXAMPLE_WITNESS] });
    expect(r.ok && r.checkpoint.size).toBe(3);
    expect(checkTlogProof(ex.proof, Buffer.concat([ex.record, Buffer.from(' ')]), policy)).toEqual({
      ok: false,
      problem: 'the record is not leaf 2 of the checkpointed tree (inclusion proof fails)',
    });
  });

  describe('against a log of 10 records', () => {
    const log = key();
    const w1 = key();
    const w2 = key();
    const records = Array.from({ length: 10 }, (_, i) => Buffer.from(`{"seq":${i + 1}}`));
    const leaves = records.map(leafHash);
    const body = checkpointBody({
      origin: 'local/t/acme',
      size: 10,
      root: rootFromLeaves(leaves),
      extensions: [],
    });
    const policy: ProofPolicy = {
      origin: 'local/t/acme',
      logKey: log.raw,
      witnesses: [
        { name: 'w1.example', key: w1.raw },
        { name: 'w2.example', key: w2.raw },
      ],
      quorum: 1,
    };
    let proof = '';
    let note = '';
    beforeAll(async () => {
      note = formatNote(body, [
        await signNote(body, 'local/t/acme', log.raw, log.sign),
        await signCosignature(body, 'w1.example', w1.raw, 1_767_225_600, w1.sign),
      ]);
      proof = formatTlogProof({ index: 4, proof: inclusionProofFromLeaves(4, leaves), checkpointNote: note });
    });

    it('accepts the record at its index, with the quorum of witnesses met', () => {
      expect(checkTlogProof(proof, records[4]!, policy)).toMatchObject({
        ok: true,
        index: 4,
        witnessed: ['w1.example'],
      });
    });

    it('refuses another record, another index, another log key, a short quorum and a bad origin', () => {
      const problem = (text: string, record: Buffer, p: ProofPolicy) => {
        const r = checkTlogProof(text, record, p);
        return r.ok ? 'ok' : r.problem;
      };
      expect(problem(proof, records[5]!, policy)).toMatch(/inclusion proof fails/);
      const moved = formatTlogProof({ ...parseTlogProof(proof), index: 5 });
      expect(problem(moved, records[5]!, policy)).toMatch(/inclusion proof fails/);
      const beyond = formatTlogProof({ ...parseTlogProof(proof), index: 10 });
      expect(problem(beyond, records[4]!, policy)).toBe('index 10 is not in a tree of 10');
      expect(problem(proof, records[4]!, { ...policy, logKey: key().raw })).toBe(
        "checkpoint carries no signature by the log's key",
      );
      expect(problem(proof, records[4]!, { ...policy, quorum: 2 })).toBe(
        'checkpoint cosigned by 1 of the 2 witnesses required',
      );
      expect(problem(proof, records[4]!, { ...policy, origin: 'local/t/other' })).toBe(
        'checkpoint origin is not local/t/other',
      );
      expect(problem('c2sp.org/tlog-proof@v1\nindex 4\n\nnot a note\n', records[4]!, policy)).toMatch(
        /^malformed proof: /,
      );
    });

    it('refuses a checkpoint whose log signature or a named witness’s cosignature was altered', () => {
      const { body: b, signatures } = parseNote(note);
      const tamper = (i: number) =>
        formatTlogProof({
          ...parseTlogProof(proof),
          checkpointNote: formatNote(
            b,
            signatures.map((s, j) =>
              j === i
                ? { ...s, signature: Buffer.from(s.signature.map((x, k) => (k === 10 ? x ^ 1 : x))) }
                : s,
            ),
          ),
        });
      expect(checkTlogProof(tamper(0), records[4]!, policy)).toEqual({
        ok: false,
        problem: "the log's signature on the checkpoint does not verify",
      });
      expect(checkTlogProof(tamper(1), records[4]!, policy)).toEqual({
        ok: false,
        problem: 'the cosignature of w1.example does not verify',
      });
      // A signature by a key the policy does not name is ignored, however wrong.
      const stranger = formatTlogProof({
        ...parseTlogProof(proof),
        checkpointNote: formatNote(b, [
          ...signatures,
          { name: 'stranger.example', keyId: Buffer.alloc(4), signature: Buffer.alloc(64) },
        ]),
      });
      expect(checkTlogProof(stranger, records[4]!, policy).ok).toBe(true);
    });
  });
});

/**
 * A proof per decision, offline (core/decision-proof.ts) and the C2SP tlog-policy it may be held
 * to (core/tlog-policy.ts): the file alone and the log's key verify a fact; any byte of the record,
 * the proof, the index or the checkpoint changed, another key, another tenant's log, or a policy
 * quorum the cosignatures do not meet, fails with a problem that says which.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { canon, type SealedRecord } from '../../functions/core/evidence.js';
import { factProofFile, verifyFactProof } from '../../functions/core/decision-proof.js';
import {
  checkpointBody,
  formatNote,
  rawEd25519,
  signCosignature,
  signNote,
  verifierKey,
} from '../../functions/core/signed-note.js';
import { inclusionProofFromLeaves, leafHash, rootFromLeaves } from '../../functions/core/tlog.js';
import { parseTlogPolicy, PolicyError, quorumMet } from '../../functions/core/tlog-policy.js';

const keyPair = () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, raw: rawEd25519(privateKey) };
};
const signer = (k: KeyObject) => (m: Buffer) => Promise.resolve(sign(null, m, k));

const log = keyPair();
const w1 = keyPair();
const w2 = keyPair();
const DEPLOYMENT = 'local';

function record(seq: number, tenant = 'tenant1'): SealedRecord {
  return {
    v: 1,
    tenant_id: tenant,
    kind: 'toolcall.decided',
    event_id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    fact_id: `f-${seq}`,
    at: '2026-01-01T00:00:00.000Z',
    decision: 'allow',
    seq,
  } as SealedRecord;
}

/** A tenant's log of `n` records, its checkpoint signed by the log and cosigned by `cosigners`. */
async function logOf(n: number, options: { tenant?: string; cosigners?: (typeof w1)[] } = {}) {
  const tenant = options.tenant ?? 'tenant1';
  const records = Array.from({ length: n }, (_, i) => canon(record(i + 1, tenant)));
  const leaves = records.map((r) => leafHash(Buffer.from(r, 'utf8')));
  const body = checkpointBody({
    origin: `${DEPLOYMENT}/t/${tenant}`,
    size: n,
    root: rootFromLeaves(leaves),
    extensions: [`oc-chain-head ${n} ${'a'.repeat(64)}`],
  });
  const sigs = [await signNote(body, `${DEPLOYMENT}/t/${tenant}`, log.raw, signer(log.privateKey))];
  for (const [i, w] of (options.cosigners ?? []).entries())
    sigs.push(
      await signCosignature(body, `w${i + 1}.example/oc`, w.raw, 1_767_225_600, signer(w.privateKey)),
    );
  const note = formatNote(body, sigs);
  const proofOf = (seq: number) =>
    factProofFile({
      recordCanonical: records[seq - 1]!,
      seq,
      proof: inclusionProofFromLeaves(seq - 1, leaves),
      checkpointNote: note,
    });
  return { records, note, proofOf };
}

const trustLog = { logKeys: [{ key: log.raw }] };

describe('a proof per decision, verified offline', () => {
  it('verifies with the file and the public key alone, for every leaf of trees of many sizes', async () => {
    for (const n of [1, 2, 3, 7, 8, 9, 257]) {
      const { proofOf } = await logOf(n);
      for (const seq of new Set([1, Math.ceil(n / 2), n])) {
        const verdict = verifyFactProof(proofOf(seq), trustLog);
        expect({ n, seq, problems: verdict.problems }).toEqual({ n, seq, problems: [] });
        expect(verdict.record?.seq).toBe(seq);
        expect(verdict.index).toBe(seq - 1);
      }
    }
  });

  it('is a C2SP tlog-proof@v1 whose extra line is the record and whose index is seq - 1', async () => {
    const { proofOf, records, note } = await logOf(5);
    const text = proofOf(3);
    const [header, extra, index] = text.split('\n');
    expect(header).toBe('c2sp.org/tlog-proof@v1');
    expect(Buffer.from(extra!.replace(/^extra /, ''), 'base64').toString('utf8')).toBe(records[2]);
    expect(index).toBe('index 2');
    expect(text.endsWith(`\n\n${note}`)).toBe(true);
  });

  it('fails on a changed record, proof hash, index, checkpoint, key or tenant', async () => {
    const { proofOf } = await logOf(9);
    const good = proofOf(4);
    const lines = good.split('\n');
    const changedRecord = (() => {
      const r = JSON.parse(Buffer.from(lines[1]!.slice(6), 'base64').toString('utf8')) as Record<
        string,
        unknown
      >;
      r.decision = 'deny';
      return [lines[0], `extra ${Buffer.from(canon(r)).toString('base64')}`, ...lines.slice(2)].join('\n');
    })();
    const flipped = (s: string) => (s[0] === 'A' ? `B${s.slice(1)}` : `A${s.slice(1)}`);
    const changedProof = [...lines.slice(0, 3), flipped(lines[3]!), ...lines.slice(4)].join('\n');
    const changedIndex = [...lines.slice(0, 2), 'index 4', ...lines.slice(3)].join('\n');
    const changedSize = good.replace(/\n\nlocal\/t\/tenant1\n9\n/, '\n\nlocal/t/tenant1\n10\n');
    const cases: [string, string, typeof trustLog, RegExp][] = [
      ['record', changedRecord, trustLog, /inclusion proof does not lead/],
      ['proof hash', changedProof, trustLog, /inclusion proof does not lead/],
      ['index', changedIndex, trustLog, /seq 4 is not the leaf's/],
      ['checkpoint size', changedSize, trustLog, /not signed by the trusted log key/],
      ['another key', good, { logKeys: [{ key: keyPair().raw }] }, /not signed by the trusted log key/],
    ];
    for (const [what, text, trust, problem] of cases) {
      const verdict = verifyFactProof(text, trust);
      expect({ what, ok: verdict.ok }).toEqual({ what, ok: false });
      expect({ what, problems: verdict.problems.join('; ') }).toEqual({
        what,
        problems: expect.stringMatching(problem),
      });
    }
    // A record of tenant2 in tenant1's log (a proof spliced from another tenant) names the mismatch.
    const other = await logOf(4, { tenant: 'tenant2' });
    const spliced = other.proofOf(4).replace(/\n\n[\s\S]*$/, `\n\n${(await logOf(4)).note}`);
    expect(verifyFactProof(spliced, trustLog).problems.join('; ')).toMatch(/tenant tenant2 is not the log's/);
  });

  it('refuses what is not a proof, never throwing', () => {
    for (const junk of ['', 'c2sp.org/tlog-proof@v1\n', 'hello\n\nworld\n', '\u0000'])
      expect(verifyFactProof(junk, trustLog).ok).toBe(false);
  });

  it('requires the tlog-policy quorum of witness cosignatures', async () => {
    const policy = parseTlogPolicy(
      [
        `log ${verifierKey(DEPLOYMENT, log.raw)}`,
        `witness A ${verifierKey('w1.example/oc', w1.raw, 0x04)}`,
        `witness B ${verifierKey('w2.example/oc', w2.raw, 0x04)}`,
        'group both all A B',
        'quorum both',
      ].join('\n'),
    );
    const cosigned = await logOf(5, { cosigners: [w1, w2] });
    expect(verifyFactProof(cosigned.proofOf(2), { logKeys: [], policy })).toMatchObject({
      ok: true,
      cosigners: ['A', 'B'],
    });
    const once = await logOf(5, { cosigners: [w1] });
    const verdict = verifyFactProof(once.proofOf(2), { logKeys: [], policy });
    expect(verdict.ok).toBe(false);
    expect(verdict.problems.join('; ')).toMatch(/do not meet the policy's quorum both \(verified: A\)/);
  });
});

describe('tlog-policy (c2sp.org/tlog-policy)', () => {
  const wk = (name: string) => verifierKey(name, keyPair().raw, 0x04);

  it('parses logs, witnesses, groups with all/any/k, comments and whitespace', () => {
    const policy = parseTlogPolicy(
      [
        '# our witnesses',
        `log ${verifierKey(DEPLOYMENT, log.raw)} https://example.com/log`,
        '',
        `witness X1 ${wk('x1')}`,
        `\twitness X2 ${wk('x2')}  https://x2.example`,
        `witness X3 ${wk('x3')}`,
        'group X 2 X1 X2 X3',
        `witness Y1 ${wk('y1')}`,
        'group Y any Y1',
        'group XY all X Y',
        'quorum XY',
      ].join('\n'),
    );
    expect(policy.logs).toHaveLength(1);
    expect(quorumMet(policy, new Set(['X1', 'X3', 'Y1']))).toBe(true);
    expect(quorumMet(policy, new Set(['X1', 'Y1']))).toBe(false);
    expect(quorumMet(policy, new Set(['X1', 'X2', 'X3']))).toBe(false);
    expect(quorumMet(parseTlogPolicy('quorum none\n'), new Set())).toBe(true);
  });

  it.each([
    ['no quorum', `witness A ${wk('a')}\n`, /no quorum line/],
    ['two quorums', `witness A ${wk('a')}\nquorum A\nquorum A\n`, /second quorum/],
    ['undefined name', 'quorum A\n', /A is not defined/],
    ['forward reference', `group G any A\nwitness A ${wk('a')}\nquorum G\n`, /A is not defined/],
    ['k above n', `witness A ${wk('a')}\ngroup G 2 A\nquorum G\n`, /threshold 2/],
    ['k zero', `witness A ${wk('a')}\ngroup G 0 A\nquorum G\n`, /threshold/],
    ['member twice', `witness A ${wk('a')}\ngroup G any A A\nquorum G\n`, /twice/],
    ['none as member', `witness A ${wk('a')}\ngroup G any none\nquorum G\n`, /none/],
    ['a log key as witness', `witness A ${verifierKey('a', log.raw)}\nquorum A\n`, /type 0x04/],
    [
      'duplicate key',
      `log ${verifierKey('a', log.raw)}\nlog ${verifierKey('b', log.raw)}\nquorum none\n`,
      /twice/,
    ],
    ['control character', 'quorum none\r\n', /control character/],
    ['unknown keyword', 'witnesses A\nquorum none\n', /unknown keyword/],
    ['bad vkey', 'witness A not-a-key\nquorum A\n', /not a verifier key/],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseTlogPolicy(text)).toThrow(PolicyError);
    expect(() => parseTlogPolicy(text)).toThrow(message);
  });
});

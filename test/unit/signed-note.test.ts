/**
 * The log's text formats against published vectors (test/fixtures/tlog-vectors, each naming its
 * source): Go's sumdb/note keys and notes, the C2SP checkpoint, cosignature and proof examples,
 * transparency-dev's cosignature keys and malformed proofs. Parsers must be strict: one spelling.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  b64,
  checkpointBody,
  cosignatureKeyId,
  cosignedMessage,
  ed25519KeyId,
  formatChainHead,
  formatNote,
  formatTlogProof,
  NoteError,
  parseChainHead,
  parseCheckpointBody,
  parseNote,
  parseTlogProof,
  parseVerifierKey,
  rawEd25519,
  signCosignature,
  signNote,
  unb64,
  verifierKey,
  verifyCosignature,
  verifyNoteSignature,
} from '../../functions/core/signed-note.js';

const vectors = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../fixtures/tlog-vectors/${name}`, import.meta.url), 'utf8')) as T;

interface NoteVectors {
  peter: { name: string; key_id: string; vkey: string; skey: string; signature_line: string };
  enoch: { name: string; key_id: string; vkey: string; signature_line: string };
  text: string;
  signed: string;
  signed_twice: string;
  bad_notes: string[];
  bad_notes_bytes_hex: string[];
  bad_vkeys: string[];
  c2sp_checkpoint: { note: string; origin: string; size: number; root_b64: string };
}
const nv = vectors<NoteVectors>('signed-note.json');

/** An Ed25519 private key from Go's skey text: its base64 is 0x01 ‖ seed. */
const fromSkey = (skey: string): KeyObject => {
  const seed = Buffer.from(skey.split('+').slice(4).join('+'), 'base64').subarray(1);
  return createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
    format: 'der',
    type: 'pkcs8',
  });
};
const signer = (key: KeyObject) => async (m: Buffer) => sign(null, m, key);

describe('strict base64 (RFC 4648 §4)', () => {
  it('takes canonical standard base64 only', () => {
    expect(unb64('')).toEqual(Buffer.alloc(0));
    expect(unb64('AQID')).toEqual(Buffer.from([1, 2, 3]));
    expect(unb64('AQ==')).toEqual(Buffer.from([1]));
    expect(b64(Buffer.from([0xfb, 0xff]))).toBe('+/8=');
    for (const bad of [
      'AQ',
      'AQ=',
      'AR==',
      '-_8=',
      'AQID\n',
      ' AQID',
      'AQ==AQ==',
      'AQ=\u003d=',
      'A===',
      'AQI*',
      'AQ==\u0000',
    ]) {
      expect(unb64(bad)).toBeUndefined();
    }
  });
});

describe('keys (Go sumdb/note, transparency-dev cosignature vkeys)', () => {
  it('derives Go’s key ids and vkeys', () => {
    for (const who of [nv.peter, nv.enoch]) {
      const key = parseVerifierKey(who.vkey);
      expect(key.name).toBe(who.name);
      expect(key.keyId.toString('hex')).toBe(who.key_id);
      expect(key.type).toBe(1);
      expect(ed25519KeyId(who.name, key.publicKey).toString('hex')).toBe(who.key_id);
      expect(verifierKey(who.name, key.publicKey)).toBe(who.vkey);
    }
  });

  it('refuses every mangling of a vkey, as Go’s NewVerifier does', () => {
    const vkey = nv.peter.vkey;
    for (let i = 0; i <= vkey.length; i++) {
      for (let j = i + 1; j <= vkey.length; j++) {
        if (i !== 0 || j !== vkey.length) expect(() => parseVerifierKey(vkey.slice(i, j))).toThrow();
      }
    }
    for (let i = 0; i < vkey.length; i++) {
      const b = Buffer.from(vkey);
      b[i]! += 1;
      expect(() => parseVerifierKey(b.toString('latin1'))).toThrow();
    }
    for (const bad of nv.bad_vkeys) expect(() => parseVerifierKey(bad)).toThrow();
  });

  it('reads cosigner vkeys (type 0x04) and keys whose base64 holds a plus', () => {
    const cv = vectors<{ vkeys: { vkey: string; type: number }[]; bad_vkeys: string[] }>('cosignature.json');
    for (const v of cv.vkeys) {
      const key = parseVerifierKey(v.vkey);
      expect(key.type).toBe(v.type);
      expect(verifierKey(key.name, key.publicKey, key.type)).toBe(v.vkey);
      if (v.type === 4) expect(cosignatureKeyId(key.name, key.publicKey)).toEqual(key.keyId);
    }
    for (const bad of cv.bad_vkeys) expect(() => parseVerifierKey(bad)).toThrow();
  });

  it('takes the raw key out of a PEM or a KeyObject', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
    expect(rawEd25519(publicKey.export({ format: 'pem', type: 'spki' }) as string)).toEqual(raw);
    expect(rawEd25519(publicKey)).toEqual(raw);
    expect(rawEd25519(privateKey)).toEqual(raw);
    expect(() => rawEd25519(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)).toThrow();
  });
});

describe('signed notes (Go sumdb/note vectors)', () => {
  const peter = parseVerifierKey(nv.peter.vkey);
  const enoch = parseVerifierKey(nv.enoch.vkey);

  it('signs Go’s text to Go’s note, byte for byte', async () => {
    const key = fromSkey(nv.peter.skey);
    expect(rawEd25519(createPublicKey(key))).toEqual(peter.publicKey);
    const sig = await signNote(nv.text, nv.peter.name, peter.publicKey, signer(key));
    expect(formatNote(nv.text, [sig])).toBe(nv.signed);
  });

  it('parses a note signed twice and checks each signature with its own key only', () => {
    const { body, signatures } = parseNote(nv.signed_twice);
    expect(body).toBe(nv.text);
    expect(signatures.map((s) => [s.name, s.keyId.toString('hex')])).toEqual([
      [nv.peter.name, nv.peter.key_id],
      [nv.enoch.name, nv.enoch.key_id],
    ]);
    expect(verifyNoteSignature(body, signatures[0]!, peter.name, peter.publicKey)).toBe(true);
    expect(verifyNoteSignature(body, signatures[1]!, enoch.name, enoch.publicKey)).toBe(true);
    expect(verifyNoteSignature(body, signatures[0]!, enoch.name, enoch.publicKey)).toBe(false);
    expect(verifyNoteSignature(`${body}x\n`, signatures[0]!, peter.name, peter.publicKey)).toBe(false);
    const misnamed = { ...signatures[0]!, name: 'CarmenSandiego' };
    expect(verifyNoteSignature(body, misnamed, peter.name, peter.publicKey)).toBe(false);
    expect(formatNote(body, signatures)).toBe(nv.signed_twice);
  });

  it('refuses Go’s malformed notes, and notes that are not UTF-8', () => {
    for (const bad of nv.bad_notes) expect(() => parseNote(bad)).toThrow();
    for (const bad of nv.bad_notes_bytes_hex) expect(() => parseNote(Buffer.from(bad, 'hex'))).toThrow();
    expect(parseNote(Buffer.from(nv.signed)).body).toBe(nv.text);
    const line = nv.peter.signature_line;
    for (const bad of [
      `${nv.text}\n${line.replace('—', '-')}`, // ASCII dash
      `${nv.text}\n${line.replace(' x08', '  x08')}`,
      `${nv.text}\n${line.replace('JnAM=', 'JnAM')}`, // unpadded
      `${nv.text}\n${line.replace('/', '_')}`, // base64url
      `${nv.text}\n${line.replace('KE6R', 'KE*6R')}`, // junk inside
      `${nv.text}\n${line}\n`,
      `${nv.text}\n${line.replace('\n', '\r\n')}`,
      `${nv.text}\n— PeterNeumann AAAA\n`, // no room for a key id and a signature
    ]) {
      expect(() => parseNote(bad)).toThrow();
    }
  });

  it('parses the C2SP checkpoint example and writes its body back the same', () => {
    const c = nv.c2sp_checkpoint;
    const { body, signatures } = parseNote(c.note);
    expect(signatures[0]!.name).toBe(c.origin);
    const cp = parseCheckpointBody(body);
    expect(cp).toEqual({
      origin: c.origin,
      size: c.size,
      root: Buffer.from(c.root_b64, 'base64'),
      extensions: [],
    });
    expect(checkpointBody(cp)).toBe(body);
  });
});

describe('checkpoint bodies', () => {
  const root = Buffer.alloc(32, 7);
  const head = formatChainHead(3, 'ab'.repeat(32));
  const good = checkpointBody({ origin: 'local/t/acme', size: 3, root, extensions: [head] });

  it('writes origin, size, root and our chain head line, each ending in a newline', () => {
    expect(good).toBe(`local/t/acme\n3\n${root.toString('base64')}\noc-chain-head 3 ${'ab'.repeat(32)}\n`);
    expect(parseCheckpointBody(good).extensions).toEqual([head]);
    expect(parseChainHead(head)).toEqual({ seq: 3, lastHash: 'ab'.repeat(32) });
  });

  it('refuses anything checkpointBody would not have written', () => {
    const r = root.toString('base64');
    for (const bad of [
      `local/t/acme\n03\n${r}\n`,
      `local/t/acme\n+3\n${r}\n`,
      `local/t/acme\n3\n${r}`,
      `local/t/acme\n3\n${r}\n\n`,
      `local/t/acme\n3\n${r}\n\noc-chain-head 3 x\n`,
      `\n3\n${r}\n`,
      `local/t/acme\n3\n${r.replace(/=$/, '')}\n`,
      `local/t/acme\n3\n${Buffer.alloc(31).toString('base64')}\n`,
      `local/t/acme\n3\n${Buffer.alloc(32, 0xfb).toString('base64url')}=\n`,
      `local/t/acme\n3\n`,
      `local/t/acme\n9007199254740993\n${r}\n`,
      `local/t/acme\t\n3\n${r}\n`,
    ]) {
      expect(() => parseCheckpointBody(bad)).toThrow();
    }
    for (const bad of [
      'oc-chain-head 03 ' + 'ab'.repeat(32),
      'oc-chain-head 3 ' + 'AB'.repeat(32),
      'oc-chain-head 3',
    ]) {
      expect(() => parseChainHead(bad)).toThrow();
    }
    expect(() => checkpointBody({ origin: 'a\nb', size: 1, root, extensions: [] })).toThrow();
    expect(() => checkpointBody({ origin: 'a', size: 1, root, extensions: [''] })).toThrow();
  });
});

describe('cosignatures (C2SP tlog-cosignature, Ed25519)', () => {
  const cv = vectors<{
    spec_example: { note: string; witness: string; timestamp: number; signed_message: string };
    timestamped: { signature_b64: string; timestamp: number };
  }>('cosignature.json');

  it('reads the spec example’s timestamp and rebuilds the message its witness signed', () => {
    const { body, signatures } = parseNote(cv.spec_example.note);
    const witness = signatures.find((s) => s.name === cv.spec_example.witness)!;
    expect(witness.signature.length).toBe(72);
    expect(Number(witness.signature.readBigUInt64BE(0))).toBe(cv.spec_example.timestamp);
    expect(cosignedMessage(body, cv.spec_example.timestamp).toString()).toBe(cv.spec_example.signed_message);
    const ts = unb64(cv.timestamped.signature_b64)!;
    expect(Number(ts.readBigUInt64BE(4))).toBe(cv.timestamped.timestamp);
  });

  it('signs and verifies a cosignature, bound to the key, the type and the body', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const key = rawEd25519(publicKey);
    const body = checkpointBody({
      origin: 'local/t/acme',
      size: 1,
      root: Buffer.alloc(32, 1),
      extensions: [],
    });
    const sig = await signCosignature(body, 'witness.local', key, 1_700_000_000, signer(privateKey));
    expect(sig.keyId).toEqual(cosignatureKeyId('witness.local', key));
    expect(verifyCosignature(body, sig, 'witness.local', key)).toEqual({
      ok: true,
      timestamp: 1_700_000_000,
    });
    const note = formatNote(body, [sig]);
    expect(verifyCosignature(body, parseNote(note).signatures[0]!, 'witness.local', key).ok).toBe(true);
    const other = rawEd25519(generateKeyPairSync('ed25519').publicKey);
    expect(verifyCosignature(body, sig, 'witness.local', other).ok).toBe(false);
    expect(verifyCosignature(body.replace('\n1\n', '\n2\n'), sig, 'witness.local', key).ok).toBe(false);
    const retimed = { ...sig, signature: Buffer.from(sig.signature) };
    retimed.signature[7]! ^= 1;
    expect(verifyCosignature(body, retimed, 'witness.local', key).ok).toBe(false);
    // A log signature (type 0x01) is not a cosignature, nor the other way round.
    const logSig = await signNote(body, 'witness.local', key, signer(privateKey));
    expect(verifyCosignature(body, logSig, 'witness.local', key).ok).toBe(false);
    expect(verifyNoteSignature(body, sig, 'witness.local', key)).toBe(false);
  });
});

describe('proof files (C2SP tlog-proof@v1)', () => {
  const pv = vectors<{
    spec_head: string;
    spec_index: number;
    spec_proof_length: number;
    bad_proofs: string[];
  }>('tlog-proof.json');
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const key = rawEd25519(publicKey);
  let note = '';
  beforeAll(async () => {
    const body = checkpointBody({
      origin: 'example.com/fancylog',
      size: 109482,
      root: Buffer.alloc(32, 3),
      extensions: [],
    });
    note = formatNote(body, [await signNote(body, 'example.com/fancylog', key, signer(privateKey))]);
  });

  it('reads the spec’s example and writes it back byte for byte', () => {
    const text = `${pv.spec_head}\n${note}`;
    const p = parseTlogProof(text);
    expect(p.index).toBe(pv.spec_index);
    expect(p.proof).toHaveLength(pv.spec_proof_length);
    expect(p.extra?.toString('base64')).toBe(pv.spec_head.split('\n')[1]!.slice('extra '.length));
    expect(p.checkpointNote).toBe(note);
    expect(formatTlogProof(p)).toBe(text);
    const { extra: _extra, ...plain } = p;
    expect(parseTlogProof(formatTlogProof(plain))).toEqual(plain);
  });

  it('refuses transparency-dev’s malformed proofs and other near misses', () => {
    for (const bad of pv.bad_proofs) expect(() => parseTlogProof(bad)).toThrow();
    const ok = `c2sp.org/tlog-proof@v1\nindex 5\n${Buffer.alloc(32).toString('base64')}\n\n${note}`;
    expect(parseTlogProof(ok).index).toBe(5);
    for (const bad of [
      ok.replace('index 5', 'index 05'),
      ok.replace('index 5', 'index  5'),
      ok.replace('index 5', 'extra \nindex 5'),
      ok.replace('index 5', 'index 5\nindex 5'),
      ok.replace('@v1', '@v2'),
      `${ok}junk`,
      `${ok}\n`,
      ok.replace('\n\n', '\n\n\n'),
      ok.replace('AAAA', 'AAA-'),
      ok.replace(note, 'not a note\n'),
    ]) {
      expect(() => parseTlogProof(bad)).toThrow();
    }
  });
});

describe('properties of the parsers', () => {
  const line = fc
    .string({ minLength: 1, maxLength: 20, unit: 'grapheme' })
    // eslint-disable-next-line no-control-regex
    .filter((l) => !/[\u0000-\u001f\u007f]/.test(l));
  const name = fc.stringMatching(/^[a-z0-9./_-]{1,20}$/);

  it('read back every checkpoint and note they write', () => {
    fc.assert(
      fc.property(
        line,
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(line, { maxLength: 3 }),
        fc.array(
          fc.record({
            name,
            keyId: fc.uint8Array({ minLength: 4, maxLength: 4 }),
            signature: fc.uint8Array({ minLength: 1, maxLength: 72 }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        (origin, size, root, extensions, sigs) => {
          const cp = { origin, size, root: Buffer.from(root), extensions };
          const body = checkpointBody(cp);
          expect(parseCheckpointBody(body)).toEqual(cp);
          const signatures = sigs.map((s) => ({
            name: s.name,
            keyId: Buffer.from(s.keyId),
            signature: Buffer.from(s.signature),
          }));
          const note = formatNote(body, signatures);
          expect(parseNote(note)).toEqual({ body, signatures });
          const proof = formatTlogProof({ index: size, proof: [Buffer.from(root)], checkpointNote: note });
          expect(parseTlogProof(proof)).toEqual({
            index: size,
            proof: [Buffer.from(root)],
            checkpointNote: note,
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('throw nothing but NoteError on any text', () => {
    const texts = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc
        .array(
          fc.constantFrom(
            '\n',
            '— ',
            'a',
            '+',
            '/',
            '=',
            'AAAA',
            'index 1',
            'c2sp.org/tlog-proof@v1',
            ' ',
            '0',
          ),
          { maxLength: 40 },
        )
        .map((a) => a.join('')),
    );
    fc.assert(
      fc.property(texts, (text) => {
        for (const parse of [
          parseNote,
          parseCheckpointBody,
          parseTlogProof,
          parseVerifierKey,
          parseChainHead,
        ]) {
          try {
            parse(text);
          } catch (error) {
            expect(error).toBeInstanceOf(NoteError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

/**
 * The fast canonical JSON (functions/core/jcs.ts) against the `canonicalize` package the chain is
 * defined by: the same text for every value, and the same error for every value it refuses.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { CHAIN_TAG, chainHashOfCanonical, chainHashOfCanonicalBytes } from '../../functions/core/evidence.js';
import { canonicalJson, canonicalText } from '../../functions/core/jcs.js';

/** What the package gives, as a value or as the error it throws. */
function outcome(f: () => string | undefined): { text?: string; error?: string } {
  try {
    return { text: f() };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

const same = (v: unknown) => expect(outcome(() => canonicalJson(v))).toEqual(outcome(() => canonicalize(v)));

// Strings of any UTF-16 units: lone surrogates, pairs, controls, quotes, backslashes.
const units = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) });
const surrogateHeavy = fc.string({
  unit: fc.constantFrom('\uD83D', '\uDE00', '\uDBFF', '\uDC00', 'a', '"', '\\', '\u0000', '\u2028'),
});

describe('canonicalJson', () => {
  test('gives the package text for any JSON value (odd keys and strings, all number shapes)', () => {
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.double(),
        fc.integer(),
        fc.constantFrom(0, -0, 1e21, 1e-7, 5e-324, Number.MAX_SAFE_INTEGER, 0.1 + 0.2),
        units,
        surrogateHeavy,
        fc.array(tie('value'), { maxLength: 5 }),
        fc.dictionary(fc.oneof(units, surrogateHeavy), tie('value'), { maxKeys: 6 }),
      ),
    })).value;
    fc.assert(
      fc.property(json, (v) => same(v)),
      { numRuns: 3000 },
    );
  });

  test('a value parsed from JSON text gives the package text', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => same(JSON.parse(JSON.stringify(v)))),
      { numRuns: 2000 },
    );
  });

  test('refuses what the package refuses, with its error', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const cyclicArray: unknown[] = [1];
    cyclicArray.push(cyclicArray);
    let deep: unknown = 'bottom';
    for (let i = 0; i < 1000; i++) deep = { d: deep };
    for (const v of [
      NaN,
      Infinity,
      { a: -Infinity },
      [1, NaN],
      'lone \uD800',
      { 'key \uDC00': 1 },
      { b: 'x\uDBFF\uDBFF\uDC00' },
      cyclic,
      cyclicArray,
    ])
      same(v);
    same(deep);
    expect(() => canonicalText(undefined)).toThrow('value has no canonical JSON form');
  });

  test('what JSON.parse cannot give goes to the package (undefined, toJSON, dates, classes, holes)', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    for (const v of [
      undefined,
      { a: undefined, b: 1 },
      [undefined, 1],
      // eslint-disable-next-line no-sparse-arrays
      [1, , 3],
      { f: () => 1 },
      new Date(0),
      { at: new Date(0), n: 1 },
      { toJSON: () => ({ z: 1, a: 2 }) },
      { toJSON: 'not a function', a: 1 },
      new Point(1, 2),
      Object.assign(Object.create(null) as object, { b: 1, a: 2 }),
      [new String('boxed')],
    ])
      same(v);
  });
});

/** SPEC §7 written out: hex SHA-256(L(tag) || L(prev_hash) || L(canon(record))), L = 8-byte length. */
function specHash(prev: string, canonical: string): string {
  const l = (b: Buffer) => {
    const n = Buffer.alloc(8);
    n.writeBigUInt64BE(BigInt(b.length));
    return Buffer.concat([n, b]);
  };
  return createHash('sha256')
    .update(Buffer.concat([l(Buffer.from(CHAIN_TAG)), l(Buffer.from(prev)), l(Buffer.from(canonical))]))
    .digest('hex');
}

describe('chainHashOfCanonicalBytes', () => {
  test('is the SPEC hash of the same text, as chainHashOfCanonical is', () => {
    fc.assert(
      fc.property(fc.string(), units, (prev, text) => {
        const canonical = JSON.stringify(text);
        const expected = specHash(prev, canonical);
        expect(chainHashOfCanonicalBytes(prev, Buffer.from(canonical, 'utf8'))).toBe(expected);
        expect(chainHashOfCanonical(prev, canonical)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });
});

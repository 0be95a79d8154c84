import { createHash } from 'node:crypto';
import {
  canon,
  chainHash,
  GENESIS,
  sealFacts,
  sealPrefix,
  verifyChain,
  type FactRecord,
} from '../../functions/core/evidence.js';

const fact = (n: number, tenant = 'tenant1'): FactRecord => ({
  v: 1,
  tenant_id: tenant,
  kind: 'toolcall.decided',
  event_id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  fact_id: `10000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  at: '2025-01-01T00:00:00.000Z',
  decision: 'allow',
});

/** The SPEC §7 formula, written out independently of the implementation. */
function specHash(prev: string, recordJson: string): string {
  const field = (s: string) => {
    const bytes = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(bytes.length));
    return Buffer.concat([len, bytes]);
  };
  return createHash('sha256')
    .update(Buffer.concat([field('oc-evidence/v1'), field(prev), field(recordJson)]))
    .digest('hex');
}

describe('canonical JSON (RFC 8785)', () => {
  it('sorts keys at every depth and keeps array order', () => {
    expect(canon({ z: 1, a: 2, m: 3 })).toBe('{"a":2,"m":3,"z":1}');
    expect(canon({ b: { y: 2, x: 1 }, a: 'hello' })).toBe('{"a":"hello","b":{"x":1,"y":2}}');
    expect(
      canon({
        items: [
          { b: 2, a: 1 },
          { d: 4, c: 3 },
        ],
      }),
    ).toBe('{"items":[{"a":1,"b":2},{"c":3,"d":4}]}');
  });

  it('serializes numbers and escapes as JCS does', () => {
    expect(canon({ n: [1e21, 0.1, -0, 1.5e-7] })).toBe('{"n":[1e+21,0.1,0,1.5e-7]}');
    expect(canon({ s: '<>&\u2028\n' })).toBe('{"s":"<>&\u2028\\n"}');
  });

  it('rejects lone surrogates rather than hashing something ambiguous', () => {
    expect(() => canon({ s: '\ud800' })).toThrow();
  });
});

describe('chain hash', () => {
  it('follows the chain hash formula (functions/core/evidence.ts) byte for byte', () => {
    const [first, second] = sealFacts(GENESIS, [fact(1), fact(2)]);
    expect(first?.hash).toBe(specHash('', canon({ ...fact(1), seq: 1 })));
    expect(second?.prev_hash).toBe(first?.hash);
    expect(second?.hash).toBe(specHash(first?.hash ?? '', canon({ ...fact(2), seq: 2 })));
  });

  it('matches a known-answer vector computed outside this code base (Python hashlib + json)', () => {
    expect(chainHash('', { ...fact(1), seq: 1 })).toBe(
      'a7e6aaf0fe10c6916abfa7555acf2aca2033c3c6d3c3d122e414c9d516897be6',
    );
  });

  it('separates fields by length so that shifting bytes between them changes the hash', () => {
    const r = { ...fact(1), seq: 1 };
    expect(chainHash('ab', r)).not.toBe(chainHash('a', r));
    expect(specHash('ab', 'cd')).not.toBe(specHash('a', 'bcd'));
  });
});

describe('verifyChain', () => {
  const entries = sealFacts(GENESIS, [fact(1), fact(2), fact(3)]);

  it('accepts an intact chain and the empty chain', () => {
    expect(verifyChain('tenant1', entries)).toMatchObject({ ok: true, count: 3, head: { seq: 3 } });
    expect(verifyChain('tenant1', [])).toMatchObject({ ok: true, count: 0 });
  });

  it('verifies a window from a known head', () => {
    const start = { seq: 1, hash: entries[0]!.hash };
    expect(verifyChain('tenant1', entries.slice(1), start).ok).toBe(true);
  });

  it('detects a changed field', () => {
    const tampered = entries.map((e) => ({ ...e, record: { ...e.record } }));
    tampered[1]!.record.decision = 'deny';
    expect(verifyChain('tenant1', tampered)).toMatchObject({ ok: false, break: { seq: 2 } });
  });

  it('detects a deleted entry', () => {
    expect(verifyChain('tenant1', [entries[0]!, entries[2]!])).toMatchObject({
      ok: false,
      break: { seq: 3 },
    });
  });

  it('detects swapped entries', () => {
    expect(verifyChain('tenant1', [entries[1]!, entries[0]!, entries[2]!]).ok).toBe(false);
  });

  it('detects a recomputed hash that no longer links', () => {
    const forged = entries.map((e) => ({ ...e }));
    forged[1] = { ...forged[1]!, record: { ...forged[1]!.record, decision: 'deny' } };
    forged[1].hash = chainHash(forged[1].prev_hash, forged[1].record);
    expect(verifyChain('tenant1', forged)).toMatchObject({ ok: false, break: { seq: 3 } });
  });

  it('detects a fact sealed twice and a record from another tenant', () => {
    const twice = sealFacts(GENESIS, [fact(1), fact(1)]);
    expect(verifyChain('tenant1', twice)).toMatchObject({ ok: false, break: { seq: 2 } });
    expect(verifyChain('tenant2', entries)).toMatchObject({ ok: false, break: { seq: 1 } });
  });
});

describe('sealPrefix', () => {
  it('seals up to the first fact with no canonical form and names it', () => {
    const poison = { ...fact(2), comment: '\ud800' };
    const { entries, failed } = sealPrefix(GENESIS, [fact(1), poison, fact(3)]);
    expect(entries.map((e) => e.seq)).toEqual([1]);
    expect(entries).toEqual(sealFacts(GENESIS, [fact(1)]));
    expect(failed).toEqual({ index: 1, reason: 'Lone surrogate is not allowed' });
    expect(() => sealFacts(GENESIS, [poison])).toThrow('Lone surrogate is not allowed');
    expect(sealPrefix(GENESIS, [fact(1), fact(2)]).failed).toBeUndefined();
  });
});

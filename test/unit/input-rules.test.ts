/**
 * The shared input rules, and the walk that keeps every route on them: a string anywhere in a
 * route's path, query or body schema that was not built by `rules` fails here, so a route added
 * later inherits the discipline by construction.
 */
import type * as z from 'zod';
import { ROUTE_INPUTS } from '../../functions/handlers/inputs.js';
import { ROUTES } from '../../functions/shared/constants.js';
import {
  isSharedRule,
  jsonPointer,
  jsonProblem,
  noncharacterIn,
  normalizeIdentity,
  rules,
} from '../../functions/shared/input-rules.js';

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  element?: z.ZodType;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
}
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Paths (in a schema) of strings and free-form values that no shared rule covers. */
function unruled(schema: z.ZodType, at: string): string[] {
  if (isSharedRule(schema)) return [];
  const def = defOf(schema);
  switch (def.type) {
    case 'string':
    case 'unknown':
    case 'any':
    case 'custom':
      return [`${at} (${def.type})`];
    case 'object':
      return Object.entries(def.shape ?? {}).flatMap(([k, v]) => unruled(v, `${at}.${k}`));
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return unruled(def.innerType as z.ZodType, at);
    case 'pipe':
      return [...unruled(def.in as z.ZodType, at), ...unruled(def.out as z.ZodType, at)];
    case 'array':
      return unruled(def.element as z.ZodType, `${at}[]`);
    case 'record':
      return [
        ...unruled(def.keyType as z.ZodType, `${at}{key}`),
        ...unruled(def.valueType as z.ZodType, `${at}{value}`),
      ];
    case 'union':
      return (def.options ?? []).flatMap((o, i) => unruled(o, `${at}|${i}`));
    case 'number':
    case 'int':
    case 'boolean':
    case 'enum':
    case 'literal':
    case 'transform':
      return [];
    default:
      return [`${at} (unexpected ${def.type}: teach this walk about it)`];
  }
}

describe('route inputs', () => {
  it('declares the inputs of every route in ROUTES, and of nothing else', () => {
    // One handler may serve several routes (the console: `/console` and `/console/{path+}`).
    expect(Object.keys(ROUTE_INPUTS).sort()).toEqual([...new Set(ROUTES.map((r) => r.handler))].sort());
  });

  it.each(Object.entries(ROUTE_INPUTS))('%s: every string goes through a shared rule', (_name, input) => {
    const parts: [string, z.ZodType | undefined][] = [
      ['path', 'path' in input ? input.path : undefined],
      ['query', 'query' in input ? input.query : undefined],
      ['body', 'body' in input ? input.body.schema : undefined],
    ];
    const problems = parts.flatMap(([part, schema]) => (schema ? unruled(schema, part) : []));
    expect(problems).toEqual([]);
  });

  it('catches a string that skips the rules (the walk itself can fail)', async () => {
    const z = await import('zod');
    expect(unruled(z.strictObject({ ok: rules.id(8), raw: z.string().max(8) }), 'body')).toEqual([
      'body.raw (string)',
    ]);
    expect(unruled(z.record(z.string(), z.unknown()), 'body')).toEqual([
      'body{key} (string)',
      'body{value} (unknown)',
    ]);
    // A rule narrowed after the fact is a new schema, no longer the shared one.
    expect(unruled(rules.id(8).min(2), 'x')).toEqual(['x (string)']);
  });
});

describe('shared string rules', () => {
  const ok = (schema: z.ZodType, value: unknown) => schema.safeParse(value).success;

  it('refuses lone surrogates in every kind of string', () => {
    for (const schema of [rules.text(10), rules.line(10), rules.id(10)]) {
      expect(ok(schema, 'a\ud800')).toBe(false);
      expect(ok(schema, '\udc00')).toBe(false);
      expect(ok(schema, 'a😀')).toBe(true);
    }
  });

  it('keeps ids free of controls and invisible characters', () => {
    const id = rules.id(64);
    for (const bad of [
      'alice\u200b@acme.example', // zero-width space
      '\u200falice@acme.example', // right-to-left mark
      'alice@acme.example\u0000', // NUL
      'ali\u00adce', // soft hyphen
      'alice\u202e', // right-to-left override
      'a\u3164', // Hangul filler
      'a\ufe0f', // variation selector
      'line\nbreak',
      '   ',
    ])
      expect([bad, ok(id, bad)]).toEqual([bad, false]);
    expect(ok(id, 'alice@acme.example')).toBe(true);
    expect(ok(id, 'Ünïcödé user 42')).toBe(true);
    expect(ok(rules.id(64, { blank: true }), '')).toBe(true);
    expect(ok(id, 'x'.repeat(65))).toBe(false);
  });

  it('lets free text hold tabs and line breaks, not other controls or bidi overrides', () => {
    const text = rules.text(100);
    expect(ok(text, 'line one\nline two\ttabbed\r\n')).toBe(true);
    expect(ok(text, 'שלום עולם')).toBe(true);
    expect(ok(text, 'bell\u0007')).toBe(false);
    expect(ok(text, 'escape\u001b[31m')).toBe(false);
    expect(ok(text, 'trojan \u202egnp.exe')).toBe(false);
    expect(ok(text, 'isolate \u2066x\u2069')).toBe(false);
    expect(ok(rules.line(100), 'no\nbreaks')).toBe(false);
  });

  it('bounds lines in bytes as well as characters', () => {
    expect(ok(rules.line(10, 10), 'é'.repeat(5))).toBe(true);
    expect(ok(rules.line(10, 10), 'é'.repeat(6))).toBe(false);
  });

  it('accepts only well-formed tenant ids', () => {
    for (const good of ['tenant1', 'Acme.Prod-2', 'a']) expect(ok(rules.tenantId(), good)).toBe(true);
    for (const bad of ['', 'tenant#1', 'tenant 1', '-x', 'x'.repeat(65), 'tenant1\u200b'])
      expect([bad, ok(rules.tenantId(), bad)]).toEqual([bad, false]);
  });
});

describe('jsonProblem', () => {
  it('finds lone surrogates in values and keys, with their path', () => {
    expect(jsonProblem({ a: [1, { b: '\ud800' }] })).toEqual({
      path: 'a.1.b',
      pointer: '/a/1/b',
      message: 'contains a lone surrogate',
    });
    expect(jsonProblem({ ['\udc00']: 1 })?.message).toBe('has a key with a lone surrogate');
  });

  it('names the problem by an exact JSON pointer whatever the keys hold (RFC 6901)', () => {
    expect(jsonProblem({ 'a/b': { '~c.d': '\ud800' } })?.pointer).toBe('/a~1b/~0c.d');
    expect(jsonPointer([])).toBe('');
  });

  // The 66 noncharacters: U+FDD0–U+FDEF and U+nFFFE, U+nFFFF in each of the 17 planes.
  const NONCHARACTERS = [
    ...Array.from({ length: 32 }, (_, i) => 0xfdd0 + i),
    ...Array.from({ length: 17 }, (_, plane) => [plane * 0x10000 + 0xfffe, plane * 0x10000 + 0xffff]).flat(),
  ];

  it('refuses every one of the 66 Unicode noncharacters, in values and in keys, and nothing next to them', () => {
    expect(NONCHARACTERS).toHaveLength(66);
    for (const cp of NONCHARACTERS) {
      const ch = String.fromCodePoint(cp);
      const name = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
      expect(noncharacterIn(`a${ch}b`)).toBe(name);
      expect(jsonProblem({ p: [`x${ch}`] })).toEqual({
        path: 'p.0',
        pointer: '/p/0',
        message: `contains the Unicode noncharacter ${name}`,
      });
      expect(jsonProblem({ [`k${ch}`]: 1 })?.message).toBe(`has a key with the Unicode noncharacter ${name}`);
      expect(rules.text(100).safeParse(`x${ch}`).success).toBe(false);
      expect(rules.id(100).safeParse(`x${ch}`).success).toBe(false);
    }
    // Their neighbours are ordinary characters (U+FDCF, U+FDF0, U+FFFD, U+10000, U+10FFFD).
    for (const cp of [0xfdcf, 0xfdf0, 0xfffd, 0x10000, 0x10fffd])
      expect(noncharacterIn(`a${String.fromCodePoint(cp)}`)).toBeUndefined();
  });

  it('refuses integers JSON cannot carry exactly, not ordinary numbers', () => {
    expect(jsonProblem(JSON.parse('{"n": 12345678901234567890}'))?.message).toMatch(/2\^53/);
    expect(jsonProblem(JSON.parse('{"n": -9007199254740993}'))?.path).toBe('n');
    expect(jsonProblem(JSON.parse('{"n": 9007199254740991, "f": 0.1, "e": 1.5e-7}'))).toBeUndefined();
  });

  it('bounds nesting', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    expect(jsonProblem(deep, 32)?.message).toMatch(/deeper than 32/);
    expect(jsonProblem(deep, 64)).toBeUndefined();
  });
});

describe('normalizeIdentity', () => {
  it('folds what a human reads as the same identity', () => {
    const alice = normalizeIdentity('alice@acme.example');
    for (const variant of [
      'Alice@ACME.example',
      'alice\u200b@acme.example',
      'alice＠acme.example', // fullwidth @
      'ａｌｉｃｅ@acme.example', // fullwidth letters
      'alice@acme.example\u0000',
      '\u200falice@acme.example',
      ' alice@acme.example ',
    ])
      expect([variant, normalizeIdentity(variant)]).toEqual([variant, alice]);
    expect(normalizeIdentity('bob@acme.example')).not.toBe(alice);
  });
});

/**
 * Property: thousands of malformed or hostile bodies and headers sent to POST /v1/toolcalls are
 * each answered with a 4xx and the SPEC §1 error body, never a 5xx, and the table is unchanged.
 */
import fc from 'fast-check';
import { tableSnapshot } from '../support/snapshot.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ consumers: false });
});
afterAll(async () => {
  await stack.stop();
});

const snapshot = () => tableSnapshot(stack.state.doc, stack.config.tableName);

const wrongValues: Record<string, fc.Arbitrary<unknown>> = {
  agent_id: fc.oneof(
    fc.constant(''),
    fc.constant('   '),
    fc.integer(),
    fc.string({ minLength: 129, maxLength: 300 }),
    fc.constant(null),
  ),
  tool: fc.oneof(
    fc.constant(''),
    fc.string({ minLength: 1 }).filter((s) => !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(s.trim().toLowerCase())),
    fc.integer(),
  ),
  action: fc.oneof(fc.constant('UPPER CASE'), fc.constant('a'.repeat(65)), fc.boolean(), fc.constant('..')),
  params: fc.oneof(
    fc.array(fc.anything()),
    fc.string(),
    fc.integer(),
    fc.constant(null),
    fc.constant({ deep: '\ud800' }),
  ),
  resource: fc.oneof(fc.integer(), fc.string({ minLength: 2049, maxLength: 2100 }), fc.constant({})),
  risk_score: fc.oneof(
    fc.integer({ min: 11 }),
    fc.integer({ max: -1 }),
    fc.double({ noInteger: true }),
    fc.string(),
    fc.constant(null),
  ),
  risk_factors: fc.oneof(
    fc.string(),
    fc.array(fc.integer(), { minLength: 1 }),
    fc.array(fc.string(), { minLength: 33, maxLength: 40 }),
  ),
  labels: fc.oneof(
    fc.array(fc.string()),
    fc.dictionary(fc.string({ maxLength: 8 }), fc.integer(), { minKeys: 1 }),
    fc.constant(Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']))),
  ),
  idempotency_key: fc.oneof(
    fc.constant(''),
    fc.string({ minLength: 257, maxLength: 300 }),
    fc.integer(),
    fc.constant(' '),
  ),
  requested_at: fc.oneof(
    fc.constant(''),
    fc.constant('2025-01-01'),
    fc.constant('2025-01-01T00:00:00'),
    fc.integer(),
    fc.string(),
  ),
  schema_version: fc.oneof(
    fc.constant('2.0'),
    fc.constant(''),
    fc.integer(),
    fc.string().filter((s) => s !== '1.0'),
  ),
  user_id: fc.oneof(fc.integer(), fc.string({ minLength: 257, maxLength: 300 })),
  trace_id: fc.oneof(fc.array(fc.string()), fc.string({ minLength: 257, maxLength: 260 })),
};

const unknownField = fc
  .string({ minLength: 1, maxLength: 20 })
  .filter((k) => !(k in wrongValues) && k !== 'tenant_id' && k !== 'session_id' && k !== '__proto__');

const hostileBody: fc.Arbitrary<string> = fc.oneof(
  // one field of an otherwise valid request made wrong
  fc
    .record({ field: fc.constantFrom(...Object.keys(wrongValues)), seed: fc.nat() })
    .chain(({ field }) =>
      (wrongValues[field] as fc.Arbitrary<unknown>).map((value) =>
        JSON.stringify({ ...toolCall(), [field]: value }),
      ),
    ),
  // a valid request plus fields nobody declared
  fc
    .dictionary(unknownField, fc.jsonValue(), { minKeys: 1, maxKeys: 3 })
    .map((extra) => JSON.stringify({ ...toolCall(), ...extra })),
  // another tenant in the body
  fc
    .string({ minLength: 1, maxLength: 20 })
    .filter((t) => t !== 'tenant1' && t.trim() !== '')
    .map((t) => JSON.stringify(toolCall({ tenant_id: t }))),
  // JSON that is not an object, or no JSON at all
  fc
    .jsonValue()
    .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))
    .map((v) => JSON.stringify(v)),
  fc.string().map((s) => `{${s}`),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
  // objects of random shape
  fc.object().map((o) => JSON.stringify(o)),
);

const hostileHeaders: fc.Arbitrary<Record<string, string>> = fc.oneof(
  fc.constant({}),
  fc.record({
    'Content-Type': fc.constantFrom('text/plain', 'application/xml', 'multipart/form-data; boundary=x', ''),
  }),
  fc.record({ 'X-Request-Id': fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')) }),
);

describe('submit under hostile input', () => {
  it('answers every malformed body with a 4xx error body, never 5xx, and writes nothing', async () => {
    const before = await snapshot();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(hostileBody, hostileHeaders, async (body, headers) => {
        runs += 1;
        const r = await stack.post('/v1/toolcalls', body, KEYS.tenant1, headers);
        expect(r.status).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
        expect(r.json).toEqual(
          expect.objectContaining({
            code: expect.any(String),
            message: expect.any(String),
            retryable: false,
            request_id: expect.any(String),
          }),
        );
      }),
      { numRuns: 2000 },
    );
    expect(runs).toBe(2000);
    expect(await snapshot()).toEqual(before);
  }, 300_000);

  it('answers hostile credentials with 401 and writes nothing', async () => {
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 600 }).map((k) => ({ 'X-API-Key': k.replace(/[^\x21-\x7e]/g, 'x') || 'x' })),
          fc
            .string({ maxLength: 100 })
            .map((k) => ({ Authorization: `Basic ${k.replace(/[^\x21-\x7e]/g, 'x')}` })),
          fc.constant({ Authorization: 'Bearer' }),
          fc.constant({ Authorization: `bearer  ${KEYS.tenant1}x` }),
        ),
        async (headers) => {
          const r = await stack.post('/v1/toolcalls', toolCall(), null, headers);
          expect(r.status).toBe(401);
          expect(r.json.code).toBe('UNAUTHORIZED');
        },
      ),
      { numRuns: 300 },
    );
    expect(await snapshot()).toEqual(before);
  }, 120_000);
});

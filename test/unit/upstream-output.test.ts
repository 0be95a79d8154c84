/** What is recorded of an upstream tool's result: a bounded copy plus the whole result's hash. */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { canon } from '../../functions/core/evidence.js';
import { boundUpstreamResult } from '../../functions/core/upstream-output.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const size = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

describe('boundUpstreamResult', () => {
  it('copies a small result whole, with its size and hash', () => {
    const result = { content: [{ type: 'text', text: 'hi' }], structuredContent: { n: 1 } };
    expect(boundUpstreamResult(result, 1024)).toEqual({
      ...result,
      result_bytes: Buffer.byteLength(canon(result)),
      result_sha256: sha(canon(result)),
    });
  });

  it('keeps structuredContent that fits and cuts the text after it', () => {
    const result = {
      content: [
        { type: 'text', text: 'é'.repeat(5000) },
        { type: 'text', text: 'gone' },
      ],
      structuredContent: { n: 1 },
    };
    const bounded = boundUpstreamResult(result, 2048);
    expect(size(bounded)).toBeLessThanOrEqual(2048);
    expect(bounded.truncated).toBe(true);
    expect(bounded.structuredContent).toEqual({ n: 1 });
    expect(bounded.content).toHaveLength(1);
    expect((bounded.content[0] as { text: string }).text).toMatch(/^é+$/);
    expect(bounded.result_sha256).toBe(sha(canon(result)));
  });

  it('drops structuredContent that alone is over the bound', () => {
    const bounded = boundUpstreamResult({ content: [], structuredContent: { big: 'x'.repeat(4096) } }, 1024);
    expect(bounded.structuredContent).toBeUndefined();
    expect(bounded.truncated).toBe(true);
  });

  it('never cuts a surrogate pair in half', () => {
    const bounded = boundUpstreamResult({ content: [{ type: 'text', text: '😀'.repeat(1000) }] }, 512);
    const text = (bounded.content[0] as { text: string }).text;
    expect(text.isWellFormed()).toBe(true);
    expect(text.length % 2).toBe(0);
  });

  it('is always under the bound, whatever the blocks (property)', () => {
    const block = fc.oneof(
      fc.record({ type: fc.constant('text'), text: fc.string({ unit: 'binary', maxLength: 3000 }) }),
      fc.record({
        type: fc.constant('image'),
        mimeType: fc.constant('image/png'),
        data: fc.base64String({ maxLength: 4000 }),
      }),
      fc.record({
        type: fc.constant('resource'),
        resource: fc.record({ uri: fc.webUrl(), text: fc.string({ maxLength: 3000 }) }),
      }),
    );
    fc.assert(
      fc.property(
        fc.array(block, { maxLength: 8 }),
        fc.option(fc.dictionary(fc.string(), fc.string())),
        fc.integer({ min: 600, max: 6000 }),
        (content, structured, max) => {
          const result = { content, ...(structured ? { structuredContent: structured } : {}) };
          const bounded = boundUpstreamResult(result, max);
          expect(size(bounded)).toBeLessThanOrEqual(max);
          expect(bounded.content.some((b) => 'data' in b)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});

/**
 * The approval view's property, shared by the stack test (test/integration/approval-view-property.test.ts)
 * and the bench (many more requests through the pure core): hostile text to put in a param, and how
 * to read a shown value back to the exact value it shows.
 */
import fc from 'fast-check';
import { noncharacterIn } from '../../functions/shared/input-rules.js';

/** What a person cannot see, or sees as something else: none of it may reach a surface raw. */
export const INVISIBLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;

/**
 * Text an agent may send that a human must still read exactly: any code point, bidi controls,
 * zero-width, line-separator and tag characters, a variation selector, a soft hyphen, quotes,
 * backslashes and a fake escape. Never what the edge refuses before any decision (a lone
 * surrogate, a noncharacter: their own tests).
 */
export function hostileText(options: { minParts?: number; maxParts?: number } = {}): fc.Arbitrary<string> {
  const special = fc.constantFrom(
    '\u202e',
    '\u202c',
    '\u2066',
    '\u200b',
    '\u2028',
    '\u0000',
    '\u{e0041}',
    '\ufe0f',
    '\u00ad',
    '⟨U+0041⟩',
    '"',
    '\\',
  );
  return fc
    .array(fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }), special), {
      minLength: options.minParts ?? 0,
      maxLength: options.maxParts ?? 12,
    })
    .map((parts) => parts.join(''))
    .filter((t) => t.isWellFormed() && noncharacterIn(t) === undefined);
}

/** A shown string value (`"…"`) back to the exact value: the quotes, `\\` and `\"`, then each ⟨U+XXXX⟩. */
export function decodeShown(shown: string): string {
  if (!shown.startsWith('"') || !shown.endsWith('"')) throw new Error(`not a quoted value: ${shown}`);
  return shown
    .slice(1, -1)
    .replace(/\\([\\"])/g, '$1')
    .replace(/⟨U\+([0-9A-F]{4,6})⟩/g, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)));
}

/** The value a view's lines show for a param path (`  text = "…"`), if they have it. */
export function shownParam(lines: readonly string[], path: string): string | undefined {
  const line = lines.find((l) => l.startsWith(`  ${path} = `));
  return line?.slice(`  ${path} = `.length);
}

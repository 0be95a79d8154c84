#!/usr/bin/env node
/**
 * Generates `functions/core/approval-view-v1.json`, the escape table and size bounds of the
 * approval view `oc-approval-view/v1`, ONCE, from this Node's Unicode tables. The view's hash
 * depends on which code points it escapes, so the table is checked-in data of the version: a Node
 * upgrade (a newer Unicode, where some Cn code points become assigned) cannot change a hash.
 * Re-running it for v1 is only a check (`--check`: exit 1 when the table on disk differs); a new
 * table is a new version (`oc-approval-view/v2`), and v1 stays for the verifier.
 *
 *   node scripts/approval-view-table.mjs          # write the file (first time only)
 *   node scripts/approval-view-table.mjs --check  # compare with this Node's tables
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const out = fileURLToPath(new URL('../functions/core/approval-view-v1.json', import.meta.url));

// Controls, format characters (bidi, zero-width), private use, unassigned, surrogates (a lone one
// never passes the input rules, but the view must not depend on that), line and paragraph
// separators, and every default-ignorable code point (tag characters U+E0000–E007F, variation
// selectors, Hangul fillers).
const ESCAPED = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;
// The escape's own brackets are escaped too, so the rendering is injective: a value that spells
// "⟨U+202E⟩" with real brackets reads "⟨U+27E8⟩U+202E⟨U+27E9⟩", never as an escaped RLO.
const LITERAL = [0x27e8, 0x27e9];

const ranges = [];
for (let cp = 0; cp <= 0x10ffff; cp += 1) {
  if (!(ESCAPED.test(String.fromCodePoint(cp)) || LITERAL.includes(cp))) continue;
  const last = ranges[ranges.length - 1];
  if (last && last[1] === cp - 1) last[1] = cp;
  else ranges.push([cp, cp]);
}

const table = {
  version: 'oc-approval-view/v1',
  generated_from: `Node ${process.versions.node}, Unicode ${process.versions.unicode}`,
  escape: {
    classes: ['Cc', 'Cf', 'Co', 'Cn', 'Cs', 'Zl', 'Zp', 'Default_Ignorable_Code_Point', 'U+27E8', 'U+27E9'],
    format: '⟨U+XXXX⟩ (uppercase hex, at least 4 digits)',
    ranges,
  },
  bounds: {
    // Nesting deeper than this is shown as the escaped canonical JSON of the subtree (the request
    // rules allow depth 32 below params, so a valid request never reaches it).
    maxDepth: 32,
    // A key or string value longer than this (code points, after escaping) is still shown whole in
    // the view; surfaces with smaller limits say how much they left out.
    maxLineCodePoints: 300,
  },
};

const text = `${JSON.stringify(table, null, 1).replace(/\[\n\s+(\d+),\n\s+(\d+)\n\s+\]/g, '[$1, $2]')}\n`;
if (process.argv.includes('--check')) {
  const onDisk = JSON.parse(readFileSync(out, 'utf8'));
  const same = JSON.stringify(onDisk.escape.ranges) === JSON.stringify(ranges);
  console.log(
    same ? 'approval-view-v1.json matches this Node' : `differs from Node ${process.versions.node}`,
  );
  process.exit(same ? 0 : 1);
}
writeFileSync(out, text);
console.log(`wrote ${out}: ${ranges.length} ranges`);

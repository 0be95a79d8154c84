/**
 * The approval view `oc-approval-view/v1` (issue 19, deliverable 3): every param, nested, in one
 * order; every invisible code point shown as ⟨U+…⟩ in keys and values, from the version's
 * checked-in table; a known-answer hash.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  actLabel,
  APPROVAL_VIEW_V1,
  buildApprovalView,
  viewHash,
  viewLines,
  viewText,
  visible,
  type ApprovalViewSource,
} from '../../functions/core/approval-view.js';

const source = (overrides: Partial<ApprovalViewSource> = {}): ApprovalViewSource => ({
  tool: 'jira',
  action: 'issue.delete',
  resource: 'PROD-42',
  params: { issue: 'PROD-42' },
  risk_score: 9,
  risk: { claimed: 3, floor: 9, effective: 9 },
  reason: 'destructive actions need approval',
  agent_id: 'agent-1',
  user_id: 'alice@acme.example',
  expires_at: '2026-08-01T12:00:00.000Z',
  ...overrides,
});

describe('escapes: shown, never dropped, never interpreted', () => {
  it.each([
    ['Cc NUL', '\u0000', '⟨U+0000⟩'],
    ['Cc line feed', '\n', '⟨U+000A⟩'],
    ['Cc C1', '\u0085', '⟨U+0085⟩'],
    ['Cf RLO', '\u202e', '⟨U+202E⟩'],
    ['Cf PDF', '\u202c', '⟨U+202C⟩'],
    ['Cf isolates', '\u2066\u2067\u2068\u2069', '⟨U+2066⟩⟨U+2067⟩⟨U+2068⟩⟨U+2069⟩'],
    ['Cf zero-width space', '\u200b', '⟨U+200B⟩'],
    ['Cf BOM', '\ufeff', '⟨U+FEFF⟩'],
    ['Zl', '\u2028', '⟨U+2028⟩'],
    ['Zp', '\u2029', '⟨U+2029⟩'],
    ['Co private use', '\ue000', '⟨U+E000⟩'],
    ['Co plane 15', '\u{F0000}', '⟨U+F0000⟩'],
    ['Cn unassigned', '\u0378', '⟨U+0378⟩'],
    ['Cn noncharacter', '\uffff', '⟨U+FFFF⟩'],
    ['tag characters', '\u{E0001}\u{E0041}\u{E007F}', '⟨U+E0001⟩⟨U+E0041⟩⟨U+E007F⟩'],
    ['variation selectors', '\ufe0f\u{E0100}', '⟨U+FE0F⟩⟨U+E0100⟩'],
    ['Hangul filler (default ignorable)', '\u3164', '⟨U+3164⟩'],
    ['soft hyphen', '\u00ad', '⟨U+00AD⟩'],
    ['lone surrogate', '\ud800', '⟨U+D800⟩'],
    ['the escape brackets themselves', '⟨U+202E⟩', '⟨U+27E8⟩U+202E⟨U+27E9⟩'],
  ])('%s', (_name, raw, shown) => {
    expect(visible(`a${raw}b`)).toBe(`a${shown}b`);
  });

  it('leaves visible text alone: letters, right-to-left script, emoji, spaces', () => {
    for (const text of ['Deploy finished', 'שלום', 'こんにちは', '🚀 ok', 'a b', 'é']) {
      expect(visible(text)).toBe(text);
    }
  });

  it('shows the Trojan Source reason and the zero-width channel as they are, in values and keys', () => {
    const view = buildApprovalView(
      source({
        tool: 'slack',
        action: 'msg.post',
        resource: '#o\u200bps',
        params: {
          channel: '#o\u200bps',
          text: 'Deploy finished \u202e:eludehcs ot gnidrocca\u202c ok',
          ['ke\u202ey']: 'x',
        },
      }),
    );
    expect(view.target).toBe('#o⟨U+200B⟩ps');
    expect(view.params).toEqual([
      { path: 'channel', value: '"#o⟨U+200B⟩ps"' },
      { path: '["ke⟨U+202E⟩y"]', value: '"x"' },
      { path: 'text', value: '"Deploy finished ⟨U+202E⟩:eludehcs ot gnidrocca⟨U+202C⟩ ok"' },
    ]);
    const text = viewText(view);
    expect(text).not.toMatch(/[\u200b\u202e\u202c]/u);
    expect(text).toContain('text = "Deploy finished ⟨U+202E⟩:eludehcs ot gnidrocca⟨U+202C⟩ ok"');
  });

  it('escapes every field a requester controls: agent, requester, reason, tool and action', () => {
    const view = buildApprovalView(
      source({ agent_id: 'a\u200bb', user_id: 'al\u2066ice', reason: 'r\u0000', tool: 't\u00ad' }),
    );
    expect([view.agent, view.requester, view.reason, view.tool]).toEqual([
      'a⟨U+200B⟩b',
      'al⟨U+2066⟩ice',
      'r⟨U+0000⟩',
      't⟨U+00AD⟩',
    ]);
  });
});

describe('params: every one, nested, in one order', () => {
  it('flattens objects and arrays into paths; quotes keys that would read ambiguously', () => {
    const view = buildApprovalView(
      source({
        params: {
          z: 1,
          fields: { summary: 'Hi "there"', labels: ['a', 'b\\c'], empty: {}, none: [] },
          'a.b': null,
          flag: true,
          n: 1.5,
        },
      }),
    );
    expect(view.params).toEqual([
      { path: '["a.b"]', value: 'null' },
      { path: 'fields.empty', value: '{}' },
      { path: 'fields.labels[0]', value: '"a"' },
      { path: 'fields.labels[1]', value: '"b\\\\c"' },
      { path: 'fields.none', value: '[]' },
      { path: 'fields.summary', value: '"Hi \\"there\\""' },
      { path: 'flag', value: 'true' },
      { path: 'n', value: '1.5' },
      { path: 'z', value: '1' },
    ]);
  });

  it('is deterministic: the same request in any key order gives the same view and hash', () => {
    const a = buildApprovalView(source({ params: { b: { y: 2, x: 1 }, a: [1, { d: 4, c: 3 }] } }));
    const b = buildApprovalView(source({ params: { a: [1, { c: 3, d: 4 }], b: { x: 1, y: 2 } } }));
    expect(a).toEqual(b);
    expect(viewHash(a)).toBe(viewHash(b));
    expect(viewLines(a)).toEqual(viewLines(b));
  });

  it('shows a subtree past the depth bound whole, as escaped canonical JSON', () => {
    let deep: unknown = 'x\u200b';
    for (let i = 0; i < 40; i += 1) deep = { k: deep };
    const view = buildApprovalView(source({ params: { deep } }));
    expect(view.params).toHaveLength(1);
    expect(view.params[0]!.path.split('.')).toHaveLength(32);
    expect(view.params[0]!.value).toContain('⟨U+200B⟩');
  });

  it('changes the hash when any param changes, even by an invisible character', () => {
    const base = viewHash(buildApprovalView(source()));
    expect(viewHash(buildApprovalView(source({ params: { issue: 'PROD-42\u200b' } })))).not.toBe(base);
    expect(viewHash(buildApprovalView(source({ resource: 'PROD-43' })))).not.toBe(base);
  });
});

describe('the view text and its known-answer hash', () => {
  it('renders the lines every surface shows, and names the act', () => {
    const view = buildApprovalView(source());
    expect(viewLines(view)).toEqual([
      'Action: jira.issue.delete',
      'Target: PROD-42',
      'Params (1):',
      '  issue = "PROD-42"',
      'Risk: 9/10 (claimed 3, floor 9)',
      'Reason: destructive actions need approval',
      'Agent: agent-1',
      'Requester: alice@acme.example',
      'Expires: 2026-08-01T12:00:00.000Z',
    ]);
    expect(actLabel(view)).toBe('delete PROD-42');
  });

  it('hashes the RFC 8785 form of the data to a known answer (v1 must never change it)', () => {
    const view = buildApprovalView(source({ params: { issue: 'PROD-42', note: 'o\u200bk' } }));
    expect(view.v).toBe(APPROVAL_VIEW_V1);
    expect(viewHash(view)).toBe('aeae46b191e160ab3a629f11b355fa809bbb318b318d429f12e9060aefd913c6');
  });

  it('a legacy record without the risk assessment shows the effective risk only', () => {
    const { risk: _r, ...legacy } = source();
    expect(viewLines(buildApprovalView(legacy))).toContain('Risk: 9/10');
  });

  it('refuses a version it does not know', () => {
    expect(() => buildApprovalView(source(), 'oc-approval-view/v0')).toThrow(/unknown approval view version/);
  });
});

describe('the checked-in table', () => {
  const table = JSON.parse(
    readFileSync(new URL('../../functions/core/approval-view-v1.json', import.meta.url), 'utf8'),
  ) as { version: string; escape: { ranges: [number, number][] } };

  it('is sorted, disjoint ranges within Unicode, for v1', () => {
    expect(table.version).toBe(APPROVAL_VIEW_V1);
    let previous = -1;
    for (const [first, last] of table.escape.ranges) {
      expect(first).toBeGreaterThan(previous);
      expect(last).toBeGreaterThanOrEqual(first);
      expect(last).toBeLessThanOrEqual(0x10ffff);
      previous = last;
    }
  });

  it('is what the committed script generates from this Node (a newer Unicode needs a new version)', () => {
    const out = execFileSync(process.execPath, ['scripts/approval-view-table.mjs', '--check'], {
      encoding: 'utf8',
    });
    expect(out).toContain('matches');
  });
});

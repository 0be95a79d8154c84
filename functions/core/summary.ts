/**
 * The one-line summary of an approval request (SPEC §5), shown in webhooks and Slack messages.
 * `resource` and `reason` are attacker-influenced (W25): the summary strips control, format and
 * bidi characters, caps every field and the whole, escapes Slack mrkdwn (`& < >`) and defangs
 * mentions and links, so that no receiver renders a live `<!channel>`, a spoofed link or reordered
 * text. The deterministic summary is a pure function; an extension (`Summarizer`) may phrase it
 * differently, but its output is sanitized the same way, it runs under a deadline, and any failure
 * falls back to the deterministic one. The raw fields travel beside the summary, never replaced.
 */
import { APPROVAL_VIEW_VERSION, buildApprovalView, paramLine } from './approval-view.js';

/** What a summary is made from: request fields as recorded, never instructions. */
export interface SummaryInput {
  agent_id: string;
  tool: string;
  action: string;
  resource: string;
  risk_score: number;
  reason: string;
  /** The stored request's params: the deterministic summary shows them, counted, as the view does. */
  params?: Record<string, unknown>;
  risk?: { claimed: number; floor: number; effective: number };
  /** The recorded view version (the current one when absent). */
  view_version?: string;
}

/** An extension point (`OC_SUMMARIZER`): phrases a summary; whatever it returns is sanitized. */
export interface Summarizer {
  summarize(input: Readonly<SummaryInput>): string | Promise<string>;
}

/** Longest summary, in UTF-16 code units after escaping (Slack section text allows 3000). */
export const SUMMARY_MAX_CHARS = 300;
/** Longest part any one field may take (before escaping). */
const FIELD_MAX_CHARS = 120;
/** How long an extension may take before the deterministic summary is used instead. */
export const SUMMARIZER_DEADLINE_MS = 1000;

// Control (Cc), format (Cf: zero-width, bidi embeddings/overrides/isolates, BOM), line and
// paragraph separators and unassigned/private-use code points (Cn, Co) are removed.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\u2028\u2029]/gu;

/** Text without invisible characters, whitespace runs collapsed, at most `max` code points. */
export function plainText(value: string, max = FIELD_MAX_CHARS): string {
  const cleaned = value.replace(INVISIBLE, ' ').replace(/\s+/gu, ' ').trim();
  const points = [...cleaned];
  return points.length <= max ? cleaned : `${points.slice(0, max - 1).join('')}…`;
}

/**
 * Slack mrkdwn needs only `&`, `<` and `>` escaped; `@channel`-style words and URLs are defanged
 * too, so that neither Slack nor a chat bridge turns them into mentions or links.
 */
function neutralize(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/@(channel|here|everyone)\b/giu, '(at)$1')
    .replace(/\b([a-z][a-z0-9+.-]*):\/\//giu, '$1[:]//')
    .replace(/\bwww\./giu, 'www[.]');
}

/** Escapes and caps the whole; the cut falls between characters, never inside `&amp;` or a defanged URL. */
export function sanitizeSummary(text: string): string {
  const points = [...plainText(text, SUMMARY_MAX_CHARS)];
  const full = neutralize(points.join(''));
  if (full.length <= SUMMARY_MAX_CHARS) return full;
  // The longest prefix whose neutralized form fits with the ellipsis (escaping only lengthens).
  let low = 0;
  let high = points.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (neutralize(points.slice(0, mid).join('')).length <= SUMMARY_MAX_CHARS - 1) low = mid;
    else high = mid - 1;
  }
  return `${neutralize(points.slice(0, low).join(''))}…`;
}

/**
 * The deterministic summary, rendered from the approval view (`core/approval-view.ts`): who asks
 * for what, on what, at which risk, how many params, why, then the params as the view shows them
 * (invisible characters as `⟨U+202E⟩`, never stripped). What does not fit is counted: "and N
 * more params"; a cut inside one field ends with `…`.
 */
export function deterministicSummary(input: Readonly<SummaryInput>): string {
  const view = buildApprovalView(
    {
      ...input,
      params: input.params ?? {},
      user_id: '',
      expires_at: '',
    },
    input.view_version ?? APPROVAL_VIEW_VERSION,
  );
  const count = view.params.length;
  const head =
    `${cap(view.agent, 64)} requests ${cap(`${view.tool}.${view.action}`, 64)}` +
    (view.target ? ` on ${cap(view.target, FIELD_MAX_CHARS)}` : '') +
    ` (risk ${view.risk.effective}/10${count ? `, ${count} param${count === 1 ? '' : 's'}` : ''}): ${cap(view.reason, FIELD_MAX_CHARS)}`;
  const fits = (text: string) => neutralize(text).length <= SUMMARY_MAX_CHARS;
  const textWith = (shown: number) => {
    const params = view.params.slice(0, shown).map(paramLine).join('; ');
    const more = count - shown;
    return (
      head +
      (params ? `. ${params}` : '') +
      (more ? `${params ? ';' : '.'} and ${more} more param${more === 1 ? '' : 's'} in the console` : '')
    );
  };
  if (fits(textWith(count))) return neutralize(textWith(count));
  // With the "and N more" suffix, each param shown adds more than the count's digits lose: the
  // longest prefix that fits is found by bisection (a request may have thousands of params).
  let low = -1;
  let high = count - 1;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (fits(textWith(mid))) low = mid;
    else high = mid - 1;
  }
  return low >= 0 ? neutralize(textWith(low)) : sanitizeSummary(head);
}

/** At most `max` code points of already-visible text. */
function cap(text: string, max: number): string {
  const points = [...text];
  return points.length <= max ? text : `${points.slice(0, max - 1).join('')}…`;
}

/**
 * The summary to send: the extension's, sanitized, when it answers a non-empty string in time;
 * otherwise (no extension, an error, a timeout, an empty answer) the deterministic one.
 */
export async function summarize(
  input: Readonly<SummaryInput>,
  extension?: Summarizer,
  deadlineMs = SUMMARIZER_DEADLINE_MS,
): Promise<{ summary: string; by: 'deterministic' | 'extension' }> {
  const fallback = { summary: deterministicSummary(input), by: 'deterministic' as const };
  if (!extension) return fallback;
  let timer: NodeJS.Timeout | undefined;
  try {
    // The extension gets a frozen copy: it cannot change the fields the event carries.
    const copy = Object.freeze({ ...input });
    const answer = await Promise.race([
      Promise.resolve().then(() => extension.summarize(copy)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('summarizer timed out')), deadlineMs);
      }),
    ]);
    if (typeof answer !== 'string') return fallback;
    const summary = sanitizeSummary(answer);
    return summary ? { summary, by: 'extension' } : fallback;
  } catch {
    return fallback;
  } finally {
    clearTimeout(timer);
  }
}

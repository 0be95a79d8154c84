/**
 * The approval view (`oc-approval-view/v1`), pure: what every surface shows a human before they
 * decide, built from the stored approval (the normalized request the grant is bound to). Slack,
 * the webhook summary, the console, the MCP elicitation and `oc approvals show` all render from
 * it; none builds its own text, so two surfaces cannot show two different calls.
 *
 * It holds tool, action, target, every param (nested, in RFC 8785 key order), risk claimed /
 * floor / effective, the policy's reason, agent, requester and `expires_at`: nothing that changes
 * while the approval is pending (votes, delivery status, "expires in"), so an update never makes a
 * button stale. Every invisible or ambiguous code point (controls, format characters such as the
 * bidi override U+202E and the zero-width space, private use, unassigned, line separators,
 * default-ignorables such as tag characters and variation selectors) is shown as `⟨U+202E⟩`:
 * never dropped, never interpreted. Which code points those are is the version's checked-in data
 * (`approval-view-v1.json`, generated once by `scripts/approval-view-table.mjs`), not the
 * runtime's Unicode tables, so a Node upgrade cannot change what a view shows or its hash.
 *
 * The view's hash (SHA-256 over the RFC 8785 canonical form of the data) is stored with the
 * approval and carried by every decision: it proves which view the human acted on.
 */
import { createHash } from 'node:crypto';
import TABLE_V1 from './approval-view-v1.json' with { type: 'json' };
import { canon } from './evidence.js';

export const APPROVAL_VIEW_V1 = 'oc-approval-view/v1';
export const APPROVAL_VIEW_VERSION = APPROVAL_VIEW_V1;
/** What approvals created before views existed carry instead of a version and hash. */
export const LEGACY_VIEW = 'legacy';

interface ViewTable {
  version: string;
  escape: { ranges: [number, number][] };
  bounds: { maxDepth: number; maxLineCodePoints: number };
}

const TABLES: Readonly<Record<string, ViewTable>> = {
  [APPROVAL_VIEW_V1]: TABLE_V1 as unknown as ViewTable,
};

/** The fields a view is built from: the stored approval record's (ports' ApprovalRecord). */
export interface ApprovalViewSource {
  tool: string;
  action: string;
  resource: string;
  params: Record<string, unknown>;
  risk_score: number;
  /** Absent on approvals created before the assessment was stored with them. */
  risk?: { claimed: number; floor: number; effective: number };
  reason: string;
  agent_id: string;
  user_id: string;
  expires_at: string;
  /**
   * An upstream MCP tool's own words (issue 25), stored with the approval and its decided fact at
   * submit: shown labelled as the upstream's claims, never as the gateway's. Absent on every other
   * approval, whose view (and hash) is unchanged by it.
   */
  upstream_claims?: UpstreamClaimsSource;
}

/** What an upstream server said of its tool, as pinned (`core/upstream.ts` `UpstreamListing`). */
export interface UpstreamClaimsSource {
  server: string;
  tool: string;
  /** The pinned listing's SHA-256 (the hash drift detection compares). */
  hash: string;
  title?: string;
  description?: string;
  annotations?: Record<string, unknown>;
}

/** The claims as shown: escaped like every view string; annotations as canonical JSON, bounded. */
export interface ViewClaims {
  server: string;
  tool: string;
  hash: string;
  title?: string;
  description?: string;
  annotations?: string;
}

/** The most code points of an upstream's annotations shown (its title and description are bounded at sync). */
const MAX_CLAIM_ANNOTATIONS = 2_048;

/** One param leaf: its path and value as shown (escaped), e.g. `fields.summary` = `"Deploy"`. */
export interface ViewParam {
  path: string;
  value: string;
}

/** The view's data: exactly what is hashed. Every string in it is already escaped for display. */
export interface ApprovalViewData {
  v: string;
  tool: string;
  action: string;
  target: string;
  params: ViewParam[];
  risk: { effective: number; claimed?: number; floor?: number };
  reason: string;
  agent: string;
  requester: string;
  expires_at: string;
  /** Only on an upstream tool's approval (issue 25): older views have no such key, so their hash is unchanged. */
  claims?: ViewClaims;
}

/** The stored stamp: version and hash, or `legacy` for approvals created before views. */
export type ViewStamp = { version: string; hash: string } | { version: typeof LEGACY_VIEW };

function tableFor(version: string): ViewTable {
  const table = TABLES[version];
  if (!table) throw new Error(`unknown approval view version: ${version}`);
  return table;
}

/** Binary search in the version's sorted, disjoint ranges. */
function escaped(table: ViewTable, cp: number): boolean {
  const ranges = table.escape.ranges;
  let low = 0;
  let high = ranges.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const [first, last] = ranges[mid]!;
    if (cp < first) high = mid - 1;
    else if (cp > last) low = mid + 1;
    else return true;
  }
  return false;
}

const codePointLabel = (cp: number) => `⟨U+${cp.toString(16).toUpperCase().padStart(4, '0')}⟩`;

/** `text` with every code point of the version's table shown as `⟨U+XXXX⟩` (lone surrogates too). */
export function visible(text: string, version: string = APPROVAL_VIEW_VERSION): string {
  const table = tableFor(version);
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    out += escaped(table, cp) ? codePointLabel(cp) : ch;
  }
  return out;
}

/** A key as a path segment: plain when it reads unambiguously, else quoted. */
function segment(key: string, version: string, first: boolean): string {
  const shown = visible(key, version);
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return first ? shown : `.${shown}`;
  return `[${quoted(shown)}]`;
}

/** A string value, quoted; `"` and `\` escaped so the quotes always close where they seem to. */
function quoted(shownText: string): string {
  return `"${shownText.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** RFC 8785 orders keys by UTF-16 code units: the same order everywhere, whatever the input's. */
const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function flatten(value: unknown, path: string, depth: number, version: string, out: ViewParam[]): void {
  const { maxDepth } = tableFor(version).bounds;
  const leaf = (shown: string) => out.push({ path, value: shown });
  if (value === null || typeof value === 'boolean' || typeof value === 'number') {
    leaf(canon(value));
  } else if (typeof value === 'string') {
    leaf(quoted(visible(value, version)));
  } else if (depth >= maxDepth) {
    // Past the bound, the subtree is shown whole as its canonical JSON, still escaped.
    leaf(visible(canon(value), version));
  } else if (Array.isArray(value)) {
    if (value.length === 0) leaf('[]');
    value.forEach((item, i) => flatten(item, `${path}[${i}]`, depth + 1, version, out));
  } else if (typeof value === 'object') {
    const keys = Object.keys(value).sort(byCodeUnits);
    if (keys.length === 0) leaf('{}');
    for (const key of keys) {
      const child = (value as Record<string, unknown>)[key];
      flatten(child, `${path}${segment(key, version, path === '')}`, depth + 1, version, out);
    }
  } else {
    // Not JSON (undefined, a function): the request rules never let one through; shown, not hidden.
    leaf(visible(String(value), version));
  }
}

/** The view of a stored approval, in the given version (the current one by default). */
export function buildApprovalView(
  source: ApprovalViewSource,
  version: string = APPROVAL_VIEW_VERSION,
): ApprovalViewData {
  tableFor(version);
  const params: ViewParam[] = [];
  const top = Object.keys(source.params ?? {}).sort(byCodeUnits);
  for (const key of top) flatten(source.params[key], segment(key, version, true), 1, version, params);
  const risk = source.risk
    ? { effective: source.risk.effective, claimed: source.risk.claimed, floor: source.risk.floor }
    : { effective: source.risk_score };
  return {
    v: version,
    tool: visible(source.tool, version),
    action: visible(source.action, version),
    target: visible(source.resource, version),
    params,
    risk,
    reason: visible(source.reason, version),
    agent: visible(source.agent_id, version),
    requester: visible(source.user_id, version),
    expires_at: visible(source.expires_at, version),
    ...(source.upstream_claims ? { claims: viewClaims(source.upstream_claims, version) } : {}),
  };
}

function viewClaims(c: UpstreamClaimsSource, version: string): ViewClaims {
  const annotations = c.annotations === undefined ? undefined : Array.from(canon(c.annotations));
  return {
    server: visible(c.server, version),
    tool: visible(c.tool, version),
    hash: visible(c.hash, version),
    ...(c.title !== undefined ? { title: quoted(visible(c.title, version)) } : {}),
    ...(c.description !== undefined ? { description: quoted(visible(c.description, version)) } : {}),
    ...(annotations
      ? {
          annotations:
            visible(annotations.slice(0, MAX_CLAIM_ANNOTATIONS).join(''), version) +
            (annotations.length > MAX_CLAIM_ANNOTATIONS
              ? ` …(${annotations.length - MAX_CLAIM_ANNOTATIONS} more characters)`
              : ''),
        }
      : {}),
  };
}

/** SHA-256 (hex) of the view's RFC 8785 canonical form. */
export function viewHash(view: ApprovalViewData): string {
  return createHash('sha256').update(canon(view), 'utf8').digest('hex');
}

/** The stamp stored with a new approval. */
export function viewStamp(source: ApprovalViewSource): { version: string; hash: string } {
  const view = buildApprovalView(source);
  return { version: view.v, hash: viewHash(view) };
}

/** The act in a few words, for a button: "delete PROD-42" (the action's verb and the target). */
export function actLabel(view: ApprovalViewData): string {
  const verb = view.action.split('.').pop() ?? view.action;
  return view.target ? `${verb} ${view.target}` : `${view.tool}.${view.action}`;
}

/** The head line: "jira.issue.delete on PROD-42". */
export function headline(view: ApprovalViewData): string {
  return `${view.tool}.${view.action}${view.target ? ` on ${view.target}` : ''}`;
}

export function riskText(view: ApprovalViewData): string {
  const r = view.risk;
  return r.claimed === undefined
    ? `${r.effective}/10`
    : `${r.effective}/10 (claimed ${r.claimed}, floor ${r.floor})`;
}

/** A param as one line: `channel = "#o⟨U+200B⟩ps"`. */
export const paramLine = (p: ViewParam) => `${p.path} = ${p.value}`;

/**
 * The view as text lines, the one rendering every text surface shows (Slack's sections, the
 * webhook summary's body, the console, the MCP elicitation, the CLI). Params come before anything
 * a requester may phrase (reason) so that a cut surface keeps what runs.
 */
export function viewLines(view: ApprovalViewData): string[] {
  return [
    `Action: ${view.tool}.${view.action}`,
    `Target: ${view.target || '(none)'}`,
    view.params.length === 0 ? 'Params: (none)' : `Params (${view.params.length}):`,
    ...view.params.map((p) => `  ${paramLine(p)}`),
    `Risk: ${riskText(view)}`,
    `Reason: ${view.reason || '(none)'}`,
    `Agent: ${view.agent || '(none)'}`,
    `Requester: ${view.requester || '(none)'}`,
    `Expires: ${view.expires_at}`,
    ...(view.claims ? claimLines(view.claims) : []),
  ];
}

/**
 * An upstream tool's own words, last (after everything the gateway decided and runs) and labelled
 * as claims: they decided nothing, and the upstream may be lying (tool poisoning).
 */
function claimLines(c: ViewClaims): string[] {
  return [
    'The upstream server claims (unverified; policy decided, not these):',
    `  tool: ${c.server} ${c.tool} (pinned listing sha256:${c.hash})`,
    ...(c.title !== undefined ? [`  title: ${c.title}`] : []),
    ...(c.description !== undefined ? [`  description: ${c.description}`] : []),
    ...(c.annotations !== undefined ? [`  annotations: ${c.annotations}`] : []),
  ];
}

/** The whole view as text, with its version and hash: what `oc approvals show` prints. */
export function viewText(view: ApprovalViewData, hash: string = viewHash(view)): string {
  return [...viewLines(view), `View: ${view.v} sha256:${hash}`].join('\n');
}

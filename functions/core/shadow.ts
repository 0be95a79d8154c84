/**
 * Shadow mode (issue 24): a candidate policy is evaluated beside the live one on every decision and
 * only recorded, never enforced. Pure: the caller gives both decisions' inputs and writes the result.
 *
 * What is recorded is the difference only (a call the candidate decides as the live policy did
 * costs nothing but the evaluation), as a non-chain attribute of the event item: the evidence chain
 * seals the `toolcall.decided` fact, which holds what was enforced and nothing of the candidate.
 */
import type { Decision, PolicyDecision, PolicyEngine, PolicyRequest } from './policy.js';

/** The `shadow` attribute of an event item whose candidate decision differs from the enforced one. */
export interface ShadowRecord {
  /** What the candidate would have decided. */
  decision: Decision;
  reason: string;
  /** The candidate's version (digest of its folder). */
  policy_version: string;
  /** What was enforced (the live decision): the transition is `enforced -> decision`. */
  enforced: Decision;
  /** `tool.action` of the call, so that a report needs no other attribute of the event. */
  action: string;
}

/** The most characters of the candidate's reason an event item keeps. */
export const SHADOW_REASON_MAX = 512;

/** `allow->deny`: how a transition is named in metrics, the report and the docs. */
export type Transition = `${Decision}->${Decision}`;

export const transitionOf = (r: Pick<ShadowRecord, 'enforced' | 'decision'>): Transition =>
  `${r.enforced}->${r.decision}`;

export type ShadowOutcome =
  | { kind: 'same' }
  | { kind: 'diff'; record: ShadowRecord; transition: Transition }
  | { kind: 'error'; error: unknown };

/**
 * The candidate's decision on the request the live policy saw. Never throws: an engine that
 * throws (or a candidate that could not be loaded, whose engine throws) is an `error` outcome,
 * which the caller counts; the live decision stands either way.
 */
export function shadowEvaluate(
  candidate: PolicyEngine,
  request: PolicyRequest,
  live: PolicyDecision,
): ShadowOutcome {
  let shadow: PolicyDecision;
  try {
    shadow = candidate.evaluate(request);
  } catch (error) {
    return { kind: 'error', error };
  }
  if (shadow.decision === live.decision) return { kind: 'same' };
  const record: ShadowRecord = {
    decision: shadow.decision,
    // Bounded: the attribute rides on the decision's write, which it must never push past a limit.
    reason: shadow.reason.slice(0, SHADOW_REASON_MAX),
    policy_version: shadow.policyVersion,
    enforced: live.decision,
    action: `${request.tool}.${request.action}`,
  };
  return { kind: 'diff', record, transition: transitionOf(record) };
}

/** The engine of a candidate that could not be loaded: every evaluation is a shadow error. */
export function unloadableCandidate(cause: unknown): PolicyEngine {
  const message = cause instanceof Error ? cause.message : String(cause);
  return {
    version: 'unloadable',
    evaluate: () => {
      throw new Error(`the shadow policy could not be loaded: ${message}`);
    },
    tenant: () => undefined,
  };
}

/** One difference as the report reads it back: the record, its event and when it was decided. */
export interface ShadowDiffEntry extends ShadowRecord {
  tenant_id: string;
  event_id: string;
  at: string;
}

export interface ShadowSummaryRow {
  tenant_id: string;
  action: string;
  transition: Transition;
  count: number;
  /** The first event ids (oldest first), to look at with `GET /v1/toolcalls/{id}`. */
  examples: string[];
  /** The candidate versions that decided these (one, unless the candidate changed in the period). */
  candidate_versions: string[];
  first_at: string;
  last_at: string;
}

export interface ShadowSummary {
  tenants: string[];
  since: string | null;
  total: number;
  by_transition: Partial<Record<Transition, number>>;
  /** By tenant, then action, then transition. */
  rows: ShadowSummaryRow[];
}

/** How many example event ids a row keeps. */
export const SHADOW_EXAMPLES = 3;

/** Counts differences as they stream in: memory grows with distinct (tenant, action, transition), not events. */
export class ShadowSummarizer {
  private readonly rows = new Map<string, ShadowSummaryRow>();
  private total = 0;

  add(d: ShadowDiffEntry): void {
    const transition = transitionOf(d);
    const key = `${d.tenant_id}\n${d.action}\n${transition}`;
    let row = this.rows.get(key);
    if (!row) {
      row = {
        tenant_id: d.tenant_id,
        action: d.action,
        transition,
        count: 0,
        examples: [],
        candidate_versions: [],
        first_at: d.at,
        last_at: d.at,
      };
      this.rows.set(key, row);
    }
    row.count += 1;
    this.total += 1;
    if (row.examples.length < SHADOW_EXAMPLES) row.examples.push(d.event_id);
    if (!row.candidate_versions.includes(d.policy_version)) row.candidate_versions.push(d.policy_version);
    if (d.at < row.first_at) row.first_at = d.at;
    if (d.at > row.last_at) row.last_at = d.at;
  }

  summary(tenants: string[], since: string | undefined): ShadowSummary {
    const rows = [...this.rows.values()].sort(
      (a, b) =>
        a.tenant_id.localeCompare(b.tenant_id) ||
        a.action.localeCompare(b.action) ||
        a.transition.localeCompare(b.transition),
    );
    const byTransition: Partial<Record<Transition, number>> = {};
    for (const r of rows) byTransition[r.transition] = (byTransition[r.transition] ?? 0) + r.count;
    return { tenants, since: since ?? null, total: this.total, by_transition: byTransition, rows };
  }
}

/**
 * Policy replay and policy cases (issue 24): a request decided again under a policy, exactly as
 * submit decides it (SPEC §3 steps 1 and 3): the body parsed by the contract, its target derived
 * by its connector action, bound to the tenant, its risk raised to the action's floor, evaluated
 * in process. Pure: the CLI (bin/cli/policy-replay.ts, bin/cli/policy-tests.ts) reads the facts
 * and the folders.
 *
 * What a `toolcall.decided` fact does not record, replay cannot know: the rate-limit state (a call
 * refused with 429 left no fact; every recorded call is taken as admitted) and the tenant data at
 * the time of the call (thresholds, approver groups: the candidate's tenants.json is used). The
 * time of the call is recorded (`at`), and is the `now` policy sees.
 */
import { AppError } from '../shared/errors.js';
import type { FactRecord } from './evidence.js';
import { canonicalText } from './jcs.js';
import type { Decision, PolicyDecision, PolicyEngine, PolicyRequest } from './policy.js';
import type { RiskAssessment } from './risk.js';
import { evaluateCall } from './evaluate.js';
import { targeted, type SubmitDeps } from './submit.js';
import { bindRequest, parseToolCallBody, type ToolCallRequest } from './toolcall.js';

/** What deciding needs: the engine, its floors and the connector actions (as submitDeps builds them). */
export type DecideDeps = Pick<SubmitDeps, 'policy' | 'riskFloors' | 'actions'>;

/**
 * The engine with its decisions remembered by their input as the engine sees it (its
 * `decisionKey`: the tenant, agent and action, and only the context attributes the action's
 * policies read, the time among them; an engine without one: every PolicyRequest field, the time
 * only when a policy reads it): evaluation is a pure function of that input, so a replay of many
 * calls alike evaluates each distinct one once. Exact, and bounded: the memory is cleared when it
 * holds `max` inputs. Callers must not change a decision they get (replay reads it).
 */
export function memoized(engine: PolicyEngine, max = 50_000): PolicyEngine & { evaluations: number } {
  const memo = new Map<string, PolicyDecision>();
  const timeless = engine.readsTime === false;
  const keyOf = engine.decisionKey?.bind(engine);
  const wrapper = {
    version: engine.version,
    readsTime: engine.readsTime,
    evaluations: 0,
    tenant: (tenantId: string) => engine.tenant(tenantId),
    evaluate(req: PolicyRequest): PolicyDecision {
      if (keyOf) {
        const exact = keyOf(req);
        // A request the engine refuses as malformed is not remembered (it is decided at once).
        if (exact === undefined) {
          wrapper.evaluations += 1;
          return engine.evaluate(req);
        }
        return remembered(exact, req);
      }
      const key = JSON.stringify([
        req.tenantId,
        req.agentId,
        req.tool,
        req.action,
        req.resource,
        req.riskScore,
        req.riskFactors,
        req.labels,
        req.userId,
        req.sessionId,
        timeless ? 0 : req.now.getTime(),
      ]);
      return remembered(key, req);
    },
  };
  function remembered(key: string, req: PolicyRequest): PolicyDecision {
    let decision = memo.get(key);
    if (!decision) {
      if (memo.size >= max) memo.clear();
      wrapper.evaluations += 1;
      decision = engine.evaluate(req);
      memo.set(key, decision);
    }
    return decision;
  }
  return wrapper;
}

/** A decision, or `rejected`: the gateway would refuse the body before policy (422). */
export type Outcome = Decision | 'rejected';
export const OUTCOMES: readonly Outcome[] = ['allow', 'approve', 'deny', 'rejected'];

export type Decided =
  | { outcome: Decision; request: ToolCallRequest; risk: RiskAssessment; decision: PolicyDecision }
  | { outcome: 'rejected'; message: string; byTarget: boolean };

/**
 * Decides `body` (the submit body) for `tenantId` at `now`, as submit does before it writes
 * anything. Never throws: a body the gateway would refuse is `rejected` with its message.
 */
export function decide(deps: DecideDeps, tenantId: string, body: unknown, now: Date): Decided {
  const parsed = parseToolCallBody(body);
  if (!parsed.ok) {
    const first = parsed.details[0];
    return {
      outcome: 'rejected',
      message: `${first?.path || 'the body'} ${first?.message ?? 'invalid'}`,
      byTarget: false,
    };
  }
  if (parsed.body.tenant_id !== undefined && parsed.body.tenant_id !== tenantId)
    return { outcome: 'rejected', message: 'tenant_id differs from the tenant', byTarget: false };
  let derived;
  try {
    derived = targeted(deps, parsed.body);
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return { outcome: 'rejected', message: error.message.replace(/^validation: /, ''), byTarget: true };
  }
  const bound = bindRequest(derived, tenantId, now);
  const { decision, risk, request } = evaluateCall(deps, bound, bound.risk_score, now);
  return { outcome: decision.decision, request, risk, decision };
}

/** One decided fact, decided again. */
export interface Replayed {
  tenantId: string;
  eventId: string;
  /** `tool.action`. */
  action: string;
  at: string;
  before: Decision;
  after: Outcome;
  /**
   * The derived target (resource or target param) differs from the recorded one, or derivation
   * refuses the recorded request: a record from before target derivation (an asserted resource).
   */
  targetChanged: boolean;
  /** The approver group an approval goes to after (approve only, else ""). */
  approverGroup: string;
}

/** Why a fact could not be replayed (it is counted and listed, never fatal). */
export interface Unreplayable {
  tenantId: string;
  eventId: string;
  problem: string;
}

const DECISIONS = new Set<string>(['allow', 'approve', 'deny']);
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A `toolcall.decided` fact decided again under `deps`: the recorded request with the agent's
 * own risk claim (`risk.claimed`; a record without `risk` holds the claim as `risk_score`),
 * its target derived again, at the time of the call.
 */
export function replayFact(deps: DecideDeps, fact: FactRecord): Replayed | Unreplayable {
  try {
    return replayOne(deps, fact);
  } catch (error) {
    // A record nothing above foresaw is counted and listed; the replay goes on.
    return {
      tenantId: fact.tenant_id,
      eventId: typeof fact.event_id === 'string' ? fact.event_id : '',
      problem: `cannot be decided again: ${(error as Error).message}`,
    };
  }
}

function replayOne(deps: DecideDeps, fact: FactRecord): Replayed | Unreplayable {
  const eventId = typeof fact.event_id === 'string' ? fact.event_id : '';
  const tenantId = fact.tenant_id;
  const bad = (problem: string): Unreplayable => ({ tenantId, eventId, problem });
  const request = fact.request;
  if (!isObject(request)) return bad('the fact has no request');
  if (typeof fact.decision !== 'string' || !DECISIONS.has(fact.decision))
    return bad(`the fact's decision ${JSON.stringify(fact.decision)} is not allow, approve or deny`);
  const at = new Date(fact.at);
  if (typeof fact.at !== 'string' || !Number.isFinite(at.getTime())) return bad('the fact has no valid time');
  const claimed = isObject(fact.risk) ? fact.risk.claimed : request.risk_score;
  const { tenant_id: _tenant, ...rest } = request;
  const decided = decide(
    deps,
    tenantId,
    { ...rest, ...(claimed === undefined ? {} : { risk_score: claimed }) },
    at,
  );
  const action = `${String(request.tool)}.${String(request.action)}`;
  const targetChanged =
    decided.outcome === 'rejected'
      ? decided.byTarget
      : decided.request.resource !== request.resource ||
        canonicalText(decided.request.params) !== canonicalText(request.params ?? {});
  return {
    tenantId,
    eventId,
    action,
    at: fact.at,
    before: fact.decision as Decision,
    after: decided.outcome,
    targetChanged,
    approverGroup: decided.outcome === 'approve' ? decided.decision.approverGroup : '',
  };
}

// ---------------------------------------------------------------------------------------------
// The diff

/** `allow->approve`, ..., or `target-derivation` (its own transition, whatever the decisions). */
export type Transition = string;
export const TARGET_DERIVATION = 'target-derivation';

/** Every transition `--fail-on` may name. */
export const TRANSITIONS: readonly Transition[] = [
  ...(['allow', 'approve', 'deny'] as const).flatMap((from) =>
    OUTCOMES.filter((to) => to !== from).map((to) => `${from}->${to}`),
  ),
  TARGET_DERIVATION,
];

export function transitionOf(r: Replayed): Transition | undefined {
  if (r.targetChanged) return TARGET_DERIVATION;
  return r.before === r.after ? undefined : `${r.before}->${r.after}`;
}

const EXAMPLES = 5;

export interface TransitionReport {
  transition: Transition;
  count: number;
  /** Counts per tenant and action, largest first. */
  by: { tenant_id: string; action: string; count: number }[];
  /** For `target-derivation`: what the records become (allow, approve, deny, rejected). */
  to?: Partial<Record<Outcome, number>>;
  /** Up to 5 event ids, in the order met. */
  examples: string[];
}

export interface ReplayReport {
  candidate: { dir: string; version: string };
  source: string;
  tenants: { tenant_id: string; entries: number; decisions: number }[];
  decisions: number;
  unchanged: number;
  changed: number;
  transitions: TransitionReport[];
  /** Decided facts that could not be replayed (no request, unknown decision): counted, not fatal. */
  unreplayable: { count: number; examples: Unreplayable[] };
  /** From the first to the last decision replayed; `days` is at least 1. */
  window: { from: string | null; to: string | null; days: number };
  /**
   * Approvals per day per approver group: before (as recorded) and after (under the candidate).
   * The facts do not record the approver group: both sides use the candidate's tenant data.
   */
  approvals_per_day: { approver_group: string; before: number; after: number }[];
}

/** Accumulates replayed facts into the diff in constant memory (counters and a few examples). */
export class ReplayDiff {
  private decisions = 0;
  private unchanged = 0;
  private readonly perTenant = new Map<string, { entries: number; decisions: number }>();
  private readonly transitions = new Map<
    Transition,
    { count: number; by: Map<string, number>; to: Map<Outcome, number>; examples: string[] }
  >();
  private readonly unreplayable: Unreplayable[] = [];
  private unreplayableCount = 0;
  private first = Infinity;
  private last = -Infinity;
  private readonly approvals = new Map<string, { before: number; after: number }>();

  constructor(private readonly groupOf: (tenantId: string) => string) {}

  /** A chain entry of `tenantId` that is not a decision (counted as an entry read). */
  entry(tenantId: string): void {
    this.tenant(tenantId).entries += 1;
  }

  private tenant(tenantId: string) {
    let t = this.perTenant.get(tenantId);
    if (!t) this.perTenant.set(tenantId, (t = { entries: 0, decisions: 0 }));
    return t;
  }

  add(result: Replayed | Unreplayable): void {
    if (!('before' in result)) {
      this.unreplayableCount += 1;
      if (this.unreplayable.length < EXAMPLES) this.unreplayable.push(result);
      return;
    }
    this.decisions += 1;
    this.tenant(result.tenantId).decisions += 1;
    const time = Date.parse(result.at);
    if (time < this.first) this.first = time;
    if (time > this.last) this.last = time;
    if (result.before === 'approve') this.approval(this.groupOf(result.tenantId)).before += 1;
    if (result.after === 'approve') this.approval(result.approverGroup).after += 1;
    const transition = transitionOf(result);
    if (transition === undefined) {
      this.unchanged += 1;
      return;
    }
    let t = this.transitions.get(transition);
    if (!t) this.transitions.set(transition, (t = { count: 0, by: new Map(), to: new Map(), examples: [] }));
    t.count += 1;
    const key = `${result.tenantId}\n${result.action}`;
    t.by.set(key, (t.by.get(key) ?? 0) + 1);
    if (transition === TARGET_DERIVATION) t.to.set(result.after, (t.to.get(result.after) ?? 0) + 1);
    if (t.examples.length < EXAMPLES) t.examples.push(result.eventId);
  }

  private approval(group: string) {
    let a = this.approvals.get(group);
    if (!a) this.approvals.set(group, (a = { before: 0, after: 0 }));
    return a;
  }

  report(candidate: ReplayReport['candidate'], source: string): ReplayReport {
    const days = this.decisions === 0 ? 1 : Math.max(1, (this.last - this.first) / 86_400_000);
    const perDay = (n: number) => Math.round((n / days) * 100) / 100;
    const order = (t: Transition) => TRANSITIONS.indexOf(t);
    return {
      candidate,
      source,
      tenants: [...this.perTenant]
        .map(([tenant_id, t]) => ({ tenant_id, entries: t.entries, decisions: t.decisions }))
        .sort((a, b) => (a.tenant_id < b.tenant_id ? -1 : 1)),
      decisions: this.decisions,
      unchanged: this.unchanged,
      changed: this.decisions - this.unchanged,
      transitions: [...this.transitions]
        .sort(([a], [b]) => order(a) - order(b))
        .map(([transition, t]) => ({
          transition,
          count: t.count,
          by: [...t.by]
            .map(([key, count]) => {
              const [tenant_id, action] = key.split('\n') as [string, string];
              return { tenant_id, action, count };
            })
            .sort((a, b) => b.count - a.count || (a.tenant_id + a.action < b.tenant_id + b.action ? -1 : 1)),
          ...(transition === TARGET_DERIVATION ? { to: Object.fromEntries(t.to) } : {}),
          examples: t.examples,
        })),
      unreplayable: { count: this.unreplayableCount, examples: this.unreplayable },
      window: {
        from: this.decisions ? new Date(this.first).toISOString() : null,
        to: this.decisions ? new Date(this.last).toISOString() : null,
        days: Math.round(days * 100) / 100,
      },
      approvals_per_day: [...this.approvals]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([approver_group, a]) => ({ approver_group, before: perDay(a.before), after: perDay(a.after) })),
    };
  }
}

/**
 * `--fail-on` parsed: the listed transitions, each spelled as `TRANSITIONS` has it. Throws an
 * Error naming the bad spelling and the valid ones.
 */
export function parseTransitions(text: string): Transition[] {
  const listed = text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (listed.length === 0) throw new Error(`name at least one transition: ${TRANSITIONS.join(', ')}`);
  for (const t of listed)
    if (!TRANSITIONS.includes(t))
      throw new Error(`${JSON.stringify(t)} is not a transition; use ${TRANSITIONS.join(', ')}`);
  return [...new Set(listed)];
}

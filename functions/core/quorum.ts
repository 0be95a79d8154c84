/**
 * Quorum and stages (issue 21), pure. An approval that policy data parked with a quorum
 * (`record.quorum`, core/approver-directory.ts) is approved by votes: each approve vote is its own
 * fact (`approval.vote`), cast by one directory id at most once per approval, in the approval's
 * current stage, by someone who may vote there and is not the requester. The vote that completes
 * the last stage issues the grant (one `approval.decided`), exactly as a single approver's approval
 * does; a deny is final at once (the ordinary decision). An approve vote may be withdrawn while its
 * stage is incomplete (`approval.vote_withdrawn`).
 *
 * The single-approver path is the n = 1 case: an approval without a stored quorum needs one vote of
 * one stage, and that one vote is the decision (`approvals.ts` decides it as it always did).
 *
 * The store applies a vote only if the approval is still pending and its votes are exactly those
 * this outcome was computed from (`vote_rev`), and only if this approver has no vote item yet: two
 * racing votes cannot both complete a stage, so exactly one grant exists however they race.
 *
 * An approve vote may ask for a standing grant (core/grants.ts, "this and calls like it"): the
 * completing vote creates it, in the same write, only if every vote of the quorum asked, as the
 * intersection of what they asked (`agreedGrant`). An approver's edit (core/edit.ts) resets the
 * votes: they were cast on the view before it.
 */
import { AppError, conflict } from '../shared/errors.js';
import type { QuorumRequirement, QuorumStage } from './approver-directory.js';
import type { FactRecord } from './evidence.js';
import type { ApprovalRecord, Clock, IdGenerator } from './ports.js';
import type { Grant } from './approvals.js';
import type { StandingGrant, StandingGrantSummary } from './grants.js';

/**
 * The standing grant an approve vote asks for ("this and calls like it", core/grants.ts): its
 * scope as the voter chose it, checked against policy data when the vote is cast, its expiry fixed
 * then (the voter meant "for the next hour" from their vote, not from whenever the quorum completes).
 */
export interface VoteGrantRequest {
  target_pattern: string;
  max_uses: number;
  expires_at: string;
  comment?: string;
}

/** One approve vote as the approval item keeps it. */
export interface Vote {
  /** The voter's directory id. */
  approver: string;
  /** Index of the stage it counts in. */
  stage: number;
  at: string;
  via: 'api' | 'slack';
  fact_id: string;
  /** The standing grant this vote asks for, if any: created only if every vote of the quorum asks. */
  standing_grant?: VoteGrantRequest;
}

/** The quorum's state as the API, the console, Slack and the waits show it. */
export interface QuorumProgress {
  /** The stage now collecting votes (0-based); `stages.length` once all are complete. */
  current_stage: number;
  stages: {
    group?: string;
    n: number;
    votes: {
      approver: string;
      at: string;
      via: 'api' | 'slack';
      standing_grant?: Omit<VoteGrantRequest, 'comment'>;
    }[];
    complete: boolean;
  }[];
  /** Approve votes counted so far and needed in all, over every stage. */
  approvals: number;
  required: number;
  /** "1 of 2 approvals; needs 1 more from finance". */
  summary: string;
}

/** The requirement of an approval: its stored quorum, or one approver of anyone (n = 1). */
export function requirementOf(record: Pick<ApprovalRecord, 'quorum'>): QuorumRequirement {
  return record.quorum ?? { stages: [{ n: 1 }], rule: 'single' };
}

/** Where the votes put the approval: the current stage and each stage's votes. */
export function quorumProgress(
  record: Pick<ApprovalRecord, 'quorum'>,
  votes: readonly Vote[],
  status: string = 'pending',
): QuorumProgress {
  const req = requirementOf(record);
  const stages = req.stages.map((s, i) => {
    const own = votes.filter((v) => v.stage === i);
    return {
      ...(s.group ? { group: s.group } : {}),
      n: s.n,
      // What each voter asked for is shown to the others: a standing grant needs all of them.
      votes: own.map(({ approver, at, via, standing_grant: g }) => ({
        approver,
        at,
        via,
        ...(g ? { standing_grant: scopeOf(g) } : {}),
      })),
      complete: own.length >= s.n || status === 'approved',
    };
  });
  const current = stages.findIndex((s) => !s.complete);
  const currentStage = current === -1 ? stages.length : current;
  const approvals = votes.length;
  const required = req.stages.reduce((sum, s) => sum + s.n, 0);
  return {
    current_stage: currentStage,
    stages,
    approvals,
    required,
    summary: progressText(req.stages, stages, currentStage, approvals, required),
  };
}

function progressText(
  req: readonly QuorumStage[],
  stages: QuorumProgress['stages'],
  current: number,
  approvals: number,
  required: number,
): string {
  const head = `${approvals} of ${required} approval${required === 1 ? '' : 's'}`;
  if (current >= stages.length) return `${head}; complete`;
  const s = req[current]!;
  const more = s.n - stages[current]!.votes.length;
  const from = s.group ? ` from ${s.group}` : '';
  const stage = req.length > 1 ? ` (stage ${current + 1} of ${req.length})` : '';
  return `${head}; needs ${more} more${from}${stage}`;
}

const scopeOf = (g: VoteGrantRequest): Omit<VoteGrantRequest, 'comment'> => ({
  target_pattern: g.target_pattern,
  max_uses: g.max_uses,
  expires_at: g.expires_at,
});

/**
 * The standing grant the completing quorum agrees on, or why there is none. A standing grant lets
 * later calls skip the quorum, so it needs the whole quorum's word: EVERY counted vote, of every
 * stage, must ask for one, and the grant is the intersection of what they asked, the narrowest
 * of each bound: the most specific target pattern (all of them cover this call's target, so they
 * are nested: the exact target, else the longest prefix), the fewest uses, the earliest expiry.
 * Anything less (one vote without a grant, an agreed expiry already past) approves the call once,
 * as a plain quorum approval, and says why no grant was created.
 */
export function agreedGrant(
  votes: readonly Vote[],
  now: Date,
): { scope: Omit<VoteGrantRequest, 'comment'> } | { declined: string } | undefined {
  const asked = votes.filter((v) => v.standing_grant).map((v) => v.standing_grant!);
  if (asked.length === 0) return undefined;
  if (asked.length < votes.length)
    return {
      declined: `${asked.length} of ${votes.length} votes asked for a standing grant: it needs every vote of the quorum`,
    };
  const specificity = (p: string) => (p.endsWith('*') ? p.length - 1 : Number.MAX_SAFE_INTEGER);
  const pattern = asked
    .map((g) => g.target_pattern)
    .reduce((a, b) => (specificity(b) > specificity(a) ? b : a));
  const maxUses = Math.min(...asked.map((g) => g.max_uses));
  const expiresAt = asked.map((g) => g.expires_at).reduce((a, b) => (Date.parse(b) < Date.parse(a) ? b : a));
  if (Date.parse(expiresAt) <= now.getTime())
    return { declined: 'the earliest expiry the votes asked for has passed' };
  return { scope: { target_pattern: pattern, max_uses: maxUses, expires_at: expiresAt } };
}

export const alreadyVoted = (approverId: string) =>
  new AppError(
    409,
    'ALREADY_VOTED',
    'you have already voted on this approval: a quorum counts distinct approvers',
    {
      details: [{ path: 'approver', message: approverId }],
    },
  );

export const notInStage = (stage: QuorumStage, index: number) =>
  new AppError(
    403,
    'APPROVER_NOT_ALLOWED',
    `stage ${index + 1} of this approval needs ${stage.n} approver${stage.n === 1 ? '' : 's'} from group ${stage.group ?? '(any)'}, and you are not in it`,
    // Which stage: Slack tells a listed approver why, rather than that they are no approver at all.
    { details: [{ path: 'stage', message: String(index + 1) }] },
  );

export interface VoteOutcome {
  vote: Vote;
  /** The votes after this one (what the approval item will hold). */
  votes: Vote[];
  /** The revision this outcome was computed from: the store writes only if it is still current. */
  rev: number;
  fact: FactRecord;
  progress: QuorumProgress;
  /** Set when this vote completes the last stage: the approval is approved and its grant issued. */
  final?: {
    decidedAt: string;
    grant: Grant;
    fact: FactRecord;
    comment?: string;
    /** The standing grant the whole quorum agreed on (`agreedGrant`), created in the same write. */
    standing?: StandingGrant;
    standingSummary?: StandingGrantSummary;
  };
}

/**
 * The vote of `approverId` on a pending approval with a quorum. The caller has checked the
 * approval is pending, the view hash and that the approver is in the directory and not the
 * requester; this checks the stage and the one-vote rule and builds the facts.
 */
export function castVote(
  a: { record: ApprovalRecord; votes?: Vote[]; vote_rev?: number },
  approver: { id: string; via: 'api' | 'slack'; sub: string; email: string },
  input: { comment?: string; view: FactRecord['view']; standingGrant?: VoteGrantRequest },
  deps: {
    clock: Clock;
    ids: IdGenerator;
    mayVote: (stage: QuorumStage) => boolean;
    grantTtlSec: number;
  },
): VoteOutcome {
  const record = a.record;
  const votes = a.votes ?? [];
  const req = requirementOf(record);
  if (votes.some((v) => v.approver === approver.id)) throw alreadyVoted(approver.id);
  const before = quorumProgress(record, votes);
  const stageIndex = before.current_stage;
  const stage = req.stages[stageIndex];
  // Unreachable while pending (the completing vote approves it in the same write); refused anyway.
  if (!stage) throw new AppError(409, 'VOTE_CONTENDED', 'this approval has all its votes already');
  if (!deps.mayVote(stage)) throw notInStage(stage, stageIndex);
  const now = deps.clock.now();
  const at = now.toISOString();
  const vote: Vote = {
    approver: approver.id,
    stage: stageIndex,
    at,
    via: approver.via,
    fact_id: deps.ids.uuid(),
    ...(input.standingGrant ? { standing_grant: input.standingGrant } : {}),
  };
  const after = [...votes, vote];
  const progress = quorumProgress(record, after);
  const fact: FactRecord = {
    v: 1,
    tenant_id: record.tenant_id,
    kind: 'approval.vote',
    event_id: record.event_id,
    fact_id: vote.fact_id,
    at,
    approval_id: record.id,
    vote: 'approve',
    approver: { id: approver.id, sub: approver.sub, email: approver.email, via: approver.via },
    stage: { index: stageIndex, n: stage.n, ...(stage.group ? { group: stage.group } : {}) },
    count: progress.stages[stageIndex]!.votes.length,
    view: input.view,
    ...(input.comment ? { comment: input.comment } : {}),
    // The standing grant this vote asks for (created only if the whole quorum asks: `agreedGrant`).
    ...(input.standingGrant ? { standing_grant_requested: scopeOf(input.standingGrant) } : {}),
  };
  const outcome: VoteOutcome = { vote, votes: after, rev: a.vote_rev ?? 0, fact, progress };
  if (progress.current_stage < req.stages.length) return outcome;

  // The last stage is complete: this vote is the decision, and the one grant is issued with it.
  const grant: Grant = {
    id: deps.ids.uuid(),
    approval_id: record.id,
    event_id: record.event_id,
    tenant_id: record.tenant_id,
    request_hash: record.request_hash,
    uses_left: 1,
    expires_at: new Date(now.getTime() + deps.grantTtlSec * 1000).toISOString(),
    granted_by: approver.id,
    granted_at: at,
    ...(record.policy_version ? { policy_version: record.policy_version } : {}),
    // An edited approval's grant runs the edited request (as a single approver's: core/approvals.ts).
    ...(record.edit
      ? {
          request: record.edit.request,
          edit: {
            patch: record.edit.patch,
            edited_by: record.edit.edited_by,
            original_request_hash: record.edit.original_request_hash,
          },
        }
      : {}),
  };
  const agreed = agreedGrant(after, now);
  const standing: StandingGrant | undefined =
    agreed && 'scope' in agreed
      ? {
          id: deps.ids.uuid(),
          tenant_id: record.tenant_id,
          agent_id: record.agent_id,
          tool: record.tool,
          action: record.action,
          target_pattern: agreed.scope.target_pattern,
          max_uses: agreed.scope.max_uses,
          uses_left: agreed.scope.max_uses,
          expires_at: agreed.scope.expires_at,
          // The completing voter, as a single approver's grant names its approver; the decided
          // fact's quorum names every voter who agreed to it.
          created_by: approver.id,
          created_at: at,
          approval_id: record.id,
          event_id: record.event_id,
          status: 'active',
          ...(input.standingGrant?.comment ? { comment: input.standingGrant.comment } : {}),
        }
      : undefined;
  const summary: StandingGrantSummary | undefined = standing
    ? {
        id: standing.id,
        agent_id: standing.agent_id,
        tool: standing.tool,
        action: standing.action,
        target_pattern: standing.target_pattern,
        max_uses: standing.max_uses,
        expires_at: standing.expires_at,
      }
    : undefined;
  const decided: FactRecord = {
    v: 1,
    tenant_id: record.tenant_id,
    kind: 'approval.decided',
    event_id: record.event_id,
    fact_id: deps.ids.uuid(),
    at,
    approval_id: record.id,
    decision: 'approved',
    approver: { id: approver.id, sub: approver.sub, email: approver.email, via: approver.via },
    approver_group: record.approver_group,
    // Who approved, stage by stage: each vote is also its own fact.
    quorum: {
      rule: req.rule,
      votes: after.map((v) => ({ approver: v.approver, stage: v.stage, fact_id: v.fact_id })),
    },
    view: input.view,
    ...(input.comment ? { comment: input.comment } : {}),
    grant: {
      id: grant.id,
      expires_at: grant.expires_at,
      request_hash: grant.request_hash,
      ...(grant.policy_version ? { policy_version: grant.policy_version } : {}),
    },
    ...(summary ? { standing_grant: summary } : {}),
    ...(agreed && 'declined' in agreed ? { standing_grant_declined: agreed.declined } : {}),
  };
  return {
    ...outcome,
    final: {
      decidedAt: at,
      grant,
      fact: decided,
      ...(input.comment ? { comment: input.comment } : {}),
      ...(standing && summary ? { standing, standingSummary: summary } : {}),
    },
  };
}

/**
 * Taking back an approve vote: only the voter's own, only while its stage is incomplete (a
 * completed stage has moved the approval on: a later stage's voters acted on it).
 */
export function withdrawVote(
  a: { record: ApprovalRecord; votes?: Vote[]; vote_rev?: number },
  approverId: string,
  deps: { clock: Clock; ids: IdGenerator },
): { votes: Vote[]; rev: number; removed: Vote; fact: FactRecord; progress: QuorumProgress } {
  const votes = a.votes ?? [];
  const mine = votes.find((v) => v.approver === approverId);
  if (!mine) throw new AppError(404, 'NOT_FOUND', 'you have no vote on this approval to withdraw');
  const progress = quorumProgress(a.record, votes);
  if (progress.stages[mine.stage]?.complete)
    throw conflict(
      "your vote's stage is complete: a vote can be withdrawn only until its stage completes",
      undefined,
      [{ path: 'stage', message: String(mine.stage + 1) }],
    );
  const after = votes.filter((v) => v !== mine);
  const at = deps.clock.now().toISOString();
  return {
    votes: after,
    rev: a.vote_rev ?? 0,
    removed: mine,
    progress: quorumProgress(a.record, after),
    fact: {
      v: 1,
      tenant_id: a.record.tenant_id,
      kind: 'approval.vote_withdrawn',
      event_id: a.record.event_id,
      fact_id: deps.ids.uuid(),
      at,
      approval_id: a.record.id,
      approver: { id: approverId },
      withdrawn_vote: mine.fact_id,
      stage: { index: mine.stage },
    },
  };
}

/**
 * Use case: submit a tool call (SPEC §3).
 * Primary course:
 *  1. Validate and normalize the body; bind it to the key's tenant (403 on a different tenant).
 *     Then the action's own rules, once, before anything hashes or decides: the target param
 *     and `resource` become one canonical value and every param passes the action's whole input
 *     schema (422 naming the fields), so a call that cannot run is never parked for a human.
 *     A key seen before answers now: the first response replayed (one read; replays spend no
 *     rate-limit token, W30), 422 for a different body, or the wait for an in-flight first call.
 *  2. Take a token from the tenant's shared rate limit (429); an MCP call's adapter took it already.
 *  3. Raise the agent's risk_score to the action's floor (W4), evaluate policy in process (fails
 *     closed to deny). With a shadow candidate (issue 24), evaluate it too: a different decision
 *     rides on the same write as a non-chain attribute; nothing the candidate says is enforced,
 *     and nothing it does (throwing included) can fail the call.
 *  4. In ONE atomic write: claim the idempotency key by writing its event (the event id is derived
 *     from the key), which carries the `toolcall.decided` fact, and, for approve, the pending
 *     approval. Nothing runs before this commits.
 *  5. allow: run the connector, then record the `toolcall.executed` fact with the replayable
 *     response (one conditional write). If that fails the caller gets 500 and the event reads
 *     `unknown`: "ran, nothing recorded" is never silent.
 *  6. Respond; replays get the first response byte for byte with `Idempotent-Replayed: true`.
 */
import { resolveQuorum } from './approver-directory.js';
import type { ActionSpec } from '../connectors/sdk.js';
import type { ConnectorInvoker, ExecutionResult } from '../connectors/types.js';
import { LIMITS } from '../shared/constants.js';
import {
  AppError,
  conflict,
  idempotencyKeyReused,
  internalError,
  rateLimited,
  tenantMismatch,
  validationError,
} from '../shared/errors.js';
import { canon, sha256Hex, type FactRecord } from './evidence.js';
import { disabledMessage, UNKNOWN_ACTION_REASON, type UpstreamActions } from './upstream.js';
import { upstreamClaimsSource } from './upstream-facts.js';
import type { UpstreamClaimsSource } from './approval-view.js';
import type { PolicyDecision, PolicyEngine } from './policy.js';
import { shadowEvaluate, type ShadowOutcome } from './shadow.js';
import { viewStamp } from './approval-view.js';
import { shownView, type ShownView } from './approvals.js';
import { evaluateCall, policyRequestOf } from './evaluate.js';
import { grantsAllowedFor, usableGrants, type StandingGrant } from './grants.js';
import { reminderAt } from './reminders.js';
import type { RiskAssessment, RiskFloors } from './risk.js';
import type {
  ApprovalRecord,
  Clock,
  IdGenerator,
  IdempotencyRecord,
  RateLimiter,
  ToolCallStore,
} from './ports.js';
import {
  bindRequest,
  eventIdFor,
  parseToolCallBody,
  ToolCallRequestBody,
  type ToolCallRequest,
} from './toolcall.js';

export interface SubmitDeps {
  store: ToolCallStore;
  policy: PolicyEngine;
  /** Per-action risk floors (W4), built once with the policy engine. */
  riskFloors: RiskFloors;
  /**
   * The connector actions by `tool.action`: each normalizes its request (target, params) before
   * policy. A call to an action no connector defines passes unchanged: policy denies it.
   */
  actions: ReadonlyMap<string, Pick<ActionSpec, 'normalize'>>;
  connectors: ConnectorInvoker;
  /**
   * Upstream MCP tools (issue 25): a `tool` that is no native connector's is looked up in the
   * caller's tenant catalog (`<server>.<tool>`). Absent: no upstream servers.
   */
  upstream?: UpstreamActions;
  rateLimiter: RateLimiter;
  clock: Clock;
  ids: IdGenerator;
  config: {
    publicBaseUrl: string;
    connectorTimeoutMs: number;
    /** How long a duplicate waits for an in-flight first request before answering 409. */
    inFlightWaitMs: number;
  };
  /** Counts what the core did, for metrics. */
  onDecision?: (decision: PolicyDecision, tenantId: string) => void;
  /**
   * Shadow mode: the candidate policy, evaluated on every decision and never enforced. Absent:
   * no shadow mode (no folder deployed, or turned off).
   */
  shadow?: PolicyEngine;
  /**
   * Standing grants (issue 21 deliverable 6): the tenant's grants that may cover a call, read
   * strongly consistent. Absent: no call ever uses one.
   */
  standingGrants?: {
    candidates(
      tenantId: string,
      call: { agent_id: string; tool: string; action: string },
      now: Date,
    ): Promise<StandingGrant[]>;
  };
  /** Told every shadow outcome but `same` (metrics, the log line of an error); must not throw, but may. */
  onShadow?: (outcome: Exclude<ShadowOutcome, { kind: 'same' }>, tenantId: string) => void;
}

export interface SubmitInput {
  tenantId: string;
  body: unknown;
  /**
   * How the call arrived when not through `POST /v1/toolcalls`: recorded in its `toolcall.decided`
   * fact (`channel: "mcp"` and the client's own name and version). Not part of the request hash.
   */
  channel?: { channel: 'mcp'; client: { name: string; version: string; protocol_version: string } };
  /** The channel already took this call's rate-limit token (MCP: before its arguments were read). */
  rateLimitTaken?: boolean;
}

export interface HttpResult {
  status: number;
  body: string;
  headers: Record<string, string>;
}

export interface ToolCallResponse {
  event_id: string;
  decision: PolicyDecision['decision'];
  reason: string;
  policy_version: string;
  result?: ExecutionResult;
  approval?: { id: string; status: 'pending'; url: string; expires_at: string; view: ShownView };
  /** The standing grant that stood in for a human's approval: the call ran now (issue 21, 6). */
  standing_grant?: { id: string; approval_id: string; expires_at: string };
}

const replayed = (body: string): HttpResult => ({
  status: 200,
  body,
  headers: { 'Idempotent-Replayed': 'true' },
});

export async function submitToolCall(deps: SubmitDeps, input: SubmitInput): Promise<HttpResult> {
  // 1. validate, normalize, bind to tenant
  const parsed = parseToolCallBody(input.body);
  if (!parsed.ok)
    throw validationError(
      `validation: ${parsed.details[0]?.path || 'the body'} ${parsed.details[0]?.message ?? 'invalid'}`,
      parsed.details,
    );
  if (parsed.body.tenant_id !== undefined && parsed.body.tenant_id !== input.tenantId) throw tenantMismatch();
  const upstream = await upstreamAction(deps, input.tenantId, parsed.body);
  const body = targeted(deps, parsed.body, upstream.spec);

  // The fingerprint covers what the client sent (normalized: the target derived), not server
  // defaults such as requested_at: the target sent as `resource` or as its param is one request.
  const requestHash = sha256Hex(canon({ ...body, tenant_id: input.tenantId }));
  const eventId = eventIdFor(input.tenantId, body.idempotency_key);
  // No read before the claim: the claim in step 4 is the one authority on a replay (its
  // condition fails on the recorded event and hands it back), so a new call, the common case,
  // costs no idempotency read (issue 26: one request fewer on every path).

  // 2. rate limit (shared by every instance). A replay counts as a request; while the tenant is
  // limited, a call already recorded is still answered with its first response.
  if (!input.rateLimitTaken) {
    const token = await deps.rateLimiter.take(input.tenantId);
    if (!token.allowed) {
      const earlier = await deps.store.getIdempotency(input.tenantId, eventId, { consistent: false });
      if (earlier) return answerDuplicate(deps, input.tenantId, eventId, requestHash, earlier);
      throw rateLimited(token.retryAfterSec);
    }
  }

  const now = deps.clock.now();
  const bound = bindRequest(body, input.tenantId, now);
  // 3. policy, in process, fail closed. The agent's risk is a claim: policy (and the stored
  // request) see it raised to the action's floor.
  const evaluated = evaluateCall(deps, bound, bound.risk_score, now);
  const { risk, request } = evaluated;
  // An upstream-shaped action this tenant's catalog lacks is unknown to this tenant, whatever
  // policy data classifies (another tenant's server of that name is not this tenant's): denied
  // exactly as the engine denies an action it does not know.
  const decision = upstream.unknown ? unknownActionDenial(evaluated.decision) : evaluated.decision;
  // Shadow mode: the candidate judges the same request; it never changes the decision.
  const shadow = deps.shadow
    ? shadowEvaluate(deps.shadow, policyRequestOf(request, now), decision)
    : undefined;

  // 4. one atomic write: the event (= idempotency claim) with its decision fact (+ approval, or
  // the use of a standing grant that stands in for the approval: issue 21 deliverable 6)
  const receivedAt = now.toISOString();
  const claimWith = async (grant: StandingGrant | undefined) => {
    const approval =
      decision.decision === 'approve' && !grant
        ? buildApproval(deps, request, risk, decision, eventId, now, upstream.claims)
        : undefined;
    const response: ToolCallResponse = {
      event_id: eventId,
      decision: decision.decision,
      reason: decision.reason,
      policy_version: decision.policyVersion,
      ...(approval
        ? {
            approval: {
              id: approval.id,
              status: 'pending' as const,
              url: approvalUrl(deps.config.publicBaseUrl, approval.id),
              expires_at: approval.expires_at,
              // What the approvers will see (the MCP elicitation shows it to the client's human too).
              view: shownView(approval, SUBMIT_VIEW_MAX_BYTES),
            },
          }
        : {}),
      ...(grant
        ? { standing_grant: { id: grant.id, approval_id: grant.approval_id, expires_at: grant.expires_at } }
        : {}),
    };
    const fact = {
      ...decidedFact(deps, request, risk, decision, eventId, receivedAt, approval),
      // Policy said approve; this grant stood in for the human (the fact keeps both).
      ...(grant ? { standing_grant: { id: grant.id, approval_id: grant.approval_id } } : {}),
      ...input.channel,
    };
    const runsNow = decision.decision === 'allow' || grant !== undefined;
    const remindAt = approval
      ? reminderAt(deps.policy.tenant(input.tenantId), approval.created_at, approval.expires_at)
      : undefined;
    const claim = await deps.store.recordDecision({
      tenantId: input.tenantId,
      eventId,
      requestHash,
      request,
      decision,
      receivedAt,
      fact,
      approval,
      response: runsNow ? undefined : JSON.stringify(response),
      status: runsNow ? 'executing' : 'decided',
      ...(shadow?.kind === 'diff' ? { shadow: shadow.record } : {}),
      ...(remindAt ? { remindAt } : {}),
      ...(grant ? { standingGrant: { id: grant.id } } : {}),
    });
    return { claim, response, runsNow };
  };
  // Only a call policy sends to a human looks for a grant, and only where policy data allows them.
  const grants =
    decision.decision === 'approve' &&
    deps.standingGrants &&
    grantsAllowedFor(deps.policy.tenant(input.tenantId), request.tool, request.action)
      ? usableGrants(await deps.standingGrants.candidates(input.tenantId, request, now), request, now)
      : [];
  let written = await claimWith(grants[0]);
  // A grant revoked, used up or expired since the read: the next one, then a human, as without.
  for (let i = 1; written.claim.kind === 'grant_unavailable'; i++) written = await claimWith(grants[i]);
  const { claim, response, runsNow } = written;
  if (claim.kind === 'existing')
    return answerDuplicate(deps, input.tenantId, eventId, requestHash, claim.record);
  deps.onDecision?.(decision, input.tenantId);
  if (shadow) reportShadow(deps, shadow, input.tenantId);
  if (!runsNow) return { status: 200, body: JSON.stringify(response), headers: {} };

  // 5. act, then record the result
  const result = await deps.connectors.invoke(
    {
      event_id: eventId,
      tenant_id: request.tenant_id,
      agent_id: request.agent_id,
      tool: request.tool,
      action: request.action,
      params: request.params,
      resource: request.resource,
    },
    { timeoutMs: deps.config.connectorTimeoutMs },
  );
  const finalBody = JSON.stringify({ ...response, result });
  try {
    await deps.store.recordExecution({
      tenantId: input.tenantId,
      eventId,
      result,
      fact: {
        v: 1,
        tenant_id: request.tenant_id,
        kind: 'toolcall.executed',
        event_id: eventId,
        fact_id: deps.ids.uuid(),
        at: deps.clock.now().toISOString(),
        result,
      },
      response: finalBody,
    });
  } catch (error) {
    await deps.store.markExecutionUnknown(input.tenantId, eventId).catch(() => undefined);
    // The cause goes to the log with the 500 (httpRoute), never to the caller.
    throw Object.assign(
      new AppError(
        500,
        'INTERNAL_ERROR',
        'the tool ran but its result could not be recorded; the event reads status unknown',
        {
          retryable: false,
          details: [{ path: 'event_id', message: eventId }],
        },
      ),
      { cause: error },
    );
  }
  return { status: 200, body: finalBody, headers: {} };
}

/**
 * Counts a shadow outcome once its call is recorded. A hook that throws costs the metric, never
 * the call: shadow mode never changes a decision and never fails a request.
 */
function reportShadow(deps: SubmitDeps, outcome: ShadowOutcome, tenantId: string): void {
  if (outcome.kind === 'same') return;
  try {
    deps.onShadow?.(outcome, tenantId);
  } catch {
    // nothing: see above
  }
}

/**
 * The caller's tenant's upstream action for a body whose tool is no native connector's: its spec
 * (to normalize with), or `unknown` (no such action in this tenant's catalog: denied). A drifted,
 * removed or refused tool is refused here (422 `UPSTREAM_TOOL_DISABLED`), before anything is written.
 */
async function upstreamAction(
  deps: Pick<SubmitDeps, 'actions' | 'upstream'>,
  tenantId: string,
  body: ToolCallRequestBody,
): Promise<{ spec?: Pick<ActionSpec, 'normalize'>; unknown?: true; claims?: UpstreamClaimsSource }> {
  const { upstream } = deps;
  if (!upstream || upstream.nativeTools.has(body.tool) || deps.actions.has(`${body.tool}.${body.action}`))
    return {};
  // Unclassified means denied, in the catalog or not: no read for a name policy data does not list
  // (an unknown action's deny costs what a native one's does; the engine would deny it all the same).
  if (!upstream.classifies(`${body.tool}.${body.action}`)) return { unknown: true };
  const found = await upstream.lookup(tenantId, body.tool, body.action);
  if (!found) return { unknown: true };
  if (found.kind === 'disabled')
    throw new AppError(422, 'UPSTREAM_TOOL_DISABLED', disabledMessage(found.tool), {
      retryable: false,
      details: [{ path: 'action', message: `${found.tool.action} is ${found.tool.status}` }],
    });
  return { spec: found.spec, claims: upstreamClaimsSource(found.tool) };
}

/** The engine's own answer for an action it does not know, kept with the live policy version. */
function unknownActionDenial(decision: PolicyDecision): PolicyDecision {
  return {
    ...decision,
    decision: 'deny',
    reason: UNKNOWN_ACTION_REASON,
    approverGroup: '',
    notify: [],
    requirements: {},
    determiningPolicies: [],
  };
}

/**
 * The body with its action's target derived (SPEC §3 as amended by issue 19): `resource` and the
 * target param hold one canonical value, and the params pass the action's whole input schema.
 * Policy, the hash, the records, every surface and the connector see only this body.
 */
export function targeted(
  deps: Pick<SubmitDeps, 'actions'>,
  body: ToolCallRequestBody,
  upstreamSpec?: Pick<ActionSpec, 'normalize'>,
): ToolCallRequestBody {
  const spec = deps.actions.get(`${body.tool}.${body.action}`) ?? upstreamSpec;
  if (!spec) return body;
  const normalized = spec.normalize({ params: body.params, resource: body.resource });
  if (!normalized.ok)
    throw validationError(`validation: ${normalized.message}`, normalized.details.slice(0, 20));
  // A resource derived from a param keeps the rules of a resource sent as one (one line, bounded).
  const resource = ToolCallRequestBody.shape.resource.safeParse(normalized.resource);
  if (!resource.success) {
    const message = `cannot be the request's resource: ${resource.error.issues[0]?.message ?? 'invalid'}`;
    const path = Object.keys(normalized.params).find((k) => normalized.params[k] === normalized.resource);
    throw validationError(`validation: ${message}`, [
      { path: path ? `params.${path}` : 'resource', message },
    ]);
  }
  return { ...body, params: normalized.params, resource: resource.data };
}

async function answerDuplicate(
  deps: SubmitDeps,
  tenantId: string,
  eventId: string,
  requestHash: string,
  first: IdempotencyRecord,
): Promise<HttpResult> {
  if (first.requestHash !== requestHash) throw idempotencyKeyReused();
  let record: IdempotencyRecord | undefined = first;
  const deadline = Date.now() + deps.config.inFlightWaitMs;
  while (record && record.status === 'in_flight' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    record = await deps.store.getIdempotency(tenantId, eventId);
  }
  if (!record) throw internalError();
  if (record.status === 'completed' && record.response !== undefined) return replayed(record.response);
  const ageMs = deps.clock.now().getTime() - Date.parse(record.createdAt);
  if (record.status === 'unknown' || ageMs > deps.config.connectorTimeoutMs + 30_000) {
    throw conflict(
      'the first request with this idempotency_key has an unknown outcome; it is never re-run',
      undefined,
      [{ path: 'event_id', message: record.eventId }],
    );
  }
  throw conflict('a request with this idempotency_key is still in flight', 1);
}

/** The most view lines a submit response carries (it is stored for replays); the rest are counted. */
const SUBMIT_VIEW_MAX_BYTES = 16_384;

function buildApproval(
  deps: SubmitDeps,
  request: ToolCallRequest,
  risk: RiskAssessment,
  decision: PolicyDecision,
  eventId: string,
  now: Date,
  upstreamClaims?: UpstreamClaimsSource,
): ApprovalRecord {
  const ttlSec = decision.approvalTtlSec > 0 ? decision.approvalTtlSec : LIMITS.defaultApprovalTtlSec;
  const record: ApprovalRecord = {
    id: deps.ids.uuid(),
    event_id: eventId,
    tenant_id: request.tenant_id,
    agent_id: request.agent_id,
    user_id: request.user_id,
    tool: request.tool,
    action: request.action,
    resource: request.resource,
    params: request.params,
    risk_score: request.risk_score,
    risk_factors: request.risk_factors,
    trace_id: request.trace_id,
    reason: decision.reason,
    approver_group: decision.approverGroup,
    status: 'pending',
    created_at: now.toISOString(),
    expires_at: new Date(now.getTime() + ttlSec * 1000).toISOString(),
    request_hash: sha256Hex(canon(request)),
    // The version that parked the call: its grant carries it, and execute re-checks the call if
    // the live policy is another (`core/execute.ts`).
    policy_version: decision.policyVersion,
    requirements: decision.requirements,
    notify: decision.notify,
    risk: { claimed: risk.claimed, floor: risk.floor, effective: risk.effective },
    ...(upstreamClaims ? { upstream_claims: upstreamClaims } : {}),
  };
  // The quorum policy data asks for (issue 21), fixed now like the view: a vote already cast is
  // never re-counted under another rule. None: one approver (the single-approver path).
  const quorum = resolveQuorum(
    deps.policy.tenant(request.tenant_id),
    `${request.tool}.${request.action}`,
    risk.effective,
  );
  // The view every surface shows is fixed now, with the request: its hash is evidence of what
  // an approver was shown, and a decision on another view is refused.
  return { ...record, view: viewStamp(record), ...(quorum ? { quorum } : {}) };
}

/** Where a human finds the approval: the web console's page for it (which signs the approver in). */
export function approvalUrl(base: string, approvalId: string): string {
  return `${base.replace(/\/+$/, '')}/console/approvals/${approvalId}`;
}

function decidedFact(
  deps: SubmitDeps,
  request: ToolCallRequest,
  risk: RiskAssessment,
  decision: PolicyDecision,
  eventId: string,
  at: string,
  approval: ApprovalRecord | undefined,
): FactRecord {
  return {
    v: 1,
    tenant_id: request.tenant_id,
    kind: 'toolcall.decided',
    event_id: eventId,
    fact_id: deps.ids.uuid(),
    at,
    request,
    risk: { claimed: risk.claimed, floor: risk.floor, effective: risk.effective },
    decision: decision.decision,
    reason: decision.reason,
    policy_version: decision.policyVersion,
    ...(approval
      ? {
          approval: {
            id: approval.id,
            expires_at: approval.expires_at,
            request_hash: approval.request_hash,
            // What the approvers will be shown, bound to the request it renders (the verifier re-renders it).
            ...(approval.view ? { view: approval.view } : {}),
            // An upstream tool's claims are part of that view: recorded so it can be re-rendered.
            ...(approval.upstream_claims ? { upstream_claims: approval.upstream_claims } : {}),
          },
        }
      : {}),
  };
}

/** What the core needs from the outside world. Store adapters implement these; tests may too. */
import type { UpstreamClaimsSource, ViewStamp } from './approval-view.js';
import type { QuorumRequirement } from './approver-directory.js';
import type { ExecutionResult } from '../connectors/types.js';
import type { ApprovalState } from '../shared/constants.js';
import type { FactRecord } from './evidence.js';
import type { PolicyDecision } from './policy.js';
import type { ShadowRecord } from './shadow.js';
import type { ToolCallRequest } from './toolcall.js';

export type EventStatus = 'decided' | 'executing' | 'completed' | 'unknown';

export interface ApprovalRecord {
  id: string;
  event_id: string;
  tenant_id: string;
  agent_id: string;
  user_id: string;
  tool: string;
  action: string;
  resource: string;
  params: Record<string, unknown>;
  risk_score: number;
  reason: string;
  approver_group: string;
  status: ApprovalState;
  created_at: string;
  expires_at: string;
  request_hash: string;
  /** The policy version that parked the call; absent on approvals created before it was stored. */
  policy_version?: string;
  requirements: Record<string, string>;
  notify: PolicyDecision['notify'];
  trace_id: string;
  risk_factors: string[];
  /** The risk assessment policy decided on; absent on approvals created before it was stored. */
  risk?: { claimed: number; floor: number; effective: number };
  /**
   * The approval view's version and SHA-256 as built at creation (`core/approval-view.ts`), or
   * `{version: 'legacy'}` for approvals created before views existed.
   */
  view?: ViewStamp;
  /**
   * The quorum policy data asked for when it was parked (issue 21, core/approver-directory.ts);
   * absent: one approver (the single-approver path).
   */
  quorum?: QuorumRequirement;
  /** An upstream MCP tool's own words as pinned (issue 25): shown in the view as its claims. */
  upstream_claims?: UpstreamClaimsSource;
  /** Set once an approver edited the request (`core/edit.ts`): the fields above are the edited call's. */
  edit?: ApprovalEdit;
}

/**
 * An edit-on-approve: the request as edited (the whole request, judged again as a submitted one:
 * what a grant on this approval runs), the RFC 6902 JSON Patch from the agent's original request
 * (`/params/...`, `/resource`) and who edited it. `editors` count as requesters for separation of
 * duties: none of them may approve the edited call.
 */
export interface ApprovalEdit {
  request: ToolCallRequest;
  patch: JsonPatchOp[];
  original_request_hash: string;
  editors: string[];
  edited_by: string;
  edited_at: string;
  /** How many edits were made (each one its own `approval.edited` fact). */
  count: number;
  comment?: string;
}

/** One RFC 6902 operation (what `fast-json-patch`'s compare produces). */
export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

/** What a grant on an edited approval carries to execute (`core/execute.ts`). */
export interface GrantEdit {
  patch: JsonPatchOp[];
  edited_by: string;
  original_request_hash: string;
}

export interface DecisionWrite {
  tenantId: string;
  /** Derived from the idempotency key (`eventIdFor`): claiming the event claims the key. */
  eventId: string;
  requestHash: string;
  request: ToolCallRequest;
  decision: PolicyDecision;
  receivedAt: string;
  fact: FactRecord;
  approval?: ApprovalRecord;
  /** The full response, stored for replays when nothing runs after the decision. */
  response?: string;
  status: EventStatus;
  /** Shadow mode: the candidate's different decision, stored beside (never in) the sealed fact. */
  shadow?: ShadowRecord;
  /** When the approval's reminder is due (its tenant asks for reminders; issue 21 deliverable 5). */
  remindAt?: string;
  /** The standing grant this call uses instead of a human's approval: one use spent in the claim. */
  standingGrant?: { id: string };
}

export interface IdempotencyRecord {
  eventId: string;
  requestHash: string;
  status: 'in_flight' | 'completed' | 'unknown';
  response?: string;
  createdAt: string;
}

export type ClaimOutcome =
  | { kind: 'claimed' }
  | { kind: 'existing'; record: IdempotencyRecord }
  /** The standing grant named in the write was revoked, used up or expired: nothing was written. */
  | { kind: 'grant_unavailable' };

export interface ExecutionWrite {
  tenantId: string;
  eventId: string;
  result: ExecutionResult;
  fact: FactRecord;
  response: string;
}

export interface StoredFact {
  fact_id: string;
  kind: string;
  record: FactRecord;
  seq?: number;
  hash?: string;
  prev_hash?: string;
}

export interface StoredExecution {
  execution_event_id: string;
  status: 'running' | 'completed' | 'unknown';
  claimed_at: string;
  grant_id: string;
  result?: ExecutionResult;
  response?: string;
  resolved_by?: string;
}

export interface StoredGrant {
  id: string;
  approval_id: string;
  event_id: string;
  request_hash: string;
  uses_left: number;
  expires_at: string;
  /** The policy version that parked the call (absent on grants issued before it was recorded). */
  policy_version?: string;
  /** An edited approval's grant: the edited request it runs (its hash is `request_hash`). */
  request?: ToolCallRequest;
  edit?: GrantEdit;
}

export interface StoredEvent {
  event_id: string;
  tenant_id: string;
  received_at: string;
  request: ToolCallRequest;
  decision: PolicyDecision['decision'];
  reason: string;
  policy_version: string;
  status: EventStatus;
  result?: ExecutionResult;
  approval?: {
    id: string;
    status: string;
    expires_at: string;
    decided_by?: string;
    decided_at?: string;
    deny_reason?: string;
    /** Which approvers decide it (policy data's `approver_group`; '' is any approver of the tenant). */
    approver_group?: string;
  };
  /** Set on approval-gated events, whether or not the approval's state was read. */
  approval_id?: string;
  /** For execution events: the approval-gated event they executed. */
  parent_event_id?: string;
  grant?: StoredGrant;
  execution?: StoredExecution;
  facts: StoredFact[];
}

export interface ToolCallStore {
  /**
   * Claims the idempotency key by writing its event, with the decision fact (and, for approve,
   * the approval) in the same atomic write.
   */
  recordDecision(write: DecisionWrite): Promise<ClaimOutcome>;
  /** What the first request with this key (its event) recorded, if any. */
  getIdempotency(
    tenantId: string,
    eventId: string,
    options?: { consistent?: boolean },
  ): Promise<IdempotencyRecord | undefined>;
  /** Records the result's fact with the replayable response, once. */
  recordExecution(write: ExecutionWrite): Promise<void>;
  /** Best effort after a failed recordExecution: the tool ran, the outcome is not recorded. */
  markExecutionUnknown(tenantId: string, eventId: string): Promise<void>;
  getEvent(
    tenantId: string,
    eventId: string,
    options?: { withApproval?: boolean },
  ): Promise<StoredEvent | undefined>;
}

export interface RateLimiter {
  /** `count` permits (default 1), all or none: a refusal spends nothing. */
  take(
    tenantId: string,
    count?: number,
  ): Promise<{ allowed: true } | { allowed: false; retryAfterSec: number }>;
}

export interface Clock {
  now(): Date;
}

export interface IdGenerator {
  uuid(): string;
}

/**
 * Approval notifications (SPEC §5), pure: which events an approval's stream record means, the
 * stable delivery id of each (approval, event, route), the CloudEvent a webhook receives, its two
 * signatures, and the retry schedule. The stores and handlers do the I/O.
 */
import { createHash, createHmac } from 'node:crypto';
import { CloudEvent, HTTP } from 'cloudevents';
import { Webhook } from 'standardwebhooks';
import { NOTIFY_EVENTS, type NotifyEvent, type NotifyRoute } from './policy-data.js';
import { shownView, type ShownView } from './approvals.js';
import type { ApprovalRecord } from './ports.js';
import type { StoredApproval } from './approvals.js';
import type { StandingGrantSummary } from './grants.js';
import { quorumProgress, type QuorumProgress } from './quorum.js';
import type { UpstreamDriftEventData } from './upstream-facts.js';
import type { UpstreamClaimsSource } from './approval-view.js';

export type { NotifyEvent, NotifyRoute };
export { NOTIFY_EVENTS };

/**
 * What an approval item's stream record announces, if anything. A MODIFY that leaves it pending
 * announces its latest notice (issue 21): a quorum's vote cast or withdrawn, a reminder, an
 * extension; the delivery id names which one, so a later MODIFY that repeats it sends nothing twice.
 */
export function eventTypeOf(eventName: string, status: string, notice?: unknown): NotifyEvent | undefined {
  if (eventName === 'INSERT') return status === 'pending' ? 'oc.approval.requested' : undefined;
  if (eventName !== 'MODIFY') return undefined;
  if (status === 'pending' && notice === 'vote') return 'oc.approval.vote';
  if (status === 'pending' && notice === 'reminder') return 'oc.approval.reminder';
  if (status === 'pending' && notice === 'extended') return 'oc.approval.extended';
  if (status === 'approved' || status === 'denied') return 'oc.approval.decided';
  if (status === 'expired') return 'oc.approval.expired';
  // Approved, then refused at execute by a changed policy (core/execute.ts): the grant is spent.
  if (status === 'revoked_by_policy') return 'oc.approval.revoked';
  // The agent withdrew it while pending (core/withdraw.ts): nobody decides it, nothing runs.
  if (status === 'withdrawn') return 'oc.approval.withdrawn';
  return undefined;
}

/** Does this route want this event (SPEC §5: all three unless it lists some)? */
export function routeWants(route: NotifyRoute, type: NotifyEvent): boolean {
  return !route.events || route.events.includes(type);
}

/** What identifies a route: a webhook by URL and secret name, a Slack route by channel. */
export function routeKey(route: NotifyRoute): string {
  return route.kind === 'webhook' ? `webhook\n${route.url}\n${route.secret_ref}` : `slack\n${route.channel}`;
}

/**
 * The delivery id: a name-based UUID (version 8, from SHA-256) of (approval id, event type,
 * route), so that every replay of a stream record, every redelivered message and every retry
 * names the same delivery. It is the CloudEvent `id` and the Standard Webhooks `webhook-id`.
 */
export function deliveryId(
  approvalId: string,
  type: NotifyEvent,
  route: NotifyRoute,
  occurrence?: number,
): string {
  // Events that can happen more than once (reminders, extensions) name their occurrence; the
  // others keep the ids they always had.
  const which = occurrence === undefined ? '' : `\n#${occurrence}`;
  const h = createHash('sha256')
    .update(`oc-delivery/v1\n${approvalId}\n${type}${which}\n${routeKey(route)}`)
    .digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** What a route looks like to an approver: a webhook as scheme://host[:port]/path (no query, no userinfo). */
export type RouteView = { kind: 'webhook'; target: string } | { kind: 'slack'; channel: string };

export function routeView(route: NotifyRoute): RouteView {
  if (route.kind === 'slack') return { kind: 'slack', channel: route.channel };
  const url = new URL(route.url);
  return { kind: 'webhook', target: `${url.protocol}//${url.host}${url.pathname}` };
}

/** The CloudEvent `data` (SPEC §5), plus the decision fields of a decided event. */
export interface ApprovalEventData {
  approval_request_id: string;
  event_id: string;
  tenant_id: string;
  agent_id: string;
  tool: string;
  action: string;
  resource: string;
  risk_score: number;
  risk_factors: string[];
  reason: string;
  approver_group: string;
  approval_url: string;
  expires_at: string;
  trace_id: string;
  summary: string;
  /** The risk assessment policy decided on (absent on approvals created before it was stored). */
  risk?: { claimed: number; floor: number; effective: number };
  /** An upstream MCP tool's own words (issue 25), part of the view (Slack re-renders it). */
  upstream_claims?: UpstreamClaimsSource;
  /**
   * The approval view (core/approval-view.ts): the lines every surface shows, its version, and the
   * hash a decision names; `recorded` is `legacy` for an approval created before views.
   */
  view: ShownView;
  /** The request's fields exactly as recorded: the summary never stands in for them. */
  raw: {
    agent_id: string;
    user_id: string;
    tool: string;
    action: string;
    resource: string;
    params: Record<string, unknown>;
    risk_score: number;
    risk_factors: string[];
    reason: string;
  };
  status?: string;
  decision?: 'approved' | 'denied';
  decided_by?: string;
  decided_at?: string;
  deny_reason?: string;
  /** `oc.approval.withdrawn`: who withdrew it (the caller's key id, and agent) and when. */
  withdrawn_by?: string;
  withdrawn_at?: string;
  /**
   * A quorum approval (issue 21): each stage's votes and what is still needed; on
   * `oc.approval.vote` and on the final `oc.approval.decided`.
   */
  quorum?: QuorumProgress & { rule: string; vote_rev: number };
  /** `oc.approval.reminder`: when it went out (the deadline is `expires_at`). */
  reminded_at?: string;
  /** `oc.approval.extended`: the latest move of the deadline (`expires_at` is the new one). */
  extension?: { by: string; at: string; from: string; to: string; comment?: string };
  /** `oc.approval.decided` (issue 21): the standing grant made with the approval, if one was. */
  standing_grant?: StandingGrantSummary;
  /** `oc.approval.revoked`: why the live policy refused the approved call, and when. */
  revocation?: {
    at: string;
    approved_under: string;
    policy_version: string;
    decision: string;
    reason: string;
  };
}

/** The most view lines a notification carries; the rest are counted in `view.omitted`. */
export const EVENT_VIEW_MAX_BYTES = 16_384;

export function eventData(
  approval: StoredApproval,
  type: NotifyEvent,
  summary: string,
  approvalUrl: string,
): ApprovalEventData {
  const r: ApprovalRecord = approval.record;
  const data: ApprovalEventData = {
    approval_request_id: r.id,
    event_id: r.event_id,
    tenant_id: r.tenant_id,
    agent_id: r.agent_id,
    tool: r.tool,
    action: r.action,
    resource: r.resource,
    risk_score: r.risk_score,
    risk_factors: r.risk_factors ?? [],
    reason: r.reason,
    approver_group: r.approver_group,
    approval_url: approvalUrl,
    expires_at: r.expires_at,
    trace_id: r.trace_id ?? '',
    summary,
    ...(r.risk ? { risk: r.risk } : {}),
    ...(r.upstream_claims ? { upstream_claims: r.upstream_claims } : {}),
    // Bounded: the message travels through SQS (256 KB) with the raw params beside it.
    view: shownView(r, EVENT_VIEW_MAX_BYTES),
    raw: {
      agent_id: r.agent_id,
      user_id: r.user_id,
      tool: r.tool,
      action: r.action,
      resource: r.resource,
      params: r.params,
      risk_score: r.risk_score,
      risk_factors: r.risk_factors ?? [],
      reason: r.reason,
    },
  };
  if (type === 'oc.approval.decided' && (approval.status === 'approved' || approval.status === 'denied')) {
    data.status = approval.status;
    data.decision = approval.status;
    if (approval.decided_by) data.decided_by = approval.decided_by;
    if (approval.decided_at) data.decided_at = approval.decided_at;
    if (approval.deny_reason) data.deny_reason = approval.deny_reason;
    if (approval.standing_grant) data.standing_grant = approval.standing_grant;
  }
  if (type === 'oc.approval.expired') data.status = 'expired';
  if (r.quorum && (type === 'oc.approval.vote' || type === 'oc.approval.decided')) {
    if (type === 'oc.approval.vote') data.status = 'pending';
    data.quorum = {
      rule: r.quorum.rule,
      vote_rev: approval.vote_rev ?? 0,
      ...quorumProgress(r, approval.votes ?? [], approval.status),
    };
  }
  if (type === 'oc.approval.reminder' || type === 'oc.approval.extended') data.status = 'pending';
  if (type === 'oc.approval.reminder' && approval.reminded_at) data.reminded_at = approval.reminded_at;
  const lastExtension = approval.extensions?.at(-1);
  if (type === 'oc.approval.extended' && lastExtension) data.extension = lastExtension;
  if (type === 'oc.approval.withdrawn' && approval.status === 'withdrawn') {
    data.status = approval.status;
    if (approval.decided_by) data.withdrawn_by = approval.decided_by;
    if (approval.decided_at) data.withdrawn_at = approval.decided_at;
  }
  if (type === 'oc.approval.revoked' && approval.status === 'revoked_by_policy') {
    data.status = approval.status;
    if (approval.decided_by) data.decided_by = approval.decided_by;
    if (approval.decided_at) data.decided_at = approval.decided_at;
    if (approval.revocation) {
      const { at, approved_under, policy_version, decision, reason } = approval.revocation;
      data.revocation = { at, approved_under, policy_version, decision, reason };
    }
  }
  return data;
}

/**
 * When the event happened, stable across retries: the request's creation, the decision, or the
 * expiry time the request carried.
 */
export function eventTime(approval: StoredApproval, type: NotifyEvent): string {
  if (type === 'oc.approval.requested') return approval.record.created_at;
  if (type === 'oc.approval.decided') return approval.decided_at ?? approval.record.created_at;
  if (type === 'oc.approval.withdrawn') return approval.decided_at ?? approval.record.created_at;
  // The latest vote (a withdrawal leaves the one before it): stable for a given revision.
  if (type === 'oc.approval.vote') return approval.votes?.at(-1)?.at ?? approval.record.created_at;
  if (type === 'oc.approval.revoked')
    return approval.revocation?.at ?? approval.decided_at ?? approval.record.created_at;
  if (type === 'oc.approval.reminder') return approval.reminded_at ?? approval.record.created_at;
  if (type === 'oc.approval.extended') return approval.extensions?.at(-1)?.at ?? approval.record.created_at;
  return approval.record.expires_at;
}

export interface CloudEventInput {
  id: string;
  type: NotifyEvent;
  source: string;
  subject: string;
  time: string;
  data: ApprovalEventData | UpstreamDriftEventData;
}

/** The structured-mode CloudEvents 1.0 body (built and validated by the CloudEvents SDK). */
export function cloudEventBody(input: CloudEventInput): string {
  const event = new CloudEvent<CloudEventInput['data']>({
    specversion: '1.0',
    id: input.id,
    type: input.type,
    source: input.source,
    subject: input.subject,
    time: input.time,
    datacontenttype: 'application/json',
    data: input.data,
  });
  return String(HTTP.structured(event).body);
}

export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json';

/**
 * The signature headers over the exact body bytes: `X-OC-Signature-256` (HMAC-SHA256 keyed with
 * the secret string's UTF-8 bytes, what the original's receivers verify) and Standard Webhooks
 * (`webhook-signature` keyed with the base64-decoded `whsec_` secret, over `id.timestamp.body`).
 */
export function signatureHeaders(secret: string, id: string, body: string, at: Date): Record<string, string> {
  const timestamp = Math.floor(at.getTime() / 1000);
  return {
    'X-OC-Signature-256': `sha256=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(body, 'utf8').digest('hex')}`,
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': new Webhook(secret).sign(id, new Date(timestamp * 1000), body),
  };
}

/** A `whsec_<base64>` secret (Standard Webhooks), at least 16 bytes once decoded. */
export function isWebhookSecret(value: string): boolean {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value);
  return !!m && m[1]!.length % 4 === 0 && Buffer.from(m[1]!, 'base64').length >= 16;
}

export interface RetrySchedule {
  /** Ceiling of the first backoff, seconds. */
  baseSec: number;
  /** Largest ceiling, seconds. */
  capSec: number;
  maxAttempts: number;
}

/** 2, 4, 8 ... 512 s ceilings (full jitter below each), 10 attempts: about 17 minutes at most. */
export const DEFAULT_RETRY: RetrySchedule = { baseSec: 2, capSec: 900, maxAttempts: 10 };

/**
 * The pause after the `attempt`-th failed attempt (1-based): full jitter, a uniform draw in
 * [1, min(cap, base * 2^(attempt-1))] whole seconds (SQS visibility has 1 s resolution), and never
 * less than the receiver's `Retry-After`; at most `maxSec` (SQS's 12 h visibility limit).
 */
export function backoffSec(
  attempt: number,
  schedule: RetrySchedule,
  random: () => number,
  retryAfterSec: number | undefined,
  maxSec: number,
): number {
  const ceiling = Math.min(schedule.capSec, schedule.baseSec * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.max(1, Math.ceil(random() * ceiling));
  return Math.min(maxSec, Math.max(jittered, retryAfterSec ?? 0));
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: Date): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d{1,9}$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}

/** What one attempt came to. */
export type SendOutcome =
  | { kind: 'delivered'; statusCode?: number; state?: Record<string, string> }
  | { kind: 'retry'; statusCode?: number; error: string; retryAfterSec?: number }
  | { kind: 'failed'; statusCode?: number; error: string };

/** An HTTP answer as an outcome: 2xx delivered, 410 stops for good, anything else is retried. */
export function httpOutcome(statusCode: number, retryAfterSec: number | undefined): SendOutcome {
  if (statusCode >= 200 && statusCode < 300) return { kind: 'delivered', statusCode };
  if (statusCode === 410) return { kind: 'failed', statusCode, error: 'receiver answered 410 Gone' };
  return {
    kind: 'retry',
    statusCode,
    error: `receiver answered ${statusCode}`,
    ...(retryAfterSec !== undefined ? { retryAfterSec } : {}),
  };
}

/** The SQS message body of one delivery: everything a sender needs, so it reads nothing else. */
export interface DeliveryMessage {
  v: 1;
  delivery_id: string;
  tenant_id: string;
  /** The approval's id; for `oc.upstream.drift`, the drift fact's event id (what it is about). */
  approval_id: string;
  event_type: NotifyEvent;
  /** Index of the route in the approval's `notify` list. */
  route_index: number;
  route: NotifyRoute;
  /** The CloudEvent `time`: when the event happened, stable across retries. */
  time: string;
  data: ApprovalEventData | UpstreamDriftEventData;
}

/** Which reminder or extension this is (the approval's notice count); undefined for one-off events. */
export function occurrenceOf(approval: StoredApproval, type: NotifyEvent): number | undefined {
  if (type === 'oc.approval.vote') return approval.vote_rev ?? 0;
  return type === 'oc.approval.reminder' || type === 'oc.approval.extended'
    ? (approval.notices ?? 0)
    : undefined;
}

export function deliveryMessage(
  approval: StoredApproval,
  type: NotifyEvent,
  routeIndex: number,
  summary: string,
  approvalUrl: string,
): DeliveryMessage {
  const route = approval.record.notify[routeIndex]!;
  return {
    v: 1,
    delivery_id: deliveryId(approval.record.id, type, route, occurrenceOf(approval, type)),
    tenant_id: approval.record.tenant_id,
    approval_id: approval.record.id,
    event_type: type,
    route_index: routeIndex,
    route,
    time: eventTime(approval, type),
    data: eventData(approval, type, summary, approvalUrl),
  };
}

/** What a sender is told besides the message. */
export interface SendContext {
  now: Date;
  /** 1 for the first attempt. */
  attempt: number;
  /** What this route's sender stored on the delivery record before (e.g. a Slack message ts). */
  state?: Readonly<Record<string, string>>;
}

/**
 * One kind of route. The delivery worker dispatches each message to the sender of its route's
 * kind (webhook-sender.ts, slack-sender.ts); a kind without a sender is not enqueued by the outbox.
 * A sender never throws for a receiver's failure: it answers an outcome (retry, failed), and
 * `delivered` may carry `state` to keep on the delivery record.
 */
export interface RouteSender {
  readonly kind: NotifyRoute['kind'];
  send(delivery: DeliveryMessage, ctx: SendContext): Promise<SendOutcome>;
}

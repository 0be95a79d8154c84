/**
 * An upstream tool's drift and its acceptance as evidence and as an announcement (issue 25), pure.
 * Neither belongs to a tool call, so each is the one fact of its own event, whose id is derived
 * from what it records (a replayed write names the same event and is refused by its condition).
 * The announcement (`oc.upstream.drift`) goes to the tenant's webhook routes that want it; its
 * CloudEvent subject is the drift fact's event id, so a receiver can find the sealed fact.
 */
import { createHash } from 'node:crypto';
import type { UpstreamClaimsSource } from './approval-view.js';
import type { FactRecord } from './evidence.js';
import type { UpstreamTool } from './upstream.js';
import type { NotifyRoute } from './policy-data.js';
import { deliveryId, routeWants, type DeliveryMessage } from './notifications.js';

/** A name-based UUID (version 8, from SHA-256) of the parts, like the delivery ids. */
function nameUuid(parts: readonly string[]): string {
  const h = createHash('sha256').update(parts.join('\n')).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** What a drift records (store/upstreams.ts `UpstreamDrift`). */
export interface DriftSeen {
  server: string;
  tool: string;
  at: string;
  pinnedHash: string;
  seenHash: string;
  fields: string[];
  detectedBy: 'sync' | 'call';
}

export function driftEventId(tenantId: string, d: Pick<DriftSeen, 'server' | 'tool' | 'at' | 'seenHash'>) {
  return nameUuid(['oc-upstream-drift/v1', tenantId, d.server, d.tool, d.seenHash, d.at]);
}

/** The sealed `upstream.drift` fact: which tool, the pinned and the seen hash, what changed. */
export function driftFact(tenantId: string, d: DriftSeen): FactRecord {
  const eventId = driftEventId(tenantId, d);
  return {
    v: 1,
    tenant_id: tenantId,
    kind: 'upstream.drift',
    event_id: eventId,
    fact_id: nameUuid(['oc-fact', eventId, 'upstream.drift']),
    at: d.at,
    server: d.server,
    tool: d.tool,
    action: `${d.server}.${d.tool}`,
    pinned_hash: d.pinnedHash,
    seen_hash: d.seenHash,
    fields: d.fields,
    detected_by: d.detectedBy,
  };
}

/** What `oc upstream accept` pinned: the tool, the hash it replaced and the one it pinned, who. */
export interface AcceptedChange {
  server: string;
  tool: string;
  at: string;
  previousHash: string;
  acceptedHash: string;
  /** Who ran it (the CLI's operator: `OC_OPERATOR` or the OS user), as told. */
  acceptedBy: string;
}

export function acceptedFact(tenantId: string, a: AcceptedChange): FactRecord {
  const eventId = nameUuid(['oc-upstream-accepted/v1', tenantId, a.server, a.tool, a.acceptedHash, a.at]);
  return {
    v: 1,
    tenant_id: tenantId,
    kind: 'upstream.accepted',
    event_id: eventId,
    fact_id: nameUuid(['oc-fact', eventId, 'upstream.accepted']),
    at: a.at,
    server: a.server,
    tool: a.tool,
    action: `${a.server}.${a.tool}`,
    previous_hash: a.previousHash,
    accepted_hash: a.acceptedHash,
    accepted_by: a.acceptedBy,
  };
}

/** The CloudEvent `data` of `oc.upstream.drift`. */
export interface UpstreamDriftEventData {
  tenant_id: string;
  /** The `upstream.drift` fact's event id (also the CloudEvent subject). */
  event_id: string;
  server: string;
  tool: string;
  action: string;
  pinned_hash: string;
  seen_hash: string;
  fields: string[];
  detected_by: 'sync' | 'call';
  detected_at: string;
  /** What the tenant's operator does next. */
  next: string;
}

/**
 * One message per webhook route of the tenant that wants `oc.upstream.drift`. Slack routes are
 * not told: a Slack message is an approval's view, and a drift has none (documented).
 */
export function driftMessages(
  tenantId: string,
  d: DriftSeen,
  routes: readonly NotifyRoute[],
): DeliveryMessage[] {
  const eventId = driftEventId(tenantId, d);
  const data: UpstreamDriftEventData = {
    tenant_id: tenantId,
    event_id: eventId,
    server: d.server,
    tool: d.tool,
    action: `${d.server}.${d.tool}`,
    pinned_hash: d.pinnedHash,
    seen_hash: d.seenHash,
    fields: d.fields,
    detected_by: d.detectedBy,
    detected_at: d.at,
    next: `the tool is disabled until an operator reviews the change: oc upstream diff ${d.server}, then oc upstream accept ${d.server} --tool ${d.tool}`,
  };
  return routes.flatMap((route, i) =>
    route.kind === 'webhook' && routeWants(route, 'oc.upstream.drift')
      ? [
          {
            v: 1 as const,
            delivery_id: deliveryId(eventId, 'oc.upstream.drift', route),
            tenant_id: tenantId,
            approval_id: eventId,
            event_type: 'oc.upstream.drift' as const,
            route_index: i,
            route,
            time: d.at,
            data,
          },
        ]
      : [],
  );
}

/**
 * What an approver is shown of an upstream tool, as its claims (issue 25): its pinned listing's
 * hash, title, description and annotations. Stored with the approval and its decided fact, so the
 * one approval view renders them and the verifiers re-render it from the record.
 */
export function upstreamClaimsSource(tool: UpstreamTool): UpstreamClaimsSource {
  const { listing } = tool;
  return {
    server: tool.server,
    tool: tool.tool,
    hash: tool.hash,
    ...(listing.title !== undefined ? { title: listing.title } : {}),
    ...(listing.description !== undefined ? { description: listing.description } : {}),
    ...(listing.annotations !== undefined ? { annotations: listing.annotations } : {}),
  };
}

/**
 * Outbox: the approval items' stream records (event-source filter: type = approval; INSERT =
 * requested, a MODIFY to approved/denied = decided, to expired = expired) become one SQS message per
 * notification route, each with its stable delivery id. The delivery record is written first, with
 * a condition: a replayed stream record finds it (and enqueues again only what is still pending, so
 * a crash between the record and the message loses nothing; the delivery worker's lease and the
 * record's status make the extra copy harmless). A record that cannot be announced is parked in its
 * tenant's partition and the batch moves on (release-parked retries it); only a record that cannot
 * even be parked (storage down) is reported failed, so the stream retries from there. Message
 * bodies escape what SQS refuses (`sqsBody`). Routes whose kind has no sender in this build are
 * skipped (logged).
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { StoredApproval } from '../core/approvals.js';
import {
  deliveryMessage,
  eventTypeOf,
  occurrenceOf,
  routeView,
  routeWants,
  type DeliveryMessage,
  type NotifyEvent,
} from '../core/notifications.js';
import { approvalUrl } from '../core/submit.js';
import { summarize, type SummaryInput } from '../core/summary.js';
import type { ApprovalRecord } from '../core/ports.js';
import { routeUrlProblems, staticUrlProblem } from '../core/webhook-address.js';
import { driftEventId, driftMessages, type DriftSeen } from '../core/upstream-facts.js';
import type { NotifyRoute, TenantsFile } from '../core/policy-data.js';
import { ITEM_TYPE, UPSTREAM_DRIFT_ITEM_TYPE } from '../shared/constants.js';
import { lambda } from '../shared/middleware.js';
import { logger, metrics } from '../shared/powertools.js';
import { streamImage } from '../shared/stream-image.js';
import { toStoredApproval } from '../store/approvals.js';
import type { DeliveryRecord } from '../store/deliveries.js';
import { parkingTenant } from '../store/parked-records.js';
import { defaultPolicyDir, loadTenants } from '../store/policy-files.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { notifyState, type NotifyState } from './notifications-state.js';

/** What the summary renders: the approval view's fields, in the approval's recorded view version. */
function summaryInput(r: ApprovalRecord): SummaryInput {
  return {
    agent_id: r.agent_id,
    tool: r.tool,
    action: r.action,
    resource: r.resource,
    risk_score: r.risk_score,
    reason: r.reason,
    params: r.params,
    ...(r.risk ? { risk: r.risk } : {}),
    ...(r.view && 'hash' in r.view ? { view_version: r.view.version } : {}),
  };
}

/** The messages of one approval event, with their delivery records written (or found). */
export async function messagesFor(
  app: AppState,
  notify: NotifyState,
  approval: StoredApproval,
  type: NotifyEvent,
): Promise<DeliveryMessage[]> {
  const r = approval.record;
  const routes = r.notify ?? [];
  const wanted = routes.map((route, i) => ({ route, i })).filter(({ route }) => routeWants(route, type));
  if (wanted.length === 0) return [];
  const { summary } = await summarize(summaryInput(r), await notify.summarizer());
  const url = approvalUrl(app.config.publicBaseUrl, r.id);
  const messages: DeliveryMessage[] = [];
  for (const { route, i } of wanted) {
    if (!notify.senders.has(route.kind)) {
      logger.debug('notification route kind has no sender in this build: skipped', {
        kind: route.kind,
        approvalId: r.id,
        type,
      });
      continue;
    }
    const message = deliveryMessage(approval, type, i, summary, url);
    const created = await notify.deliveries.create({
      tenant_id: r.tenant_id,
      approval_id: r.id,
      delivery_id: message.delivery_id,
      event_type: type,
      route_index: i,
      route: routeView(route),
      created_at: app.clock.now().toISOString(),
    });
    if (!created.created && created.existing.status !== 'pending') continue;
    if (created.created && route.kind === 'webhook') {
      // Policy load refuses such URLs; a record that predates the check stops here, visibly.
      const problem = staticUrlProblem(route.url, { allowPrivate: notify.config.allowPrivateWebhooks });
      if (problem) {
        await notify.deliveries.finishAttempt(r.tenant_id, r.id, message.delivery_id, {
          status: 'failed',
          error: `webhook URL ${problem}`,
        });
        logger.error('webhook route refused: not enqueued', { approvalId: r.id, problem });
        metrics.addMetric('notifications_failed_for_good', MetricUnit.Count, 1);
        continue;
      }
    }
    messages.push(message);
  }
  return messages;
}

/**
 * An upstream drift's record (issue 25; written once per new listing): the tenant's webhook routes
 * that want `oc.upstream.drift` are told, from the tenant's routes in policy data (the approval
 * events use the routes an approval recorded; a drift has no approval).
 */
function driftOf(record: DynamoDBRecord): { tenantId: string; drift: DriftSeen } | undefined {
  const image = record.dynamodb?.NewImage;
  if (record.eventName !== 'INSERT' || !image) return undefined;
  const item = streamImage(image);
  if (item.type !== UPSTREAM_DRIFT_ITEM_TYPE) return undefined;
  const tenantId = UPSTREAM_PARTITION.exec(String(item.pk))?.[1];
  if (!tenantId) return undefined;
  const { server, tool, at, pinnedHash, seenHash, fields, detectedBy } = item as unknown as DriftSeen;
  return { tenantId, drift: { server, tool, at, pinnedHash, seenHash, fields, detectedBy } };
}

/** `T#<tenant>#UPSTREAM`: a tenant's upstream catalog partition (store/upstreams.ts). */
const UPSTREAM_PARTITION = /^T#([^#]+)#UPSTREAM$/;

/** The tenant's routes in policy data (read once per container, like the deciding bundle's). */
export type TenantRoutes = (tenantId: string) => readonly NotifyRoute[];

let policyRoutes: TenantsFile | undefined;
const defaultTenantRoutes =
  (app: AppState): TenantRoutes =>
  (tenantId) => {
    policyRoutes ??= loadTenants(app.config.policyDir ?? defaultPolicyDir());
    return policyRoutes[tenantId]?.notify ?? [];
  };

/** A drift's messages, with their delivery records written (or found), and enqueued. */
async function announceDrift(
  app: AppState,
  notify: NotifyState,
  routes: TenantRoutes,
  tenantId: string,
  drift: DriftSeen,
): Promise<void> {
  if (!notify.queue) throw new Error('no notification queue configured');
  const messages: DeliveryMessage[] = [];
  for (const message of driftMessages(tenantId, drift, routes(tenantId))) {
    const created = await notify.deliveries.create({
      tenant_id: tenantId,
      approval_id: message.approval_id,
      delivery_id: message.delivery_id,
      event_type: message.event_type,
      route_index: message.route_index,
      route: routeView(message.route),
      created_at: app.clock.now().toISOString(),
    });
    if (!created.created && created.existing.status !== 'pending') continue;
    messages.push(message);
  }
  await notify.queue.send(messages);
  if (messages.length > 0) metrics.addMetric('notifications_enqueued', MetricUnit.Count, messages.length);
}

function approvalOf(record: DynamoDBRecord): { approval: StoredApproval; type: NotifyEvent } | undefined {
  const image = record.dynamodb?.NewImage;
  if (!image) return undefined;
  const item = streamImage(image);
  if (item.type !== ITEM_TYPE.approval) return undefined;
  const type = eventTypeOf(record.eventName ?? '', String(item.status), item.notice);
  if (!type) return undefined;
  return { approval: toStoredApproval(item), type };
}

/** A repeatable announcement (a vote, a reminder, an extension) names which one it is. */
function occurrenceSuffix(approval: StoredApproval, type: NotifyEvent): string {
  const n = occurrenceOf(approval, type);
  return n === undefined ? '' : `.${n}`;
}

/** One approval event's messages, recorded and enqueued. */
async function announce(app: AppState, notify: NotifyState, approval: StoredApproval, type: NotifyEvent) {
  if (!notify.queue) throw new Error('no notification queue configured');
  const messages = await messagesFor(app, notify, approval, type);
  await notify.queue.send(messages);
  if (messages.length > 0) metrics.addMetric('notifications_enqueued', MetricUnit.Count, messages.length);
}

/** What a parked outbox record keeps: the approval item's key and the event, when it could be read. */
interface ParkedOutboxRecord {
  pk: string;
  sk: string;
  eventName: string;
  type?: NotifyEvent;
  /** An upstream drift's record (issue 25), as it was read. */
  drift?: DriftSeen;
}

/** `T#<tenant>#APR#<approval id>`: the approval item's partition. */
const APPROVAL_PARTITION = /^T#([^#]+)#APR#([^#]+)$/;

export const outbox =
  (
    getApp: () => AppState,
    getNotify: (app: AppState) => NotifyState,
    getRoutes: (app: AppState) => TenantRoutes = defaultTenantRoutes,
  ) =>
  async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const app = getApp();
    const notify = getNotify(app);
    const failed: string[] = [];
    // Records are independent (each names its own deliveries): handled side by side. A record that
    // cannot be announced is parked (its tenant's item, release-parked retries it) and the stream
    // moves on: one record must never hold the notifications of every tenant behind it.
    await Promise.all(
      event.Records.map(async (record) => {
        let parsed: ReturnType<typeof approvalOf>;
        let drift: ReturnType<typeof driftOf>;
        try {
          drift = driftOf(record);
          if (drift) {
            await announceDrift(app, notify, getRoutes(app), drift.tenantId, drift.drift);
            return;
          }
          parsed = approvalOf(record);
          if (!parsed) return;
          await announce(app, notify, parsed.approval, parsed.type);
        } catch (error) {
          const key = record.dynamodb?.Keys
            ? unmarshall(record.dynamodb.Keys as Record<string, AttributeValue>)
            : {};
          const payload: ParkedOutboxRecord = {
            pk: String(key.pk ?? ''),
            sk: String(key.sk ?? ''),
            eventName: record.eventName ?? '',
            ...(parsed ? { type: parsed.type } : {}),
            // A drift's record is never rewritten: the parked payload carries it whole.
            ...(drift ? { drift: drift.drift } : {}),
          };
          try {
            await app.parked.park(
              {
                tenantId: parkingTenant(
                  (APPROVAL_PARTITION.exec(payload.pk) ?? UPSTREAM_PARTITION.exec(payload.pk))?.[1],
                ),
                consumer: 'outbox',
                recordId: parsed
                  ? `${parsed.approval.record.id}.${parsed.type}${occurrenceSuffix(parsed.approval, parsed.type)}`
                  : drift
                    ? `${driftEventId(drift.tenantId, drift.drift)}.oc.upstream.drift`
                    : `seq-${record.dynamodb?.SequenceNumber ?? 'unknown'}`,
                payload: JSON.stringify(payload),
                reason: (error as Error).message,
              },
              app.clock.now(),
            );
          } catch (parkError) {
            // Storage is down: nothing may be lost, so the stream retries from here.
            logger.error('outbox could not park a record: the stream retries', {
              error: error as Error,
              parkError: parkError as Error,
            });
            failed.push(record.dynamodb?.SequenceNumber ?? '');
          }
        }
      }),
    );
    const order = event.Records.map((r) => r.dynamodb?.SequenceNumber ?? '');
    const first = failed.sort((a, b) => order.indexOf(a) - order.indexOf(b))[0];
    return { batchItemFailures: first !== undefined ? [{ itemIdentifier: first }] : [] };
  };

/**
 * release-parked: announces a parked outbox record from the approval as it is now (delivery ids are
 * stable, so what was already enqueued is not sent twice). Throws if it still cannot.
 */
export async function releaseOutboxRecord(
  app: AppState,
  notify: NotifyState,
  payload: string,
  getRoutes: (app: AppState) => TenantRoutes = defaultTenantRoutes,
): Promise<void> {
  const parked = JSON.parse(payload) as ParkedOutboxRecord;
  const upstreamTenant = UPSTREAM_PARTITION.exec(parked.pk)?.[1];
  if (upstreamTenant && parked.drift) {
    await announceDrift(app, notify, getRoutes(app), upstreamTenant, parked.drift);
    return;
  }
  const match = APPROVAL_PARTITION.exec(parked.pk);
  if (!match) throw new Error(`not an approval key: ${parked.pk}`);
  const approval = await app.approvals.get(match[1]!, match[2]!);
  if (!approval) {
    logger.warn('parked approval record gone (expired by TTL): nothing to announce', { key: parked.pk });
    return;
  }
  const type = parked.type ?? eventTypeOf(parked.eventName, approval.record.status, approval.notice);
  if (!type) return;
  await announce(app, notify, approval, type);
}

/**
 * The policy folder's webhook routes that can never be delivered to (W22), found when it loads:
 * the local host refuses to start with any; a Lambda logs each (and every delivery to it fails
 * for good, visibly, without a retry loop) rather than failing its init, since one tenant's bad
 * route must not stop every other tenant's notifications.
 */
export function checkRouteUrls(policyDir: string, allowPrivate: boolean): string[] {
  return routeUrlProblems(loadTenants(policyDir), { allowPrivate });
}

/** The message of a delivery record, rebuilt from its approval as it is now; undefined if there is none. */
export async function messageForDelivery(
  app: AppState,
  notify: NotifyState,
  record: Pick<DeliveryRecord, 'tenant_id' | 'approval_id' | 'delivery_id' | 'event_type' | 'route_index'>,
): Promise<DeliveryMessage | undefined> {
  const approval = await app.approvals.get(record.tenant_id, record.approval_id);
  const route = approval?.record.notify?.[record.route_index];
  if (!approval || !route) return undefined;
  const { summary } = await summarize(summaryInput(approval.record), await notify.summarizer());
  const message = deliveryMessage(
    approval,
    record.event_type,
    record.route_index,
    summary,
    approvalUrl(app.config.publicBaseUrl, approval.record.id),
  );
  return message.delivery_id === record.delivery_id ? message : undefined;
}

/**
 * Re-enqueues every pending delivery from its record (the local host after a restart: fauxqs keeps
 * messages in memory only, the records are the durable truth). Returns how many were sent. A
 * delivery that cannot be re-enqueued is parked like any other record: one stored record never
 * stops a start.
 */
export async function requeuePending(app: AppState, notify: NotifyState): Promise<number> {
  if (!notify.queue) return 0;
  let sent = 0;
  for await (const record of notify.deliveries.pending()) {
    try {
      const message = await messageForDelivery(app, notify, record);
      if (!message) continue;
      await notify.queue.send([message]);
      sent += 1;
    } catch (error) {
      const { tenant_id, approval_id, delivery_id, event_type, route_index } = record;
      await app.parked.park(
        {
          tenantId: tenant_id,
          consumer: 'deliver-notifications',
          recordId: delivery_id,
          payload: JSON.stringify({
            delivery: { tenant_id, approval_id, delivery_id, event_type, route_index },
          }),
          reason: (error as Error).message,
        },
        app.clock.now(),
      );
    }
  }
  return sent;
}

warmInLambda((app) => {
  const notify = notifyState(app);
  for (const problem of checkRouteUrls(
    app.config.policyDir ?? defaultPolicyDir(),
    notify.config.allowPrivateWebhooks,
  ))
    logger.error('notification route refused at policy load: its deliveries fail for good', { problem });
});
export const handler = lambda(outbox(appState, notifyState));

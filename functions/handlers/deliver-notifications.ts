/**
 * The delivery worker on the notification queue (partial batch responses through Powertools
 * batch; the messages of a batch are handled side by side, so one slow receiver holds up no other
 * tenant's deliveries). Per message: take the delivery record's lease (a delivered or stopped
 * record makes the message a no-op; another copy attempting now makes this one wait), dispatch to
 * the sender of the route's kind, record the outcome. A retry sets the message's visibility to the
 * backoff (full jitter, `Retry-After` honoured) and reports the message failed, so SQS hands it
 * back then; the last allowed attempt moves it to the DLQ (counted, alarmed).
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { backoffSec, type DeliveryMessage, type SendOutcome } from '../core/notifications.js';
import { NOTIFICATIONS } from '../shared/constants.js';
import { lambda } from '../shared/middleware.js';
import { logger, metrics } from '../shared/powertools.js';
import type { Clock } from '../core/ports.js';
import { UUID_PATTERN } from '../shared/input-rules.js';
import { PARKED_ATTRIBUTE } from '../store/notify-queue.js';
import { parkingTenant } from '../store/parked-records.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { notifyState, type NotifyState } from './notifications-state.js';

/** An attempt holds the record this long past its timeout (a crashed attempt frees it then). */
const LEASE_MARGIN_SEC = 5;

/** Thrown to report a message failed (SQS returns it when its visibility ends). */
class RetryLater extends Error {
  override readonly name = 'RetryLater';
}

/** A message no sender can read: parked (it can never succeed as it is, and must not be lost). */
class UnreadableMessage extends Error {
  override readonly name = 'UnreadableMessage';
}

function parseMessage(body: string): DeliveryMessage | undefined {
  try {
    const m = JSON.parse(body) as DeliveryMessage;
    if (m?.v === 1 && typeof m.delivery_id === 'string' && typeof m.tenant_id === 'string' && m.route)
      return m;
  } catch {
    // fall through
  }
  return undefined;
}

/** Short, single-line, and never a URL's query or a secret (senders' errors name neither). */
const shortError = (error: string) => error.replace(/\s+/g, ' ').slice(0, 200);

export async function deliverOne(
  record: SQSRecord,
  notify: NotifyState,
  clock: Clock,
): Promise<'delivered' | 'failed' | 'dead' | 'skipped'> {
  const message = parseMessage(record.body);
  if (!message) throw new UnreadableMessage('notification message unreadable');
  const ids = [message.tenant_id, message.approval_id, message.delivery_id] as const;
  const log = {
    tenantId: message.tenant_id,
    approvalId: message.approval_id,
    deliveryId: message.delivery_id,
  };
  const sender = notify.senders.get(message.route.kind);
  const now = clock.now();
  const leaseSec = Math.ceil(notify.config.webhookTimeoutMs / 1000) + LEASE_MARGIN_SEC;
  const claim = await notify.deliveries.beginAttempt(...ids, now, leaseSec);
  if (claim.kind === 'missing') {
    logger.error('notification without a delivery record: dropped', log);
    return 'skipped';
  }
  if (claim.kind === 'done') return 'skipped';
  if (claim.kind === 'busy') {
    await notify.queue?.delay(record.receiptHandle, claim.retryInSec);
    throw new RetryLater('another copy of this delivery is being attempted');
  }
  const attempt = claim.record.attempts;
  let outcome: SendOutcome;
  if (!sender) outcome = { kind: 'failed', error: `no sender for route kind ${message.route.kind}` };
  else {
    try {
      outcome = await sender.send(message, {
        now,
        attempt,
        ...(claim.record.state ? { state: claim.record.state } : {}),
      });
    } catch (error) {
      outcome = { kind: 'retry', error: `sender failed: ${(error as Error).message}` };
    }
  }
  const finishedAt = clock.now().toISOString();
  if (outcome.kind === 'delivered') {
    await notify.deliveries.finishAttempt(...ids, {
      status: 'delivered',
      statusCode: outcome.statusCode,
      deliveredAt: finishedAt,
      ...(outcome.state ? { state: outcome.state } : {}),
    });
    metrics.addMetric('notifications_delivered', MetricUnit.Count, 1);
    return 'delivered';
  }
  if (outcome.kind === 'failed') {
    await notify.deliveries.finishAttempt(...ids, {
      status: 'failed',
      statusCode: outcome.statusCode,
      error: shortError(outcome.error),
    });
    logger.error('notification failed for good', { ...log, attempt, error: outcome.error });
    metrics.addMetric('notifications_failed', MetricUnit.Count, 1);
    // The one metric the alarm watches (one alarm metric: failed for good and dead-lettered alike).
    metrics.addMetric('notifications_failed_for_good', MetricUnit.Count, 1);
    return 'failed';
  }
  const maxAttempts = NOTIFICATIONS.maxAttempts;
  if (attempt >= maxAttempts) {
    await notify.deliveries.finishAttempt(...ids, {
      status: 'dead',
      statusCode: outcome.statusCode,
      error: shortError(outcome.error),
      inDlq: true,
    });
    if (!notify.queue) throw new Error('no notification queue configured');
    await notify.queue.toDeadLetter(record.body);
    logger.error('notification attempts exhausted: moved to the DLQ', {
      ...log,
      attempt,
      error: outcome.error,
    });
    metrics.addMetric('notifications_dead_lettered', MetricUnit.Count, 1);
    metrics.addMetric('notifications_failed_for_good', MetricUnit.Count, 1);
    return 'dead';
  }
  const delay = backoffSec(
    attempt,
    { baseSec: notify.config.retryBaseSec, capSec: notify.config.retryCapSec, maxAttempts },
    notify.random,
    outcome.retryAfterSec,
    NOTIFICATIONS.maxVisibilitySec,
  );
  await notify.deliveries.finishAttempt(...ids, {
    status: 'pending',
    statusCode: outcome.statusCode,
    error: shortError(outcome.error),
    nextAttemptAt: new Date(Date.parse(finishedAt) + delay * 1000).toISOString(),
  });
  await notify.queue?.delay(record.receiptHandle, delay);
  logger.warn('notification attempt failed: retrying', {
    ...log,
    attempt,
    delaySec: delay,
    error: outcome.error,
  });
  throw new RetryLater(`attempt ${attempt} failed; next in ${delay} s`);
}

/**
 * One message, and what happens when it cannot be handled: a retry (RetryLater) goes back to SQS
 * as before; anything else (an unreadable message, storage trouble, a sender that broke its
 * contract) parks the message in its tenant's partition and reports it done, so that it never
 * reaches the queue's redrive to the DLQ unrecorded; release-parked sends it again with backoff. A
 * message released from parking removes its parked record once handled.
 */
export async function deliverOrPark(
  record: SQSRecord,
  app: AppState,
  notify: NotifyState,
): Promise<'delivered' | 'failed' | 'dead' | 'skipped' | 'parked'> {
  const released = record.messageAttributes?.[PARKED_ATTRIBUTE]?.stringValue;
  const leaveParking = async () => {
    if (!released) return;
    const ref = JSON.parse(released) as { tenantId: string; recordId: string };
    await app.parked.remove(ref.tenantId, 'deliver-notifications', ref.recordId);
  };
  try {
    const outcome = await deliverOne(record, notify, app.clock);
    await leaveParking();
    return outcome;
  } catch (error) {
    if (error instanceof RetryLater) {
      await leaveParking();
      throw error;
    }
    let parsed: Partial<DeliveryMessage> = {};
    try {
      parsed = (JSON.parse(record.body) as Partial<DeliveryMessage>) ?? {};
    } catch {
      // unreadable: parked under no tenant
    }
    const ref = released
      ? (JSON.parse(released) as { tenantId: string; recordId: string })
      : {
          tenantId: parkingTenant(parsed.tenant_id),
          recordId:
            typeof parsed.delivery_id === 'string' && UUID_PATTERN.test(parsed.delivery_id)
              ? parsed.delivery_id
              : `msg-${record.messageId}`,
        };
    // If this write fails, the message fails: SQS hands it back (nothing is lost).
    await app.parked.park(
      {
        ...ref,
        consumer: 'deliver-notifications',
        payload: record.body,
        reason: (error as Error).message,
      },
      app.clock.now(),
    );
    return 'parked';
  }
}

export const deliver =
  (getApp: () => AppState, getNotify: (app: AppState) => NotifyState) =>
  async (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> => {
    const app = getApp();
    const notify = getNotify(app);
    // One processor per invocation: it keeps the batch's state, and the local host runs several at once.
    const processor = new BatchProcessor(EventType.SQS);
    return processPartialResponse(
      event,
      (record: SQSRecord) => deliverOrPark(record, app, notify),
      processor,
      {
        ...(context ? { context } : {}),
        throwOnFullBatchFailure: false,
      },
    );
  };

warmInLambda((app) => notifyState(app));
export const handler = lambda((event: SQSEvent) => deliver(appState, notifyState)(event));

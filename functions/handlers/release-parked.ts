/**
 * Scheduled (EventBridge; a timer locally): retries what a pipeline shared by every tenant set
 * aside rather than let it hold the others: evidence chains held at a fact that could not be sealed
 * (the sequencer's holds) and records the outbox or the delivery worker parked (the archiver
 * retries its own tenants on its schedule). Each waits on its own backoff. One failure here is
 * logged and rescheduled, never a reason to stop the rest.
 *
 * While anything is held or parked, every run reports how much in the one `RecordsParked` metric
 * (alarmed in lib/observability.ts), so the alarm stays raised for as long as one is.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { DeliveryMessage } from '../core/notifications.js';
import { RECORDS_PARKED_METRIC } from '../shared/constants.js';
import { lambda } from '../shared/middleware.js';
import { logger, metrics } from '../shared/powertools.js';
import { sqsBody } from '../store/notify-queue.js';
import type { ParkedRecord } from '../store/parked-records.js';
import { chainOf } from './chain-state.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { notifyState, type NotifyState } from './notifications-state.js';
import { messageForDelivery, releaseOutboxRecord } from './outbox.js';

export interface ReleaseReport {
  /** Tenants whose chain is still held. */
  held: string[];
  /** Tenants whose chain this run released. */
  released: string[];
  /** Parked records this run processed (outbox) or handed back to their queue (deliveries). */
  retried: number;
  /** Records still parked after the run. */
  parked: number;
}

/** Hands a parked record back to its consumer; throws if it still cannot be processed. */
async function retry(app: AppState, notify: NotifyState, record: ParkedRecord): Promise<void> {
  const now = app.clock.now();
  if (record.consumer === 'outbox') {
    await releaseOutboxRecord(app, notify, record.payload);
    await app.parked.remove(record.tenantId, record.consumer, record.recordId);
    return;
  }
  if (!notify.queue) throw new Error('no notification queue configured');
  // A delivery parked by a restart's re-enqueue names its record; one parked by the worker is its body.
  let body = record.payload;
  let named: { delivery?: Parameters<typeof messageForDelivery>[2] } | undefined;
  try {
    named = JSON.parse(record.payload) as typeof named;
  } catch {
    // not JSON: the worker parks it again, visibly
  }
  if (named?.delivery && !(named as Partial<DeliveryMessage>).v) {
    const message = await messageForDelivery(app, notify, named.delivery);
    if (!message) {
      await app.parked.remove(record.tenantId, record.consumer, record.recordId);
      return;
    }
    body = sqsBody(message);
  }
  // Rescheduled before it is sent: the worker removes it once it has handled the message, and
  // until then it is not sent again.
  if (!(await app.parked.retryLater(record, undefined, now))) return;
  await notify.queue.sendParked(
    body,
    JSON.stringify({ tenantId: record.tenantId, recordId: record.recordId }),
  );
}

export const releaseParked =
  (getState: () => AppState, getNotify: (app: AppState) => NotifyState = notifyState) =>
  async (): Promise<ReleaseReport> => {
    const app = getState();
    const { clock } = app;
    const chain = chainOf(app);
    const held: string[] = [];
    const released: string[] = [];
    for (const tenantId of await chain.heldTenants()) {
      try {
        const outcome = await chain.release(tenantId, clock.now());
        if (outcome.status === 'held' || outcome.status === 'waiting') held.push(tenantId);
        if (outcome.status === 'released') released.push(tenantId);
      } catch (error) {
        // Storage trouble for one tenant: still held, tried again next run; the others go on.
        logger.error('releasing a held chain failed', { tenantId, error: error as Error });
        held.push(tenantId);
      }
    }

    let retried = 0;
    for await (const record of app.parked.list(clock.now())) {
      if (record.consumer === 'archive-evidence') continue;
      try {
        await retry(app, getNotify(app), record);
        retried += 1;
      } catch (error) {
        logger.error('parked record still cannot be processed: retried later', {
          consumer: record.consumer,
          tenantId: record.tenantId,
          recordId: record.recordId,
          attempts: record.attempts + 1,
          error: error as Error,
        });
        await app.parked.retryLater(record, (error as Error).message, clock.now());
      }
    }

    const parked = await app.parked.count();
    // Only while something waits: the alarm reads missing data as fine, and a custom metric
    // published every minute at zero would cost $0.30 a month for nothing.
    if (held.length + parked > 0)
      metrics.addMetric(RECORDS_PARKED_METRIC, MetricUnit.Count, held.length + parked);
    if (held.length > 0) logger.error('evidence chains held', { tenants: held });
    return { held, released, retried, parked };
  };

warmInLambda();
export const handler = lambda(releaseParked(appState));

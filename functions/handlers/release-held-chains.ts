/**
 * Scheduled (EventBridge; a timer locally): retries every evidence chain held at a fact that
 * could not be sealed, each on its own backoff. Reports how many chains are held (the
 * `chains_held` metric, alarmed in lib/observability.ts) on every run while any is, so the alarm
 * stays raised for as long as one is.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { lambda } from '../shared/middleware.js';
import { logger, metrics } from '../shared/powertools.js';
import { appState, warmInLambda, type AppState } from './app-state.js';

export const releaseHeldChains =
  (getState: () => AppState) => async (): Promise<{ held: string[]; released: string[] }> => {
    const { chain, clock } = getState();
    const held: string[] = [];
    const released: string[] = [];
    const failed: string[] = [];
    for (const tenantId of await chain.heldTenants()) {
      try {
        const outcome = await chain.release(tenantId, clock.now());
        if (outcome.status === 'held' || outcome.status === 'waiting') held.push(tenantId);
        if (outcome.status === 'released') released.push(tenantId);
      } catch (error) {
        // One tenant's storage trouble must not keep the others held: try them all, then fail the run.
        logger.error('releasing a held chain failed', { tenantId, error: error as Error });
        failed.push(tenantId);
      }
    }
    // Only while something is held: the alarm reads missing data as fine, and a custom metric
    // published every minute at zero would cost $0.30 a month for nothing.
    if (held.length + failed.length > 0)
      metrics.addMetric('chains_held', MetricUnit.Count, held.length + failed.length);
    if (held.length > 0) logger.error('evidence chains held', { tenants: held });
    if (failed.length > 0) throw new Error(`could not retry the held chains of ${failed.length} tenant(s)`);
    return { held, released };
  };

warmInLambda();
export const handler = lambda(releaseHeldChains(appState));

/** Scheduled (EventBridge; a timer locally): marks overdue approval requests expired, with their facts. */
import { expireOverdue } from '../core/approvals.js';
import { lambda } from '../shared/middleware.js';
import { logger } from '../shared/powertools.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { approvalDeps } from './approvals-state.js';

export const sweep =
  (getState: () => AppState) => async (): Promise<{ expired: number; tenants: number }> => {
    const result = await expireOverdue(approvalDeps(getState()));
    if (result.expired > 0) logger.info('approvals expired', result);
    return result;
  };

warmInLambda();
export const handler = lambda(sweep(appState));

/**
 * Scheduled (EventBridge; a timer locally): marks overdue approval requests expired, with their
 * facts, and sends the reminders that are due (issue 21 deliverable 5: one Query of the sparse
 * reminder partition a run and one conditional write per reminder; no schedule of their own).
 */
import { expireOverdue } from '../core/approvals.js';
import { sendDueReminders } from '../core/reminders.js';
import { lambda } from '../shared/middleware.js';
import { logger } from '../shared/powertools.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { approvalDeps } from './approvals-state.js';

export const sweep =
  (getState: () => AppState) => async (): Promise<{ expired: number; tenants: number; reminded: number }> => {
    const state = getState();
    // Reminders first: one due in the same minute as its expiry is still worth sending.
    const { reminded, failed } = await sendDueReminders({ deadlines: state.approvals, clock: state.clock });
    for (const { due, error } of failed)
      logger.error('reminder not sent: left due for the next run', {
        tenantId: due.tenantId,
        approvalId: due.approvalId,
        error: error as Error,
      });
    const result = await expireOverdue(approvalDeps(state));
    if (result.expired > 0 || reminded > 0) logger.info('approvals swept', { ...result, reminded });
    return { ...result, reminded };
  };

warmInLambda();
export const handler = lambda(sweep(appState));

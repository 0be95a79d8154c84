/** What the deadline and standing-grant handlers share (issue 21 deliverables 5 and 6): their deps. */
import type { GrantDeps } from '../core/grants.js';
import type { DeadlineDeps } from '../core/reminders.js';
import type { AppState } from './app-state.js';
import { approvalDeps } from './approvals-state.js';

export const deadlineDeps = (state: AppState): DeadlineDeps => ({
  ...approvalDeps(state),
  deadlines: state.approvals,
});

export const grantDeps = (state: AppState): GrantDeps => ({
  ...approvalDeps(state),
  decideWithGrant: (a, outcome, grant, now) => state.approvals.decide(a, outcome, now, grant),
  grants: state.grants,
});

/** POST /v1/approvals/{approval_id}/approve: the verified approver approves; a single-use grant is issued. */
import { lambda } from '../shared/middleware.js';
import { appState, warmInLambda } from './app-state.js';
import { decisionRoute } from './approvals-state.js';

export const approveRoute = decisionRoute('approve');

warmInLambda((state) => state.approverTokens);
export const handler = lambda(approveRoute(appState));

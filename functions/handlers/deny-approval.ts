/** POST /v1/approvals/{approval_id}/deny: the verified approver denies, optionally with a reason for the agent. */
import { lambda } from '../shared/middleware.js';
import { appState, warmInLambda } from './app-state.js';
import { decisionRoute } from './approvals-state.js';

export const denyRoute = decisionRoute('deny');

warmInLambda((state) => state.approverTokens);
export const handler = lambda(denyRoute(appState));

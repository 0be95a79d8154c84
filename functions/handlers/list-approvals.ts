/** GET /v1/approvals: the tenant's approval requests by status, newest first, paginated. */
import { listApprovals } from '../core/approvals.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { authenticated } from './authentication.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover, approvalDeps } from './approvals-state.js';
import { ROUTE_INPUTS } from './inputs.js';

export const listApprovalsRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { query } = parseRequest(event, ROUTE_INPUTS['list-approvals']);
      const page = await listApprovals(approvalDeps(getState()), apiApprover(approver), query);
      return { status: 200, body: JSON.stringify(page) };
    }),
  );

warmInLambda((state) => state.approverTokens);
export const handler = lambda(listApprovalsRoute(appState));

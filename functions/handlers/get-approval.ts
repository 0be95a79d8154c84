/** GET /v1/approvals/{approval_id}: one approval request of the approver's tenant, with its facts' chain positions. */
import { approvalDetail, getApproval } from '../core/approvals.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { authenticated } from './authentication.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover, approvalDeps } from './approvals-state.js';
import { ROUTE_INPUTS } from './inputs.js';

export const getApprovalRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { path } = parseRequest(event, ROUTE_INPUTS['get-approval']);
      const state = getState();
      const view = await getApproval(approvalDeps(state), apiApprover(approver), path.approval_id);
      const stored = await state.toolcalls.getEvent(view.tenant_id, view.event_id, { withApproval: false });
      return { status: 200, body: JSON.stringify(approvalDetail(view, stored)) };
    }),
  );

warmInLambda((state) => state.approverTokens);
export const handler = lambda(getApprovalRoute(appState));

/** POST /v1/approvals/{approval_id}/extend: an approver moves a pending deadline, within policy's bound. */
import { extendApproval } from '../core/reminders.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { authenticated } from './authentication.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover } from './approvals-state.js';
import { deadlineDeps } from './grants-state.js';
import { ROUTE_INPUTS } from './inputs.js';

export const extendRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { path, body } = parseRequest(event, ROUTE_INPUTS['extend-approval']);
      const view = await extendApproval(
        deadlineDeps(getState()),
        apiApprover(approver),
        path.approval_id,
        body,
      );
      return { status: 200, body: JSON.stringify(view) };
    }),
  );

warmInLambda((state) => state.approverTokens);
export const handler = lambda(extendRoute(appState));

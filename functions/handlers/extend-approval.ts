/** POST /v1/approvals/{approval_id}/extend: an approver moves a pending deadline, within policy's bound. */
import { extendApproval } from '../core/reminders.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { authenticated } from './authentication.js';
import type { AppState } from './app-state.js';
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

// Deployed in the `approval-workflows` Lambda (ROUTE_LAMBDAS), which dispatches here.

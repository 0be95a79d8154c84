/**
 * POST /v1/approvals/{approval_id}/standing-grant: the approver approves this call and calls like
 * it (a standing grant bounded by policy data), in one transaction with the approval's decision;
 * on a quorum approval, the caller's vote asking for it (core/grants.ts).
 */
import { createStandingGrant } from '../core/grants.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { authenticated } from './authentication.js';
import type { AppState } from './app-state.js';
import { apiApprover } from './approvals-state.js';
import { grantDeps } from './grants-state.js';
import { ROUTE_INPUTS } from './inputs.js';

export const createStandingGrantRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { path, body } = parseRequest(event, ROUTE_INPUTS['create-standing-grant']);
      const created = await createStandingGrant(
        grantDeps(getState()),
        apiApprover(approver),
        path.approval_id,
        body,
      );
      // 201 once the grant exists; 200 for a quorum vote that asked for it (not yet, or not agreed).
      return { status: created.standing_grant ? 201 : 200, body: JSON.stringify(created) };
    }),
  );

// Deployed in the `approval-workflows` Lambda (ROUTE_LAMBDAS), which dispatches here.

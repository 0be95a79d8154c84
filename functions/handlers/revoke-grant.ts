/** POST /v1/grants/{grant_id}/revoke: takes a standing grant back, effective at its next use. */
import { revokeStandingGrant } from '../core/grants.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { authenticated } from './authentication.js';
import type { AppState } from './app-state.js';
import { apiApprover } from './approvals-state.js';
import { grantDeps } from './grants-state.js';
import { ROUTE_INPUTS } from './inputs.js';

export const revokeGrantRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { path, body } = parseRequest(event, ROUTE_INPUTS['revoke-grant']);
      const grant = await revokeStandingGrant(
        grantDeps(getState()),
        apiApprover(approver),
        path.grant_id,
        body ?? {},
      );
      return { status: 200, body: JSON.stringify(grant) };
    }),
  );

// Deployed in the `approval-workflows` Lambda (ROUTE_LAMBDAS), which dispatches here.

/** GET /v1/grants/{grant_id}: one standing grant of the approver's tenant. */
import { getStandingGrant } from '../core/grants.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { authenticated } from './authentication.js';
import type { AppState } from './app-state.js';
import { apiApprover } from './approvals-state.js';
import { grantDeps } from './grants-state.js';
import { ROUTE_INPUTS } from './inputs.js';

export const getGrantRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { path } = parseRequest(event, ROUTE_INPUTS['get-grant']);
      const grant = await getStandingGrant(grantDeps(getState()), apiApprover(approver), path.grant_id);
      return { status: 200, body: JSON.stringify(grant) };
    }),
  );

// Deployed in the `approval-workflows` Lambda (ROUTE_LAMBDAS), which dispatches here.

/** GET /v1/grants: the approver's tenant's standing grants (with their state now), paginated. */
import { listStandingGrants } from '../core/grants.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { authenticated } from './authentication.js';
import type { AppState } from './app-state.js';
import { apiApprover } from './approvals-state.js';
import { grantDeps } from './grants-state.js';
import { ROUTE_INPUTS } from './inputs.js';

export const listGrantsRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { query } = parseRequest(event, ROUTE_INPUTS['list-grants']);
      const page = await listStandingGrants(grantDeps(getState()), apiApprover(approver), query);
      return { status: 200, body: JSON.stringify(page) };
    }),
  );

// Deployed in the `approval-workflows` Lambda (ROUTE_LAMBDAS), which dispatches here.

/** POST /v1/grants/{grant_id}/revoke: takes a standing grant back, effective at its next use. */
import { revokeStandingGrant } from '../core/grants.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { authenticated } from './authentication.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
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

warmInLambda((state) => state.approverTokens);
export const handler = lambda(revokeGrantRoute(appState));

/** POST /v1/toolcalls/{event_id}/execute: runs an approved call exactly once, with the stored request. */
import { executeApproved } from '../core/execute.js';
import { httpRoute, parseRequest, requireTenant, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { authenticated } from './authentication.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { executeDeps } from './execution-state.js';
import { ROUTE_INPUTS } from './inputs.js';
import { spendRateLimit } from './rate-limit.js';

export const executeRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const caller = requireTenant(event);
      await spendRateLimit(getState(), caller.tenantId);
      const { path } = parseRequest(event, ROUTE_INPUTS['execute-toolcall']);
      return executeApproved(executeDeps(getState()), { caller, eventId: path.event_id });
    }),
  );

warmInLambda(executeDeps);
export const handler = lambda(executeRoute(appState));

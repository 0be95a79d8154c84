/**
 * One Lambda for issue 21's rare approver actions (ROUTE_LAMBDAS): extend a deadline, create, list,
 * read and revoke standing grants. Each route keeps its own handler module, inputs and contract;
 * this entry only dispatches on the HTTP API's route key, so the five cost one function's alarm.
 */
import { ROUTES, ROUTE_LAMBDAS } from '../shared/constants.js';
import { httpRoute, type HttpEvent, type HttpResponse } from '../shared/http.js';
import { notFound } from '../shared/errors.js';
import { lambda } from '../shared/middleware.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { createStandingGrantRoute } from './create-standing-grant.js';
import { extendRoute } from './extend-approval.js';
import { getGrantRoute } from './get-grant.js';
import { listGrantsRoute } from './list-grants.js';
import { revokeGrantRoute } from './revoke-grant.js';

const FACTORIES: Record<string, (getState: () => AppState) => (event: HttpEvent) => Promise<HttpResponse>> = {
  'extend-approval': extendRoute,
  'create-standing-grant': createStandingGrantRoute,
  'list-grants': listGrantsRoute,
  'get-grant': getGrantRoute,
  'revoke-grant': revokeGrantRoute,
};

export function approvalWorkflows(getState: () => AppState): (event: HttpEvent) => Promise<HttpResponse> {
  const byRouteKey = new Map(
    ROUTES.filter((r) => ROUTE_LAMBDAS[r.handler] === 'approval-workflows').map((r) => [
      `${r.method} ${r.path}`,
      FACTORIES[r.handler]!(getState),
    ]),
  );
  // API Gateway sends only the routes it was given; anything else is not this Lambda's.
  const missing = httpRoute(async () => {
    throw notFound('no such route');
  });
  return async (event) => (byRouteKey.get(event.routeKey) ?? missing)(event);
}

warmInLambda((state) => state.approverTokens);
export const handler = lambda(approvalWorkflows(appState));

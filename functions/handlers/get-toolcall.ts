/**
 * GET /v1/toolcalls/{event_id}: the event, its decision, result and evidence; 404 across tenants,
 * and across agents for a key bound to one.
 */
import { readEvent } from '../core/scope.js';
import { toolCallView } from '../core/toolcall-view.js';
import { notFound } from '../shared/errors.js';
import { httpRoute, parseRequest, requireTenant, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { authenticated } from './authentication.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { ROUTE_INPUTS } from './inputs.js';
import { spendRateLimit } from './rate-limit.js';

export const getToolCallRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const caller = requireTenant(event);
      const state = getState();
      await spendRateLimit(state, caller.tenantId);
      const { event_id: eventId } = parseRequest(event, ROUTE_INPUTS['get-toolcall']).path;
      const stored = await readEvent(state.toolcalls, caller, eventId);
      if (!stored) throw notFound('event not found');
      const view = toolCallView(stored, {
        now: state.clock.now(),
        publicBaseUrl: state.config.publicBaseUrl,
        executionGraceMs: state.config.connectorTimeoutMs + 30_000,
      });
      return { status: 200, body: JSON.stringify(view) };
    }),
  );

warmInLambda();
export const handler = lambda(getToolCallRoute(appState));

/** POST /v1/toolcalls/{event_id}/withdraw: the agent withdraws its pending approval request. */
import { withdrawToolCall } from '../core/withdraw.js';
import { httpRoute, parseRequest, requireTenant, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { authenticated } from './authentication.js';
import { appState, type AppState } from './app-state.js';
import { ROUTE_INPUTS } from './inputs.js';
import { spendRateLimit } from './rate-limit.js';

export const withdrawRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const caller = requireTenant(event);
      await spendRateLimit(getState(), caller.tenantId);
      const { path } = parseRequest(event, ROUTE_INPUTS['withdraw-toolcall']);
      const state = getState();
      return withdrawToolCall(
        { events: state.toolcalls, approvals: state.approvals, clock: state.clock, ids: state.ids },
        { caller, eventId: path.event_id },
      );
    }),
  );

export const handler = lambda(withdrawRoute(appState));

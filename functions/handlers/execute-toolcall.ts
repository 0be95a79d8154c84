/** POST /v1/toolcalls/{event_id}/execute: runs an approved call exactly once, with the stored request. */
import { executeApproved } from '../core/execute.js';
import { UUID_PATTERN } from '../core/toolcall-view.js';
import { badRequest } from '../shared/errors.js';
import { httpRoute, requireTenant, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { executeDeps } from './execution-state.js';

export const executeRoute = (getState: () => AppState) =>
  httpRoute(async (event: HttpEvent) => {
    const { tenantId } = requireTenant(event);
    const eventId = event.pathParameters?.event_id ?? '';
    if (!UUID_PATTERN.test(eventId)) {
      throw badRequest('invalid event_id format', [
        { path: 'event_id', message: 'must be a lowercase UUIDv4' },
      ]);
    }
    return executeApproved(executeDeps(getState()), { tenantId, eventId });
  });

warmInLambda(executeDeps);
export const handler = lambda(executeRoute(appState));

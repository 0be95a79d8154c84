/** POST /v1/toolcalls: parse, call the submit use case, map the result. */
import { submitToolCall } from '../core/submit.js';
import { AppError } from '../shared/errors.js';
import { httpRoute, parseRequest, requireTenant, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { authenticated } from './authentication.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { submitDeps } from './governance.js';
import { ROUTE_INPUTS } from './inputs.js';

export const submitRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const identity = requireTenant(event);
      const { body } = parseRequest(event, ROUTE_INPUTS['submit-toolcall']);
      if (
        identity.agentId &&
        typeof body === 'object' &&
        body !== null &&
        (body as { agent_id?: unknown }).agent_id !== identity.agentId
      ) {
        throw new AppError(403, 'FORBIDDEN', 'this API key is bound to another agent_id', {
          details: [{ path: 'agent_id', message: 'must equal the agent of the API key' }],
        });
      }
      return submitToolCall(submitDeps(getState()), { tenantId: identity.tenantId, body });
    }),
  );

warmInLambda(submitDeps);
export const handler = lambda(submitRoute(appState));

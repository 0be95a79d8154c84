/**
 * Lambda REQUEST authorizer (HTTP API, simple responses). It resolves `X-API-Key` or
 * `Authorization: Bearer` to a tenant. It always authorizes and passes the outcome in the context:
 * HTTP APIs cannot shape a denied authorizer's response, and SPEC §1 requires our error body, so
 * the route answers 401 itself when no tenant is present.
 */
import type {
  APIGatewayRequestAuthorizerEventV2,
  APIGatewaySimpleAuthorizerWithContextResult,
} from 'aws-lambda';
import type { AuthContext } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { logger } from '../shared/powertools.js';
import { appState, warmInLambda, type AppState } from './app-state.js';

export function presentedKey(headers: Record<string, string | undefined> = {}): string | undefined {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const apiKey = lower['x-api-key']?.trim();
  if (apiKey) return apiKey;
  const match = /^bearer\s+(\S+)\s*$/i.exec(lower['authorization'] ?? '');
  return match?.[1];
}

export const authorize =
  (getState: () => AppState) =>
  async (
    event: APIGatewayRequestAuthorizerEventV2,
  ): Promise<APIGatewaySimpleAuthorizerWithContextResult<AuthContext>> => {
    const key = presentedKey(event.headers);
    if (!key || key.length > 512)
      return { isAuthorized: true, context: { authError: key ? 'invalid' : 'missing' } };
    try {
      const identity = await getState().apiKeys.resolve(key);
      if (!identity) return { isAuthorized: true, context: { authError: 'invalid' } };
      return {
        isAuthorized: true,
        context: { tenantId: identity.tenantId, ...(identity.agentId ? { agentId: identity.agentId } : {}) },
      };
    } catch (error) {
      logger.error('key lookup failed', { error: error as Error });
      return { isAuthorized: true, context: { authError: 'unavailable' } };
    }
  };

warmInLambda();
export const handler = lambda(authorize(appState));

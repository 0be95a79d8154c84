/**
 * GET /console and /console/{path+}: the web console's static files (built into the bundle, read
 * once per container), its sign-in settings (`config.json`), and `index.html` for every page of
 * the app (`/console/approvals/{id}` is what `approval.url` opens). Public: the app signs the
 * approver in itself and calls the approver routes with the token.
 */
import { consoleFiles, type ConsoleFile } from '../store/console-files.js';
import { contentSecurityPolicy, consoleSettings } from '../core/console-settings.js';
import type { Config } from '../shared/config.js';
import { notFound, toErrorResponse } from '../shared/errors.js';
import type { HttpEvent, HttpResponse } from '../shared/http.js';
import { jsonResponse, parseRequest } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { logger } from '../shared/powertools.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { ROUTE_INPUTS } from './inputs.js';

/** Pages of the app: the list, an approval, the standing grants, the OIDC callback. Anything else is a 404. */
const APP_PAGE = /^(?:|approvals\/?|approvals\/[0-9a-f-]{36}\/?|grants\/?|callback\/?)$/;
const ASSET = /^assets\/([A-Za-z0-9_-]+\.(?:js|css|svg))$/;

function securityHeaders(config: Config): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(config),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
  };
}

function fileResponse(
  file: ConsoleFile,
  event: HttpEvent,
  requestId: string,
  config: Config,
  cache: string,
): HttpResponse {
  const gzip = /\bgzip\b/i.test(event.headers?.['accept-encoding'] ?? '');
  return {
    statusCode: 200,
    headers: {
      'Content-Type': file.contentType,
      'Cache-Control': cache,
      Vary: 'Accept-Encoding',
      'X-Request-Id': requestId,
      ...securityHeaders(config),
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
    },
    body: (gzip ? file.gzip : file.body).toString('base64'),
    isBase64Encoded: true,
  };
}

export const consoleRoute =
  (getState: () => AppState) =>
  async (event: HttpEvent): Promise<HttpResponse> => {
    const requestId = event.requestContext?.requestId ?? 'unknown';
    const { config } = getState();
    try {
      const { path } = parseRequest(event, ROUTE_INPUTS.console);
      const rest = path.path ?? '';
      const files = consoleFiles(config);
      if (rest === 'config.json')
        return jsonResponse(
          {
            status: 200,
            body: JSON.stringify(consoleSettings(config)),
            headers: { 'Cache-Control': 'no-cache', ...securityHeaders(config) },
          },
          requestId,
        );
      const asset = ASSET.exec(rest)?.[1];
      const file = asset ? files.assets.get(asset) : APP_PAGE.test(rest) ? files.index : undefined;
      if (!file) throw notFound('no such console page');
      // The page is small and names the assets without a version: revalidate both.
      return fileResponse(file, event, requestId, config, asset ? 'public, max-age=300' : 'no-cache');
    } catch (error) {
      const mapped = toErrorResponse(error, requestId);
      if (mapped.status >= 500) logger.error('console request failed', { error: error as Error, requestId });
      return jsonResponse(
        {
          status: mapped.status,
          body: JSON.stringify(mapped.body),
          headers: { ...mapped.headers, ...securityHeaders(config) },
        },
        requestId,
      );
    }
  };

warmInLambda((state) => consoleFiles(state.config));
export const handler = lambda(consoleRoute(appState));

/**
 * POST /v1/approvals/batch: the verified approver decides up to 50 approvals at once, each by the
 * view hash they were shown; every item is its own decision and has its own result (core/batch.ts).
 */
import { decideBatch } from '../core/batch.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { logger } from '../shared/powertools.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover, approvalDeps } from './approvals-state.js';
import { authenticated } from './authentication.js';
import { ROUTE_INPUTS } from './inputs.js';

export const batchRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { body } = parseRequest(event, ROUTE_INPUTS['batch-approvals']);
      const result = await decideBatch(
        approvalDeps(getState()),
        apiApprover(approver),
        body,
        (approvalId, error) => logger.error('batch item failed', { approvalId, error: error as Error }),
      );
      return { status: 200, body: JSON.stringify(result) };
    }),
  );

warmInLambda((state) => state.approverTokens);
export const handler = lambda(batchRoute(appState));

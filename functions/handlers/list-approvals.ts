/** GET /v1/approvals: the tenant's approval requests by status, newest first, paginated. */
import * as z from 'zod';
import { listApprovals } from '../core/approvals.js';
import { badRequest } from '../shared/errors.js';
import { httpRoute, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { authenticated } from './authentication.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover, approvalDeps } from './approvals-state.js';

const Query = z.strictObject({
  status: z.enum(['pending', 'approved', 'denied', 'expired']).default('pending'),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().min(1).max(2048).optional(),
});

export const listApprovalsRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const query = Query.safeParse(event.queryStringParameters ?? {});
      if (!query.success) {
        const details = query.error.issues.map((i) => ({
          path: i.path.join('.') || 'query',
          message: i.message,
        }));
        throw badRequest('invalid query parameters', details);
      }
      const page = await listApprovals(approvalDeps(getState()), apiApprover(approver), query.data);
      return { status: 200, body: JSON.stringify(page) };
    }),
  );

warmInLambda((state) => state.approverTokens);
export const handler = lambda(listApprovalsRoute(appState));

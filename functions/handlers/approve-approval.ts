/** POST /v1/approvals/{approval_id}/approve: the verified approver approves; a single-use grant is issued. */
import { z } from 'zod';
import { decide } from '../core/approvals.js';
import { httpRoute, parseOptionalJsonBody, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover, approvalDeps } from './approvals-state.js';
import { approvalIdOf } from './get-approval.js';

const Body = z.strictObject({ comment: z.string().max(1000).optional() });

export const approveRoute = (getState: () => AppState) =>
  httpRoute(async (event: HttpEvent) => {
    const approver = requireApprover(event);
    const approvalId = approvalIdOf(event);
    const body = parseOptionalJsonBody(event, Body);
    const view = await decide(approvalDeps(getState()), apiApprover(approver), approvalId, {
      decision: 'approve',
      ...body,
    });
    return { status: 200, body: JSON.stringify(view) };
  });

warmInLambda();
export const handler = lambda(approveRoute(appState));

/** POST /v1/approvals/{approval_id}/deny: the verified approver denies, optionally with a reason for the agent. */
import { z } from 'zod';
import { decide } from '../core/approvals.js';
import { httpRoute, parseOptionalJsonBody, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover, approvalDeps } from './approvals-state.js';
import { approvalIdOf } from './get-approval.js';

const Body = z.strictObject({ reason: z.string().max(1000).optional() });

export const denyRoute = (getState: () => AppState) =>
  httpRoute(async (event: HttpEvent) => {
    const approver = requireApprover(event);
    const approvalId = approvalIdOf(event);
    const body = parseOptionalJsonBody(event, Body);
    const view = await decide(approvalDeps(getState()), apiApprover(approver), approvalId, {
      decision: 'deny',
      ...body,
    });
    return { status: 200, body: JSON.stringify(view) };
  });

warmInLambda();
export const handler = lambda(denyRoute(appState));

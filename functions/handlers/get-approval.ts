/** GET /v1/approvals/{approval_id}: one approval request of the approver's tenant. */
import { getApproval } from '../core/approvals.js';
import { UUID_PATTERN } from '../core/toolcall-view.js';
import { badRequest } from '../shared/errors.js';
import { httpRoute, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover, approvalDeps } from './approvals-state.js';

export function approvalIdOf(event: HttpEvent): string {
  const id = event.pathParameters?.approval_id ?? '';
  if (!UUID_PATTERN.test(id))
    throw badRequest('invalid approval_id format', [
      { path: 'approval_id', message: 'must be a lowercase UUIDv4' },
    ]);
  return id;
}

export const getApprovalRoute = (getState: () => AppState) =>
  httpRoute(async (event: HttpEvent) => {
    const approver = requireApprover(event);
    const view = await getApproval(approvalDeps(getState()), apiApprover(approver), approvalIdOf(event));
    return { status: 200, body: JSON.stringify(view) };
  });

warmInLambda();
export const handler = lambda(getApprovalRoute(appState));

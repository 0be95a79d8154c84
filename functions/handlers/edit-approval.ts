/**
 * POST /v1/approvals/{approval_id}/edit: the verified approver edits the params policy data lets
 * them edit; the edited call is judged again as a submitted one (core/edit.ts). It is the one
 * approval route that loads the policy engine: an edit is a new decision by policy, not only by a human.
 */
import { ACTION_SPECS } from '../connectors/registry.js';
import { editApproval, type EditDeps } from '../core/edit.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { ApprovalEditStore } from '../store/approval-edits.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover, approvalDeps } from './approvals-state.js';
import { authenticated } from './authentication.js';
import { policyDeps } from './governance.js';
import { ROUTE_INPUTS } from './inputs.js';

const built = new WeakMap<AppState, EditDeps>();

export function editDeps(state: AppState): EditDeps {
  let deps = built.get(state);
  if (!deps) {
    deps = {
      ...approvalDeps(state),
      ...policyDeps(state),
      actions: new Map(ACTION_SPECS.map((spec) => [spec.name, spec])),
      events: state.toolcalls,
      edits: new ApprovalEditStore(state.doc, state.config.tableName),
    };
    built.set(state, deps);
  }
  return deps;
}

export const editRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { path, body } = parseRequest(event, ROUTE_INPUTS['edit-approval']);
      const view = await editApproval(editDeps(getState()), apiApprover(approver), path.approval_id, body);
      return { status: 200, body: JSON.stringify(view) };
    }),
  );

warmInLambda((state) => {
  void state.approverTokens;
  editDeps(state);
});
export const handler = lambda(editRoute(appState));

/** What the approval handlers share: the approvals store, the tenants' approver data (no Cedar), the decision route. */
import { decide, type ApprovalDeps, type Approver, type DecisionInput } from '../core/approvals.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import type { TenantsFile } from '../core/policy-data.js';
import type { ApproverIdentity } from '../store/approver-tokens.js';
import { defaultPolicyDir, loadTenants } from '../store/policy-files.js';
import { authenticated } from './authentication.js';
import type { AppState } from './app-state.js';
import { ROUTE_INPUTS } from './inputs.js';

const built = new WeakMap<AppState, ApprovalDeps>();

export function approvalDeps(state: AppState): ApprovalDeps {
  let deps = built.get(state);
  if (!deps) {
    let tenants: TenantsFile | undefined;
    const load = () => (tenants ??= loadTenants(state.config.policyDir ?? defaultPolicyDir()));
    deps = {
      approvals: state.approvals,
      tenant: (id) => (Object.hasOwn(load(), id) ? load()[id] : undefined),
      knownTenants: () => Object.keys(load()),
      clock: state.clock,
      ids: state.ids,
    };
    built.set(state, deps);
  }
  return deps;
}

export const apiApprover = (identity: ApproverIdentity): Approver => ({ ...identity, via: 'api' });

/** POST /v1/approvals/{approval_id}/approve|deny: the verified approver decides. */
export const decisionRoute = (decision: 'approve' | 'deny') => (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { path, body } = parseRequest(event, ROUTE_INPUTS[`${decision}-approval`]);
      const input = { decision, ...body } as DecisionInput;
      const view = await decide(approvalDeps(getState()), apiApprover(approver), path.approval_id, input);
      return { status: 200, body: JSON.stringify(view) };
    }),
  );

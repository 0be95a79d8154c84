/** What the approval handlers use: the approvals store and the tenants' approver data (no Cedar). */
import type { ApprovalDeps, Approver } from '../core/approvals.js';
import type { TenantsFile } from '../core/policy-data.js';
import type { ApproverIdentity } from '../store/approver-tokens.js';
import { defaultPolicyDir, loadTenants } from '../store/policy-files.js';
import type { AppState } from './app-state.js';

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

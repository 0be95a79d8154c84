/** Builders shared by the policy tests. */
import {
  createPolicyEngine,
  type PolicyBundle,
  type PolicyEngine,
  type PolicyRequest,
} from '../../functions/core/policy.js';
import { defaultPolicyDir, loadPolicyBundle } from '../../functions/store/policy-files.js';

/** The repository's policy folder, as the gateway loads it. */
export const repoBundle = (): PolicyBundle => loadPolicyBundle(defaultPolicyDir());

let shared: PolicyEngine | undefined;
/** One engine over the repository's policy folder, shared by a test file. */
export const repoEngine = (): PolicyEngine => (shared ??= createPolicyEngine(repoBundle()));

/** A request for `<tool>.<action>`; everything else defaults to a plain, label-free call. */
export function request(toolAction: string, overrides: Partial<PolicyRequest> = {}): PolicyRequest {
  const dot = toolAction.indexOf('.');
  return {
    tenantId: 'tenant1',
    agentId: 'agent-1',
    tool: toolAction.slice(0, dot),
    action: toolAction.slice(dot + 1),
    resource: '',
    riskScore: 0,
    riskFactors: [],
    labels: {},
    userId: '',
    sessionId: '',
    now: new Date('2025-06-01T12:00:00Z'),
    ...overrides,
  };
}

/** The repository bundle with some parts replaced or extended. */
export function bundleWith(change: {
  extraPolicies?: string;
  policies?: (text: string) => string;
  schema?: (text: string) => string;
  actions?: PolicyBundle['actions'];
  tenants?: PolicyBundle['tenants'];
  version?: string;
}): PolicyBundle {
  const base = repoBundle();
  const policies = change.policies ? change.policies(base.policies) : base.policies;
  return {
    schema: change.schema ? change.schema(base.schema) : base.schema,
    policies: change.extraPolicies ? `${policies}\n${change.extraPolicies}\n` : policies,
    actions: change.actions ?? base.actions,
    tenants: change.tenants ?? base.tenants,
    version: change.version ?? 'test-version',
  };
}

/**
 * The one evaluation of a tool call under policy, pure: the agent's risk claim raised to the
 * action's floor (W4), then the Cedar engine at `now`. Submit decides with it; execute re-checks
 * an approved call with it when the policy changed since the call was parked (`core/execute.ts`),
 * so both judge a call the same way. The request's target is already derived: submit derives it
 * (connector code, not policy data) before the request is hashed and stored.
 */
import type { PolicyDecision, PolicyEngine } from './policy.js';
import { assessRisk, type RiskAssessment, type RiskFloors } from './risk.js';
import type { ToolCallRequest } from './toolcall.js';

export interface EvaluationDeps {
  policy: PolicyEngine;
  /** Per-action risk floors (W4), built once with the policy engine. */
  riskFloors: RiskFloors;
}

export interface Evaluation {
  decision: PolicyDecision;
  risk: RiskAssessment;
  /** The request as policy saw it: `risk_score` is the effective score. */
  request: ToolCallRequest;
}

/** `claimed` is the agent's own `risk_score` (the stored request carries the effective one). */
export function evaluateCall(
  deps: EvaluationDeps,
  request: ToolCallRequest,
  claimed: number,
  now: Date,
): Evaluation {
  const risk = assessRisk(deps.riskFloors, request.tool, request.action, claimed);
  const judged: ToolCallRequest = { ...request, risk_score: risk.effective };
  const decision = deps.policy.evaluate({
    tenantId: judged.tenant_id,
    agentId: judged.agent_id,
    tool: judged.tool,
    action: judged.action,
    resource: judged.resource,
    riskScore: judged.risk_score,
    riskFactors: judged.risk_factors,
    labels: judged.labels,
    userId: judged.user_id,
    sessionId: judged.session_id,
    now,
  });
  return { decision, risk, request: judged };
}

/**
 * The one evaluation of a tool call under policy, pure: the agent's risk claim raised to the
 * action's floor (W4), then the Cedar engine at `now`. Submit decides with it; execute re-checks
 * an approved call with it when the policy changed since the call was parked (`core/execute.ts`),
 * so both judge a call the same way. The request's target is already derived: submit derives it
 * (connector code, not policy data) before the request is hashed and stored.
 */
import type { PolicyDecision, PolicyEngine, PolicyRequest } from './policy.js';
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
  const decision = deps.policy.evaluate(policyRequestOf(judged, now));
  return { decision, risk, request: judged };
}

/** What the engine is asked for a request whose risk is already the effective one. */
export function policyRequestOf(request: ToolCallRequest, now: Date): PolicyRequest {
  return {
    tenantId: request.tenant_id,
    agentId: request.agent_id,
    tool: request.tool,
    action: request.action,
    resource: request.resource,
    riskScore: request.risk_score,
    riskFactors: request.risk_factors,
    labels: request.labels,
    userId: request.user_id,
    sessionId: request.session_id,
    now,
  };
}

/**
 * `tools/resolve` (the experimental tool-resolution extension), pure: what policy would answer
 * for one specific call, judged exactly as `tools/call` will judge it (the same body, the same
 * target derivation, the one evaluation), and writing nothing. It is a preview: the call itself
 * is evaluated again when it is made, under the policy live then.
 */
import type { ActionSpec } from '../connectors/sdk.js';
import { LIMITS } from '../shared/constants.js';
import { AppError } from '../shared/errors.js';
import { evaluateCall, type EvaluationDeps } from './evaluate.js';
import { resolvedTool, splitArguments, type CallPreview, type McpTool } from './mcp.js';
import type { ActionsFile } from './policy-data.js';
import { targeted, type SubmitDeps } from './submit.js';
import { bindRequest, parseToolCallBody } from './toolcall.js';

export type ResolveOutcome = { ok: true; tool: McpTool } | { ok: false; message: string };

export function resolveCall(
  deps: EvaluationDeps & Pick<SubmitDeps, 'actions'> & { actionsFile: ActionsFile },
  input: {
    spec: ActionSpec;
    tenantId: string;
    agentId: string;
    args: Record<string, unknown>;
    now: Date;
  },
): ResolveOutcome {
  const { spec } = input;
  const split = splitArguments(spec, input.args);
  if (!split.ok) return { ok: false, message: split.message };
  const action = spec.action;
  // The body `tools/call` would submit (no idempotency key is needed to judge it: a fixed one).
  const parsed = parseToolCallBody({
    agent_id: input.agentId,
    tool: spec.name.slice(0, spec.name.length - action.length - 1),
    action,
    params: split.params,
    idempotency_key: 'tools-resolve',
  });
  if (!parsed.ok)
    return {
      ok: false,
      message: `invalid arguments: ${parsed.details[0]?.path || 'arguments'} ${parsed.details[0]?.message ?? 'invalid'}`,
    };
  let body;
  try {
    // An upstream tool's spec is no registry entry: normalized with the spec the caller found (issue 25).
    body = targeted(deps, parsed.body, spec);
  } catch (error) {
    if (error instanceof AppError && error.status < 500) return { ok: false, message: error.message };
    throw error;
  }
  const request = bindRequest(body, input.tenantId, input.now);
  const { decision, risk } = evaluateCall(deps, request, request.risk_score, input.now);
  const preview: CallPreview = {
    decision: decision.decision === 'approve' ? 'park' : decision.decision,
    reason: decision.reason,
    policy_version: decision.policyVersion,
    ...(decision.decision === 'approve'
      ? {
          approver_group: decision.approverGroup,
          approval_ttl_sec:
            decision.approvalTtlSec > 0 ? decision.approvalTtlSec : LIMITS.defaultApprovalTtlSec,
        }
      : {}),
    risk: { floor: risk.floor, effective: risk.effective },
    resource: request.resource,
  };
  return {
    ok: true,
    tool: resolvedTool({ spec, actions: deps.actionsFile, preview, policyDecision: decision.decision }),
  };
}

/**
 * The bare policy-evaluation rate of bench/replay.ts: the candidate's engine alone over the same
 * requests replay decides (floored as submit floors them), every request evaluated, only
 * `evaluate()` timed. Run in the replay's own child process right after the replay.
 */
import { ACTION_SPECS } from '../functions/connectors/registry.js';
import { createPolicyEngine } from '../functions/core/policy.js';
import { buildRiskFloors } from '../functions/core/risk.js';
import type { ToolCallRequest } from '../functions/core/toolcall.js';
import { loadPolicyBundle } from '../functions/store/policy-files.js';
import { decidedFixtureFact } from './chain-fixture.js';

/** The candidate's engine alone over the same requests (floored as submit floors them). */
export function bareRate(
  candidate: string,
  tenantId: string,
  decisions: number,
): { perSec: number; distinct: number; distinctRequests: number } {
  const bundle = loadPolicyBundle(candidate);
  const engine = createPolicyEngine(bundle);
  const floors = buildRiskFloors(ACTION_SPECS, bundle.actions.risk_floors);
  let spent = 0;
  // How many distinct policy inputs the requests hold as the engine keys them (what replay
  // evaluates, each once), and how many distinct requests (every field policy is given).
  const distinct = new Set<string>();
  const distinctRequests = new Set<string>();
  for (let n = 1; n <= decisions; n++) {
    const fact = decidedFixtureFact(tenantId, n);
    const r = fact.request as ToolCallRequest;
    const claimed = (fact.risk as { claimed: number }).claimed;
    const req = {
      tenantId,
      agentId: r.agent_id,
      tool: r.tool,
      action: r.action,
      resource: r.resource,
      riskScore: Math.max(claimed, floors.get(`${r.tool}.${r.action}`) ?? 0),
      riskFactors: r.risk_factors,
      labels: r.labels,
      userId: r.user_id,
      sessionId: r.session_id,
      now: new Date(fact.at),
    };
    const t0 = performance.now();
    engine.evaluate(req);
    spent += performance.now() - t0;
    distinct.add(engine.decisionKey!(req)!);
    distinctRequests.add(
      JSON.stringify([r.agent_id, r.tool, r.action, r.resource, req.riskScore, r.user_id]),
    );
  }
  return {
    perSec: (decisions / spent) * 1000,
    distinct: distinct.size,
    distinctRequests: distinctRequests.size,
  };
}

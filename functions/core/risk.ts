/**
 * Server-side risk floors (W4). The agent's `risk_score` is a claim: each action has a floor
 * (its connector definition's `risk`, overridable per action in policy/actions.json
 * `risk_floors`), and policy sees `max(claim, floor)`. An agent can raise its risk, never lower
 * it. Pure: the floors are a map built once at cold start, so a decision adds no storage read.
 */

/** What is recorded in the `toolcall.decided` fact as `risk`. */
export interface RiskAssessment {
  /** The agent's `risk_score` as sent (0 when absent). */
  claimed: number;
  /** The action's floor (0 for an action no connector defines). */
  floor: number;
  /** What policy decided on: `max(claimed, floor)`; also the stored request's `risk_score`. */
  effective: number;
}

/** Floors by `tool.action`. */
export type RiskFloors = ReadonlyMap<string, number>;

/**
 * Connector floors first, then the policy folder's overrides (the operator's word wins, in both
 * directions: lowering a floor is a policy change, reviewed like one, not an agent's claim).
 */
export function buildRiskFloors(
  specs: Iterable<{ readonly name: string; readonly risk: number }>,
  overrides: Readonly<Record<string, number>> = {},
): RiskFloors {
  const floors = new Map<string, number>();
  for (const spec of specs) floors.set(spec.name, spec.risk);
  for (const [name, floor] of Object.entries(overrides)) floors.set(name, floor);
  return floors;
}

export function assessRisk(
  floors: RiskFloors,
  tool: string,
  action: string,
  claimed: number,
): RiskAssessment {
  const floor = floors.get(`${tool}.${action}`) ?? 0;
  return { claimed, floor, effective: Math.max(claimed, floor) };
}

/**
 * Server-side risk floors (W4) and the reconciliation of policy data with the connectors (W11).
 * The floors come from the connector definitions and `risk_floors` in policy/actions.json; the
 * engine decides on the effective risk, so an agent can raise its risk, never lower it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACTION_SPECS, CONNECTOR_ACTIONS } from '../../functions/connectors/registry.js';
import { createPolicyEngine, PolicyLoadError } from '../../functions/core/policy.js';
import { assessRisk, buildRiskFloors } from '../../functions/core/risk.js';
import { defaultPolicyDir, loadPolicyBundle } from '../../functions/store/policy-files.js';
import { repoBundle, repoEngine, request } from './builders.js';

const floorsOf = (overrides?: Record<string, number>) => buildRiskFloors(ACTION_SPECS, overrides);

describe('risk floors', () => {
  it('raise a claim below the floor and keep a claim above it', () => {
    const floors = floorsOf();

    expect(assessRisk(floors, 'jira', 'issue.delete', 0)).toEqual({ claimed: 0, floor: 6, effective: 6 });
    expect(assessRisk(floors, 'jira', 'issue.delete', 9)).toEqual({ claimed: 9, floor: 6, effective: 9 });
    expect(assessRisk(floors, 'jira', 'issue.list', 3)).toEqual({ claimed: 3, floor: 0, effective: 3 });
    // An action no connector defines has no floor (policy denies it anyway).
    expect(assessRisk(floors, 'unknown', 'do.something', 2)).toEqual({ claimed: 2, floor: 0, effective: 2 });
  });

  it('are overridden per action by policy/actions.json risk_floors', () => {
    const floors = floorsOf({ 'slack.msg.post': 8, 'jira.issue.delete': 5 });

    expect(floors.get('slack.msg.post')).toBe(8);
    expect(floors.get('jira.issue.delete')).toBe(5);
    expect(floors.get('jira.issue.list')).toBe(0);
  });

  it('turn a claim of 0 on a write with floor 8 into the approval path', () => {
    const floors = floorsOf({ 'slack.msg.post': 8 });
    const claimed = repoEngine().evaluate(request('slack.msg.post', { riskScore: 0 }));
    const risk = assessRisk(floors, 'slack', 'msg.post', 0);

    const floored = repoEngine().evaluate(request('slack.msg.post', { riskScore: risk.effective }));

    expect(claimed.decision).toBe('allow');
    expect(floored).toMatchObject({ decision: 'approve', reason: 'high risk score requires approval' });
  });

  it('let an agent raise its risk above the floor (never lower it)', () => {
    const floors = floorsOf();
    for (const claim of [0, 3, 6, 7, 10]) {
      const { effective } = assessRisk(floors, 'jira', 'issue.create', claim);
      expect(effective).toBe(claim);
      expect(repoEngine().evaluate(request('jira.issue.create', { riskScore: effective })).decision).toBe(
        claim >= 7 ? 'approve' : claim < 5 ? 'allow' : 'deny',
      );
    }
  });

  describe('in policy/actions.json', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(process.env.OC_TEST_TMP ?? tmpdir(), 'oc-floors-'));
      cpSync(defaultPolicyDir(), dir, { recursive: true });
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const setFloors = (floors: unknown) => {
      const path = join(dir, 'actions.json');
      const actions = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
      writeFileSync(path, JSON.stringify({ ...actions, risk_floors: floors }));
    };

    it('are loaded with the bundle and leave the engine loadable', () => {
      setFloors({ 'slack.msg.post': 9 });

      const bundle = loadPolicyBundle(dir);

      expect(bundle.actions.risk_floors).toEqual({ 'slack.msg.post': 9 });
      expect(() => createPolicyEngine(bundle)).not.toThrow();
    });

    it.each([
      [{ 'slack.msg.nope': 3 }, /risk_floors\.slack\.msg\.nope: is not a listed action/],
      [{ 'slack.msg.post': 11 }, /risk_floors\.slack\.msg\.post/],
      [{ 'slack.msg.post': 2.5 }, /risk_floors\.slack\.msg\.post/],
    ])('refuse %j', (floors, message) => {
      setFloors(floors);

      expect(() => loadPolicyBundle(dir)).toThrow(PolicyLoadError);
      expect(() => loadPolicyBundle(dir)).toThrow(message);
    });
  });
});

describe('policy data and connectors agree (W11)', () => {
  const implemented = new Set(
    Object.entries(CONNECTOR_ACTIONS).flatMap(([tool, actions]) => actions.map((a) => `${tool}.${a}`)),
  );
  const { actions } = repoBundle();
  const classified = [...actions.read, ...actions.write, ...actions.destructive];

  it('no action policy can allow or approve lacks a connector', () => {
    // Anything classified can be allowed or approved (at some risk); every one must run.
    const runnable = classified.filter((name) => {
      const outcomes = [0, 7].map(
        (riskScore) => repoEngine().evaluate(request(name, { riskScore })).decision,
      );
      return outcomes.some((decision) => decision !== 'deny');
    });
    expect(runnable.filter((name) => !implemented.has(name))).toEqual([]);
    expect(classified.filter((name) => !implemented.has(name))).toEqual([]);
  });

  it('every implemented action is classified exactly once', () => {
    for (const name of implemented) {
      expect(classified.filter((listed) => listed === name)).toEqual([name]);
    }
  });

  it('an unclassified action is denied at any risk, so it can never reach a connector unreviewed', () => {
    for (const riskScore of [0, 7, 10]) {
      expect(repoEngine().evaluate(request('jira.issue.comment', { riskScore })).decision).toBe('deny');
    }
  });
});

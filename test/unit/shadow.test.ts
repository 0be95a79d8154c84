/** Shadow mode's pure parts (issue 24): the candidate's outcome and the report's summary. */
import { isoTime } from '../../bin/cli/args.js';
import { summaryLines } from '../../bin/cli/commands/policy.js';
import type { PolicyDecision, PolicyEngine } from '../../functions/core/policy.js';
import {
  SHADOW_EXAMPLES,
  shadowEvaluate,
  ShadowSummarizer,
  unloadableCandidate,
  type ShadowDiffEntry,
} from '../../functions/core/shadow.js';
import { request } from '../policy/builders.js';

const decided = (decision: PolicyDecision['decision'], version = 'sha256:live'): PolicyDecision => ({
  decision,
  reason: `${decision} because`,
  policyVersion: version,
  approverGroup: '',
  notify: [],
  requirements: {},
  approvalTtlSec: 0,
  determiningPolicies: [],
});
const engine = (d: PolicyDecision): PolicyEngine => ({
  version: d.policyVersion,
  evaluate: () => d,
  tenant: () => undefined,
});

describe('shadowEvaluate', () => {
  const req = request('slack.msg.post', { riskScore: 2 });

  it('records nothing when the candidate decides as the live policy did', () => {
    expect(shadowEvaluate(engine(decided('allow', 'sha256:c')), req, decided('allow'))).toEqual({
      kind: 'same',
    });
  });

  it("records the candidate's decision, reason and version with the enforced one", () => {
    expect(shadowEvaluate(engine(decided('deny', 'sha256:c')), req, decided('allow'))).toEqual({
      kind: 'diff',
      transition: 'allow->deny',
      record: {
        decision: 'deny',
        reason: 'deny because',
        policy_version: 'sha256:c',
        enforced: 'allow',
        action: 'slack.msg.post',
      },
    });
  });

  it('turns a throwing or unloadable candidate into an error outcome, never a throw', () => {
    const throwing: PolicyEngine = {
      version: 'x',
      evaluate: () => {
        throw new Error('boom');
      },
      tenant: () => undefined,
    };
    expect(shadowEvaluate(throwing, req, decided('allow')).kind).toBe('error');
    const outcome = shadowEvaluate(unloadableCandidate(new Error('bad file')), req, decided('deny'));
    expect(outcome).toEqual({
      kind: 'error',
      error: expect.objectContaining({ message: expect.stringContaining('bad file') }),
    });
  });
});

describe('ShadowSummarizer', () => {
  const diff = (i: number, over: Partial<ShadowDiffEntry> = {}): ShadowDiffEntry => ({
    tenant_id: 'tenant1',
    event_id: `e${i}`,
    at: `2026-12-01T00:00:0${i}.000Z`,
    action: 'slack.msg.post',
    enforced: 'allow',
    decision: 'deny',
    reason: 'r',
    policy_version: 'sha256:c',
    ...over,
  });

  it('counts per tenant, action and transition, with the first examples and the candidate versions', () => {
    const s = new ShadowSummarizer();
    for (let i = 0; i < 5; i++) s.add(diff(i));
    s.add(diff(5, { tenant_id: 'tenant2' }));
    s.add(
      diff(6, {
        action: 'jira.issue.delete',
        enforced: 'approve',
        decision: 'allow',
        policy_version: 'sha256:d',
      }),
    );
    const summary = s.summary(['tenant1', 'tenant2'], undefined);
    expect(summary.total).toBe(7);
    expect(summary.by_transition).toEqual({ 'allow->deny': 6, 'approve->allow': 1 });
    expect(summary.rows.map((r) => [r.tenant_id, r.action, r.transition, r.count])).toEqual([
      ['tenant1', 'jira.issue.delete', 'approve->allow', 1],
      ['tenant1', 'slack.msg.post', 'allow->deny', 5],
      ['tenant2', 'slack.msg.post', 'allow->deny', 1],
    ]);
    const busy = summary.rows[1]!;
    expect(busy.examples).toEqual(['e0', 'e1', 'e2'].slice(0, SHADOW_EXAMPLES));
    expect([busy.first_at, busy.last_at]).toEqual(['2026-12-01T00:00:00.000Z', '2026-12-01T00:00:04.000Z']);
    const lines = summaryLines(summary);
    expect(lines[0]).toBe('7 call(s) the shadow candidate would have decided otherwise (2 tenant(s)):');
    expect(lines.join('\n')).toContain('candidate version(s): sha256:d, sha256:c');
  });

  it('says so when nothing was recorded', () => {
    expect(summaryLines(new ShadowSummarizer().summary(['tenant1'], '2026-12-01T00:00:00.000Z'))).toEqual([
      'no shadow differences recorded (tenant tenant1 since 2026-12-01T00:00:00.000Z)',
    ]);
  });
});

describe('--since', () => {
  it('takes a timestamp with its zone (the shared rule), as the listing sorts it', () => {
    expect(isoTime('2026-12-01T09:00:00Z')).toBe('2026-12-01T09:00:00.000Z');
    expect(isoTime('2026-12-01T09:00:00+01:00')).toBe('2026-12-01T08:00:00.000Z');
  });
  it.each(['yesterday', '2026-12-01', '2026-12-01T09:00:00', '2026-13-01T00:00:00Z', '1733000000'])(
    'refuses %s',
    (v) => {
      expect(() => isoTime(v)).toThrow(/ISO 8601/);
    },
  );
});

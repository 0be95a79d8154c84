/**
 * The approver directory and quorum (issue 21), pure: the schema's cross-checks, which rule a call
 * gets, who a caller is, the vote arithmetic, and the vote event each vote announces.
 */
import { approverIdOf, isRequester, resolveQuorum } from '../../functions/core/approver-directory.js';
import { deliveryId, eventTypeOf, occurrenceOf } from '../../functions/core/notifications.js';
import type { StoredApproval } from '../../functions/core/approvals.js';
import { TenantConfig } from '../../functions/core/policy-data.js';
import { castVote, quorumProgress, withdrawVote, type Vote } from '../../functions/core/quorum.js';
import type { ApprovalRecord } from '../../functions/core/ports.js';
import { executeOutcome } from '../../functions/core/mcp.js';
import { AppError } from '../../functions/shared/errors.js';

const base = { name: 'Acme', max_risk_auto_approve: 5, slack: { team_id: 'T0001' } };
const directory = {
  alice: { email: 'alice@acme.example', slack: { user_id: 'U123', team_id: 'T0001' } },
  carol: {
    email: 'carol@acme.example',
    oidc: [{ issuer: 'https://idp.example', sub: 'c-1' }],
  },
  dave: { email: 'dave@acme.example' },
};
const tenant = TenantConfig.parse({
  ...base,
  directory,
  groups: { security: ['alice'], finance: ['carol', 'dave'] },
  quorum: {
    default: { n: 2 },
    risk_bands: [
      {
        min_risk: 9,
        stages: [
          { group: 'security', n: 1 },
          { group: 'finance', n: 2 },
        ],
      },
    ],
    actions: { 'jira.issue.delete': { n: 1, group: 'security' } },
  },
});

const issuesOf = (data: unknown) => {
  const r = TenantConfig.safeParse(data);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('policy data', () => {
  it('refuses data that would make one person two approvers, or a quorum that can never be met', () => {
    expect(issuesOf({ ...base, directory, approvers: { emails: ['x@acme.example'] } })[0]).toMatch(
      /^approvers: with a directory/,
    );
    expect(issuesOf({ ...base, quorum: { default: { n: 2 } } })[0]).toMatch(
      /^quorum: a quorum counts distinct people/,
    );
    expect(
      issuesOf({ ...base, directory: { ...directory, bob: { email: 'ALICE@acme.example' } } })[0],
    ).toMatch(/^directory.bob.email: this identity is already directory entry alice/);
    expect(issuesOf({ ...base, directory, groups: { ops: ['zed'] } })[0]).toMatch(
      /zed is not in the directory/,
    );
    expect(issuesOf({ ...base, directory, quorum: { default: { n: 4 } } })[0]).toMatch(
      /needs 4 approvers but the directory has 3/,
    );
    expect(issuesOf({ ...base, directory, quorum: { default: { n: 2, stages: [{ n: 1 }] } } })[0]).toMatch(
      /either n .* or stages/,
    );
    expect(
      issuesOf({ ...base, directory: { eve: { slack: { user_id: 'U9', team_id: 'T0002' } } } })[0],
    ).toMatch(/is not the tenant's Slack workspace/);
  });

  it('gives a call the action rule, else the highest band reached, else the default; one of anyone is no quorum', () => {
    expect(resolveQuorum(tenant, 'jira.issue.delete', 10)).toEqual({
      stages: [{ n: 1, group: 'security' }],
      rule: 'action:jira.issue.delete',
    });
    expect(resolveQuorum(tenant, 'slack.msg.post', 9)?.rule).toBe('risk>=9');
    expect(resolveQuorum(tenant, 'slack.msg.post', 8)).toEqual({ stages: [{ n: 2 }], rule: 'default' });
    const single = TenantConfig.parse({ ...base, directory, quorum: { default: { n: 1 } } });
    expect(resolveQuorum(single, 'slack.msg.post', 8)).toBeUndefined();
  });
});

describe('one identity', () => {
  it('resolves every surface to the directory id, and nothing outside it', () => {
    expect(approverIdOf(tenant, { via: 'slack', sub: 'U123', email: '', teamId: 'T0001' })).toBe('alice');
    expect(approverIdOf(tenant, { via: 'slack', sub: 'U123', email: '', teamId: 'T0002' })).toBeUndefined();
    expect(
      approverIdOf(tenant, { via: 'api', sub: 'x', email: 'Alice@Acme.example', issuer: 'oc-local' }),
    ).toBe('alice');
    // An OIDC pair names its entry even without a verified email.
    expect(approverIdOf(tenant, { via: 'api', sub: 'c-1', email: '', issuer: 'https://idp.example' })).toBe(
      'carol',
    );
    expect(
      approverIdOf(tenant, { via: 'api', sub: 'c-1', email: '', issuer: 'https://other.example' }),
    ).toBeUndefined();
    expect(approverIdOf(tenant, { via: 'api', sub: 'm', email: 'mallory@acme.example' })).toBeUndefined();
  });

  it('knows the requester under every identity of their entry', () => {
    const slackAlice = { via: 'slack' as const, sub: 'U123', email: '', teamId: 'T0001' };
    expect(isRequester(tenant, 'alice', slackAlice, 'alice@acme.example')).toBe(true);
    expect(isRequester(tenant, 'alice', slackAlice, 'ａｌｉｃｅ＠acme.example')).toBe(true);
    expect(isRequester(tenant, 'alice', slackAlice, 'carol@acme.example')).toBe(false);
  });
});

describe('votes', () => {
  const record = {
    id: 'a1',
    event_id: 'e1',
    tenant_id: 'tenant1',
    request_hash: 'h',
    approver_group: '',
    quorum: {
      stages: [
        { group: 'security', n: 1 },
        { group: 'finance', n: 2 },
      ],
      rule: 'risk>=9',
    },
  } as unknown as ApprovalRecord;
  let n = 0;
  const deps = (mayVote = true) => ({
    clock: { now: () => new Date('2026-07-01T12:00:00Z') },
    ids: { uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}` },
    mayVote: () => mayVote,
    grantTtlSec: 600,
  });
  const who = (id: string) => ({ id, via: 'api' as const, sub: id, email: '' });
  const view = { version: 'v1', hash: 'x', confirmed: true };

  it('counts stage by stage, and only the vote completing the last stage issues the grant', () => {
    const one = castVote({ record }, who('alice'), { view }, deps());
    expect(one.progress.summary).toBe('1 of 3 approvals; needs 2 more from finance (stage 2 of 2)');
    expect(one.final).toBeUndefined();
    expect(() => castVote({ record, votes: one.votes, vote_rev: 1 }, who('alice'), { view }, deps())).toThrow(
      expect.objectContaining({ code: 'ALREADY_VOTED' }),
    );
    expect(() =>
      castVote({ record, votes: one.votes, vote_rev: 1 }, who('bob'), { view }, deps(false)),
    ).toThrow(expect.objectContaining({ code: 'APPROVER_NOT_ALLOWED' }));
    const two = castVote({ record, votes: one.votes, vote_rev: 1 }, who('carol'), { view }, deps());
    expect([two.rev, two.final, two.fact.kind]).toEqual([1, undefined, 'approval.vote']);
    const three = castVote({ record, votes: two.votes, vote_rev: 2 }, who('dave'), { view }, deps());
    expect(three.final?.grant).toMatchObject({ uses_left: 1, granted_by: 'dave', request_hash: 'h' });
    expect(three.final?.fact).toMatchObject({ kind: 'approval.decided', decision: 'approved' });
    expect(three.progress.summary).toBe('3 of 3 approvals; complete');
  });

  it('creates a standing grant only if every vote of every stage asks, as the narrowest of what they asked', () => {
    const ask = (target_pattern: string, max_uses: number, expires_at: string) => ({
      standingGrant: { target_pattern, max_uses, expires_at },
    });
    const run = (asks: (ReturnType<typeof ask> | object)[]) => {
      let votes: Vote[] = [];
      let last: ReturnType<typeof castVote> | undefined;
      asks.forEach((extra, i) => {
        last = castVote({ record, votes, vote_rev: i }, who(`v${i}`), { view, ...extra }, deps());
        votes = last.votes;
      });
      return last!.final!;
    };
    const all = run([
      ask('OPS-*', 5, '2026-07-01T13:00:00.000Z'),
      ask('OPS-4*', 9, '2026-07-01T12:30:00.000Z'),
      ask('OPS-*', 3, '2026-07-01T14:00:00.000Z'),
    ]);
    expect(all.standing).toMatchObject({
      target_pattern: 'OPS-4*',
      max_uses: 3,
      uses_left: 3,
      expires_at: '2026-07-01T12:30:00.000Z',
      status: 'active',
    });
    expect(all.fact.standing_grant).toMatchObject({ id: all.standing!.id, target_pattern: 'OPS-4*' });
    // The exact target is narrower than any prefix.
    const exact = run([
      ask('OPS-42', 5, '2026-07-01T13:00:00.000Z'),
      ask('OPS-4*', 5, '2026-07-01T13:00:00.000Z'),
      ask('OPS-*', 5, '2026-07-01T13:00:00.000Z'),
    ]);
    expect(exact.standing?.target_pattern).toBe('OPS-42');
    // One stage-1 vote that did not ask: approved once, no grant, and the decision says why.
    const partial = run([
      {},
      ask('OPS-*', 5, '2026-07-01T13:00:00.000Z'),
      ask('OPS-*', 5, '2026-07-01T13:00:00.000Z'),
    ]);
    expect(partial.standing).toBeUndefined();
    expect(partial.fact.standing_grant_declined).toBe(
      '2 of 3 votes asked for a standing grant: it needs every vote of the quorum',
    );
    // Every vote asked, but the earliest expiry has passed by the time the quorum completes.
    const late = run([
      ask('OPS-*', 5, '2026-07-01T11:59:00.000Z'),
      ask('OPS-*', 5, '2026-07-01T13:00:00.000Z'),
      ask('OPS-*', 5, '2026-07-01T13:00:00.000Z'),
    ]);
    expect([late.standing, late.fact.standing_grant_declined]).toEqual([
      undefined,
      'the earliest expiry the votes asked for has passed',
    ]);
    // Nobody asked: a plain quorum approval, nothing said about grants.
    const none = run([{}, {}, {}]);
    expect([none.standing, none.fact.standing_grant_declined]).toEqual([undefined, undefined]);
  });

  it('lets a vote be withdrawn only while its stage is incomplete', () => {
    const one = castVote({ record }, who('alice'), { view }, deps());
    const two = castVote({ record, votes: one.votes, vote_rev: 1 }, who('carol'), { view }, deps());
    expect(() => withdrawVote({ record, votes: two.votes, vote_rev: 2 }, 'alice', deps())).toThrow(
      /stage is complete/,
    );
    const back = withdrawVote({ record, votes: two.votes, vote_rev: 2 }, 'carol', deps());
    expect(back.fact.kind).toBe('approval.vote_withdrawn');
    expect(quorumProgress(record, back.votes).summary).toBe(
      '1 of 3 approvals; needs 2 more from finance (stage 2 of 2)',
    );
  });

  it('announces each vote once: a MODIFY still pending after a vote, one delivery per revision', () => {
    // The vote's write sets the item's `notice` to `vote` (its latest change).
    expect(eventTypeOf('MODIFY', 'pending', 'vote')).toBe('oc.approval.vote');
    expect(eventTypeOf('MODIFY', 'pending')).toBeUndefined();
    expect(eventTypeOf('MODIFY', 'approved', 'vote')).toBe('oc.approval.decided');
    const hook = { kind: 'webhook' as const, url: 'https://hooks.example.com/a', secret_ref: 'r' };
    const at = (rev: number) => ({ vote_rev: rev }) as unknown as StoredApproval;
    expect(occurrenceOf(at(1), 'oc.approval.vote')).toBe(1);
    expect(deliveryId('a1', 'oc.approval.vote', hook, occurrenceOf(at(1), 'oc.approval.vote'))).not.toBe(
      deliveryId('a1', 'oc.approval.vote', hook, occurrenceOf(at(2), 'oc.approval.vote')),
    );
    // A decision keeps the delivery id it always had, whatever the votes' revision.
    expect(occurrenceOf(at(2), 'oc.approval.decided')).toBeUndefined();
  });

  it("words an MCP poll's pending answer with the quorum's progress", () => {
    const pending = (details?: { path: string; message: string }[]) =>
      executeOutcome('e1', {
        error: new AppError(409, 'AWAITING_APPROVAL', 'pending', details ? { details } : {}),
      }).content;
    expect(pending([{ path: 'quorum', message: '1 of 2 approvals; needs 1 more from finance' }])).toEqual([
      { type: 'text', text: 'Still pending: 1 of 2 approvals; needs 1 more from finance. Nothing ran.' },
    ]);
    expect(pending()).toEqual([
      { type: 'text', text: 'Still pending: no approver has decided yet. Nothing ran.' },
    ]);
  });
});

/** Slack v0 request signatures and the button value encoding, against the original's fixtures (reference Appendix A). */
import { slackSignature, verifySlackSignature } from '../../functions/core/slack-signature.js';
import { encodeButtonValue } from '../../functions/core/slack-message.js';
import {
  checkWorkspace,
  decodeButtonValue,
  parseInteraction,
  type SlackClick,
} from '../../functions/core/slack-interaction.js';

const FIXTURE = {
  secret: 'test-secret',
  timestamp: '1700000000',
  body: Buffer.from('payload=%7B%22type%22%3A%22block_actions%22%7D'),
  signature: 'v0=98fc666792b53d71acd495582349fb4120943d709d6463eca07f743d2ddc726a',
};
const at = (seconds: number) => new Date(seconds * 1000);
const check = (over: Partial<typeof FIXTURE> & { now?: Date } = {}) =>
  verifySlackSignature({ ...FIXTURE, now: at(1_700_000_000), ...over });

describe('slack signature', () => {
  it("computes the original's fixed fixture", () => {
    expect(slackSignature(FIXTURE.secret, FIXTURE.timestamp, FIXTURE.body)).toBe(FIXTURE.signature);
    expect(check()).toEqual({ ok: true });
  });

  it.each([
    ['300 s after', 1_700_000_300, true],
    ['301 s after', 1_700_000_301, false],
    ['300 s before', 1_699_999_700, true],
    ['301 s before', 1_699_999_699, false],
  ])('a request signed %s now is %s', (_name, now, ok) => {
    expect(check({ now: at(now) })).toEqual(ok ? { ok: true } : { ok: false, reason: 'stale timestamp' });
  });

  it('refuses a tampered body, a wrong secret, a changed timestamp and a changed signature', () => {
    expect(check({ body: Buffer.from('payload=%7B%22type%22%3A%22block_actionz%22%7D') })).toEqual({
      ok: false,
      reason: 'bad signature',
    });
    expect(check({ secret: 'other-secret' })).toEqual({ ok: false, reason: 'bad signature' });
    expect(check({ timestamp: '1700000001' })).toEqual({ ok: false, reason: 'bad signature' });
    expect(check({ signature: FIXTURE.signature.toUpperCase() })).toEqual({
      ok: false,
      reason: 'bad signature',
    });
    expect(check({ signature: FIXTURE.signature.slice(0, -1) })).toEqual({
      ok: false,
      reason: 'bad signature',
    });
    expect(check({ signature: `v1=${FIXTURE.signature.slice(3)}` })).toEqual({
      ok: false,
      reason: 'bad signature',
    });
  });

  it('refuses missing headers, an empty secret and a timestamp that is not integer seconds', () => {
    expect(check({ signature: undefined as unknown as string })).toEqual({
      ok: false,
      reason: 'missing headers',
    });
    expect(check({ timestamp: undefined as unknown as string })).toEqual({
      ok: false,
      reason: 'missing headers',
    });
    expect(check({ secret: '' })).toEqual({ ok: false, reason: 'missing headers' });
    for (const timestamp of ['1700000000.5', '1e9', 'abc', ' 1700000000', '99999999999999'])
      expect([timestamp, check({ timestamp })]).toEqual([timestamp, { ok: false, reason: 'bad timestamp' }]);
  });
});

describe('slack button values', () => {
  it("encode {d,r,e,t} as padded base64url JSON, as the original's fixture", () => {
    expect(encodeButtonValue({ d: 'approve', r: 'req-1', e: 'evt-1', t: 'tenant1' })).toBe(
      'eyJkIjoiYXBwcm92ZSIsInIiOiJyZXEtMSIsImUiOiJldnQtMSIsInQiOiJ0ZW5hbnQxIn0=',
    );
  });

  it('decode what they encode, padded or not, and refuse anything else with a 400', () => {
    const v = {
      d: 'deny' as const,
      r: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
      e: '0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
      t: 'tenant1',
    };
    const encoded = encodeButtonValue(v);
    expect(decodeButtonValue(encoded)).toEqual(v);
    expect(decodeButtonValue(encoded.replace(/=+$/, ''))).toEqual(v);
    for (const bad of [
      'not base64!',
      Buffer.from('nope').toString('base64url'),
      encodeButtonValue({ ...v, r: 'req-1' }),
      encodeButtonValue({ ...v, t: 'tenant 1' }),
      Buffer.from(JSON.stringify({ ...v, x: 1 })).toString('base64url'),
    ])
      expect(() => decodeButtonValue(bad)).toThrow(expect.objectContaining({ status: 400 }));
  });
});

describe('slack interaction payloads', () => {
  const value = encodeButtonValue({
    d: 'approve',
    r: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
    e: '0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
    t: 'tenant1',
  });
  const payload = (over: Record<string, unknown> = {}, action: Record<string, unknown> = {}) => ({
    type: 'block_actions',
    user: { id: 'U123', username: 'alice' },
    response_url: 'https://hooks.slack.com/actions/T/1/x',
    actions: [{ action_id: 'oc_approve', value, ...action }],
    ...over,
  });

  it('reads a click on Approve: decision, approval, event, tenant, who, where to answer', () => {
    expect(parseInteraction(payload())).toEqual({
      kind: 'click',
      click: {
        decision: 'approve',
        approvalId: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
        eventId: '0e5f7c3a-2b1d-4e8f-9a6b-3c4d5e6f7a8b',
        tenantId: 'tenant1',
        user: { id: 'U123', name: 'alice' },
        workspace: {},
        responseUrl: 'https://hooks.slack.com/actions/T/1/x',
      },
    });
    expect(parseInteraction(payload({}, { action_id: 'oc_open', value: undefined }))).toEqual({
      kind: 'ignored',
      why: 'open link',
    });
  });

  it("reads the click's workspace: team.id (else the user's team_id) and enterprise.id", () => {
    const workspaceOf = (p: unknown) => (parseInteraction(p) as { click: SlackClick }).click.workspace;
    expect(workspaceOf(payload({ team: { id: 'T1' }, enterprise: { id: 'E1' } }))).toEqual({
      teamId: 'T1',
      enterpriseId: 'E1',
    });
    expect(workspaceOf(payload({ team: null, enterprise: null, user: { id: 'U1', team_id: 'T2' } }))).toEqual(
      {
        teamId: 'T2',
      },
    );
  });

  it.each([
    ['the same workspace', { team_id: 'T1' }, { teamId: 'T1' }, true],
    ['the same workspace of an organization', { team_id: 'T1' }, { teamId: 'T1', enterpriseId: 'E1' }, true],
    [
      'the same workspace and organization',
      { team_id: 'T1', enterprise_id: 'E1' },
      { teamId: 'T1', enterpriseId: 'E1' },
      true,
    ],
    ['another workspace', { team_id: 'T1' }, { teamId: 'T2' }, false],
    ['no workspace', { team_id: 'T1' }, {}, false],
    [
      'another organization',
      { team_id: 'T1', enterprise_id: 'E1' },
      { teamId: 'T1', enterpriseId: 'E2' },
      false,
    ],
    [
      'no organization where the tenant names one',
      { team_id: 'T1', enterprise_id: 'E1' },
      { teamId: 'T1' },
      false,
    ],
    ['a tenant that names no workspace', undefined, { teamId: 'T1' }, false],
  ])('a click from %s is %s', (_name, tenant, workspace, ok) => {
    const click = { workspace } as SlackClick;
    if (ok) expect(() => checkWorkspace(tenant, click)).not.toThrow();
    else
      expect(() => checkWorkspace(tenant, click)).toThrow(
        expect.objectContaining({ status: 403, code: 'FORBIDDEN' }),
      );
  });

  it.each([
    ['another type', payload({ type: 'view_submission' }), /unsupported interaction type/],
    ['no actions', payload({ actions: [] }), /invalid interaction payload/],
    ['no user', payload({ user: undefined }), /invalid interaction payload/],
    ['a user id that is no Slack id', payload({ user: { id: '<!channel>' } }), /invalid interaction payload/],
    ['an unknown action', payload({}, { action_id: 'delete_everything' }), /unknown action/],
    ['Deny carrying an approve value', payload({}, { action_id: 'oc_deny' }), /invalid action value/],
    ['no value', payload({}, { value: undefined }), /invalid action value/],
    ['not an object', 'block_actions', /invalid interaction payload/],
  ])('refuses %s with a 400', (_name, p, message) => {
    expect(() => parseInteraction(p)).toThrow(
      expect.objectContaining({ status: 400, message: expect.stringMatching(message) }),
    );
  });
});

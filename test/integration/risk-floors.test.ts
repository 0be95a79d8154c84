/**
 * Server-side risk floors through the gateway (W4): the policy folder floors `slack.msg.post` at
 * 8, so an agent claiming 0 gets the approval path, and the `toolcall.decided` fact records the
 * claim, the floor and the effective risk (the stored request's `risk_score` is the effective one).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { startTestStack, toolCall, type TestStack } from '../support/stack.js';

let stack: TestStack;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(process.env.OC_TEST_TMP ?? tmpdir(), 'oc-floor-policy-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  const path = join(dir, 'actions.json');
  const actions = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  writeFileSync(path, JSON.stringify({ ...actions, risk_floors: { 'slack.msg.post': 8 } }));
  stack = await startTestStack({ env: { OC_POLICY_DIR: dir } });
});
afterAll(async () => {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
});

type Fact = { kind: string; record: Record<string, unknown> };
const decidedFact = async (eventId: string) => {
  const r = await stack.get(`/v1/toolcalls/${eventId}`);
  expect(r.status).toBe(200);
  return { event: r.json, fact: (r.json.evidence as Fact[]).find((f) => f.kind === 'toolcall.decided')! };
};

describe('risk floors', () => {
  it('send a claim of 0 on an action floored at 8 to approval and record claim, floor and effective risk', async () => {
    const r = await stack.post('/v1/toolcalls', toolCall({ risk_score: 0 }));

    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ decision: 'approve', reason: 'high risk score requires approval' });
    expect(r.json.result).toBeUndefined();
    const { event, fact } = await decidedFact(r.json.event_id);
    expect(fact.record.risk).toEqual({ claimed: 0, floor: 8, effective: 8 });
    expect((fact.record.request as { risk_score: number }).risk_score).toBe(8);
    expect(event.request.risk_score).toBe(8);
    expect(event.status).toBe('decided');
  });

  it('keep a claim above the floor', async () => {
    const r = await stack.post('/v1/toolcalls', toolCall({ risk_score: 10 }));

    const { fact } = await decidedFact(r.json.event_id);
    expect(r.json.decision).toBe('approve');
    expect(fact.record.risk).toEqual({ claimed: 10, floor: 8, effective: 10 });
  });

  it('use the connector definition’s floor where the policy folder sets none', async () => {
    const read = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.list', params: {}, risk_score: 1 }),
    );
    const destructive = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', params: { issue: 'OPS-1' }, risk_score: 0 }),
    );

    expect(read.json.decision).toBe('allow');
    expect((await decidedFact(read.json.event_id)).fact.record.risk).toEqual({
      claimed: 1,
      floor: 0,
      effective: 1,
    });
    // jira.issue.delete: floor 6 in its connector definition (destructive: approval at any risk).
    expect(destructive.json).toMatchObject({
      decision: 'approve',
      reason: 'destructive action requires approval',
    });
    expect((await decidedFact(destructive.json.event_id)).fact.record.risk).toEqual({
      claimed: 0,
      floor: 6,
      effective: 6,
    });
  });
});

/**
 * The policy's own cases (policy/tests/*.jsonl: the original's 17, the thresholds, floors,
 * destructive, unlisted and target cases) through the code path `oc policy test` runs
 * (bin/cli/policy-tests.ts, the gateway's `decide`), and the command failing on a failing case.
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadPolicyFolder } from '../../bin/cli/policy-folder.js';
import { runPolicyTests } from '../../bin/cli/policy-tests.js';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';
import { runOc } from '../support/cli.js';

const tmp = () => mkdtempSync(path.join(process.env.OC_TEST_TMP ?? tmpdir(), 'oc-policy-cases-'));

describe("the policy's own cases", () => {
  const report = runPolicyTests(loadPolicyFolder(defaultPolicyDir(), '--dir'));

  it('all pass under the repository policy, the original 17 among them', () => {
    expect(report.failures).toEqual([]);
    expect(report.passed).toBe(report.cases);
    expect(report.cases).toBeGreaterThanOrEqual(84);
    expect(report.files).toBe(4);
  });

  it('fail the command with exit 1, each failure named by file:line', async () => {
    const dir = tmp();
    cpSync(defaultPolicyDir(), dir, { recursive: true });
    const now = '2026-01-05T09:00:00Z';
    const post = { tenant_id: 'tenant1', agent_id: 'a', tool: 'slack', action: 'msg.post' };
    const params = { channel: '#general', text: 'hi' };
    writeFileSync(
      path.join(dir, 'tests', 'zz-broken.jsonl'),
      [
        JSON.stringify({ request: { ...post, params }, now, expect: 'allow' }),
        JSON.stringify({ name: 'wrong', request: { ...post, params, risk_score: 9 }, now, expect: 'allow' }),
        '',
        JSON.stringify({ request: { ...post, params }, now, expect: 'allow', reason: 'no such reason' }),
        JSON.stringify({ request: post, now, expect: 'maybe' }),
        '{"request":',
        JSON.stringify({ request: post, now, expect: 'rejected' }),
      ].join('\n'),
    );
    const run = await runOc(['policy', 'test', '--dir', dir]);
    const where = path.join(path.relative(process.cwd(), dir), 'tests', 'zz-broken.jsonl');

    expect(run.code).toBe(1);
    expect(run.stdout.split('\n').filter(Boolean)).toEqual([
      `${where}:2: wrong: expected allow, got approve ("high risk score requires approval")`,
      `${where}:4: expected reason "no such reason", got "write action on allowlist within tenant threshold"`,
      `${where}:5: not a case: expect must be one of allow, approve, deny, rejected`,
      expect.stringMatching(new RegExp(`^${where.replace(/[.]/g, '\\.')}:6: not valid JSON: `)),
    ]);
    expect(run.stderr).toBe(`oc: 4 of ${report.cases + 6} policy cases failed.\n`);
  });
});

/**
 * `oc policy test`: the policy's own cases, `<policy>/tests/*.jsonl`, one case a line:
 *
 *   {"request": {<the submit body>, "tenant_id": "…"}, "now": "<ISO time>", "expect": "allow", "reason": "…"}
 *
 * each decided with the gateway's engine exactly as submit decides (functions/core/replay.ts
 * `decide`: the body parsed, its target derived, its risk floored). `expect` is `allow`, `approve`,
 * `deny` or `rejected` (the gateway refuses the body with 422 before policy); `reason`, if given,
 * must equal the decision's reason. `idempotency_key` may be left out. `name` labels a case.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as z from 'zod';
import { decide, OUTCOMES, type DecideDeps } from '../../functions/core/replay.js';
import { CliError } from './errors.js';
import type { PolicyFolder } from './policy-folder.js';

const PolicyCase = z.strictObject({
  name: z.string().optional(),
  request: z.looseObject({ tenant_id: z.string().min(1, 'must not be empty') }),
  now: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 time, e.g. 2026-01-05T09:00:00Z' }),
  expect: z.enum(OUTCOMES as [string, ...string[]], `must be one of ${OUTCOMES.join(', ')}`),
  reason: z.string().optional(),
});

export interface CaseFailure {
  /** `tests/<file>.jsonl:<line>`, relative to the policy folder's parent (as the operator names it). */
  where: string;
  name?: string;
  message: string;
}

export interface PolicyTestReport {
  dir: string;
  version: string;
  files: number;
  cases: number;
  passed: number;
  failures: CaseFailure[];
}

/** The failure of one line, or undefined when the case passes. */
function runLine(deps: DecideDeps, text: string): { name?: string; message?: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { message: `not valid JSON: ${(error as Error).message}` };
  }
  const parsed = PolicyCase.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { message: `not a case: ${issue.path.join('.') || '(line)'} ${issue.message}` };
  }
  const c = parsed.data;
  const { idempotency_key = 'oc-policy-test', ...body } = c.request;
  const decided = decide(deps, c.request.tenant_id, { ...body, idempotency_key }, new Date(c.now));
  const reason = decided.outcome === 'rejected' ? decided.message : decided.decision.reason;
  const name = c.name === undefined ? {} : { name: c.name };
  if (decided.outcome !== c.expect)
    return { ...name, message: `expected ${c.expect}, got ${decided.outcome} (${JSON.stringify(reason)})` };
  if (c.reason !== undefined && c.reason !== reason)
    return {
      ...name,
      message: `expected reason ${JSON.stringify(c.reason)}, got ${JSON.stringify(reason)}`,
    };
  return name;
}

/** Runs every `tests/*.jsonl` of the loaded policy folder. No case at all is a failure. */
export function runPolicyTests(folder: PolicyFolder): PolicyTestReport {
  const testsDir = path.join(folder.dir, 'tests');
  let files: string[];
  try {
    files = readdirSync(testsDir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort();
  } catch {
    files = [];
  }
  const report: PolicyTestReport = {
    dir: folder.dir,
    version: folder.version,
    files: files.length,
    cases: 0,
    passed: 0,
    failures: [],
  };
  const shown = path.relative(process.cwd(), testsDir) || '.';
  for (const file of files) {
    const lines = readFileSync(path.join(testsDir, file), 'utf8').split('\n');
    lines.forEach((text, i) => {
      if (text.trim() === '') return;
      report.cases += 1;
      const result = runLine(folder.deps, text);
      if (result.message === undefined) report.passed += 1;
      else
        report.failures.push({
          where: `${path.join(shown, file)}:${i + 1}`,
          ...(result.name === undefined ? {} : { name: result.name }),
          message: result.message,
        });
    });
  }
  if (report.cases === 0)
    throw new CliError(
      `no policy cases in ${path.join(shown, '*.jsonl')}: add one {"request", "now", "expect"} per line (docs/policy.md).`,
    );
  return report;
}

/**
 * `oc policy`: changing policy without fear (issue 24). `replay` decides the recorded history
 * again under a candidate folder and reports the decision diff (`--fail-on` makes it a CI gate);
 * `test` runs the policy's own cases (`<policy>/tests/*.jsonl`) with the gateway's engine;
 * `shadow-report` summarizes what shadow mode recorded: the live calls a deployed candidate
 * (`policy/shadow/`) would have decided otherwise, per tenant, action and transition.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { memoized, parseTransitions, TRANSITIONS } from '../../../functions/core/replay.js';
import { ENV } from '../../../functions/shared/constants.js';
import { defaultPolicyDir } from '../../../functions/store/policy-files.js';
import { ShadowSummarizer, type ShadowSummary } from '../../../functions/core/shadow.js';
import { ShadowDiffStore } from '../../../functions/store/shadow-diffs.js';
import { isoTime, tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { loadPolicyFolder } from '../policy-folder.js';
import { forbiddenFound, replay, reportLines, type ReplayOptions } from '../policy-replay.js';
import { runPolicyTests } from '../policy-tests.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface TestOptions {
  dir?: string;
  json?: boolean;
}

function transitions(value: string) {
  try {
    return parseTransitions(value);
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message}.`);
  }
}

export function registerPolicy(program: Command, act: Act): void {
  const policy = program
    .command('policy')
    .description(
      "replay the recorded decisions under a candidate policy; run the policy's own cases; report shadow mode",
    );
  examples(policy, [
    'npx oc policy test                                            # policy/tests/*.jsonl',
    'npx oc policy replay --candidate ./candidate --bucket oc-evidence',
    'npx oc policy replay --candidate ./candidate --dir ./copy --fail-on "approve->allow,deny->allow"',
  ]);

  const replayCommand = policy
    .command('replay')
    .description(
      'decide every recorded call again under a candidate policy folder and report what would change',
    )
    .requiredOption('--candidate <dir>', 'the candidate policy folder (as policy/)')
    .option('--tenant <tenant>', 'only this tenant (default: every tenant in the source)', tenantId)
    .addOption(
      new Option(
        '--bucket <bucket>',
        'read the verified archive in this bucket (local S3, or S3 with --aws), not the live chain',
      ).conflicts('dir'),
    )
    .option('--dir <dir>', 'read a downloaded copy of the archive (a folder that mirrors the bucket)')
    .option(
      '--public-key <file>',
      "the PEM public key checkpoints must be signed with (default: the archive's own)",
    )
    .option(
      '--fail-on <transitions>',
      `exit 1 if any of these occur, comma-separated (${TRANSITIONS.join(', ')})`,
      transitions,
    )
    .option('--json', 'print the whole diff as JSON');
  addTargetOptions(replayCommand);
  replayCommand.addHelpText(
    'after',
    '\nWithout --bucket or --dir it reads the live chain in the table (--table, --aws as other commands).\n' +
      'Exit codes: 0 replayed (and no --fail-on transition occurred); 1 a --fail-on transition occurred, the\n' +
      'source does not verify, or the candidate does not load; 2 usage (no such candidate folder, a bad\n' +
      'transition, a tenant not in the source).',
  );
  examples(replayCommand, [
    'npx oc policy replay --candidate ./candidate --bucket oc-evidence',
    'npx oc policy replay --candidate ./candidate --dir ./copy --tenant tenant1 --json > diff.json',
    'npx oc policy replay --candidate ./candidate --table oc-gateway     # the live chain',
    'npx oc policy replay --candidate ./candidate --dir ./copy --fail-on "approve->allow,deny->allow"',
  ]);
  act(
    replayCommand,
    (opts: ReplayOptions) =>
      `replay ${opts.tenant ? `tenant ${opts.tenant}'s` : "every tenant's"} decisions under ${opts.candidate}`,
    async (opts: ReplayOptions, ctx) => {
      const load = () => {
        const loaded = loadPolicyFolder(opts.candidate, '--candidate');
        // History repeats itself: each distinct policy input is evaluated once (exact, bounded).
        return { ...loaded, deps: { ...loaded.deps, policy: memoized(loaded.deps.policy) } };
      };
      const report = await replay(opts, load, ctx);
      if (opts.json) ctx.json(report);
      else for (const line of reportLines(report)) ctx.out(line);
      const found = forbiddenFound(report, opts.failOn ?? []);
      if (found.length > 0)
        throw new CliError(
          `forbidden transitions occurred (--fail-on): ${found.map((f) => `${f.transition} ${f.count}`).join(', ')}.`,
        );
    },
  );

  const test = policy
    .command('test')
    .description("run the policy's own cases (<dir>/tests/*.jsonl) with the gateway's engine")
    .option('--dir <dir>', `the policy folder (default: ${ENV.policyDir} or the repository's policy/)`)
    .option('--json', 'print the results as JSON');
  test.addHelpText(
    'after',
    '\nExit codes: 0 every case passed; 1 a case failed or the folder does not load; 2 usage.',
  );
  examples(test, ['npx oc policy test', 'npx oc policy test --dir ./candidate']);
  act(
    test,
    (opts: TestOptions) => `test the policy in ${opts.dir ?? 'policy/'}`,
    async (opts: TestOptions, ctx) => {
      const dir = opts.dir ?? ctx.env[ENV.policyDir] ?? defaultPolicyDir();
      const report = runPolicyTests(loadPolicyFolder(dir, '--dir'));
      if (opts.json) ctx.json(report);
      else {
        for (const f of report.failures) ctx.out(`${f.where}: ${f.name ? `${f.name}: ` : ''}${f.message}`);
        if (report.failures.length === 0)
          ctx.out(`ok: ${report.cases} cases in ${report.files} file(s) pass (${report.version})`);
      }
      if (report.failures.length > 0)
        throw new CliError(`${report.failures.length} of ${report.cases} policy cases failed.`);
      return EXIT.ok;
    },
  );
  registerShadowReport(policy, act);
}

interface ShadowReportOptions extends TargetOptions {
  tenant?: string;
  since?: string;
  json?: boolean;
}

function registerShadowReport(policy: Command, act: Act): void {
  const report = policy
    .command('shadow-report')
    .description(
      'the live calls a shadow candidate (policy/shadow/) would have decided otherwise: counts per tenant, action and transition, with example event ids',
    )
    .option('--tenant <tenant>', 'only this tenant (default: every tenant with recorded decisions)', tenantId)
    .option('--since <time>', 'only calls decided at or after this ISO time (default: all recorded)', isoTime)
    .option('--json', 'print the summary as JSON');
  addTargetOptions(report);
  report.addHelpText(
    'after',
    '\nReads the sparse index entries shadow mode writes on the events it recorded a difference on\n' +
      "(by tenant and time), and those events' shadow attribute; tenants come from the chain registry.\n" +
      'No table scan. A call the candidate decided like the live policy is not recorded, nor counted.',
  );
  examples(report, [
    'npx oc policy shadow-report',
    'npx oc policy shadow-report --tenant tenant1 --since 2026-12-01T00:00:00Z',
    'npx oc policy shadow-report --aws --json > shadow.json',
  ]);
  act(
    report,
    (opts: ShadowReportOptions) =>
      `read the shadow differences of ${opts.tenant ? `tenant ${opts.tenant}` : 'every tenant'}`,
    async (opts: ShadowReportOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const store = new ShadowDiffStore(doc, table);
      const tenants = opts.tenant ? [opts.tenant] : await store.tenants();
      const summarizer = new ShadowSummarizer();
      for (const tenant of tenants)
        for await (const page of store.diffs(tenant, opts.since)) for (const d of page) summarizer.add(d);
      const summary = summarizer.summary(tenants, opts.since);
      if (opts.json) ctx.json(summary);
      else for (const line of summaryLines(summary)) ctx.out(line);
    },
  );
}

/** The readable report: totals by transition, then one line per tenant, action and transition. */
export function summaryLines(s: ShadowSummary): string[] {
  const scope = `${s.tenants.length === 1 ? `tenant ${s.tenants[0]}` : `${s.tenants.length} tenant(s)`}${s.since ? ` since ${s.since}` : ''}`;
  if (s.total === 0) return [`no shadow differences recorded (${scope})`];
  const lines = [
    `${s.total} call(s) the shadow candidate would have decided otherwise (${scope}):`,
    ...Object.entries(s.by_transition).map(([t, n]) => `  ${t.padEnd(16)} ${n}`),
    '',
    `${'tenant'.padEnd(16)} ${'action'.padEnd(28)} ${'transition'.padEnd(16)} ${'count'.padStart(7)}  examples`,
  ];
  for (const r of s.rows)
    lines.push(
      `${r.tenant_id.padEnd(16)} ${r.action.padEnd(28)} ${r.transition.padEnd(16)} ${String(r.count).padStart(7)}  ${r.examples.join(' ')}`,
    );
  const versions = [...new Set(s.rows.flatMap((r) => r.candidate_versions))];
  lines.push('', `candidate version(s): ${versions.join(', ')}`);
  return lines;
}

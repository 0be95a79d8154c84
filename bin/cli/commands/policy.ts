/**
 * `oc policy`: changing policy without fear (issue 24). `replay` decides the recorded history
 * again under a candidate folder and reports the decision diff (`--fail-on` makes it a CI gate);
 * `test` runs the policy's own cases (`<policy>/tests/*.jsonl`) with the gateway's engine.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { memoized, parseTransitions, TRANSITIONS } from '../../../functions/core/replay.js';
import { ENV } from '../../../functions/shared/constants.js';
import { defaultPolicyDir } from '../../../functions/store/policy-files.js';
import { tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { loadPolicyFolder } from '../policy-folder.js';
import { forbiddenFound, replay, reportLines, type ReplayOptions } from '../policy-replay.js';
import { runPolicyTests } from '../policy-tests.js';
import { addTargetOptions } from '../target.js';

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
    .description("replay the recorded decisions under a candidate policy; run the policy's own cases");
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
      const loaded = loadPolicyFolder(opts.candidate, '--candidate');
      // History repeats itself: each distinct policy input is evaluated once (exact, bounded).
      const folder = { ...loaded, deps: { ...loaded.deps, policy: memoized(loaded.deps.policy) } };
      const report = await replay(opts, folder, ctx);
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
}

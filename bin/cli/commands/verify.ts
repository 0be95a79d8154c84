/**
 * `oc verify`: re-checks a tenant's evidence chain. A presentation layer over
 * `verifyTenantChain`: every problem the report lists is printed, and `!report.ok` exits 1.
 * With `--bucket` or `--dir` it checks the archive instead (verify-archive.ts), without the
 * gateway's database.
 */
import { Option, type Command } from 'commander';
import { ApprovalStore } from '../../../functions/store/approvals.js';
import { ChainStore, verifyTenantChain, type VerifyReport } from '../../../functions/store/chain.js';
import { connectorTimeoutMs, nonNegativeInt, tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { CliError, EXIT, UsageError } from '../errors.js';
import { addTargetOptions, tableContext, type TargetOptions } from '../target.js';
import { verifyArchiveCommand, type ArchiveVerifyOptions } from '../archive-verify.js';
import { checkLogCheckpointPolicy, loadTrust, verifyProofCommand } from '../proof-verify.js';
import { dirSource, s3Source } from '../../audit/verify-archive.js';
import { archiveS3 } from '../archive-target.js';

interface VerifyOptions extends TargetOptions, ArchiveVerifyOptions {
  tenant?: string;
  proof?: string[];
  vkey?: string;
  tlogPolicy?: string;
  unsealedGraceSec: number;
  allowEmpty?: boolean;
  allowUnresolved?: boolean;
  json?: boolean;
}

export function registerVerify(program: Command, act: Act): void {
  const verify = program
    .command('verify')
    .description(
      "re-check a tenant's evidence chain (every hash, link and seq) and that no fact waits too long for the sequencer",
    )
    .option('--tenant <tenant>', 'tenant id (required but with --proof)', tenantId)
    .option('--unsealed-grace-sec <sec>', 'how long a fact may wait for the sequencer', nonNegativeInt, 60)
    .option('--allow-empty', 'a tenant with no chain entries yet is not a failure')
    .option(
      '--allow-unresolved',
      'list calls whose outcome is unknown (the tool may have run, nothing recorded) without failing',
    )
    .option('--json', 'print the whole verification report as JSON')
    .addOption(
      new Option(
        '--bucket <bucket>',
        "verify the tenant's archived bundles in this bucket (local S3, or S3 with --aws), not the database",
      ).conflicts('dir'),
    )
    .option('--dir <dir>', 'verify a downloaded copy of the archive (a folder that mirrors the bucket)')
    .option(
      '--public-key <file>',
      "the PEM public key checkpoints must be signed with (default: the archive's own)",
    )
    .option('--save <dir>', 'with --bucket: keep a copy of every object read under this folder (for --dir)')
    .option(
      '--trusted-checkpoint <file>',
      'a checkpoint you kept from an earlier verification (repeatable): fail if the archive is shorter or disagrees',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--save-checkpoint <file>', 'write the checkpoint verified to this file, to keep')
    .option(
      '--proof <file...>',
      'check per-decision proofs (.tlog-proof files from `oc proof` or the API) offline, with only --public-key / --vkey (and --tlog-policy)',
    )
    .option(
      '--vkey <vkey>',
      "the log's verifier key (<deployment>+<key id>+<base64>) instead of --public-key",
    )
    .option(
      '--tlog-policy <file>',
      'a C2SP tlog-policy file: its quorum of witness cosignatures is required on the checkpoint (with --proof, or --bucket/--dir)',
    );
  addTargetOptions(verify);
  verify.addHelpText(
    'after',
    '\nExit codes: 0 verified; 1 a break, a held chain, an overdue unsealed fact, a call with an unknown\n' +
      'outcome (unless --allow-unresolved; resolve it with `oc executions resolve`), or no entries\n' +
      '(unless --allow-empty); 2 usage.',
  );
  examples(verify, [
    'npx oc verify --tenant tenant1',
    'npx oc verify --tenant tenant1 --json > report.json     # the exit code is the verdict',
    'npx oc verify --tenant new-tenant --allow-empty',
    'npx oc verify --tenant tenant1 --aws',
    'npx oc verify --bucket oc-evidence --tenant tenant1 --public-key key.pem   # the archive, not the database',
    'npx oc verify --aws --bucket <EvidenceBucket> --tenant tenant1 --public-key key.pem',
    'npx oc verify --dir ./copy --tenant tenant1 --public-key key.pem          # a downloaded copy',
    'npx oc verify --bucket oc-evidence --tenant tenant1 --public-key key.pem --trusted-checkpoint kept.txt --save-checkpoint kept.txt',
    'npx oc verify --proof <event_id>.<seq>.tlog-proof --public-key key.pem    # one decision, offline',
    'npx oc verify --proof <file> --tlog-policy policy.txt                    # and its witnesses quorum',
  ]);
  act(
    verify,
    (opts: VerifyOptions) =>
      opts.proof !== undefined
        ? `verify ${opts.proof.join(', ')}`
        : opts.bucket !== undefined || opts.dir !== undefined
          ? `verify tenant ${opts.tenant}'s archive in ${opts.bucket ?? opts.dir}`
          : `verify tenant ${opts.tenant}'s chain`,
    async (opts: VerifyOptions, ctx) => {
      if (opts.proof !== undefined) {
        if (opts.bucket !== undefined || opts.dir !== undefined)
          throw new UsageError('--proof checks the proof files alone: leave out --bucket and --dir.');
        return verifyProofCommand({ ...opts, proof: opts.proof }, ctx);
      }
      if (opts.tenant === undefined)
        throw new UsageError("required option '--tenant <tenant>' not specified.");
      const tenant = opts.tenant;
      if (opts.bucket !== undefined || opts.dir !== undefined) {
        const code = await verifyArchiveCommand({ ...opts, tenant }, ctx);
        if (code !== EXIT.ok || opts.tlogPolicy === undefined) return code;
        return verifyArchivePolicy({ ...opts, tenant }, ctx);
      }
      if (opts.tlogPolicy !== undefined)
        throw new UsageError('--tlog-policy needs --proof, --bucket or --dir.');
      if (opts.trustedCheckpoint !== undefined || opts.saveCheckpoint !== undefined)
        throw new UsageError(
          '--trusted-checkpoint and --save-checkpoint check an archive: give --bucket or --dir.',
        );
      const { doc, table, target } = await ctx.table(opts);
      const report = await verifyTenantChain(new ChainStore(doc, table), tenant, {
        now: new Date(),
        unsealedGraceMs: opts.unsealedGraceSec * 1000,
        // As GET /v1/toolcalls reads it: a call executing past every timeout has an unknown outcome.
        outcomeGraceMs: connectorTimeoutMs(ctx.env) + 30_000,
        allowUnresolved: opts.allowUnresolved === true,
      });
      if (opts.json) ctx.json(report);
      if (!report.ok) {
        if (!opts.json) for (const line of failedLines(report)) ctx.out(line);
        return EXIT.failure;
      }
      if (report.entries === 0 && !opts.allowEmpty) {
        // A typo in a tenant id must not read as a verified chain.
        const tenants = await new ApprovalStore(doc, table).tenants();
        const where = `table ${table} (${tableContext(target).where})`;
        throw new CliError(
          tenants.includes(tenant)
            ? `tenant ${opts.tenant} has an API key but no chain entries yet in ${where}: nothing to verify. Pass --allow-empty to accept an empty chain.`
            : `tenant ${opts.tenant} has no chain entries and no API key in ${where}; tenants with keys there: ` +
                `${tenants.length ? tenants.join(', ') : 'none'}. Check --tenant, or pass --allow-empty.`,
        );
      }
      if (!opts.json)
        for (const o of report.unresolved)
          ctx.out(
            `warning: ${o.kind === 'allow' ? 'allowed call' : 'approved execution of'} ${o.event_id}: outcome unknown since ${o.since} (oc executions resolve)`,
          );
      if (!opts.json)
        ctx.out(
          report.entries === 0
            ? `ok: tenant ${report.tenantId} has no chain entries yet (--allow-empty)`
            : `ok: tenant ${report.tenantId}, ${report.entries} entries, head seq ${report.head.seq} ${report.head.hash}`,
        );
    },
  );
}

/** Every problem the report lists, one per line. */
function failedLines(report: VerifyReport): string[] {
  return [
    `FAILED: tenant ${report.tenantId}, ${report.entries} entries, head seq ${report.head.seq}`,
    ...report.problems.map((p) => `  - ${p}`),
  ];
}

/** After the archive verified: its published log checkpoint against the tlog-policy's quorum. */
async function verifyArchivePolicy(
  opts: VerifyOptions & { tenant: string; tlogPolicy?: string },
  ctx: Parameters<Parameters<Act>[2]>[1],
): Promise<number> {
  const trust = loadTrust(opts);
  const s3 = opts.bucket !== undefined ? archiveS3(opts, ctx.env) : undefined;
  try {
    const source = s3 ? s3Source(s3.s3, opts.bucket!) : dirSource(opts.dir!);
    const { problems, cosigners, size } = await checkLogCheckpointPolicy(
      source,
      opts.tenant,
      trust.policy!,
      trust.logKeys,
    );
    if (problems.length) {
      for (const p of problems) ctx.out(`FAILED: ${p}`);
      return EXIT.failure;
    }
    ctx.out(
      `  log checkpoint size ${size}: cosigned by ${cosigners.join(', ') || 'no witness'} (quorum ${trust.policy!.quorum} met)`,
    );
    return EXIT.ok;
  } finally {
    s3?.s3.destroy();
  }
}

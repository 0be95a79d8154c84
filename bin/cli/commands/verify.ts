/**
 * `oc verify`: re-checks a tenant's evidence chain. A presentation layer over
 * `verifyTenantChain`: every problem the report lists is printed, and `!report.ok` exits 1.
 */
import type { Command } from 'commander';
import { ApprovalStore } from '../../../functions/store/approvals.js';
import { ChainStore, verifyTenantChain, type VerifyReport } from '../../../functions/store/chain.js';
import { connectorTimeoutMs, nonNegativeInt, tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { addTargetOptions, tableContext, type TargetOptions } from '../target.js';

interface VerifyOptions extends TargetOptions {
  tenant: string;
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
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .option('--unsealed-grace-sec <sec>', 'how long a fact may wait for the sequencer', nonNegativeInt, 60)
    .option('--allow-empty', 'a tenant with no chain entries yet is not a failure')
    .option(
      '--allow-unresolved',
      'list calls whose outcome is unknown (the tool may have run, nothing recorded) without failing',
    )
    .option('--json', 'print the whole verification report as JSON');
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
  ]);
  act(
    verify,
    (opts: VerifyOptions) => `verify tenant ${opts.tenant}'s chain`,
    async (opts: VerifyOptions, ctx) => {
      const { doc, table, target } = await ctx.table(opts);
      const report = await verifyTenantChain(new ChainStore(doc, table), opts.tenant, {
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
          tenants.includes(opts.tenant)
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

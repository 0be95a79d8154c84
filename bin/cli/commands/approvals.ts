/**
 * `oc approvals show <id>`: prints an approval's view (`oc-approval-view/v1`), the same lines the
 * console, Slack, the webhook summary and the MCP elicitation render, with invisible characters
 * shown as ⟨U+202E⟩, and the view's version and hash. Read from the table, like the other
 * operator commands: an operator can check what an approver was (or will be) shown.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { approvalViewOf, effectiveStatus } from '../../../functions/core/approvals.js';
import { viewText } from '../../../functions/core/approval-view.js';
import { UUID_PATTERN } from '../../../functions/shared/input-rules.js';
import { ApprovalStore } from '../../../functions/store/approvals.js';
import { tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { CliError } from '../errors.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface ShowOptions extends TargetOptions {
  /** The positional `<approval_id>`, copied into the options before the action runs. */
  approvalId: string;
  tenant: string;
  json?: boolean;
}

function approvalId(value: string): string {
  if (!UUID_PATTERN.test(value))
    throw new InvalidArgumentError(
      'An approval id is a lowercase UUID, as in the approval.id of a parked call.',
    );
  return value;
}

export function registerApprovals(program: Command, act: Act): void {
  const approvals = program.command('approvals').description('approval requests');
  examples(approvals, ['npx oc approvals show --help']);

  const show = approvals
    .command('show')
    .description('print the approval view: what every approver surface shows of this approval, and its hash')
    .argument('<approval_id>', 'the approval id (approval.id of the parked call)', approvalId)
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .option('--json', 'print the view data, its hash and the lines as JSON')
    .hook('preAction', (command) => {
      command.setOptionValue('approvalId', command.processedArgs[0]);
    });
  addTargetOptions(show);
  examples(show, [
    'npx oc approvals show 3f2504e0-4f89-41d3-9a0c-0305e82c3301 --tenant tenant1',
    'npx oc approvals show <approval_id> --tenant tenant1 --json',
  ]);
  act(
    show,
    (opts: ShowOptions) => `show approval ${opts.approvalId}`,
    async (opts: ShowOptions, ctx) => {
      const id = opts.approvalId;
      const { doc, table } = await ctx.table(opts);
      const stored = await new ApprovalStore(doc, table).get(opts.tenant, id);
      if (!stored)
        throw new CliError(`no approval ${id} in tenant ${opts.tenant} (the approval.id of a parked call).`);
      const { data, hash, recorded } = approvalViewOf(stored.record);
      const status = effectiveStatus(stored, new Date());
      if (opts.json) {
        ctx.json({ approval_id: id, status, recorded, version: data.v, hash, view: data });
        return;
      }
      ctx.out(
        [
          `Approval ${id} (${status})`,
          viewText(data, hash),
          ...(recorded === 'legacy' ? ['(legacy approval: created before views; rendered now)'] : []),
        ].join('\n'),
      );
    },
  );
}

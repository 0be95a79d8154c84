/**
 * `oc approvals show <id>`: prints an approval's view (`oc-approval-view/v1`), the same lines the
 * console, Slack, the webhook summary and the MCP elicitation render, with invisible characters
 * shown as ⟨U+202E⟩, and the view's version and hash, then a quorum's progress (its summary and
 * each stage's votes, as the API's `quorum` has them). Read from the table, like the other
 * operator commands: an operator can check what an approver was (or will be) shown.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import {
  approvalView,
  approvalViewOf,
  effectiveStatus,
  type ApprovalView,
} from '../../../functions/core/approvals.js';
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
      const now = new Date();
      const status = effectiveStatus(stored, now);
      // Only an approval parked with a quorum has one (a single approver's has no progress to show).
      const quorum = stored.record.quorum ? approvalView(stored, now).quorum : undefined;
      if (opts.json) {
        ctx.json({
          approval_id: id,
          status,
          recorded,
          version: data.v,
          hash,
          view: data,
          ...(quorum ? { quorum } : {}),
        });
        return;
      }
      ctx.out(
        [
          `Approval ${id} (${status})`,
          viewText(data, hash),
          ...(recorded === 'legacy' ? ['(legacy approval: created before views; rendered now)'] : []),
          ...(quorum ? quorumText(quorum) : []),
        ].join('\n'),
      );
    },
  );
}

/** A quorum's progress in lines: the summary, then each stage's votes (who, from where, when). */
function quorumText(q: NonNullable<ApprovalView['quorum']>): string[] {
  return [
    `Quorum: ${q.summary}`,
    ...q.stages.map((stage, i) => {
      const votes = stage.votes.map(
        (v) =>
          `${v.approver} (${v.via}, ${v.at}${v.standing_grant ? `, asks for a standing grant on ${v.standing_grant.target_pattern}` : ''})`,
      );
      return `  stage ${i + 1} of ${q.stages.length}, ${stage.n} of ${stage.group ?? 'the approvers'}${stage.complete ? ' (complete)' : ''}: ${votes.length ? votes.join(', ') : 'no votes yet'}`;
    }),
  ];
}

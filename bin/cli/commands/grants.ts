/**
 * `oc grants list|show|revoke` (issue 21 deliverable 6): a tenant's scoped standing grants, read
 * from the table like the other operator commands, and revoked by an operator (`operator:<user>`,
 * with a `standing_grant.revoked` fact) with the same conditional write the API's revoke uses, so
 * the next call that would have used the grant is parked for a human.
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { grantView, type StandingGrantView } from '../../../functions/core/grants.js';
import { UUID_PATTERN } from '../../../functions/shared/input-rules.js';
import { StandingGrantStore } from '../../../functions/store/grants.js';
import { nonBlank, tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { CliError } from '../errors.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface GrantOptions extends TargetOptions {
  tenant: string;
  json?: boolean;
  /** The positional `<grant_id>` (show, revoke), copied into the options before the action runs. */
  grantId: string;
  reason?: string;
}

function grantId(value: string): string {
  if (!UUID_PATTERN.test(value))
    throw new InvalidArgumentError('A grant id is a lowercase UUID, as `oc grants list` prints it.');
  return value;
}

const line = (g: StandingGrantView) =>
  `${g.id}  ${g.status.padEnd(9)} ${g.agent_id} ${g.tool}.${g.action} ${JSON.stringify(g.target_pattern)} ` +
  `${g.uses_left}/${g.max_uses} uses, until ${g.expires_at}, by ${g.created_by}`;

const detail = (g: StandingGrantView) =>
  [
    `Standing grant ${g.id} (${g.status})`,
    `  agent ${g.agent_id}, ${g.tool}.${g.action}, target ${JSON.stringify(g.target_pattern)}`,
    `  uses left ${g.uses_left} of ${g.max_uses}; expires ${g.expires_at}`,
    `  created by ${g.created_by} at ${g.created_at} with approval ${g.approval_id} (event ${g.event_id})`,
    ...(g.last_used_at ? [`  last used ${g.last_used_at}`] : []),
    ...(g.revoked_at
      ? [`  revoked by ${g.revoked_by} at ${g.revoked_at}${g.revoke_reason ? `: ${g.revoke_reason}` : ''}`]
      : []),
  ].join('\n');

export function registerGrants(program: Command, act: Act): void {
  const grants = program.command('grants').description('scoped standing grants ("this and calls like it")');
  examples(grants, ['npx oc grants list --tenant tenant1', 'npx oc grants revoke --help']);

  const list = grants
    .command('list')
    .description("list a tenant's standing grants with their state now")
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .option('--json', 'print the grants as JSON');
  addTargetOptions(list);
  examples(list, ['npx oc grants list --tenant tenant1']);
  act(
    list,
    (opts: GrantOptions) => `list the standing grants of ${opts.tenant}`,
    async (opts: GrantOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const store = new StandingGrantStore(doc, table);
      const now = new Date();
      const all: StandingGrantView[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.list(opts.tenant, 100, cursor);
        all.push(...page.items.map((g) => grantView(g, now)));
        cursor = page.nextCursor;
      } while (cursor);
      if (opts.json) return ctx.json({ items: all });
      ctx.out(all.length ? all.map(line).join('\n') : `no standing grants in tenant ${opts.tenant}`);
    },
  );

  const show = grants
    .command('show')
    .description('print one standing grant')
    .argument('<grant_id>', 'the grant id', grantId)
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .option('--json', 'print the grant as JSON')
    .hook('preAction', (command) => {
      command.setOptionValue('grantId', command.processedArgs[0]);
    });
  addTargetOptions(show);
  examples(show, ['npx oc grants show 9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a --tenant tenant1']);
  act(
    show,
    (opts: GrantOptions) => `show standing grant ${opts.grantId}`,
    async (opts: GrantOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const g = await new StandingGrantStore(doc, table).get(opts.tenant, opts.grantId);
      if (!g) throw new CliError(`no standing grant ${opts.grantId} in tenant ${opts.tenant}.`);
      const view = grantView(g, new Date());
      if (opts.json) return ctx.json(view);
      ctx.out(detail(view));
    },
  );

  const revoke = grants
    .command('revoke')
    .description('revoke a standing grant at once (recorded as a standing_grant.revoked fact)')
    .argument('<grant_id>', 'the grant id', grantId)
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .option('--reason <text>', 'why (recorded with the revocation)', nonBlank)
    .option('--json', 'print the grant as JSON')
    .hook('preAction', (command) => {
      command.setOptionValue('grantId', command.processedArgs[0]);
    });
  addTargetOptions(revoke);
  examples(revoke, [
    'npx oc grants revoke 9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a --tenant tenant1 --reason "incident over"',
  ]);
  act(
    revoke,
    (opts: GrantOptions) => `revoke standing grant ${opts.grantId}`,
    async (opts: GrantOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const store = new StandingGrantStore(doc, table);
      const g = await store.get(opts.tenant, opts.grantId);
      if (!g) throw new CliError(`no standing grant ${opts.grantId} in tenant ${opts.tenant}.`);
      const at = new Date().toISOString();
      const by = `operator:${ctx.env.USER ?? 'unknown'}`;
      const revoked =
        g.status === 'active' &&
        (await store.revoke(g, {
          by,
          at,
          ...(opts.reason ? { reason: opts.reason } : {}),
          fact: {
            v: 1,
            tenant_id: g.tenant_id,
            kind: 'standing_grant.revoked',
            event_id: g.event_id,
            fact_id: randomUUID(),
            at,
            approval_id: g.approval_id,
            standing_grant_id: g.id,
            revoked_by: { id: by, via: 'cli' },
            ...(opts.reason ? { reason: opts.reason } : {}),
          },
        }));
      const view = grantView((await store.get(opts.tenant, opts.grantId)) ?? g, new Date());
      if (opts.json) return ctx.json(view);
      ctx.out(revoked ? `revoked: ${line(view)}` : `already revoked: ${line(view)}`);
    },
  );
}

/** `oc keys create`: a new agent API key, printed once, stored only as its SHA-256. */
import type { Command } from 'commander';
import { ApiKeyStore, generateApiKey, hashApiKey } from '../../../functions/store/api-keys.js';
import { agentId, tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { CliError } from '../errors.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface CreateOptions extends TargetOptions {
  tenant: string;
  agent?: string;
  label: string;
  json?: boolean;
}

export function registerKeys(program: Command, act: Act): void {
  const keys = program.command('keys').description('agent API keys');
  examples(keys, ['npx oc keys create --tenant tenant1 --agent agent-7']);

  const create = keys
    .command('create')
    .description('create a key for a tenant; the key is printed once and stored only as its SHA-256')
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .option('--agent <agent>', 'bind the key to one agent_id', agentId)
    .option('--label <label>', 'a note for operators', '')
    .option('--json', 'print {key, tenant_id, agent_id, label, key_sha256}');
  addTargetOptions(create);
  examples(create, [
    'npx oc keys create --tenant tenant1 --agent agent-7      # prints sk-oc-...',
    'KEY=$(npx oc keys create --tenant tenant1)',
    'npx oc keys create --tenant tenant1 --json --aws         # the deployed stack',
  ]);
  act(
    create,
    (opts: CreateOptions) => `create a key for tenant ${opts.tenant}`,
    async (opts: CreateOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const key = generateApiKey();
      const identity = { tenantId: opts.tenant, ...(opts.agent ? { agentId: opts.agent } : {}) };
      if ((await new ApiKeyStore(doc, table).put(key, identity, opts.label)) === 'exists')
        throw new CliError(
          'a key with the same hash already exists (a random collision); run the command again.',
        );
      if (opts.json)
        ctx.json({
          key,
          tenant_id: opts.tenant,
          agent_id: opts.agent ?? null,
          label: opts.label,
          key_sha256: hashApiKey(key),
        });
      else ctx.out(key);
    },
  );
}

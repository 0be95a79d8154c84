/**
 * `oc keys create|list|revoke|rotate`: agent API keys. A key is printed once and stored only as
 * its SHA-256; operators name keys by `key_id`. Revocation reaches every gateway instance within
 * the lookup cache's lifetime (30 s); an expiry is exact.
 */
import type { Command } from 'commander';
import {
  API_KEY_CACHE_MS,
  ApiKeyStore,
  generateApiKey,
  hashApiKey,
  keyIdOf,
  KeyNotFoundError,
  type ApiKeyRecord,
} from '../../../functions/store/api-keys.js';
import { agentId, apiKeyId, duration, tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { CliError } from '../errors.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface CreateOptions extends TargetOptions {
  tenant: string;
  agent?: string;
  label: string;
  expiresIn?: number;
  json?: boolean;
}

interface ListOptions extends TargetOptions {
  tenant: string;
  json?: boolean;
}

interface KeyOptions extends TargetOptions {
  tenant: string;
  key: string;
  json?: boolean;
}

interface RotateOptions extends KeyOptions {
  grace?: number;
}

const CACHE_SEC = API_KEY_CACHE_MS / 1000;

const line = (k: ApiKeyRecord) =>
  [
    k.key_id,
    k.status,
    `agent=${k.agent_id ?? '*'}`,
    `created=${k.created_at}`,
    `expires=${k.expires_at ?? 'never'}`,
    `last_used=${k.last_used_at ?? 'never'}`,
    ...(k.revoked_at ? [`revoked=${k.revoked_at}`] : []),
    ...(k.label ? [`label=${JSON.stringify(k.label)}`] : []),
  ].join('  ');

/** A key of another tenant is "not found", exactly like one that does not exist. */
async function orNotFound<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof KeyNotFoundError) throw new CliError(`${error.message} (see \`oc keys list\`).`);
    throw error;
  }
}

export function registerKeys(program: Command, act: Act): void {
  const keys = program.command('keys').description('agent API keys');
  examples(keys, [
    'npx oc keys create --tenant tenant1 --agent agent-7 --expires-in 90d',
    'npx oc keys list --tenant tenant1',
    'npx oc keys rotate --tenant tenant1 --key key_0123456789abcdef --grace 1h',
    'npx oc keys revoke --tenant tenant1 --key key_0123456789abcdef',
  ]);

  const create = keys
    .command('create')
    .description('create a key for a tenant; the key is printed once and stored only as its SHA-256')
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .option('--agent <agent>', 'bind the key to one agent_id', agentId)
    .option('--label <label>', 'a note for operators', '')
    .option('--expires-in <duration>', 'refuse the key after this long (90s, 15m, 12h, 30d)', duration)
    .option('--json', 'print {key, key_id, tenant_id, agent_id, label, expires_at, key_sha256}');
  addTargetOptions(create);
  examples(create, [
    'npx oc keys create --tenant tenant1 --agent agent-7      # prints sk-oc-...',
    'KEY=$(npx oc keys create --tenant tenant1 --expires-in 30d)',
    'npx oc keys create --tenant tenant1 --json --aws         # the deployed stack',
  ]);
  act(
    create,
    (opts: CreateOptions) => `create a key for tenant ${opts.tenant}`,
    async (opts: CreateOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const key = generateApiKey();
      const identity = { tenantId: opts.tenant, ...(opts.agent ? { agentId: opts.agent } : {}) };
      const expiresAt = opts.expiresIn ? new Date(Date.now() + opts.expiresIn) : undefined;
      if (
        (await new ApiKeyStore(doc, table).put(key, identity, { label: opts.label, expiresAt })) === 'exists'
      )
        throw new CliError(
          'a key with the same hash already exists (a random collision); run the command again.',
        );
      if (opts.json)
        ctx.json({
          key,
          key_id: keyIdOf(hashApiKey(key)),
          tenant_id: opts.tenant,
          agent_id: opts.agent ?? null,
          label: opts.label,
          expires_at: expiresAt?.toISOString() ?? null,
          key_sha256: hashApiKey(key),
        });
      else ctx.out(key);
    },
  );

  const list = keys
    .command('list')
    .description("list a tenant's keys (never the keys themselves): status, agent, expiry, last use")
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .option('--json', 'print a JSON array');
  addTargetOptions(list);
  examples(list, ['npx oc keys list --tenant tenant1', 'npx oc keys list --tenant tenant1 --json --aws']);
  act(
    list,
    (opts: ListOptions) => `list the keys of tenant ${opts.tenant}`,
    async (opts: ListOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const found = await new ApiKeyStore(doc, table).list(opts.tenant);
      if (opts.json) ctx.json(found);
      else if (found.length === 0) ctx.out(`no keys for tenant ${opts.tenant}`);
      else for (const k of found) ctx.out(line(k));
    },
  );

  const revoke = keys
    .command('revoke')
    .description(`revoke a key; every gateway instance refuses it within ${CACHE_SEC} s (its lookup cache)`)
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .requiredOption('--key <key_id>', 'the key_id, as `oc keys list` prints it', apiKeyId)
    .option('--json', 'print the revoked key');
  addTargetOptions(revoke);
  examples(revoke, ['npx oc keys revoke --tenant tenant1 --key key_0123456789abcdef']);
  act(
    revoke,
    (opts: KeyOptions) => `revoke key ${opts.key} of tenant ${opts.tenant}`,
    async (opts: KeyOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const revoked = await orNotFound(new ApiKeyStore(doc, table).revoke(opts.tenant, opts.key));
      if (opts.json) ctx.json(revoked);
      else ctx.out(`revoked ${revoked.key_id}; refused everywhere within ${CACHE_SEC} s`);
    },
  );

  const rotate = keys
    .command('rotate')
    .description(
      'replace a key: a new key with the same tenant, agent binding, label and expiry; the old one is revoked',
    )
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .requiredOption('--key <key_id>', 'the key_id to replace', apiKeyId)
    .option(
      '--grace <duration>',
      'keep the old key working this long (e.g. 1h) instead of revoking it now; never past its own expiry',
      duration,
    )
    .option('--json', 'print {key, new: <record>, old: <record>}');
  addTargetOptions(rotate);
  examples(rotate, [
    'NEW=$(npx oc keys rotate --tenant tenant1 --key key_0123456789abcdef)',
    'npx oc keys rotate --tenant tenant1 --key key_0123456789abcdef --grace 1h --json',
  ]);
  act(
    rotate,
    (opts: RotateOptions) => `rotate key ${opts.key} of tenant ${opts.tenant}`,
    async (opts: RotateOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const rotated = await orNotFound(
        new ApiKeyStore(doc, table).rotate(opts.tenant, opts.key, { graceMs: opts.grace }),
      );
      if (opts.json) ctx.json({ key: rotated.key, new: rotated.record, old: rotated.old });
      else ctx.out(rotated.key);
    },
  );
}

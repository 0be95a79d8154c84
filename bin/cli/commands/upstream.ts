/**
 * `oc upstream add|sync|list|diff|accept`: a tenant's upstream MCP servers (issue 25). `add`
 * registers a server (its Streamable HTTP URL and where its credential lives, never the
 * credential); `sync` lists its tools with the official MCP client and pins each one's listing by
 * hash as the action `<server>.<tool>` of the tenant's catalog; a changed listing disables that
 * tool until `diff` shows the change and `accept` pins it. Policy data classifies every action
 * (`policy/actions.json`): an unclassified one is denied.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { nonBlank, tenantId } from '../args.js';
import { examples, type Act, type CommandContext } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface TenantOptions extends TargetOptions {
  tenant: string;
  json?: boolean;
}
interface AddOptions extends TenantOptions {
  server: string;
  url: string;
  authSecret?: string;
  authParameter?: string;
  authEnv?: string;
  authFile?: string;
  authHeader?: string;
  ttl?: number;
  allowKeyword?: string[];
}
interface ServerOptions extends TenantOptions {
  server: string;
  tool?: string[];
}

function ttlMs(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1_000 || n > 86_400_000)
    throw new InvalidArgumentError('It must be milliseconds, 1000..86400000.');
  return n;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** The catalog's modules load only when an upstream command runs. */
async function modules() {
  const [core, store, catalog, registry, mcp, keys] = await Promise.all([
    import('../../../functions/core/upstream.js'),
    import('../../../functions/store/upstreams.js'),
    import('../../../functions/store/upstream-catalog.js'),
    import('../../../functions/connectors/registry.js'),
    import('../../../functions/core/mcp.js'),
    import('../../../functions/store/mcp-state-keys.js'),
  ]);
  return { core, store, catalog, registry, mcp, keys };
}

async function opened(opts: TenantOptions, ctx: CommandContext) {
  const m = await modules();
  const { doc, table } = await ctx.table(opts);
  const store = new m.store.UpstreamStore(doc, table);
  return { m, doc, store };
}

export function registerUpstream(program: Command, act: Act): void {
  const upstream = program
    .command('upstream')
    .description("a tenant's upstream MCP servers: register, discover (pin) their tools, review drift");
  examples(upstream, [
    'npx oc upstream add --tenant tenant1 --server github --url https://mcp.example.com/mcp --auth-env GITHUB_MCP_TOKEN',
    'npx oc upstream sync --tenant tenant1 --server github',
    'npx oc upstream list --tenant tenant1',
    'npx oc upstream diff --tenant tenant1 --server github',
    'npx oc upstream accept --tenant tenant1 --server github',
  ]);

  const add = upstream
    .command('add')
    .description('register (or update) an upstream MCP server for a tenant; its credential stays where it is')
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .requiredOption('--server <name>', 'its name in the catalog: actions are <server>.<tool>', nonBlank)
    .requiredOption('--url <url>', 'its Streamable HTTP endpoint (https; http only on loopback)', nonBlank)
    .option('--auth-secret <arn>', 'AWS: a Secrets Manager secret holding the credential')
    .option('--auth-parameter <name>', 'AWS: an SSM SecureString parameter holding the credential')
    .option('--auth-env <variable>', 'locally: a variable holding the credential')
    .option('--auth-file <path>', 'locally: a file holding the credential')
    .option('--auth-header <name>', 'the header carrying it (default Authorization: Bearer <credential>)')
    .option('--ttl <ms>', 'how old a listing may be before a call re-checks it (default 300000)', ttlMs)
    .option('--allow-keyword <keyword>', 'accept this unknown top-level schema keyword (repeatable)', collect)
    .option('--json', 'print the registration as JSON');
  addTargetOptions(add);
  examples(add, [
    'npx oc upstream add --tenant tenant1 --server docs --url http://127.0.0.1:9000/mcp',
    'npx oc upstream add --tenant tenant1 --server github --url https://mcp.example.com/mcp --auth-secret openclause-upstream/tenant1/github --aws',
  ]);
  act(
    add,
    (opts: AddOptions) => `register upstream ${opts.server} for ${opts.tenant}`,
    async (opts: AddOptions, ctx) => {
      const m = await modules();
      const reserved = m.core.reservedServerNames(Object.keys(m.registry.CONNECTOR_DEFINITIONS));
      const problem = m.core.serverNameProblem(opts.server, reserved);
      if (problem) throw new UsageError(`${problem}.`);
      const url = checkedUrl(opts.url);
      const given = (
        [
          ['secret', opts.authSecret],
          ['parameter', opts.authParameter],
          ['env', opts.authEnv],
          ['file', opts.authFile],
        ] as const
      ).filter(([, ref]) => ref !== undefined);
      if (given.length > 1)
        throw new UsageError('Give at most one of --auth-secret, --auth-parameter, --auth-env, --auth-file.');
      const auth = m.core.UpstreamAuth.parse(
        given.length === 0
          ? { kind: 'none' }
          : {
              kind: given[0]![0],
              ref: given[0]![1],
              ...(opts.authHeader ? { header: opts.authHeader } : {}),
            },
      );
      const refProblem = m.core.credentialRefProblem(auth, opts.tenant);
      if (refProblem) throw new UsageError(`--auth-${auth.kind}: ${refProblem}.`);
      const { store } = await opened(opts, ctx);
      const existing = await store.getServer(opts.tenant, opts.server);
      const server = {
        tenantId: opts.tenant,
        server: opts.server,
        url,
        auth,
        ttlMs: opts.ttl ?? m.core.DEFAULT_UPSTREAM_TTL_MS,
        allowKeywords: opts.allowKeyword ?? [],
        createdAt: existing?.createdAt ?? new Date().toISOString(),
      };
      await store.putServer(server);
      if (opts.json) ctx.json(server);
      else
        ctx.out(
          `${existing ? 'updated' : 'registered'} upstream ${opts.server} for ${opts.tenant} (${url}, auth ${auth.kind}); next: npx oc upstream sync --tenant ${opts.tenant} --server ${opts.server}`,
        );
    },
  );

  const sync = upstream
    .command('sync')
    .description("list the server's tools (tools/list) and pin them; a changed listing disables its tool")
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .requiredOption('--server <name>', 'the registered server', nonBlank)
    .option('--json', 'print the outcome as JSON');
  addTargetOptions(sync);
  act(
    sync,
    (opts: ServerOptions) => `sync upstream ${opts.server} of ${opts.tenant}`,
    async (opts: ServerOptions, ctx) => {
      const { m, doc, store } = await opened(opts, ctx);
      const nativeMcpNames = new Set([
        ...m.registry.ACTION_SPECS.map((s) => m.mcp.mcpToolName(s.name)),
        ...m.mcp.GATEWAY_TOOLS.map((t) => t.name),
      ]);
      let plan;
      try {
        plan = await m.catalog.syncUpstream(
          {
            store,
            readers: credentialReaders(doc, m.keys.ssmCall, opts),
            nativeMcpNames,
            now: () => new Date(),
          },
          opts.tenant,
          opts.server,
        );
      } catch (error) {
        if (error instanceof m.catalog.UpstreamNotRegistered)
          throw new CliError(
            `${error.message}: npx oc upstream add --tenant ${opts.tenant} --server ${opts.server} --url ...`,
          );
        if (error instanceof m.store.UpstreamCredentialError || (error as Error).name === 'UpstreamListError')
          throw new CliError((error as Error).message);
        throw error;
      }
      if (opts.json) {
        const { tools: _tools, ...summary } = plan;
        ctx.json(summary);
      } else {
        ctx.out(
          `${opts.server}: ${plan.added.length} pinned, ${plan.unchanged.length} unchanged, ${plan.drifted.length} drifted (disabled), ${plan.removed.length} removed, ${plan.refused.length} refused`,
        );
        for (const name of plan.drifted)
          ctx.out(
            `  drifted: ${opts.server}.${name} (npx oc upstream diff --tenant ${opts.tenant} --server ${opts.server})`,
          );
        for (const r of plan.refused) ctx.out(`  refused: ${r.tool}: ${r.reason}`);
      }
      return plan.drifted.length > 0 ? 1 : 0;
    },
  );

  const list = upstream
    .command('list')
    .description("the tenant's upstream servers and tools, with each tool's status and pinned hash")
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .option('--json', 'print the catalog as JSON');
  addTargetOptions(list);
  act(
    list,
    (opts: TenantOptions) => `list the upstream catalog of ${opts.tenant}`,
    async (opts: TenantOptions, ctx) => {
      const { store } = await opened(opts, ctx);
      const { servers, tools } = await store.catalog(opts.tenant);
      if (opts.json) {
        ctx.json({
          servers: servers.map(({ tenantId: _t, ...s }) => s),
          tools: tools.map(({ tenantId: _t, listing, seen, ...t }) => ({
            ...t,
            description: listing.description,
            ...(seen ? { seen_hash: seen.hash } : {}),
          })),
        });
        return;
      }
      if (servers.length === 0) ctx.out(`no upstream servers for ${opts.tenant}`);
      for (const s of servers) {
        ctx.out(
          `${s.server}  ${s.url}  auth ${s.auth.kind}  ttl ${s.ttlMs} ms  listed ${s.listedAt ?? 'never'}`,
        );
        for (const t of tools.filter((t) => t.server === s.server))
          ctx.out(
            `  ${t.action}  ${t.status}  mcp ${t.mcpName}  sha256 ${t.hash.slice(0, 16)}${t.reason ? `  (${t.reason})` : ''}`,
          );
      }
    },
  );

  const diff = upstream
    .command('diff')
    .description("what changed in the server's drifted tools (pinned listing vs the one seen last)")
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .requiredOption('--server <name>', 'the registered server', nonBlank)
    .option('--json', 'print the changes as JSON');
  addTargetOptions(diff);
  act(
    diff,
    (opts: ServerOptions) => `diff upstream ${opts.server} of ${opts.tenant}`,
    async (opts: ServerOptions, ctx) => {
      const { m, store } = await opened(opts, ctx);
      const drifted = await m.catalog.diffUpstream(store, opts.tenant, opts.server);
      if (opts.json) {
        ctx.json(drifted);
        return;
      }
      if (drifted.length === 0) ctx.out(`no drifted tools on ${opts.server}`);
      for (const d of drifted) {
        ctx.out(
          `${d.action}: pinned ${d.pinnedHash.slice(0, 16)} -> seen ${d.seenHash.slice(0, 16)} at ${d.seenAt}`,
        );
        for (const c of d.changes) {
          ctx.out(`  ${c.field}:`);
          ctx.out(`    - ${JSON.stringify(c.pinned) ?? '(none)'}`);
          ctx.out(`    + ${JSON.stringify(c.seen) ?? '(none)'}`);
        }
      }
    },
  );

  const accept = upstream
    .command('accept')
    .description(
      "pin the listing seen last of the server's drifted tools (all, or --tool): they are callable again",
    )
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .requiredOption('--server <name>', 'the registered server', nonBlank)
    .addOption(new Option('--tool <name>', 'only this tool (repeatable)').argParser(collect));
  addTargetOptions(accept);
  act(
    accept,
    (opts: ServerOptions) => `accept the drift of upstream ${opts.server} of ${opts.tenant}`,
    async (opts: ServerOptions, ctx) => {
      const { m, store } = await opened(opts, ctx);
      const accepted = await m.catalog.acceptUpstream(
        store,
        opts.tenant,
        opts.server,
        opts.tool ?? [],
        new Date(),
        // Sealed in the `upstream.accepted` fact: who let the changed listing through.
        process.env.OC_OPERATOR ?? osUser(),
      );
      if (accepted.length === 0)
        throw new CliError(
          `no drifted tools to accept on ${opts.server}${opts.tool ? ` named ${opts.tool.join(', ')}` : ''}`,
        );
      ctx.out(
        `accepted ${accepted.map((t) => `${opts.server}.${t}`).join(', ')}: pinned to the listing seen last`,
      );
    },
  );
}

/** An http(s) URL without credentials in it (they would be stored); http only on loopback. */
function checkedUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--url ${value.slice(0, 100)} is not a URL.`);
  }
  if (url.username || url.password) throw new UsageError('--url must not carry credentials: use --auth-*.');
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    throw new UsageError('--url must be https (http only on loopback, for local runs).');
  return url.toString();
}

/** Secrets Manager and SSM with the table client's credentials and region (`--aws`); variables locally. */
function credentialReaders(
  doc: {
    config: {
      region: () => Promise<string>;
      credentials: () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }>;
    };
  },
  ssmCall: (
    access: {
      region: () => Promise<string>;
      credentials: () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }>;
    },
    action: string,
    input: Record<string, unknown>,
  ) => Promise<Record<string, unknown>>,
  opts: TargetOptions,
) {
  const access = { region: () => doc.config.region(), credentials: () => doc.config.credentials() };
  return {
    env: process.env,
    file: (path: string) => readFileSync(path, 'utf8'),
    ...(opts.aws
      ? {
          secret: async (ref: string) => {
            const { SecretsManagerClient, GetSecretValueCommand } =
              await import('@aws-sdk/client-secrets-manager');
            const client = new SecretsManagerClient({});
            try {
              return (await client.send(new GetSecretValueCommand({ SecretId: ref }))).SecretString ?? '';
            } finally {
              client.destroy();
            }
          },
          parameter: async (ref: string) => {
            const out = await ssmCall(access, 'GetParameter', { Name: ref, WithDecryption: true });
            return String((out.Parameter as { Value?: unknown } | undefined)?.Value ?? '');
          },
        }
      : {}),
  };
}

/** The OS user, or `operator` where there is none (a container without a passwd entry). */
function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'operator';
  }
}

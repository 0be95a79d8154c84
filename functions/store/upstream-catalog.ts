/**
 * The upstream catalog's use cases over the store (issue 25): discovery (`oc upstream sync`, and
 * the drift check before a call whose listing is stale), `diff` and `accept`, the submit core's
 * lookup of a tenant's upstream action, and the resolver the `mcp-upstream` connector runs a call
 * with (the seam of `core/upstream-types.ts`).
 */
import { SERVER_NAME, TOOL_NAME } from '../core/upstream.js';
import { listingChanges, planSync, type SyncPlan } from '../core/upstream-sync.js';
import type { UpstreamResolver } from '../core/upstream-types.js';
import { listUpstreamTools, type ListToolsOptions } from './upstream-discovery.js';
import {
  upstreamHeaders,
  type CredentialReaders,
  type UpstreamDrift,
  type UpstreamStore,
} from './upstreams.js';

export class UpstreamNotRegistered extends Error {
  override readonly name = 'UpstreamNotRegistered';
}

export interface SyncDeps {
  store: UpstreamStore;
  readers: CredentialReaders;
  /** Every MCP tool name the gateway serves natively (reserved). */
  nativeMcpNames: ReadonlySet<string>;
  now: () => Date;
  /** `tools/list` (the official client by default; tests and the connector give their own fetch). */
  list?: (options: ListToolsOptions) => Promise<unknown[]>;
  fetch?: typeof fetch;
  /** Told every newly seen drift after it is recorded (the tenant's announcement). Must not throw. */
  onDrift?: (tenantId: string, drift: UpstreamDrift) => void | Promise<void>;
}

/**
 * Lists the upstream's tools and brings the tenant's catalog in line with `planSync`: new tools
 * pinned, changed ones disabled (`drifted`, recorded once per new listing), vanished ones `removed`.
 */
export async function syncUpstream(
  deps: SyncDeps,
  tenantId: string,
  serverName: string,
  detectedBy: UpstreamDrift['detectedBy'] = 'sync',
): Promise<SyncPlan> {
  const server = await deps.store.getServer(tenantId, serverName);
  if (!server) throw new UpstreamNotRegistered(`no upstream server ${serverName} for tenant ${tenantId}`);
  const headers = await upstreamHeaders(server.auth, deps.readers, tenantId);
  const listed = await (deps.list ?? listUpstreamTools)({
    url: server.url,
    headers,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  const now = deps.now();
  const existing = (await deps.store.catalog(tenantId)).tools.filter((t) => t.server === serverName);
  const before = new Map(existing.map((t) => [t.tool, t]));
  const plan = planSync({ server, existing, listed, nativeMcpNames: deps.nativeMcpNames, now });
  for (const tool of plan.tools) {
    const old = before.get(tool.tool);
    if (old && JSON.stringify(old) === JSON.stringify(tool)) continue;
    await deps.store.putTool(tenantId, tool);
    // A drift is recorded (and announced) once per new listing, not at every sync that sees it again.
    if (tool.status === 'drifted' && tool.seen && old?.seen?.hash !== tool.seen.hash) {
      const drift: UpstreamDrift = {
        server: serverName,
        tool: tool.tool,
        at: tool.seen.at,
        pinnedHash: tool.hash,
        seenHash: tool.seen.hash,
        fields: listingChanges(tool.listing, tool.seen.listing).map((c) => c.field),
        detectedBy,
      };
      await deps.store.recordDrift(tenantId, drift);
      try {
        await deps.onDrift?.(tenantId, drift);
      } catch {
        // The drift is recorded and the tool disabled: a failed announcement changes neither.
      }
    }
  }
  await deps.store.putServer({ ...server, listedAt: now.toISOString() });
  return plan;
}

/** What changed in each drifted tool of a server (for `oc upstream diff`). */
export async function diffUpstream(store: UpstreamStore, tenantId: string, serverName: string) {
  const { tools } = await store.catalog(tenantId);
  return tools
    .filter((t) => t.server === serverName && t.status === 'drifted' && t.seen)
    .map((t) => ({
      tool: t.tool,
      action: t.action,
      pinnedHash: t.hash,
      seenHash: t.seen!.hash,
      seenAt: t.seen!.at,
      changes: listingChanges(t.listing, t.seen!.listing),
    }));
}

/**
 * Pins the listing last seen of the server's drifted tools (all, or those named): the operator's
 * review of the change. Answers the accepted tools' names.
 */
export async function acceptUpstream(
  store: UpstreamStore,
  tenantId: string,
  serverName: string,
  only: readonly string[],
  now: Date,
  /** Who accepts (sealed in the `upstream.accepted` fact). */
  acceptedBy = 'operator',
): Promise<string[]> {
  const { tools } = await store.catalog(tenantId);
  const accepted: string[] = [];
  for (const t of tools) {
    if (t.server !== serverName || t.status !== 'drifted' || !t.seen) continue;
    if (only.length > 0 && !only.includes(t.tool)) continue;
    const { seen, reason: _reason, tenantId: _tenant, ...rest } = t;
    await store.putTool(tenantId, {
      ...rest,
      listing: seen.listing,
      hash: seen.hash,
      status: 'enabled',
      pinnedAt: now.toISOString(),
    });
    // Sealed: the chain shows which listing the tenant's operator let through, and when.
    await store.recordAccepted(tenantId, {
      server: serverName,
      tool: t.tool,
      at: now.toISOString(),
      previousHash: t.hash,
      acceptedHash: seen.hash,
      acceptedBy,
    });
    accepted.push(t.tool);
  }
  return accepted;
}

/**
 * The resolver the `mcp-upstream` connector runs a call with: the tenant's server and enabled
 * tool, its credentials read now. A listing older than the server's `ttlMs` is checked first
 * (`syncUpstream`, detected by `call`): a tool whose listing changed is disabled and resolves to
 * null, so the call is refused without running.
 */
export function createUpstreamResolver(deps: SyncDeps): UpstreamResolver {
  return async (tenantId, serverName, toolName) => {
    if (!SERVER_NAME.test(serverName) || !TOOL_NAME.test(toolName)) return null;
    const server = await deps.store.getServer(tenantId, serverName);
    if (!server) return null;
    let tool = await deps.store.getTool(tenantId, serverName, toolName);
    if (!tool || tool.status !== 'enabled') return null;
    const listedAt = server.listedAt ? Date.parse(server.listedAt) : 0;
    if (deps.now().getTime() - listedAt > server.ttlMs) {
      const plan = await syncUpstream(deps, tenantId, serverName, 'call');
      tool = plan.tools.find((t) => t.tool === toolName);
      if (!tool || tool.status !== 'enabled') return null;
    }
    return {
      tenantId,
      server: serverName,
      url: server.url,
      headers: await upstreamHeaders(server.auth, deps.readers, tenantId),
      tool: {
        name: tool.tool,
        inputSchema: tool.listing.inputSchema,
        ...(tool.listing.outputSchema ? { outputSchema: tool.listing.outputSchema } : {}),
        hash: tool.hash,
      },
    };
  };
}

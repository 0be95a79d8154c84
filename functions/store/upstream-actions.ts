/**
 * The submit core's port to a tenant's upstream catalog (issue 25), apart from discovery: the
 * deciding functions (submit, MCP) read the catalog and never list an upstream, so their bundles
 * carry no MCP client.
 */
import type { ActionSpec } from '../connectors/sdk.js';
import type { ActionsFile } from '../core/policy-data.js';
import {
  SERVER_NAME,
  TOOL_NAME,
  upstreamSpec,
  type UpstreamActions,
  type UpstreamTool,
} from '../core/upstream.js';
import type { UpstreamStore } from './upstreams.js';

/**
 * The submit core's port: the caller's tenant's `<server>.<tool>` with the spec policy data
 * classifies it with (target param and risk floor). Names that cannot be a server's or a tool's
 * are no tenant's (no read).
 */
export function upstreamActions(input: {
  store: UpstreamStore;
  actions: ActionsFile;
  nativeTools: ReadonlySet<string>;
  timeoutMs: number;
}): UpstreamActions {
  const specs = new Map<string, ActionSpec>();
  const specOf = (tool: UpstreamTool): ActionSpec => {
    const key = `${tool.action}\n${tool.hash}`;
    let spec = specs.get(key);
    if (!spec) {
      spec = upstreamSpec(
        tool,
        {
          target: input.actions.targets?.[tool.action] ?? null,
          floor: input.actions.risk_floors?.[tool.action] ?? 0,
        },
        input.timeoutMs,
      );
      if (specs.size > 1000) specs.clear();
      specs.set(key, spec);
    }
    return spec;
  };
  const classified = new Set([...input.actions.read, ...input.actions.write, ...input.actions.destructive]);
  return {
    nativeTools: input.nativeTools,
    classifies: (action) => classified.has(action),
    async lookup(tenantId, server, toolName) {
      if (!SERVER_NAME.test(server) || !TOOL_NAME.test(toolName) || input.nativeTools.has(server))
        return undefined;
      const tool = await input.store.getTool(tenantId, server, toolName);
      if (!tool) return undefined;
      if (tool.status !== 'enabled') return { kind: 'disabled', tool };
      return { kind: 'callable', tool, spec: specOf(tool) };
    },
  };
}

/** The MCP server of an AppState: the adapter with the REST core's use cases as its ports. */
import { mcpServer, type McpServerAdapter } from '../adapters/mcp-server.js';
import { ACTION_SPECS, CONNECTOR_DEFINITIONS } from '../connectors/registry.js';
import type { ActionSpec } from '../connectors/sdk.js';
import {
  disabledMessage,
  upstreamMcpTools,
  upstreamShapedName,
  upstreamSpec,
  type UpstreamTool,
} from '../core/upstream.js';
import { UpstreamStore } from '../store/upstreams.js';
import { executeApproved } from '../core/execute.js';
import { buildCatalog, mcpToolName } from '../core/mcp.js';
import { resolveCall } from '../core/mcp-resolve.js';
import { buildRiskFloors } from '../core/risk.js';
import { readEvent } from '../core/scope.js';
import { withdrawToolCall } from '../core/withdraw.js';
import type { ExecuteDeps } from '../core/execute.js';
import { approvalDeps } from './approvals-state.js';
import { approvalUrl, submitToolCall } from '../core/submit.js';
import { mcpSigner, type McpSigner } from '../adapters/mcp-signing.js';
import type { McpKeyRing } from '../core/mcp-protocol.js';
import { ENV } from '../shared/constants.js';
import { ephemeralKeyRing, fileKeyRing, ssmKeyRing, type KeyRingSource } from '../store/mcp-state-keys.js';
import type { AppState } from './app-state.js';
import { executeDeps } from './execution-state.js';
import { livePolicyBundle, submitDeps } from './governance.js';
import { spendRateLimit } from './rate-limit.js';

const SPECS_BY_TOOL = new Map(ACTION_SPECS.map((spec) => [mcpToolName(spec.name), spec]));
const NATIVE_TOOLS: ReadonlySet<string> = new Set(Object.keys(CONNECTOR_DEFINITIONS));

const upstreamStores = new WeakMap<AppState, UpstreamStore>();
function upstreamStoreOf(state: AppState): UpstreamStore {
  let store = upstreamStores.get(state);
  if (!store) upstreamStores.set(state, (store = new UpstreamStore(state.doc, state.config.tableName)));
  return store;
}

/**
 * A disabled upstream tool's spec for the MCP adapter: the call goes on to submit, which refuses
 * it (422 UPSTREAM_TOOL_DISABLED, a tool error here) with the reason, and writes nothing.
 */
function disabledSpec(tool: UpstreamTool): ActionSpec {
  const spec = upstreamSpec(tool, { target: null, floor: 0 }, 1);
  // `tools/resolve` normalizes with it: a disabled tool previews as the refusal `tools/call` meets
  // (submit refuses it from its own lookup, which this never replaces).
  return {
    ...spec,
    normalize: () => ({
      ok: false,
      message: disabledMessage(tool),
      details: [{ path: 'action', message: `${tool.action} is ${tool.status}` }],
    }),
  };
}

const servers = new WeakMap<AppState, McpServerAdapter>();
/** The state's MCP server: policy data, floors and the deployed connectors read once per instance. */
export function mcpServerOf(state: AppState): McpServerAdapter {
  let server = servers.get(state);
  if (!server) {
    const { actions } = livePolicyBundle(state);
    const floors = buildRiskFloors(ACTION_SPECS, actions.risk_floors);
    const deployed = Object.keys(state.config.connectorFunctions);
    const live = state.config.connectorsMode === 'live' && deployed.length > 0;
    // An optional connector not deployed (`-c templateConnector=true` not given) is not offered.
    const specs = ACTION_SPECS.filter((spec) => !live || deployed.includes(spec.name.split('.')[0]!));
    server = mcpServer({
      specsByTool: SPECS_BY_TOOL,
      listTools: async (caller, agentId) =>
        [
          ...buildCatalog({
            specs,
            actions,
            floors,
            policy: submitDeps(state).policy,
            tenantId: caller.tenantId,
            agentId,
            now: state.clock.now(),
          }).map((entry) => entry.tool),
          // The tenant's upstream MCP tools (issue 25), with the same policy-derived filtering.
          ...upstreamMcpTools({
            tools: (await upstreamStoreOf(state).catalog(caller.tenantId)).tools,
            actions,
            policy: submitDeps(state).policy,
            tenantId: caller.tenantId,
            agentId,
            now: state.clock.now(),
          }),
        ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      upstreamSpec: {
        shaped: (name) => upstreamShapedName(name, NATIVE_TOOLS),
        get: async (tenantId, name) => {
          const tool = await upstreamStoreOf(state).findByMcpName(tenantId, name);
          // Disabled tools are still found: submit refuses them with their reason.
          const found = tool && (await submitDeps(state).upstream?.lookup(tenantId, tool.server, tool.tool));
          return found?.kind === 'callable' ? found.spec : found ? disabledSpec(found.tool) : undefined;
        },
      },
      resolve: (caller, agentId, spec, args) =>
        resolveCall(
          { ...submitDeps(state), actionsFile: actions },
          { spec, tenantId: caller.tenantId, agentId, args, now: state.clock.now() },
        ),
      spendRateLimit: (tenantId) => spendRateLimit(state, tenantId),
      submit: (input) => submitToolCall(submitDeps(state), input),
      execute: (caller, eventId) => executeApproved(executeDeps(state), { caller, eventId }),
      executeNoWait: (caller, eventId) => executeApproved(noWait(executeDeps(state)), { caller, eventId }),
      withdraw: (caller, eventId) =>
        withdrawToolCall(
          { events: state.toolcalls, approvals: state.approvals, clock: state.clock, ids: state.ids },
          { caller, eventId },
        ),
      ...(state.overrides.mcpTaskResultWaitMs !== undefined
        ? { taskResultWaitMs: state.overrides.mcpTaskResultWaitMs }
        : {}),
      grantTtlSec: (tenantId) => approvalDeps(state).tenant(tenantId)?.grant_ttl_sec ?? 3_600,
      approverGroup: (tenantId) => approvalDeps(state).tenant(tenantId)?.approver_group ?? '',
      getEvent: (caller, eventId) => readEvent(state.toolcalls, caller, eventId),
      approvalUrl: (id) => approvalUrl(state.config.publicBaseUrl, id),
      now: () => state.clock.now(),
      signer: signerOf(keyRingSource(state)),
    });
    servers.set(state, server);
  }
  return server;
}

/**
 * The key ring's home: the SSM parameter CDK names (AWS), the key file (`npm start`: the data
 * folder), else, off Lambda only, a ring of this process (tests). In Lambda with neither, every
 * use of signed state fails closed.
 */
function keyRingSource(state: AppState): KeyRingSource {
  const { config } = state;
  if (config.mcpStateKeyParameter) {
    // The function's own credentials and region, as its DynamoDB client resolves them.
    const aws = state.doc.config;
    return ssmKeyRing(
      { region: () => aws.region(), credentials: () => aws.credentials() },
      config.mcpStateKeyParameter,
    );
  }
  if (config.mcpStateKeyFile) return fileKeyRing(config.mcpStateKeyFile);
  if (!process.env.AWS_LAMBDA_FUNCTION_NAME) return ephemeralKeyRing();
  return () => Promise.reject(new Error(`${ENV.mcpStateKeyParameter} is not set: no MCP state key`));
}

/** A signer per ring read (the ring is re-read every few minutes, so a rotation reaches it). */
function signerOf(source: KeyRingSource): () => Promise<McpSigner> {
  const signers = new WeakMap<McpKeyRing, McpSigner>();
  return async () => {
    const ring = await source();
    let signer = signers.get(ring);
    if (!signer) signers.set(ring, (signer = mcpSigner(ring)));
    return signer;
  };
}

/** Execute's dependencies with no wait on an execution in flight: a task poll answers `working` at once. */
const noWaits = new WeakMap<ExecuteDeps, ExecuteDeps>();
function noWait(deps: ExecuteDeps): ExecuteDeps {
  let d = noWaits.get(deps);
  if (!d) noWaits.set(deps, (d = { ...deps, config: { ...deps.config, inFlightWaitMs: 0 } }));
  return d;
}

/**
 * A governed tool (a connector action) by its MCP name, listed or not, or a name an upstream tool
 * could have (the adapter takes its rate-limit token: the edge must not take a second one).
 */
export const isGovernedTool = (name: string): boolean =>
  SPECS_BY_TOOL.has(name) || upstreamShapedName(name, NATIVE_TOOLS);

/** A governed tool's action, by its MCP name. */
export const governedSpec = (name: string) => SPECS_BY_TOOL.get(name);

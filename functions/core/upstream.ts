/**
 * Upstream MCP servers as per-tenant connectors (issue 25), pure: the names (server, tool, the
 * `<server>.<tool>` action and its MCP tool name), the pinned hash of a tool's listing, the checks
 * an upstream's schemas must pass before they are stored, what a discovery (`oc upstream sync`)
 * does to a tenant's catalog, and the action spec the submit core normalizes an upstream call with.
 *
 * Everything an upstream says is untrusted: its schemas are checked (size, depth, keywords, local
 * `$ref` only, regex cost) and then only interpreted (the MCP bundle's `@cfworker/json-schema`
 * validator: no code is generated from them); its descriptions and annotations are its claims,
 * shown to approvers as such and never deciding anything (policy data classifies every action).
 */
import { CfWorkerJsonSchemaValidator } from '@modelcontextprotocol/server/validators/cf-worker';
import { LIMITS } from '../shared/constants.js';
import * as z from 'zod';
import type { ActionSpec, NormalizedRequest, TargetedRequest } from '../connectors/sdk.js';
import { canon, sha256Hex } from './evidence.js';
import { describe, groupOf, IDEMPOTENCY_ARGUMENT, type McpTool } from './mcp.js';
import type { ActionsFile } from './policy-data.js';
import type { PolicyEngine } from './policy.js';

/** The connector every upstream call is routed to (h25b's generic MCP client). */
export { UPSTREAM_CONNECTOR } from './upstream-types.js';
import { UPSTREAM_PARAMETER_PREFIX, UPSTREAM_SECRET_PREFIX } from './upstream-types.js';

/** A server's name in a tenant's catalog: no `_`, `-` or `.`, so `<server>_` delimits its MCP names. */
export const SERVER_NAME = /^[a-z][a-z0-9]{0,31}$/;
/** An upstream tool's name as the gateway accepts it (the request's `action`; no dots). */
export const TOOL_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** What a cached listing may age before a call re-lists the upstream (drift check). */
export const DEFAULT_UPSTREAM_TTL_MS = 5 * 60_000;

/** Bounds on what an upstream may declare (per tool, per listing). */
export const UPSTREAM_LIMITS = {
  maxTools: 200,
  maxSchemaBytes: 32_768,
  maxSchemaDepth: 12,
  maxPatternLength: 256,
  maxDescriptionChars: 4_096,
  maxTitleChars: 200,
} as const;

/** One tool as an upstream lists it (`tools/list`), the fields the pinned hash covers. */
export const UpstreamListing = z.object({
  name: z.string().min(1).max(128),
  title: z.string().max(UPSTREAM_LIMITS.maxTitleChars).optional(),
  description: z.string().max(UPSTREAM_LIMITS.maxDescriptionChars).optional(),
  inputSchema: z.record(z.string(), z.unknown()),
  outputSchema: z.record(z.string(), z.unknown()).optional(),
  annotations: z.record(z.string(), z.unknown()).optional(),
});
export type UpstreamListing = z.infer<typeof UpstreamListing>;

/** How the gateway authenticates to an upstream: a reference, never the credential. */
export const UpstreamAuth = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('none') }),
  z.strictObject({
    /** `secret`: Secrets Manager (AWS); `parameter`: SSM SecureString; `env`, `file`: local runs. */
    kind: z.enum(['secret', 'parameter', 'env', 'file']),
    ref: z.string().min(1).max(2048),
    /** The header carrying it: `authorization` (default) sends `Bearer <value>`; another sends the value. */
    header: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,64}$/)
      .optional(),
  }),
]);
export type UpstreamAuth = z.infer<typeof UpstreamAuth>;

/** One registered upstream server of a tenant. */
export interface UpstreamServer {
  tenantId: string;
  server: string;
  url: string;
  auth: UpstreamAuth;
  ttlMs: number;
  /** Top-level schema keywords the operator accepted beyond the known ones. */
  allowKeywords: string[];
  createdAt: string;
  /** When the listing was last compared with the pinned one (sync or a call's drift check). */
  listedAt?: string;
}

export type UpstreamToolStatus =
  /** Callable (if policy data classifies it). */
  | 'enabled'
  /** Its listing changed from the pinned one: refused until `oc upstream accept`. */
  | 'drifted'
  /** No longer listed by the upstream. */
  | 'removed'
  /** Listed, but its name or schemas break a rule: never callable (the reason says which). */
  | 'refused';

/** One tool of a tenant's catalog: the pinned listing and its hash. */
export interface UpstreamTool {
  server: string;
  /** The upstream's own tool name (`ConnectorRequest.action`). */
  tool: string;
  /** `<server>.<tool>`, as policy data and the REST API name it. */
  action: string;
  /** The MCP tool name the gateway's own MCP endpoint lists it under. */
  mcpName: string;
  listing: UpstreamListing;
  hash: string;
  status: UpstreamToolStatus;
  reason?: string;
  pinnedAt: string;
  /** The listing seen last that differs from the pinned one (drifted), for `oc upstream diff`. */
  seen?: { listing: UpstreamListing; hash: string; at: string };
}

/** Why a name cannot be a server's, or undefined. */
export function serverNameProblem(server: string, reserved: Iterable<string>): string | undefined {
  if (!SERVER_NAME.test(server))
    return `server name "${server}" must be 1-32 of a-z0-9, starting with a letter (no "_", "-" or ".": they delimit action and tool names)`;
  for (const name of reserved)
    if (name === server)
      return `server name "${server}" is reserved (a native connector or the gateway's own)`;
  return undefined;
}

/** The names no upstream server may take: every native connector's, and the gateway's `oc`. */
export function reservedServerNames(nativeTools: Iterable<string>): string[] {
  return [...nativeTools, 'oc', 'mcp', 'upstream'];
}

/** The pinned hash: SHA-256 over the canonical JSON (RFC 8785) of what the listing says. */
export function listingHash(listing: UpstreamListing): string {
  const { name, title, description, inputSchema, outputSchema, annotations } = listing;
  return sha256Hex(
    canon({
      name,
      ...(title !== undefined ? { title } : {}),
      ...(description !== undefined ? { description } : {}),
      inputSchema,
      ...(outputSchema !== undefined ? { outputSchema } : {}),
      ...(annotations !== undefined ? { annotations } : {}),
    }),
  );
}

const validatorProvider = new CfWorkerJsonSchemaValidator({ shortcircuit: false });

/** Policy data's word on one upstream action (`policy/actions.json`). */
export interface UpstreamClassification {
  /** The param naming the object it acts on (`targets`), or null: `resource` stays empty. */
  target: string | null;
  /** The risk floor (`risk_floors`; 0 when absent). */
  floor: number;
}

/**
 * The action spec of an upstream tool, as the submit core uses it: `normalize` derives the target
 * the policy data names and checks the params with the pinned input schema, interpreted.
 */
export function upstreamSpec(
  tool: UpstreamTool,
  classification: UpstreamClassification,
  timeoutMs: number,
): ActionSpec {
  const validate = validatorProvider.getValidator(tool.listing.inputSchema as never);
  const { target } = classification;
  const refusal = (path: string, message: string): NormalizedRequest => ({
    ok: false,
    message: `${path} ${message}`,
    details: [{ path, message }],
  });
  const normalize = (request: TargetedRequest): NormalizedRequest => {
    let params = request.params;
    const { resource } = request;
    if (target === null) {
      if (resource !== '')
        return refusal(
          'resource',
          `must be empty: policy data names no target param for ${tool.action} (approvers see every param)`,
        );
    } else {
      const given = params[target];
      if (given === undefined && resource !== '') params = { ...params, [target]: resource };
      else if (given !== undefined && resource !== '' && String(given) !== resource)
        return refusal('resource', `names another object than params.${target}`);
    }
    const checked = validate(params);
    if (!checked.valid)
      return {
        ok: false,
        message: `params do not match ${tool.action}'s input schema`,
        details: String(checked.errorMessage ?? 'invalid')
          .split('; ')
          .slice(0, 20)
          .map((line) => {
            const [pointer, ...rest] = line.split(': ');
            return {
              path: `params${(pointer ?? '').replace(/^#/, '').replace(/\//g, '.')}`,
              message: rest.join(': ').slice(0, 300) || 'is invalid',
            };
          }),
      };
    if (target === null) return { ok: true, params, resource: '' };
    const value = params[target];
    if (typeof value === 'string' && value !== '') return { ok: true, params, resource: value };
    if (typeof value === 'number' && Number.isSafeInteger(value))
      return { ok: true, params, resource: String(value) };
    return refusal(
      `params.${target}`,
      'is required: the target param must be a non-empty string or an integer',
    );
  };
  return Object.freeze({
    name: tool.action,
    action: tool.tool,
    risk: classification.floor,
    timeoutMs,
    // The pinned JSON Schemas are what the MCP endpoint lists; these only type the spec.
    input: z.record(z.string(), z.unknown()),
    output: z.record(z.string(), z.unknown()),
    target,
    normalize,
  });
}

/**
 * The claims an approver is shown beside an upstream call: the upstream's own title, description
 * and annotations, bounded and labelled as what the upstream says (policy decided; these did not).
 */
export function upstreamClaims(tool: UpstreamTool): Record<string, string> {
  const { listing } = tool;
  const claims: Record<string, string> = {
    'upstream (claims)': `${tool.server} tool ${tool.tool}, pinned ${tool.hash.slice(0, 12)}`,
  };
  if (listing.title) claims['upstream title (claim)'] = listing.title.slice(0, 200);
  if (listing.description) claims['upstream description (claim)'] = listing.description.slice(0, 1000);
  if (listing.annotations) claims['upstream annotations (claim)'] = canon(listing.annotations).slice(0, 500);
  return claims;
}

/** The engine's reason for an action it does not know (`REASON_NOT_ALLOWLISTED` in policy.ts). */
export const UNKNOWN_ACTION_REASON = 'action not in allowlist';

/** A tenant's upstream action as submit finds it. */
export type UpstreamLookup =
  | { kind: 'callable'; spec: ActionSpec; tool: UpstreamTool }
  /** In the tenant's catalog, but not callable now (drifted, removed or refused): 422, nothing written. */
  | { kind: 'disabled'; tool: UpstreamTool };

/**
 * The submit core's port to the tenant's upstream catalog. Consulted only for a `tool` that is no
 * native connector's; `undefined` means the tenant has no such action (another tenant's is never
 * seen: the lookup reads the caller's tenant partition only).
 */
export interface UpstreamActions {
  readonly nativeTools: ReadonlySet<string>;
  /**
   * Does policy data classify `<server>.<tool>` (read, write or destructive)? One that it does not
   * is denied whatever the tenant's catalog holds, so submit asks the catalog only for classified
   * names: an unlisted name costs no read (the deny path stays at 3 DynamoDB requests).
   */
  classifies(action: string): boolean;
  lookup(tenantId: string, server: string, tool: string): Promise<UpstreamLookup | undefined>;
}

/** Why a disabled tool refuses calls, as the agent reads it. */
export function disabledMessage(tool: UpstreamTool): string {
  switch (tool.status) {
    case 'drifted':
      return `${tool.action} is disabled: its upstream listing (description, schemas or annotations) changed from the pinned one; an operator must review it (oc upstream diff) and accept it (oc upstream accept)`;
    case 'removed':
      return `${tool.action} is disabled: the upstream no longer lists it`;
    default:
      return `${tool.action} is disabled: ${tool.reason ?? 'refused at discovery'}`;
  }
}

/** An MCP tool name that could be an upstream tool's: `<server>_<tool>`, the server no native one. */
export function upstreamShapedName(name: string, nativeTools: ReadonlySet<string>): boolean {
  const match = /^([a-z][a-z0-9]{0,31})_[a-z0-9_]{1,64}$/.exec(name);
  return match !== null && !nativeTools.has(match[1]!) && !reservedServerNames([]).includes(match[1]!);
}

/**
 * The tenant's upstream tools its MCP client may see, with the native tools' rule: classified by
 * policy data, and allow or approve for a call as this client would make it (the floor as risk).
 * The schemas are the pinned ones; the annotations are policy data's; the upstream's description
 * is quoted as its claim.
 */
export function upstreamMcpTools(input: {
  tools: readonly UpstreamTool[];
  actions: ActionsFile;
  policy: PolicyEngine;
  tenantId: string;
  agentId: string;
  now: Date;
}): McpTool[] {
  const listed: McpTool[] = [];
  for (const tool of input.tools) {
    if (tool.status !== 'enabled') continue;
    const group = groupOf(input.actions, tool.action);
    if (!group) continue; // unclassified: denied, like any action policy data does not list
    const { decision } = input.policy.evaluate({
      tenantId: input.tenantId,
      agentId: input.agentId,
      tool: tool.server,
      action: tool.tool,
      resource: '',
      riskScore: input.actions.risk_floors?.[tool.action] ?? 0,
      riskFactors: [],
      labels: {},
      userId: '',
      sessionId: '',
      now: input.now,
    });
    if (decision === 'deny') continue;
    const schema = tool.listing.inputSchema;
    const properties = (
      typeof schema.properties === 'object' && schema.properties !== null ? schema.properties : {}
    ) as Record<string, unknown>;
    const claim = tool.listing.description
      ? ` The upstream describes it as (its claim, not the gateway's): ${JSON.stringify(tool.listing.description.slice(0, 1000))}`
      : '';
    listed.push({
      name: tool.mcpName,
      title: tool.action,
      description: `${describe({ name: tool.action }, group, decision)} Served by the upstream MCP server ${tool.server}.${claim}`,
      inputSchema: {
        ...schema,
        type: 'object',
        properties: {
          ...properties,
          [IDEMPOTENCY_ARGUMENT]: {
            type: 'string',
            minLength: 1,
            maxLength: LIMITS.maxIdempotencyKeyBytes,
            description:
              'Optional. Calls with the same key run once: a repeat answers with the first result.',
          },
        },
      },
      ...(decision === 'allow' && tool.listing.outputSchema
        ? { outputSchema: { ...tool.listing.outputSchema, type: 'object' as const } }
        : {}),
      annotations: {
        title: tool.action,
        readOnlyHint: group === 'read',
        destructiveHint: group === 'destructive',
        idempotentHint: group === 'read',
        openWorldHint: true,
      },
    });
  }
  return listed;
}

/**
 * Why an AWS credential reference cannot be this tenant's, or undefined: a Secrets Manager secret
 * must be named `openclause-upstream/<tenant>/…` and an SSM parameter `/openclause-upstream/<tenant>/…`
 * (as a name or inside an ARN). The connector's role may read only those prefixes, and the tenant
 * in the name keeps one tenant's registration from naming another's credential.
 */
export function credentialRefProblem(auth: UpstreamAuth, tenantId: string): string | undefined {
  if (auth.kind === 'secret') {
    const prefix = `${UPSTREAM_SECRET_PREFIX}${tenantId}/`;
    const name = auth.ref.startsWith('arn:') ? (auth.ref.split(':secret:')[1] ?? '') : auth.ref;
    if (!name.startsWith(prefix) || name.length === prefix.length)
      return `the secret must be named ${prefix}<name> (this tenant's upstream credentials)`;
  }
  if (auth.kind === 'parameter') {
    const prefix = `${UPSTREAM_PARAMETER_PREFIX}${tenantId}/`;
    const name = auth.ref.startsWith('arn:') ? `/${auth.ref.split(':parameter/')[1] ?? ''}` : auth.ref;
    if (!name.startsWith(prefix) || name.length === prefix.length)
      return `the parameter must be named ${prefix}<name> (this tenant's upstream credentials)`;
  }
  return undefined;
}

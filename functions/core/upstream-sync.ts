/**
 * Discovery's rules (issue 25), pure, apart from what the deciding functions import (their
 * bundles carry no regex checker): the checks an upstream's schemas must pass before they are
 * stored, and what one `tools/list` does to a tenant's catalog (`planSync`).
 */
import { CfWorkerJsonSchemaValidator } from '@modelcontextprotocol/server/validators/cf-worker';
import safeRegex from 'safe-regex2';
import { canon } from './evidence.js';
import { IDEMPOTENCY_ARGUMENT, mcpToolName } from './mcp.js';
import {
  listingHash,
  TOOL_NAME,
  UPSTREAM_LIMITS,
  UpstreamListing,
  type UpstreamServer,
  type UpstreamTool,
} from './upstream.js';

/**
 * The JSON Schema 2020-12 keywords an upstream tool schema may carry at its top level (plus the
 * annotations MCP SDKs emit). Anything else is refused unless the operator opts in per server
 * (`--allow-keyword`): an unknown keyword is one the validator ignores, so a constraint the
 * upstream relies on would silently not be checked.
 */
export const KNOWN_TOP_LEVEL_KEYWORDS: ReadonlySet<string> = new Set([
  '$schema',
  '$id',
  '$defs',
  'definitions',
  '$comment',
  'title',
  'description',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'patternProperties',
  'propertyNames',
  'minProperties',
  'maxProperties',
  'dependentRequired',
  'dependentSchemas',
  'unevaluatedProperties',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
  'if',
  'then',
  'else',
  'enum',
  'const',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
]);

const validatorProvider = new CfWorkerJsonSchemaValidator({ shortcircuit: false });

/**
 * What is wrong with an upstream's schema (empty: nothing): bounded size and depth, known top-level
 * keywords (or opted in), `$ref`s local to the document (the validator never fetches; a remote one
 * could only fail or, elsewhere, be fetched), every `pattern` bounded and free of catastrophic
 * backtracking (safe-regex2's star-height check), and a schema the interpreting validator accepts.
 */
export function schemaProblems(
  schema: unknown,
  options: { root: 'input' | 'output'; allowKeywords?: readonly string[] },
): string[] {
  const problems: string[] = [];
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return ['is not an object'];
  const text = JSON.stringify(schema);
  if (Buffer.byteLength(text) > UPSTREAM_LIMITS.maxSchemaBytes)
    return [`is larger than ${UPSTREAM_LIMITS.maxSchemaBytes} bytes`];
  const top = schema as Record<string, unknown>;
  if (top.type !== 'object') problems.push('must have "type": "object" at its root (MCP tool schemas)');
  const allowed = new Set(options.allowKeywords ?? []);
  for (const key of Object.keys(top))
    if (!KNOWN_TOP_LEVEL_KEYWORDS.has(key) && !allowed.has(key))
      problems.push(`unknown top-level keyword "${key}" (refused unless the operator allows it)`);

  const walk = (node: unknown, path: string, depth: number): void => {
    if (problems.length >= 10) return;
    if (depth > UPSTREAM_LIMITS.maxSchemaDepth) {
      problems.push(`${path || '(root)'} nests deeper than ${UPSTREAM_LIMITS.maxSchemaDepth}`);
      return;
    }
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${path}/${i}`, depth + 1));
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      const at = `${path}/${key}`;
      if ((key === '$ref' || key === '$dynamicRef') && typeof value === 'string' && !value.startsWith('#'))
        problems.push(
          `${at} "${value.slice(0, 80)}" is not local to the schema (remote references are never fetched)`,
        );
      if (key === 'pattern' && typeof value === 'string') checkPattern(value, at, problems);
      if (key === 'patternProperties' && typeof value === 'object' && value !== null)
        for (const pattern of Object.keys(value)) checkPattern(pattern, `${at}/${pattern}`, problems);
      walk(value, at, depth + 1);
    }
  };
  walk(schema, '', 0);
  if (problems.length === 0) {
    try {
      // Building the validator resolves the dialect and the local references once.
      validatorProvider.getValidator(schema as never)({});
    } catch (error) {
      problems.push(`cannot be interpreted: ${String((error as Error).message).slice(0, 200)}`);
    }
  }
  return problems.slice(0, 10);
}

function checkPattern(pattern: string, at: string, problems: string[]): void {
  if (pattern.length > UPSTREAM_LIMITS.maxPatternLength) {
    problems.push(`${at} is longer than ${UPSTREAM_LIMITS.maxPatternLength} characters`);
    return;
  }
  try {
    new RegExp(pattern, 'u');
  } catch {
    problems.push(`${at} is not a valid regular expression`);
    return;
  }
  if (!safeRegex(pattern, { limit: 25 }))
    problems.push(`${at} may backtrack catastrophically (nested quantifiers): refused`);
}

/** What one discovery found, and what the catalog becomes. */
export interface SyncPlan {
  tools: UpstreamTool[];
  added: string[];
  drifted: string[];
  removed: string[];
  refused: { tool: string; reason: string }[];
  unchanged: string[];
}

/**
 * The catalog after a discovery: a new tool is pinned as listed (the operator ran the sync); a
 * pinned tool whose listing changed is `drifted` (disabled, the new listing kept as `seen`) until
 * the operator accepts it; a tool no longer listed is `removed`; a tool whose name or schemas
 * break a rule is `refused` (never callable). Names are checked to map to distinct MCP tool names,
 * none of them a native tool's.
 */
export function planSync(input: {
  server: UpstreamServer;
  existing: readonly UpstreamTool[];
  listed: readonly unknown[];
  /** Every MCP tool name the gateway serves natively (connector actions and gateway tools). */
  nativeMcpNames: ReadonlySet<string>;
  now: Date;
}): SyncPlan {
  const { server, now } = input;
  const at = now.toISOString();
  const plan: SyncPlan = { tools: [], added: [], drifted: [], removed: [], refused: [], unchanged: [] };
  const existing = new Map(input.existing.map((t) => [t.tool, t]));
  const byMcpName = new Map<string, string[]>();
  const candidates: { listing: UpstreamListing; hash: string; reason?: string }[] = [];
  for (const raw of input.listed.slice(0, UPSTREAM_LIMITS.maxTools)) {
    const parsed = UpstreamListing.safeParse(raw);
    if (!parsed.success) {
      const name =
        typeof (raw as { name?: unknown })?.name === 'string' ? (raw as { name: string }).name : '?';
      plan.refused.push({
        tool: name.slice(0, 128),
        reason: 'malformed listing (name, description or schemas)',
      });
      continue;
    }
    const listing = parsed.data;
    const hash = listingHash(listing);
    let reason: string | undefined;
    if (!TOOL_NAME.test(listing.name))
      reason = `tool name must be 1-64 of a-z0-9_- (lowercase, no dots): it becomes the request's action`;
    else {
      const problems = [
        ...schemaProblems(listing.inputSchema, { root: 'input', allowKeywords: server.allowKeywords }).map(
          (p) => `inputSchema ${p}`,
        ),
        ...(listing.outputSchema !== undefined
          ? schemaProblems(listing.outputSchema, { root: 'output', allowKeywords: server.allowKeywords }).map(
              (p) => `outputSchema ${p}`,
            )
          : []),
      ];
      const properties = listing.inputSchema.properties;
      if (
        typeof properties === 'object' &&
        properties !== null &&
        Object.hasOwn(properties, IDEMPOTENCY_ARGUMENT)
      )
        problems.push(`inputSchema defines "${IDEMPOTENCY_ARGUMENT}", the gateway's own argument`);
      if (problems.length > 0) reason = problems.join('; ');
    }
    const mcpName = mcpToolName(`${server.server}.${listing.name}`);
    if (!reason && input.nativeMcpNames.has(mcpName))
      reason = `maps to the MCP tool name ${mcpName}, a native tool's (reserved)`;
    if (!reason) byMcpName.set(mcpName, [...(byMcpName.get(mcpName) ?? []), listing.name]);
    candidates.push({ listing, hash, ...(reason ? { reason } : {}) });
  }
  if (input.listed.length > UPSTREAM_LIMITS.maxTools)
    plan.refused.push({
      tool: '*',
      reason: `the upstream lists more than ${UPSTREAM_LIMITS.maxTools} tools: the rest are ignored`,
    });

  const seenNames = new Set<string>();
  for (const { listing, hash, reason: given } of candidates) {
    const action = `${server.server}.${listing.name}`;
    const mcpName = mcpToolName(action);
    let reason = given;
    // Injective: two upstream names that map to one MCP name (`a-b`, `a_b`) are both refused.
    if (!reason && (byMcpName.get(mcpName)?.length ?? 0) > 1)
      reason = `${byMcpName.get(mcpName)!.join(' and ')} map to one MCP tool name ${mcpName}`;
    if (seenNames.has(listing.name)) continue;
    seenNames.add(listing.name);
    const pinned = existing.get(listing.name);
    const base = { server: server.server, tool: listing.name, action, mcpName };
    if (reason) {
      plan.refused.push({ tool: listing.name, reason });
      plan.tools.push({
        ...base,
        listing,
        hash,
        status: 'refused',
        reason,
        pinnedAt: pinned?.pinnedAt ?? at,
      });
      continue;
    }
    if (!pinned || pinned.status === 'refused') {
      plan.added.push(listing.name);
      plan.tools.push({ ...base, listing, hash, status: 'enabled', pinnedAt: at });
    } else if (pinned.hash === hash) {
      plan.unchanged.push(listing.name);
      // Back from `removed`, or a drift reverted: the pinned listing holds again.
      const { seen: _seen, reason: _reason, ...rest } = pinned;
      plan.tools.push({ ...rest, status: 'enabled' });
    } else {
      plan.drifted.push(listing.name);
      plan.tools.push({ ...pinned, status: 'drifted', seen: { listing, hash, at } });
    }
  }
  for (const pinned of input.existing)
    if (!seenNames.has(pinned.tool) && pinned.status !== 'removed') {
      plan.removed.push(pinned.tool);
      plan.tools.push({ ...pinned, status: 'removed' });
    }
  return plan;
}

/** The fields of a drifted tool's listing that changed (for `oc upstream diff` and the record). */
export function listingChanges(
  pinned: UpstreamListing,
  seen: UpstreamListing,
): { field: string; pinned: unknown; seen: unknown }[] {
  const fields = ['title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;
  return fields
    .filter((field) => canon(pinned[field] ?? null) !== canon(seen[field] ?? null))
    .map((field) => ({ field, pinned: pinned[field], seen: seen[field] }));
}

/**
 * The MCP face of the gateway (SPEC §10), pure: which tools a tenant's MCP client sees, the
 * arguments a call carries, the idempotency key of a call that brings none, and the mapping of the
 * REST core's answers (`submitToolCall`, `executeApproved`) to MCP tool results. The SDK wiring is
 * `adapters/mcp-server.ts`; nothing here decides anything the REST path does not.
 */
import * as z from 'zod';
import type { ActionSpec } from '../connectors/sdk.js';
import type { ActionsFile } from './policy-data.js';
import type { Decision, PolicyEngine } from './policy.js';
import type { RiskFloors } from './risk.js';
import { canon, sha256Hex } from './evidence.js';
import { APPROVAL_END_STATES, LIMITS } from '../shared/constants.js';
import { AppError } from '../shared/errors.js';
import { jsonProblem, rules } from '../shared/input-rules.js';

/** The argument every governed tool accepts besides the action's params. */
export const IDEMPOTENCY_ARGUMENT = 'idempotency_key';
export const STATUS_TOOL = 'oc_approval_status';
export const EXECUTE_TOOL = 'oc_execute_approved';

/** `jira.issue.delete` -> `jira_issue_delete` (MCP tool names: no dots in most clients). */
export const mcpToolName = (actionName: string): string => actionName.replace(/[.-]/g, '_');

export interface ToolAnnotations {
  title?: string;
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export interface McpTool {
  name: string;
  title: string;
  description: string;
  inputSchema: { type: 'object'; [key: string]: unknown };
  outputSchema?: { type: 'object'; [key: string]: unknown };
  annotations: ToolAnnotations;
  /** The tool answers `tools/resolve` (the experimental tool-resolution extension). */
  resolve?: boolean;
  _meta?: Record<string, unknown>;
}

/** One governed tool of a tenant's catalog. */
export interface CatalogEntry {
  tool: McpTool;
  spec: ActionSpec;
  /** `tool` and `action` as the REST API names them. */
  connector: string;
  action: string;
  /** What policy answers today for a call from this client (the floor as risk, no labels). */
  decision: Decision;
}

export type ActionGroup = 'read' | 'write' | 'destructive';

export function groupOf(actions: ActionsFile, name: string): ActionGroup | undefined {
  for (const group of ['destructive', 'write', 'read'] as const)
    if (actions[group].includes(name)) return group;
  return undefined;
}

function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return json;
}

/** The schema extension naming the header a property is mirrored in (SEP-2243). */
export const X_MCP_HEADER = 'x-mcp-header';
/** An HTTP header name's characters (RFC 9110 token). */
const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A tool's header-mirrored param: the argument's name, the header's, the JSON type. */
export interface ParamHeader {
  param: string;
  header: string;
  type: string;
}

const paramHeaders = new WeakMap<ActionSpec, readonly ParamHeader[]>();
/** The params a tool mirrors in `Mcp-Param-*` headers (top-level properties only: the target). */
export function paramHeadersOf(spec: ActionSpec): readonly ParamHeader[] {
  let found = paramHeaders.get(spec);
  if (!found) {
    const properties = (inputSchemaOf(spec).properties ?? {}) as Record<string, Record<string, unknown>>;
    found = Object.entries(properties).flatMap(([param, schema]) =>
      typeof schema[X_MCP_HEADER] === 'string'
        ? [{ param, header: schema[X_MCP_HEADER], type: String(schema.type) }]
        : [],
    );
    paramHeaders.set(spec, found);
  }
  return found;
}

/** The action's params schema with the gateway's own optional `idempotency_key`. */
function inputSchemaOf(spec: ActionSpec): McpTool['inputSchema'] {
  const json = jsonSchemaOf(spec.input, 'input');
  const properties = (json.properties ?? {}) as Record<string, unknown>;
  if (json.type !== 'object') throw new Error(`${spec.name}: params schema must be an object`);
  if (Object.hasOwn(properties, IDEMPOTENCY_ARGUMENT))
    throw new Error(
      `${spec.name}: params must not define "${IDEMPOTENCY_ARGUMENT}" (the gateway's argument)`,
    );
  // SEP-2243: the target param is mirrored in an `Mcp-Param-{name}` header (a 2026-07-28 client
  // sends it; the edge refuses a header that disagrees with the body), so what a proxy or a log
  // reads off the headers is what the gateway judges.
  const target = spec.target;
  const targetSchema =
    target === null ? undefined : (properties[target] as Record<string, unknown> | undefined);
  const mirrored =
    target !== null &&
    targetSchema !== undefined &&
    HEADER_TOKEN.test(target) &&
    ['string', 'integer', 'boolean'].includes(targetSchema.type as string);
  return {
    ...json,
    type: 'object',
    properties: {
      ...properties,
      ...(mirrored ? { [target]: { ...targetSchema, [X_MCP_HEADER]: target } } : {}),
      [IDEMPOTENCY_ARGUMENT]: {
        type: 'string',
        minLength: 1,
        maxLength: LIMITS.maxIdempotencyKeyBytes,
        description:
          'Optional. Calls with the same key run once: a repeat answers with the first result. ' +
          'Without it the key is derived from this request (see the server instructions).',
      },
    },
  };
}

export function describe(spec: Pick<ActionSpec, 'name'>, group: ActionGroup, decision: Decision): string {
  const kind = group === 'read' ? 'Reads' : group === 'destructive' ? 'Destructive: changes' : 'Changes';
  const governance =
    decision === 'approve'
      ? `Requires human approval: the call is recorded and parked, and the result names the console page ` +
        `where an approver decides. Then call ${EXECUTE_TOOL} with the event_id (it runs once).`
      : 'Allowed by policy for this tenant today: runs at once and returns the connector output.';
  return `${kind} ${spec.name.split('.')[0]} (${spec.name}) through the OpenClause gateway. ${governance}`;
}

/**
 * The tools a tenant's MCP client may see: one per connector action whose policy answer, for a
 * call as this client would make it, is allow or approve. Policy is evaluated exactly as `tools/call`
 * will (the action's risk floor as the risk, no labels, this agent), so a listed tool is one a
 * call can reach; actions policy denies are left out. Listing is not the boundary: a call to an
 * unlisted action still goes through policy (and is denied there, with evidence).
 */
export function buildCatalog(input: {
  specs: readonly ActionSpec[];
  actions: ActionsFile;
  floors: RiskFloors;
  policy: PolicyEngine;
  tenantId: string;
  agentId: string;
  now: Date;
}): CatalogEntry[] {
  const entries: CatalogEntry[] = [];
  for (const spec of input.specs) {
    const group = groupOf(input.actions, spec.name);
    if (!group) continue; // not classified by policy data: policy would deny every call
    const action = spec.action;
    const connector = spec.name.slice(0, spec.name.length - action.length - 1);
    const { decision } = input.policy.evaluate({
      tenantId: input.tenantId,
      agentId: input.agentId,
      tool: connector,
      action,
      resource: '',
      riskScore: input.floors.get(spec.name) ?? spec.risk,
      riskFactors: [],
      labels: {},
      userId: '',
      sessionId: '',
      now: input.now,
    });
    if (decision === 'deny') continue;
    entries.push({ connector, action, spec, decision, tool: toolOf(spec, group, decision) });
  }
  // Deterministic order (2026-07-28: a client may cache and compare lists): by tool name.
  return entries.sort((a, b) => (a.tool.name < b.tool.name ? -1 : a.tool.name > b.tool.name ? 1 : 0));
}

/**
 * One governed tool as a client sees it. The annotations are the policy data's (the action's
 * group), never the connector's: a connector cannot call its own delete read-only.
 */
function toolOf(spec: ActionSpec, group: ActionGroup, decision: Decision): McpTool {
  return {
    name: mcpToolName(spec.name),
    title: spec.name,
    description: describe(spec, group, decision),
    inputSchema: inputSchemaOf(spec),
    // An approval-gated call answers "pending", not the action's output: no output schema then.
    ...(decision === 'allow'
      ? { outputSchema: { ...jsonSchemaOf(spec.output, 'output'), type: 'object' as const } }
      : {}),
    annotations: {
      title: spec.name,
      readOnlyHint: group === 'read',
      destructiveHint: group === 'destructive',
      idempotentHint: group === 'read',
      openWorldHint: true,
    },
    // The experimental tool-resolution extension: `tools/resolve` previews a specific call.
    resolve: true,
  };
}

/** Where a `tools/resolve` answer carries the policy preview (in the resolved tool's `_meta`). */
export const PREVIEW_META_KEY = 'io.openclause/preview';

/** What policy would answer for one specific call, today, as `tools/call` would judge it. */
export interface CallPreview {
  /** `park`: an approver of `approver_group` must decide before it runs. */
  decision: 'allow' | 'deny' | 'park';
  reason: string;
  policy_version: string;
  approver_group?: string;
  /** How long an approver would have (seconds). */
  approval_ttl_sec?: number;
  /** The agent's claim (none from MCP: 0) raised to the action's floor. */
  risk: { floor: number; effective: number };
  /** The target the call would act on, as the gateway derives it. */
  resource: string;
}

/**
 * The resolved tool of `tools/resolve` (the experimental tool-resolution extension): the listed
 * tool with the preview of this call in `_meta` and its annotations from policy data and the risk
 * floor (a call policy would deny or that carries a floor of 80+ is flagged destructive). It is a
 * preview: `tools/call` evaluates again and decides on its own.
 */
export function resolvedTool(input: {
  spec: ActionSpec;
  actions: ActionsFile;
  preview: CallPreview;
  policyDecision: Decision;
}): McpTool {
  const { spec, preview } = input;
  const group = groupOf(input.actions, spec.name);
  // Unclassified by policy data: every call is denied, and nothing is known of it but the worst.
  const tool = toolOf(spec, group ?? 'destructive', input.policyDecision);
  const risky = preview.risk.effective >= HIGH_RISK;
  return {
    ...tool,
    annotations: {
      ...tool.annotations,
      readOnlyHint: group === 'read' && !risky,
      destructiveHint: group === undefined || group === 'destructive' || risky,
    },
    _meta: { [PREVIEW_META_KEY]: preview },
  };
}

/** The effective risk from which a resolved tool is flagged destructive whatever its group. */
export const HIGH_RISK = 80;

const EVENT_ID_SCHEMA = {
  type: 'object',
  properties: {
    event_id: { type: 'string', format: 'uuid', description: 'The event_id a governed tool returned.' },
  },
  required: ['event_id'],
  additionalProperties: false,
} as const;

const OUTCOME_SCHEMA = {
  type: 'object',
  properties: {
    status: {
      type: 'string',
      enum: [
        'pending',
        // The registry's one list of an approval's end states (shared with the approvals core).
        ...APPROVAL_END_STATES,
        'executed',
        'replayed',
        'unknown',
        'in_progress',
        'not_approval_gated',
        'not_found',
        'error',
      ],
    },
    event_id: { type: 'string' },
    reason: { type: 'string' },
  },
  required: ['status', 'event_id'],
} as const;

/** The two gateway tools every tenant has: read an approval's state, run an approved call. */
export const GATEWAY_TOOLS: readonly McpTool[] = [
  {
    name: STATUS_TOOL,
    title: 'Approval status',
    description:
      'The state of a governed call that needed approval: pending, approved (ready for ' +
      `${EXECUTE_TOOL}), denied (with the approver's reason), expired, revoked_by_policy (approved, ` +
      'then refused by a changed policy: it never runs), withdrawn (by the agent: it never runs), or executed.',
    inputSchema: EVENT_ID_SCHEMA,
    outputSchema: OUTCOME_SCHEMA,
    annotations: { title: 'Approval status', readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  },
  {
    name: EXECUTE_TOOL,
    title: 'Execute an approved call',
    description:
      'Runs an approved call exactly once, with the arguments that were approved (never new ones). ' +
      'Calling it again answers with the first result (replayed). Before a decision it answers pending; ' +
      'it never approves anything itself: only an approver in the console, Slack or the API can.',
    inputSchema: EVENT_ID_SCHEMA,
    outputSchema: OUTCOME_SCHEMA,
    annotations: {
      title: 'Execute an approved call',
      readOnlyHint: false,
      destructiveHint: true,
      idempotentHint: true,
      openWorldHint: true,
    },
  },
];

/** `{event_id}` of the gateway tools, with the shared id rule. */
export const EventIdArguments = z.strictObject({ event_id: rules.uuid() });

/**
 * A call's arguments split into the action's params and the gateway's `idempotency_key`. The
 * arguments are checked with the shared JSON rules here; the params with the action's whole
 * schema and its target rule in the submit core, the one check REST calls pass too (a 422 there
 * is a tool error here). Either way a bad call writes nothing.
 */
export function splitArguments(
  spec: ActionSpec,
  args: Record<string, unknown>,
): { ok: true; params: Record<string, unknown>; idempotencyKey?: string } | { ok: false; message: string } {
  // The JSON rules of every body the gateway reads (no lone surrogate, no integer past 2^53, bounded
  // depth), before anything hashes or records the arguments.
  const problem = jsonProblem(args);
  if (problem)
    return {
      ok: false,
      message: `invalid arguments for ${mcpToolName(spec.name)}: ${problem.path || 'arguments'} ${problem.message}`,
    };
  const { [IDEMPOTENCY_ARGUMENT]: key, ...params } = args;
  if (key !== undefined) {
    const parsed = rules
      .id(LIMITS.maxIdempotencyKeyBytes, { maxBytes: LIMITS.maxIdempotencyKeyBytes })
      .safeParse(key);
    if (!parsed.success)
      return { ok: false, message: `${IDEMPOTENCY_ARGUMENT}: ${parsed.error.issues[0]?.message}` };
  }
  // What is recorded is what was sent (the target made canonical); the connector applies its
  // schema's defaults when it runs.
  return { ok: true, params, ...(typeof key === 'string' ? { idempotencyKey: key } : {}) };
}

/**
 * The idempotency key of a call that brings none: `mcp-` and the SHA-256 of who sent the request
 * (the API key's id, the agent, the client's name, and the 2025 session where there is one) and
 * what it was (the JSON-RPC request id, the tool, the arguments). So a client that re-sends the
 * same request (a retry after a timeout) gets the first answer, replayed, never a second run; a new
 * request id is a new call. Every fresh client numbers its requests from 0, so the sender is part
 * of the key: two agents' first calls are two calls, and there is no time scope (a retry across
 * midnight is still a retry). Only the same request id re-sent is recognized: a client that wants
 * a repeat with a new id recognized passes `idempotency_key`.
 */
export function derivedIdempotencyKey(input: {
  requestId: string | number;
  tool: string;
  args: Record<string, unknown>;
  keyId: string;
  agentId: string;
  clientName: string;
  session?: string;
}): string {
  const sender = [input.keyId, input.agentId, input.clientName, input.session ?? null];
  return `mcp-${sha256Hex(canon(['oc-mcp-call/v2', sender, input.requestId, input.tool, input.args]))}`;
}

/** The first words of every replayed answer: a replay must never read as a new success. */
export const REPLAY_PREFIX = 'Replayed: nothing ran again';

// ---------------------------------------------------------------------------------------------
// Results

export interface ToolResult {
  [key: string]: unknown;
  content: { type: 'text'; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

const text = (value: string) => [{ type: 'text' as const, text: value }];

interface SubmitBody {
  event_id: string;
  decision: Decision;
  reason: string;
  policy_version: string;
  result?: { status: string; output?: Record<string, unknown>; error?: { code: string; message: string } };
  approval?: {
    id: string;
    url: string;
    expires_at: string;
    view?: { act: string; lines: string[]; omitted?: number };
  };
}

export interface PendingApproval {
  eventId: string;
  approvalId: string;
  url: string;
  expiresAt: string;
  reason: string;
  /** The approval view's lines (absent when only the stored event was read, on a retry). */
  view?: string[];
  /** Which approvers decide it, when the stored approval was read ('' is any approver of the tenant). */
  approverGroup?: string;
}

/** What the submit core answered, as a tool result (and, for approve, the pending approval). */
export function submitOutcome(
  response: { body: string; headers?: Record<string, string> },
  toolName: string,
): { result: ToolResult; pending?: PendingApproval } {
  const body = JSON.parse(response.body) as SubmitBody;
  const replayed = response.headers?.['Idempotent-Replayed'] === 'true';
  // A replay says so first: the first answer to this idempotency key, and nothing ran this time.
  const lead = replayed ? `${REPLAY_PREFIX} (the first answer to this idempotency key): ` : '';
  if (body.decision === 'deny') {
    return {
      result: {
        isError: true,
        content: text(`${lead}Denied by policy: ${body.reason}. event_id ${body.event_id}.`),
      },
    };
  }
  if (body.decision === 'approve' && body.approval) {
    const pending: PendingApproval = {
      eventId: body.event_id,
      approvalId: body.approval.id,
      url: body.approval.url,
      expiresAt: body.approval.expires_at,
      reason: body.reason,
      ...(body.approval.view
        ? {
            view: body.approval.view.omitted
              ? [
                  ...body.approval.view.lines,
                  `… and ${body.approval.view.omitted} more lines: the whole request is in the console.`,
                ]
              : body.approval.view.lines,
          }
        : {}),
    };
    return {
      pending,
      result: {
        content: text(
          `${lead}Approval required (${body.reason}): ${toolName} was NOT run. A human approver must decide at ` +
            `${pending.url} before ${pending.expiresAt}. When approved, call ${EXECUTE_TOOL} with ` +
            `{"event_id":"${body.event_id}"}; ${STATUS_TOOL} tells the state meanwhile.`,
        ),
        structuredContent: {
          status: 'pending',
          event_id: body.event_id,
          reason: body.reason,
          approval: { id: pending.approvalId, url: pending.url, expires_at: pending.expiresAt },
        },
      },
    };
  }
  return { result: executionResult(body.event_id, body.result, replayed) };
}

/** An allowed (or approved and executed) call's connector outcome. */
function executionResult(eventId: string, result: SubmitBody['result'], replayed: boolean): ToolResult {
  const lead = replayed
    ? `${REPLAY_PREFIX} (the first answer to this idempotency key, event_id ${eventId}): `
    : '';
  if (!result || result.status !== 'success') {
    const error = result?.error;
    return {
      isError: true,
      content: text(
        `${lead}The tool ran and failed: ${error ? `${error.code}: ${error.message}` : (result?.status ?? 'no result')}. event_id ${eventId}.`,
      ),
    };
  }
  const output = result.output ?? {};
  return {
    content: text(`${lead}${JSON.stringify(output)}`),
    structuredContent: output,
    _meta: { 'openclause/event_id': eventId, 'openclause/replayed': replayed },
  };
}

/** What `executeApproved` answered, as an `oc_execute_approved` result: every outcome a result. */
export function executeOutcome(
  eventId: string,
  outcome: { response: { body: string; headers?: Record<string, string> } } | { error: AppError },
): ToolResult {
  const outcomeOf = (
    status: string,
    message: string,
    extra: Record<string, unknown> = {},
    isError = false,
  ) => ({
    ...(isError ? { isError: true } : {}),
    content: text(message),
    structuredContent: { status, event_id: eventId, ...extra },
  });
  if ('response' in outcome) {
    const body = JSON.parse(outcome.response.body) as {
      event_id: string;
      result?: SubmitBody['result'];
      /** An approver edited the request (core/edit.ts): what ran is the agent's request patched. */
      edit?: { edited_by: string; patch: unknown[] };
    };
    const replayed = outcome.response.headers?.['Idempotent-Replayed'] === 'true';
    const ok = body.result?.status === 'success';
    const status = replayed ? 'replayed' : 'executed';
    return outcomeOf(
      status,
      `${replayed ? `${REPLAY_PREFIX} (already executed)` : 'Executed'}; ` +
        (body.edit
          ? `an approver (${body.edit.edited_by}) edited the call before it ran; what ran is your request with this RFC 6902 patch: ${JSON.stringify(body.edit.patch)}; `
          : '') +
        `${ok ? 'output' : 'the tool failed'}: ${JSON.stringify(ok ? (body.result?.output ?? {}) : (body.result?.error ?? body.result))}. ` +
        `execution event_id ${body.event_id}.`,
      { execution_event_id: body.event_id, result: body.result, ...(body.edit ? { edit: body.edit } : {}) },
      !ok,
    );
  }
  const { error } = outcome;
  const detail = (path: string) => error.options.details?.find((d) => d.path === path)?.message;
  switch (error.code) {
    case 'AWAITING_APPROVAL':
      // A quorum says how far its votes are: "1 of 2 approvals; needs 1 more from finance".
      return outcomeOf(
        'pending',
        `Still pending: ${detail('quorum') ?? 'no approver has decided yet'}. Nothing ran.`,
      );
    case 'APPROVAL_DENIED':
      return outcomeOf(
        'denied',
        `Denied by the approver${detail('decided_by') ? ` ${detail('decided_by')}` : ''}: ${detail('deny_reason') || 'no reason given'}. Nothing ran.`,
        { reason: detail('deny_reason') ?? '' },
        true,
      );
    case 'APPROVAL_EXPIRED':
      return outcomeOf('expired', 'The approval expired before it was decided. Nothing ran.', {}, true);
    case 'APPROVAL_WITHDRAWN':
      return outcomeOf(
        'withdrawn',
        `Withdrawn${detail('withdrawn_by') ? ` by ${detail('withdrawn_by')}` : ''} before anyone decided. Nothing ran, and it never will.`,
        {},
        true,
      );
    case 'POLICY_CHANGED':
      // Approved, then refused at execute by a changed policy: final, like a denial.
      return outcomeOf(
        'revoked_by_policy',
        `Approved, but the policy changed before it ran and the live policy ${detail('decision') === 'deny' ? 'denies it' : 'requires a new approval'}` +
          `: ${detail('reason') || 'no reason given'}. Nothing ran, and it never will: call the tool again ` +
          'for a decision under the live policy.',
        {
          reason: detail('reason') ?? '',
          decision: detail('decision') ?? '',
          approved_under: detail('approved_under') ?? '',
          policy_version: detail('policy_version') ?? '',
        },
        true,
      );
    case 'EXECUTION_OUTCOME_UNKNOWN':
      return outcomeOf(
        'unknown',
        'An earlier execution started and its outcome was never recorded; it is never re-run. ' +
          'An operator records its outcome (`oc executions resolve`).',
        { execution_event_id: detail('execution_event_id') ?? '' },
        true,
      );
    case 'NOT_FOUND':
      return outcomeOf('not_found', `No governed call ${eventId} for this tenant.`, {}, true);
    case 'EXECUTION_IN_PROGRESS':
      return outcomeOf('in_progress', 'Another call is executing it now; call again for its result.');
    case 'NOT_APPROVAL_GATED':
      return outcomeOf('not_approval_gated', `${error.message}.`, {}, true);
    default:
      return outcomeOf('error', `${error.code}: ${error.message}`, {}, true);
  }
}

/** An AppError from the submit core (a 4xx), as a tool error the model can read. */
export function refusedCall(error: AppError): ToolResult {
  const retry = error.options.headers?.['Retry-After'];
  const details = (error.options.details ?? []).map((d) => `${d.path}: ${d.message}`).join('; ');
  return {
    isError: true,
    content: text(
      `${error.code}: ${error.message}${details ? ` (${details})` : ''}${retry ? `; retry after ${retry} s` : ''}. Nothing ran.`,
    ),
  };
}

/** Bounded, visible client name and version for the record (they are the client's own claim). */
/** Built on first use, once: a zod schema per request cost a tenth of a millisecond or more (issue 26). */
let clientLabelField: ReturnType<typeof rules.id> | undefined;

export function clientLabel(info: unknown): { name: string; version: string } {
  const field = (v: unknown) => {
    const parsed = (clientLabelField ??= rules.id(128)).safeParse(v);
    return parsed.success ? parsed.data : 'unknown';
  };
  const i = (typeof info === 'object' && info !== null ? info : {}) as Record<string, unknown>;
  return { name: field(i.name), version: field(i.version) };
}

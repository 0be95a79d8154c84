/**
 * The MCP protocol's pure parts, beside the catalog and result mapping of `core/mcp.ts`: who is
 * calling (era, client, session), what the edge needs of a message before the SDK reads it, the
 * pending-approval texts and the `oc_approval_status` answer. No SDK, no AWS, no environment: the
 * adapter (`adapters/mcp-server.ts`) wires these into the official SDK, the handler
 * (`handlers/mcp.ts`) into the HTTP edge.
 */
import { canon, sha256Hex } from './evidence.js';
import { clientLabel, EXECUTE_TOOL, type ParamHeader, type PendingApproval, type ToolResult } from './mcp.js';
import type { StoredEvent } from './ports.js';

export const MCP_SERVER_INFO = { name: 'openclause-gateway', version: '0.1.0' } as const;

export const MCP_INSTRUCTIONS =
  'Every tool call is governed by the OpenClause gateway: policy allows it (it runs), denies it ' +
  `(an error with the reason) or parks it for a human approver (the result says pending and names the ` +
  `console page). Approval is never yours to give: after a human approves, call ${EXECUTE_TOOL} with ` +
  `the event_id, once. Pass idempotency_key to make a call safe to repeat; without one, only the ` +
  'same JSON-RPC request re-sent (same id, same arguments) replays its first answer instead of running again.';

/** The 2026-07-28 per-request envelope's keys (in `params._meta`). */
export const CLIENT_INFO_KEY = 'io.modelcontextprotocol/clientInfo';
export const CLIENT_CAPABILITIES_KEY = 'io.modelcontextprotocol/clientCapabilities';
export const PROTOCOL_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';

export type McpEra = 'legacy' | 'modern';

/** Who is calling, from the API key (authentication runs before the SDK sees the request). */
export interface Caller {
  tenantId: string;
  agentId?: string;
  /** The API key's id (`key_<16 hex>`): what derived keys, sessions and requestStates are bound to. */
  keyId: string;
}

/** One HMAC key of signed MCP state: its id (what a rotation names) and at least 32 bytes. */
export interface McpStateKey {
  kid: string;
  secret: Uint8Array;
}

/** The key state is minted with, and the keys still accepted (rotation). */
export interface McpKeyRing {
  current: McpStateKey;
  previous: readonly McpStateKey[];
}

/**
 * How long a signed session id or requestState is accepted. Long enough for an agent's working
 * week and for any approval to be decided; a 2025 client answered 404 starts a new session.
 */
export const MCP_STATE_TTL_SEC = 7 * 24 * 3600;

/**
 * The longest session id the server reads back. Its claims are bounded before they are signed
 * (name and version at most 128 UTF-16 units each, at most 3 UTF-8 bytes a unit, JSON escapes
 * included at most 6 bytes), so the largest session this server issues is about 2,200 characters.
 */
export const MAX_SESSION_ID_CHARS = 4096;

/**
 * What a 2025-era client said at `initialize`, signed into the session id this server hands out
 * (the server keeps no session state): its name, version and URL-elicitation support, and a
 * random id of its own that tells the session's request ids apart from another session's.
 */
export interface LegacySession {
  /** The random id (16 base64url characters): what the record and derived keys name. */
  id: string;
  name: string;
  version: string;
  urlElicitation: boolean;
}

export interface InitializeParams {
  clientInfo?: unknown;
  capabilities?: unknown;
}

/** A session's signed claims, compact (they travel in a header on every request). */
export interface SessionClaims {
  n: string;
  v: string;
  u: 0 | 1;
  r: string;
}

const urlElicitationOf = (capabilities: unknown): boolean =>
  (capabilities as { elicitation?: { url?: unknown } } | undefined)?.elicitation?.url !== undefined;

/** The claims a new session signs, bounded first: `randomId` is 16 base64url characters. */
export function sessionClaims(init: InitializeParams, randomId: string): SessionClaims {
  const info = clientLabel(init.clientInfo);
  return { n: info.name, v: info.version, u: urlElicitationOf(init.capabilities) ? 1 : 0, r: randomId };
}

/** The session of verified claims (a payload that does not have the shape is no session). */
export function sessionOf(claims: unknown): LegacySession | undefined {
  const c = (typeof claims === 'object' && claims !== null ? claims : {}) as Record<string, unknown>;
  if (typeof c.r !== 'string' || !/^[A-Za-z0-9_-]{16}$/.test(c.r)) return undefined;
  const info = clientLabel({ name: c.n, version: c.v });
  return { id: c.r, ...info, urlElicitation: c.u === 1 };
}

/** What a session id is bound to: the tenant and the API key that opened it. */
export const sessionBinding = (caller: Caller): string =>
  canon(['oc-mcp-session/v1', caller.tenantId, caller.keyId]);

/**
 * What a requestState is bound to besides its event id (signed in its payload): the tenant, the
 * key and the agent that parked the call, and the call itself (the tool and the digest of its
 * arguments). A retry of another tool or with other arguments, or from another key or agent,
 * does not verify.
 */
export const requestStateBinding = (
  caller: Caller,
  agentId: string,
  tool: string,
  args: Record<string, unknown>,
): string =>
  canon(['oc-mcp-request-state/v1', caller.tenantId, caller.keyId, agentId, tool, sha256Hex(canon(args))]);

/** A requestState's signed payload: the parked call's event id. */
export interface RequestStatePayload {
  e: string;
}

/** The per-request view of the call: caller, era, client. */
export interface CallContext {
  caller: Caller;
  era: McpEra;
  session?: LegacySession;
  client: { name: string; version: string; protocol_version: string };
  urlElicitation: boolean;
  /** This very request declared the 2026-07-28 Tasks extension (never inferred from another request). */
  tasks: boolean;
}

/**
 * The call's context: on 2026-07-28 from the request's envelope, on 2025 from the verified session
 * and the `MCP-Protocol-Version` header.
 */
export function callContext(input: {
  era: McpEra;
  caller: Caller;
  envelope?: Record<string, unknown>;
  /** A 2025 session, verified by the adapter before the SDK saw the request. */
  session?: LegacySession;
  protocolHeader?: string | null;
}): CallContext {
  const { era, caller } = input;
  if (era === 'modern') {
    const envelope = input.envelope ?? {};
    const info = clientLabel(envelope[CLIENT_INFO_KEY]);
    const version = envelope[PROTOCOL_VERSION_KEY];
    return {
      caller,
      era,
      client: { ...info, protocol_version: typeof version === 'string' ? version.slice(0, 32) : 'unknown' },
      urlElicitation: urlElicitationOf(envelope[CLIENT_CAPABILITIES_KEY] ?? {}),
      tasks: tasksDeclared(envelope[CLIENT_CAPABILITIES_KEY]),
    };
  }
  const { session } = input;
  const version = input.protocolHeader ?? '2025-03-26';
  return {
    caller,
    era,
    ...(session ? { session } : {}),
    client: {
      name: session?.name ?? 'unknown',
      version: session?.version ?? 'unknown',
      protocol_version: /^[0-9A-Za-z-]{1,32}$/.test(version) ? version : 'unknown',
    },
    urlElicitation: session?.urlElicitation ?? false,
    tasks: false,
  };
}

/** The agent a call is recorded for: the key's own, else one named after the client. */
export function agentOf(call: CallContext): string {
  if (call.caller.agentId) return call.caller.agentId;
  const name = call.client.name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .slice(0, 100);
  return name && name !== 'unknown' ? `mcp-${name}` : 'mcp-client';
}

/** Where a request's W3C trace context rides (2026-07-28, SEP-414: `params._meta.traceparent`). */
export const TRACEPARENT_KEY = 'traceparent';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The trace a request's `_meta.traceparent` names: the header as sent and its trace id, which is
 * recorded as the call's `trace_id` (a retry in another span of the same trace is the same
 * request). One that is not a valid W3C traceparent is ignored, as W3C Trace Context says a
 * receiver does (it is no reason to refuse a call).
 */
export function traceOf(meta: unknown): { traceparent: string; traceId: string } | undefined {
  const value = (typeof meta === 'object' && meta !== null ? meta : {}) as Record<string, unknown>;
  const header = value[TRACEPARENT_KEY];
  if (typeof header !== 'string') return undefined;
  const parts = TRACEPARENT.exec(header.trim());
  if (!parts || parts[1] === 'ff' || /^0+$/.test(parts[2]!) || /^0+$/.test(parts[3]!)) return undefined;
  return { traceparent: parts[0], traceId: parts[2]! };
}

/** Origin (DNS rebinding, transport spec): absent (not a browser) or the gateway's own. */
export function originAllowed(origin: string | undefined, publicBaseUrl: string): boolean {
  if (origin === undefined) return true;
  try {
    return new URL(origin).origin === new URL(publicBaseUrl).origin;
  } catch {
    return false;
  }
}

/**
 * What the edge needs of a body before the SDK reads it: how many JSON-RPC messages it holds (a
 * 2025 batch holds several) and how many of them are governed `tools/call`s (those take their
 * rate-limit token in the adapter, the others at the edge: one per message), and the `initialize`
 * params (a 2025 client's session id is made of them). A body that is no JSON is one message:
 * the SDK answers it.
 */
export function peekMessage(
  text: string,
  isGovernedTool: (name: string) => boolean,
): {
  messages: number;
  governed: number;
  initialize?: InitializeParams;
  /** A lone governed `tools/call` of 2026-07-28 (its envelope claims the revision): what it calls. */
  modernCall?: { id: unknown; name: string; args: unknown };
  /** The body as parsed here (absent if it is not JSON), so that the SDK does not parse it again. */
  parsed?: unknown;
} {
  type Message = {
    id?: unknown;
    method?: unknown;
    params?: { name?: unknown } & Record<string, unknown>;
  } | null;
  let body: Message | Message[];
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return { messages: 1, governed: 0 };
  }
  const isGoverned = (m: Message) =>
    typeof m === 'object' &&
    m !== null &&
    m.method === 'tools/call' &&
    typeof m.params?.name === 'string' &&
    isGovernedTool(m.params.name);
  if (Array.isArray(body))
    return { messages: Math.max(1, body.length), governed: body.filter(isGoverned).length, parsed: body };
  const envelope = (body?.params?._meta ?? undefined) as Record<string, unknown> | undefined;
  const modern = typeof envelope === 'object' && envelope !== null && PROTOCOL_VERSION_KEY in envelope;
  return {
    messages: 1,
    parsed: body,
    governed: isGoverned(body) ? 1 : 0,
    ...(isGoverned(body) && modern
      ? { modernCall: { id: body!.id, name: body!.params!.name as string, args: body!.params!.arguments } }
      : {}),
    ...(typeof body === 'object' && body !== null && body.method === 'initialize'
      ? { initialize: (body.params ?? {}) as Record<string, unknown> }
      : {}),
  };
}

/** The JSON-RPC code of a header that disagrees with the body (2026-07-28, SEP-2243). */
export const HEADER_MISMATCH = -32020;

/** A header that disagrees with the body (2026-07-28: `-32020`, HTTP 400; nothing is read further). */
export interface HeaderMismatch {
  header: string;
  message: string;
}

const BASE64_SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

/** A header value as sent, or the UTF-8 its Base64 sentinel carries (`=?base64?…?=`); undefined if invalid. */
function decodedHeader(value: string): string | undefined {
  const sentinel = BASE64_SENTINEL.exec(value);
  if (!sentinel) return value;
  const b64 = sentinel[1]!;
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.toString('base64') !== b64) return undefined; // not canonical Base64
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * SEP-2243: every argument a tool mirrors in an `Mcp-Param-{name}` header must be sent there too,
 * equal to the body's value (a number compared as a number). An argument absent or null needs
 * no header. A 2026-07-28 rule: the caller applies it to modern requests only.
 */
export function paramHeaderMismatch(
  declared: readonly ParamHeader[],
  args: unknown,
  headerOf: (name: string) => string | null,
): HeaderMismatch | undefined {
  const values = (typeof args === 'object' && args !== null ? args : {}) as Record<string, unknown>;
  for (const { param, header, type } of declared) {
    const name = `Mcp-Param-${header}`;
    const body = Object.hasOwn(values, param) ? values[param] : undefined;
    if (body === undefined || body === null) continue;
    const expected =
      typeof body === 'string'
        ? body
        : typeof body === 'boolean' || typeof body === 'number'
          ? String(body)
          : undefined;
    if (expected === undefined) continue; // not a primitive: the schema check refuses it
    const sent = headerOf(name);
    if (sent === null)
      return { header: name, message: `the body carries ${param} but the ${name} header is absent` };
    const decoded = decodedHeader(sent.trim());
    if (decoded === undefined)
      return { header: name, message: `the ${name} header carries an invalid Base64 sentinel value` };
    const equal =
      (type === 'integer' || type === 'number') && typeof body === 'number'
        ? /^-?\d+(\.\d+)?$/.test(decoded) && Number(decoded) === body
        : decoded === expected;
    if (!equal) return { header: name, message: `the ${name} header disagrees with the body's ${param}` };
  }
  return undefined;
}

/**
 * The text of the URL elicitation that points a client's human to the console, with the approval
 * view's lines (core/approval-view.ts, rendered by the submit core: invisible characters shown as
 * ⟨U+…⟩), so the client's human reads what the approver will decide on.
 */
export const approvalMessage = (p: PendingApproval) =>
  `An OpenClause approver must decide this call (${p.reason}) before ${p.expiresAt}. Open the console to review it.` +
  (p.view ? `\n\n${p.view.join('\n')}` : '');

/** A stored event's pending approval, for a retry that finds the call still waiting. */
export function pendingOf(
  stored: StoredEvent | undefined,
  eventId: string,
  url: (approvalId: string) => string,
): PendingApproval | undefined {
  const approval = stored?.approval;
  if (!stored || !approval) return undefined;
  return {
    eventId,
    approvalId: approval.id,
    url: url(approval.id),
    expiresAt: approval.expires_at,
    reason: stored.reason,
    ...(approval.approver_group !== undefined ? { approverGroup: approval.approver_group } : {}),
  };
}

/** `oc_approval_status`: the state of a governed call of this tenant, as a tool result. */
export function approvalStatusResult(input: {
  stored: StoredEvent | undefined;
  eventId: string;
  now: Date;
  url: (approvalId: string) => string;
}): ToolResult {
  const { stored, eventId } = input;
  const answer = (status: string, message: string, extra: Record<string, unknown> = {}): ToolResult => ({
    content: [{ type: 'text', text: message }],
    structuredContent: { status, event_id: eventId, ...extra },
  });
  if (!stored || stored.parent_event_id !== undefined)
    return { ...answer('not_found', `No governed call ${eventId} for this tenant.`), isError: true };
  if (stored.decision !== 'approve')
    return answer(
      stored.decision === 'deny' ? 'denied' : 'executed',
      `Decided ${stored.decision} by policy: ${stored.reason}.`,
      {
        reason: stored.reason,
      },
    );
  if (stored.execution)
    return answer(
      stored.execution.status === 'completed' ? 'executed' : 'unknown',
      `Approved and ${stored.execution.status === 'completed' ? 'executed' : `execution ${stored.execution.status}`}.`,
      { execution_event_id: stored.execution.execution_event_id },
    );
  const approval = stored.approval;
  const expired = approval?.status === 'pending' && Date.parse(approval.expires_at) <= input.now.getTime();
  const status = expired ? 'expired' : (approval?.status ?? 'pending');
  const url = approval ? input.url(approval.id) : '';
  const messages: Record<string, string> = {
    pending: `Pending: waiting for an approver at ${url}.`,
    approved: `Approved${approval?.decided_by ? ` by ${approval.decided_by}` : ''}: call ${EXECUTE_TOOL} to run it (once).`,
    denied: `Denied${approval?.decided_by ? ` by ${approval.decided_by}` : ''}: ${approval?.deny_reason || 'no reason given'}.`,
    expired: 'Expired before anyone decided.',
    revoked_by_policy: `Approved${approval?.decided_by ? ` by ${approval.decided_by}` : ''}, then revoked: the policy changed and the live policy refused it. It never runs; call the tool again for a decision under the live policy.`,
    withdrawn: `Withdrawn${approval?.decided_by ? ` by ${approval.decided_by}` : ''} before anyone decided: it never runs.`,
  };
  return answer(status, messages[status] ?? status, {
    ...(approval ? { approval: { id: approval.id, url, expires_at: approval.expires_at } } : {}),
    ...(status === 'denied' ? { reason: approval?.deny_reason ?? '' } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// Parked calls as MCP Tasks (issue 22 deliverable 1).

/** How long a finished task's result is kept past the grant's lifetime (documented in docs/agents.md). */
export const TASK_RESULT_RETENTION_SEC = 24 * 3600;
/** The poll interval a task advertises (`pollInterval` / `pollIntervalMs`). */
export const TASK_POLL_INTERVAL_MS = 5_000;
/**
 * Where a 2026-07-28 `input_required` result for a parked call carries its poll hint (in `_meta`:
 * the protocol has no retry-interval field): how often a client may retry with the requestState.
 */
export const POLL_HINT_KEY = 'io.openclause/pollIntervalMs';
/**
 * The longest `tasks/result` waits for a terminal state before it answers "poll": under the HTTP
 * API's 30 s integration timeout, with room for the execute it may run.
 */
export const TASK_RESULT_WAIT_MS = 20_000;

/**
 * What a task id is bound to besides its event id (signed in its payload): the tenant, the key and
 * the agent that parked the call. Another principal's poll or cancel does not verify: not found.
 * The event id itself is never the task id (anyone who knows the idempotency key can derive it).
 */
export const taskBinding = (caller: Caller, agentId: string): string =>
  canon(['oc-mcp-task/v1', caller.tenantId, caller.keyId, agentId]);

/** A task id's signed payload: the parked event and when the task was created. */
export interface TaskPayload {
  e: string;
  /** Created at (ISO 8601), and the task's lifetime in milliseconds. */
  c: string;
  t: number;
  /**
   * Set when policy decided the call at submit (`allow` or `deny`): a 2025-11-25 client that asked
   * for a task gets one, already completed with the recorded answer (nothing waits on a human).
   */
  d?: 'allow' | 'deny';
}

/**
 * A task lives until the approval's expiry plus the grant's lifetime plus the result retention, so
 * a call approved at the last minute still returns its result.
 */
export function taskTtlSec(expiresAt: string, grantTtlSec: number, now: Date): number {
  const untilExpiry = Math.max(0, Math.ceil((Date.parse(expiresAt) - now.getTime()) / 1000));
  return untilExpiry + grantTtlSec + TASK_RESULT_RETENTION_SEC;
}

export type TaskStatus = 'working' | 'completed' | 'failed' | 'cancelled';

/**
 * A task's state from what execute answered for its event (`executeOutcome`'s `status`):
 * pending or in flight is `working` (a poll never waits on an execution in flight); executed is
 * `completed` (whether the tool succeeded or failed: it ran); a withdrawal is `cancelled`; a
 * denial, an expiry, a revocation by a changed policy and an `unknown` outcome are `failed`, each
 * with its own `status` in the result's structured content (the documented error data).
 */
export function taskStatusOf(outcome: string | undefined): TaskStatus {
  if (outcome === 'pending' || outcome === 'in_progress') return 'working';
  if (outcome === 'executed' || outcome === 'replayed') return 'completed';
  if (outcome === 'withdrawn') return 'cancelled';
  return 'failed';
}

/** A working task's status message: who must decide, where, and by when. */
export function workingMessage(pending: PendingApproval | undefined, outcome: string | undefined): string {
  if (outcome === 'in_progress') return 'Approved: the tool is running now. Poll again for its result.';
  if (!pending) return 'Waiting for a human approver.';
  return `Waiting for ${whoMustDecide(pending)} to decide at ${pending.url} before ${pending.expiresAt} (${pending.reason}).`;
}

/**
 * Who must decide a parked call, as a task's status message says it: the approver group when the
 * stored approval was read. This is the one place that names the deciders: approval workflows
 * (quorum progress, "1 of 2 approvals") extend this text, and every task status message follows.
 */
export function whoMustDecide(pending: PendingApproval): string {
  return pending.approverGroup
    ? `an approver of the group "${pending.approverGroup}" of this tenant`
    : 'an approver of this tenant';
}

// ---------------------------------------------------------------------------------------------
// The 2026-07-28 Tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663).

/** The extension's identifier: in a request's `clientCapabilities.extensions`, and in the server's. */
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
/** MCP's "Missing required client capability": `tasks/*` from a request that did not declare the extension. */
export const MISSING_CLIENT_CAPABILITY = -32021;
/**
 * The JSON-RPC error of a failed task (SEP-2663 `FailedTask.error`): the parked call ended without
 * running, for the reason its `data.status` names (`denied`, `expired`, `revoked_by_policy`,
 * `unknown`). In the implementation-defined range (-32000 to -32019) MCP leaves to servers.
 */
export const TASK_FAILED = -32010;

/** Did this request declare the Tasks extension (`clientCapabilities.extensions[TASKS_EXTENSION]` an object)? */
export function tasksDeclared(capabilities: unknown): boolean {
  const extensions = (capabilities as { extensions?: unknown } | undefined)?.extensions;
  if (typeof extensions !== 'object' || extensions === null) return false;
  const declared = (extensions as Record<string, unknown>)[TASKS_EXTENSION];
  return typeof declared === 'object' && declared !== null && !Array.isArray(declared);
}

/** The SEP-2663 `Task` fields every answer about a task carries. */
export interface ModernTask {
  taskId: string;
  status: TaskStatus;
  statusMessage: string;
  createdAt: string;
  lastUpdatedAt: string;
  ttlMs: number;
  pollIntervalMs: number;
}

/**
 * `tasks/get`'s `DetailedTask`: a completed task inlines the tool result (also when the tool itself
 * failed: it ran), a failed one the JSON-RPC error with the parked call's end in `data` (the
 * `structuredContent` `oc_execute_approved` would answer: `status`, `event_id`, and `reason` for a
 * denial or a revocation); working and cancelled carry the status message only.
 */
export function detailedTask(task: ModernTask, result: ToolResult): Record<string, unknown> {
  if (task.status === 'completed') return { ...task, result };
  if (task.status === 'failed')
    return {
      ...task,
      error: { code: TASK_FAILED, message: task.statusMessage, data: result.structuredContent ?? {} },
    };
  return { ...task };
}

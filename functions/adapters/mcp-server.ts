/**
 * The gateway as an MCP server, wired into the official SDK (`createMcpHandler`, Streamable HTTP,
 * stateless): 2026-07-28 requests (per-request envelope, no sessions) and 2025-era ones
 * (initialize, then stateless requests) from one server definition, negotiated per request.
 *
 * This module owns what only the SDK can do (the per-request `Server`, `tools/list` and
 * `tools/call`, `input_required`, the URL elicitation, JSON-RPC errors) and nothing else: the
 * protocol's rules are pure (`core/mcp.ts`, `core/mcp-protocol.ts`), governance is the REST core's
 * (`submitToolCall`, `executeApproved`, reached through `McpPorts`), and the HTTP edge (API key,
 * Origin, body rules, rate limit) is the handler's (`handlers/mcp.ts`), but for a governed call's
 * rate-limit token, taken here before its arguments are read (a refusal is a tool error). Nothing the client sends
 * can approve: an approval-gated call answers "pending" with the console link.
 */
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import {
  createMcpHandler,
  inputRequired,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  type CallToolRequest,
  type McpRequestContext,
  type ServerContext,
} from '@modelcontextprotocol/server';
import type { ActionSpec } from '../connectors/sdk.js';
import {
  EventIdArguments,
  EXECUTE_TOOL,
  executeOutcome,
  GATEWAY_TOOLS,
  refusedCall,
  splitArguments,
  STATUS_TOOL,
  submitOutcome,
  derivedIdempotencyKey,
  type McpTool,
  type PendingApproval,
  type ToolResult,
} from '../core/mcp.js';
import {
  agentOf,
  approvalMessage,
  approvalStatusResult,
  callContext,
  MAX_SESSION_ID_CHARS,
  MCP_INSTRUCTIONS,
  MCP_SERVER_INFO,
  MCP_STATE_TTL_SEC,
  pendingOf,
  requestStateBinding,
  sessionBinding,
  sessionClaims,
  sessionOf,
  traceOf,
  TASK_POLL_INTERVAL_MS,
  TASK_RESULT_WAIT_MS,
  TASKS_EXTENSION,
  MISSING_CLIENT_CAPABILITY,
  POLL_HINT_KEY,
  detailedTask,
  taskBinding,
  taskStatusOf,
  taskTtlSec,
  workingMessage,
  type CallContext,
  type ModernTask,
  type TaskPayload,
  type TaskStatus,
  type Caller,
  type InitializeParams,
  type LegacySession,
  type McpEra,
  type RequestStatePayload,
} from '../core/mcp-protocol.js';
import type { ResolveOutcome } from '../core/mcp-resolve.js';
import type { StoredEvent } from '../core/ports.js';
import type { SubmitInput } from '../core/submit.js';
import { LIMITS } from '../shared/constants.js';
import { AppError } from '../shared/errors.js';
import type { HttpResult } from '../shared/http.js';
import { logger } from '../shared/powertools.js';
import type { McpSigner, VerifyFailure } from './mcp-signing.js';

/** What the MCP server needs of the gateway: the REST core's use cases and reads, injected. */
export interface McpPorts {
  /** Governed tools by MCP tool name (every connector action, listed or not). */
  specsByTool: ReadonlyMap<string, ActionSpec>;
  /** The caller's catalog (policy evaluated as a call from this agent would be). */
  listTools(caller: Caller, agentId: string): McpTool[] | Promise<McpTool[]>;
  /**
   * The tenant's upstream MCP tools (issue 25) by MCP name: `shaped` says a name could be one
   * (the edge counts such a call as governed), `get` finds it in the caller's tenant's catalog only.
   */
  upstreamSpec?: {
    shaped(name: string): boolean;
    get(tenantId: string, name: string): Promise<ActionSpec | undefined>;
  };
  /** `tools/resolve`: what policy would answer for this call (writes nothing). */
  resolve(caller: Caller, agentId: string, spec: ActionSpec, args: Record<string, unknown>): ResolveOutcome;
  /** Takes the tenant's rate-limit token of one governed call (throws 429 when refused). */
  spendRateLimit(tenantId: string): Promise<void>;
  /** The submit core; the adapter has already taken the call's token (`rateLimitTaken`). */
  submit(input: SubmitInput): Promise<HttpResult>;
  /** Both scoped to the caller: another agent's event is missing to a key bound to an agent. */
  execute(caller: Caller, eventId: string): Promise<HttpResult>;
  /** `execute` that answers `EXECUTION_IN_PROGRESS` at once rather than waiting (a task poll never waits). */
  executeNoWait(caller: Caller, eventId: string): Promise<HttpResult>;
  /** The withdraw core (`POST /v1/toolcalls/{id}/withdraw`): `tasks/cancel`. */
  withdraw(caller: Caller, eventId: string): Promise<HttpResult>;
  /** The tenant's grant lifetime (policy data), which a task's lifetime includes. */
  grantTtlSec(tenantId: string): number;
  /**
   * The tenant's approver group (policy data), which submit just wrote on the approval: a new
   * task's status message names it without a read (later polls read the stored approval's).
   */
  approverGroup?(tenantId: string): string;
  /** How long `tasks/result` waits for a terminal state (TASK_RESULT_WAIT_MS; tests shorten it). */
  taskResultWaitMs?: number;
  getEvent(caller: Caller, eventId: string): Promise<StoredEvent | undefined>;
  approvalUrl(approvalId: string): string;
  now(): Date;
  /** Signs and verifies session ids and requestStates with the current key ring. */
  signer(): Promise<McpSigner>;
}

/** What the SDK's per-request context carries from the edge (`authInfo.extra`). */
interface EdgeInfo {
  caller: Caller;
  session?: LegacySession;
}

type CallResult = ToolResult | ReturnType<typeof inputRequired>;

/**
 * How long a client may keep a `tools/list` (2026-07-28 `ttlMs`): the list follows the policy
 * bundle, which changes with a deployment; a minute bounds how stale a client's list can be.
 */
export const TOOLS_LIST_TTL_MS = 60_000;

/** `tools/resolve` params (the extension's `ResolveToolRequest`). */
const ResolveParams = z.looseObject({
  name: z.string().max(256),
  arguments: z.record(z.string(), z.unknown()),
});

const internal = (error: unknown, message = 'internal error: nothing is known to have run; retry'): never => {
  logger.error('mcp tool call failed', { error: error as Error });
  throw new ProtocolError(ProtocolErrorCode.InternalError, message);
};

/** A core error: a 4xx is the model's to read (a tool error); a 5xx fails closed (JSON-RPC error). */
function fromCoreError(error: unknown): ToolResult {
  if (error instanceof AppError && error.status < 500) return refusedCall(error);
  if (error instanceof AppError) return internal(error, error.message);
  return internal(error);
}

function contextOf(ctx: ServerContext, era: McpEra, edge: EdgeInfo, request?: Request): CallContext {
  return callContext({
    era,
    caller: edge.caller,
    envelope: (ctx.mcpReq.envelope ?? {}) as Record<string, unknown>,
    ...(edge.session ? { session: edge.session } : {}),
    protocolHeader: request?.headers.get('mcp-protocol-version'),
  });
}

const STATE_REFUSED: Record<VerifyFailure, string> = {
  malformed: 'it is not one this server issued',
  unknown_key: 'it was signed with a key this server no longer accepts',
  mac: 'its signature does not verify',
  expired: 'it has expired',
  bind: 'it was issued for another call (another tool, other arguments, or another key or agent)',
};

/** A retry whose requestState does not verify: a tool error, and nothing ran or was recorded. */
const stateRefused = (reason: VerifyFailure): ToolResult => ({
  isError: true,
  content: [
    {
      type: 'text',
      text:
        `requestState refused: ${STATE_REFUSED[reason]}. Nothing ran. Call the tool again without it ` +
        `(a new call), or use ${STATUS_TOOL} / ${EXECUTE_TOOL} with the event_id of the parked call.`,
    },
  ],
});

/** `tasks/get` and `tasks/cancel` params (SEP-2663); the id's length is checked where it is verified. */
const TaskParams = z.looseObject({ taskId: z.string() });
/**
 * `tasks/update` params: the task id (the SDK lifts and checks `inputResponses`, the answers to a
 * task's `inputRequests`, before the handler: this server never asks any).
 */
const UpdateTaskParams = z.looseObject({ taskId: z.string() });

/** `tasks/*` from a request that did not declare the extension (SEP-2663: MUST be -32021). */
const requireTasks = (call: CallContext): void => {
  if (!call.tasks)
    throw new ProtocolError(MISSING_CLIENT_CAPABILITY, 'Missing required client capability', {
      requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } },
    });
};

/** Did this request ask for a task (2025-11-25 task-augmented request: `params.task`)? */
const taskRequested = (request: CallToolRequest): boolean => {
  const task = (request.params as { task?: unknown }).task;
  return typeof task === 'object' && task !== null;
};

class GatewayMcp {
  constructor(private readonly ports: McpPorts) {}

  async callGovernedTool(
    call: CallContext,
    request: CallToolRequest,
    ctx: ServerContext,
  ): Promise<CallResult> {
    const { name } = request.params;
    let spec = this.ports.specsByTool.get(name);
    // Every governed call takes its token before its arguments are read: valid or not, a
    // requestState retry and a replay included (the edge took none for it). Refused: a tool error.
    // An upstream tool (issue 25) is looked up in the tenant's catalog, a read: its token first.
    let spent = false;
    if (!spec && this.ports.upstreamSpec?.shaped(name)) {
      try {
        await this.ports.spendRateLimit(call.caller.tenantId);
        spent = true;
        spec = await this.ports.upstreamSpec.get(call.caller.tenantId, name);
      } catch (error) {
        return fromCoreError(error);
      }
    }
    if (!spec) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${name}`);
    if (!spent)
      try {
        await this.ports.spendRateLimit(call.caller.tenantId);
      } catch (error) {
        return fromCoreError(error);
      }

    const split = splitArguments(spec, request.params.arguments ?? {});
    if (!split.ok)
      return { isError: true, content: [{ type: 'text', text: `${split.message}. Nothing ran.` }] };
    const args = request.params.arguments ?? {};
    const agentId = agentOf(call);

    // A 2026-07-28 retry of a call parked for approval: its state is what this server signed for
    // this caller and this call (tool and arguments), and names the parked event.
    const state = call.era === 'modern' ? ctx.mcpReq.requestState<unknown>() : undefined;
    if (state !== undefined) {
      if (typeof state !== 'string') return stateRefused('malformed');
      const signer = await this.ports.signer();
      const verified = await signer.verify<RequestStatePayload>(
        state,
        requestStateBinding(call.caller, agentId, name, args),
      );
      if (!verified.ok) return stateRefused(verified.reason);
      const eventId = EventIdArguments.safeParse({ event_id: verified.payload?.e });
      if (!eventId.success) return stateRefused('malformed');
      return this.resumeApproval(call, eventId.data.event_id, name, args);
    }

    const action = spec.action;
    const trace = traceOf(request.params._meta);
    const body = {
      agent_id: agentId,
      ...(trace ? { trace_id: trace.traceId } : {}),
      tool: spec.name.slice(0, spec.name.length - action.length - 1),
      action,
      params: split.params,
      idempotency_key:
        split.idempotencyKey ??
        derivedIdempotencyKey({
          requestId: ctx.mcpReq.id,
          tool: name,
          args,
          keyId: call.caller.keyId,
          agentId,
          clientName: call.client.name,
          ...(call.session ? { session: call.session.id } : {}),
        }),
      ...(call.session ? { session_id: `mcp-${call.session.id}` } : {}),
    };
    let response;
    try {
      response = await this.ports.submit({
        tenantId: call.caller.tenantId,
        body,
        channel: { channel: 'mcp', client: call.client },
        rateLimitTaken: true,
      });
    } catch (error) {
      return fromCoreError(error);
    }
    const outcome = submitOutcome(response, name);
    // The call's trace in the log beside its event (the record carries it as `trace_id`).
    logger.info('mcp governed call', {
      tool: name,
      event_id: (outcome.result._meta as Record<string, unknown> | undefined)?.['openclause/event_id'],
      status: outcome.pending ? 'pending' : outcome.result.isError ? 'refused' : 'answered',
      ...(trace ? { trace_id: trace.traceId, traceparent: trace.traceparent } : {}),
    });
    // A task only for a client that asked for one in this very request: 2025-11-25 `params.task`,
    // 2026-07-28 the Tasks extension in the request's capabilities (before the input_required rung).
    if (outcome.pending && call.era === 'legacy' && taskRequested(request))
      return this.createTask(call, outcome.pending, outcome.result);
    // 2025-11-25: a receiver that takes tasks for a tool answers a task-augmented request with a
    // task (the 1.x client's callToolStream asks for one on every tool that lists taskSupport), so a
    // call policy decided at once is a task already completed, its answer the recorded one.
    if (!outcome.pending && call.era === 'legacy' && taskRequested(request))
      return this.createDecidedTask(call, response.body, outcome.result);
    if (outcome.pending && call.era === 'modern' && call.tasks)
      return this.createModernTask(call, outcome.pending);
    if (outcome.pending) return this.askForApproval(call, ctx, outcome.pending, outcome.result, name, args);
    return outcome.result;
  }

  /**
   * Pending: the result says so. A client that supports URL elicitation is also asked to show its
   * human the console page: a 2026-07-28 `input_required` result (the client retries when its human
   * is done; the retry only reads the decision), or on a 2025 connection an `elicitation/create` in
   * URL mode sent before the result. Whatever the client answers, only an approver decides.
   */
  async askForApproval(
    call: CallContext,
    ctx: ServerContext,
    pending: PendingApproval,
    result: ToolResult,
    tool: string,
    args: Record<string, unknown>,
  ): Promise<CallResult> {
    if (!call.urlElicitation) return result;
    if (call.era === 'modern') return this.inputRequiredFor(call, pending, tool, args);
    // Stateless: the client's answer reaches another instance, and nothing waits for it.
    ctx.mcpReq
      .send(
        {
          method: 'elicitation/create',
          params: {
            mode: 'url',
            message: approvalMessage(pending),
            url: pending.url,
            elicitationId: pending.approvalId,
          },
        },
        { timeout: 1 },
      )
      .catch(() => undefined);
    return result;
  }

  /** `input_required`: the console page to show, and the signed state of this caller's call. */
  async inputRequiredFor(
    call: CallContext,
    pending: PendingApproval,
    tool: string,
    args: Record<string, unknown>,
  ): Promise<CallResult> {
    const signer = await this.ports.signer();
    const payload: RequestStatePayload = { e: pending.eventId };
    const result = inputRequired({
      inputRequests: {
        approval: inputRequired.elicitUrl({
          message: `${approvalMessage(pending)}\n\nRetry this call with the requestState no more often than every ${TASK_POLL_INTERVAL_MS / 1000} s.`,
          url: pending.url,
        }),
      },
      requestState: await signer.mint(
        payload,
        requestStateBinding(call.caller, agentOf(call), tool, args),
        MCP_STATE_TTL_SEC,
      ),
    });
    // The poll hint: a client retries on its own schedule, and a retry spends a token and a read.
    return { ...result, _meta: { [POLL_HINT_KEY]: TASK_POLL_INTERVAL_MS } } as CallResult;
  }

  async resumeApproval(
    call: CallContext,
    eventId: string,
    toolName: string,
    args: Record<string, unknown>,
  ): Promise<CallResult> {
    const result = await this.runApproved(call.caller, eventId);
    if (result.structuredContent?.status !== 'pending') return result;
    const view = await this.ports.getEvent(call.caller, eventId);
    const pending = pendingOf(view, eventId, (id) => this.ports.approvalUrl(id));
    if (!pending || !call.urlElicitation) return result;
    logger.debug('mcp call still pending', { eventId, tool: toolName });
    return this.inputRequiredFor(call, pending, toolName, args);
  }

  /**
   * 2025-11-25 task-augmented `tools/call`: the parked event and its approval are already durable
   * (the submit core wrote them before answering); the task is a signed handle on them, bound to
   * this tenant, key and agent. The SDK's wire check refuses a `tools/call` result carrying `task`
   * without `content`, so the pending result's content travels beside it (clients read `task`).
   */
  async createTask(call: CallContext, pending: PendingApproval, result: ToolResult): Promise<CallResult> {
    const { taskId, createdAt, ttlSec } = await this.mintTask(call, pending);
    return {
      ...result,
      task: {
        taskId,
        status: 'working',
        statusMessage: workingMessage(this.withGroup(call, pending), 'pending'),
        createdAt,
        lastUpdatedAt: createdAt,
        ttl: ttlSec * 1000,
        pollInterval: TASK_POLL_INTERVAL_MS,
      },
    } as CallResult;
  }

  /** A task id for a parked call: signed, bound to this tenant, key and agent, living as long as the call can. */
  async mintTask(call: CallContext, pending: PendingApproval) {
    return this.mintTaskId(call, pending.eventId, pending.expiresAt);
  }

  /** A new task's pending approval, with the approver group submit gave it (policy data, no read). */
  withGroup(call: CallContext, pending: PendingApproval): PendingApproval {
    const group = this.ports.approverGroup?.(call.caller.tenantId);
    return group === undefined ? pending : { ...pending, approverGroup: group };
  }

  async mintTaskId(call: CallContext, eventId: string, expiresAt: string, decided?: 'allow' | 'deny') {
    const now = this.ports.now();
    const grantSec = decided ? 0 : this.ports.grantTtlSec(call.caller.tenantId);
    const ttlSec = taskTtlSec(expiresAt, grantSec, now);
    const createdAt = now.toISOString();
    const signer = await this.ports.signer();
    const taskId = await signer.mint<TaskPayload>(
      { e: eventId, c: createdAt, t: ttlSec * 1000, ...(decided ? { d: decided } : {}) },
      taskBinding(call.caller, agentOf(call)),
      ttlSec,
    );
    return { taskId, createdAt, ttlSec };
  }

  /** 2025-11-25: the task of a call policy allowed or denied at submit, completed (its answer beside it). */
  async createDecidedTask(call: CallContext, body: string, result: ToolResult): Promise<CallResult> {
    const submitted = JSON.parse(body) as { event_id?: unknown; decision?: unknown };
    const decided =
      submitted.decision === 'allow' || submitted.decision === 'deny' ? submitted.decision : undefined;
    if (typeof submitted.event_id !== 'string' || !decided) return result;
    const now = this.ports.now().toISOString();
    const { taskId, createdAt, ttlSec } = await this.mintTaskId(call, submitted.event_id, now, decided);
    return {
      ...result,
      task: {
        taskId,
        status: 'completed',
        statusMessage: decided === 'allow' ? 'Allowed by policy: it ran.' : 'Denied by policy: nothing ran.',
        createdAt,
        lastUpdatedAt: createdAt,
        ttl: ttlSec * 1000,
        pollInterval: TASK_POLL_INTERVAL_MS,
      },
    } as CallResult;
  }

  /**
   * 2026-07-28 (SEP-2663): a `CreateTaskResult` (`resultType: "task"`) in lieu of the tool result.
   * Durable before the answer: the parked event and its approval are written by submit, and the
   * task id is a signed handle on them, so a `tasks/get` for it resolves at once.
   */
  async createModernTask(call: CallContext, pending: PendingApproval): Promise<CallResult> {
    const { taskId, createdAt, ttlSec } = await this.mintTask(call, pending);
    const task: ModernTask = {
      taskId,
      status: 'working',
      statusMessage: workingMessage(this.withGroup(call, pending), 'pending'),
      createdAt,
      lastUpdatedAt: createdAt,
      ttlMs: ttlSec * 1000,
      pollIntervalMs: TASK_POLL_INTERVAL_MS,
    };
    return { resultType: 'task', ...task } as unknown as CallResult;
  }

  /** `tasks/get` (2026-07-28): the task in its detailed shape, the result or the error inlined when it has ended. */
  async getModernTask(call: CallContext, taskId: string): Promise<Record<string, unknown>> {
    requireTasks(call);
    const poll = await this.pollTask(call, taskId);
    const { ttl, pollInterval, ...task } = this.taskOf(taskId, poll);
    return detailedTask({ ...task, ttlMs: ttl, pollIntervalMs: pollInterval }, poll.result);
  }

  /**
   * `tasks/update` (2026-07-28): this server never asks a task for input (only an approver decides,
   * and not through the client), so no key is ever outstanding and every response is ignored, as
   * the extension says of unknown keys: an empty acknowledgement for a task this caller holds.
   */
  async updateModernTask(call: CallContext, taskId: string): Promise<Record<string, never>> {
    requireTasks(call);
    await this.taskEvent(call, taskId);
    return {};
  }

  /**
   * `tasks/cancel` (2026-07-28): withdraws the pending approval request and acknowledges. SEP-2663's
   * cancellation is cooperative: a request already decided is acknowledged too and ends as decided
   * (completed when approved and run, failed when denied), which `tasks/get` tells.
   */
  async cancelModernTask(call: CallContext, taskId: string): Promise<Record<string, never>> {
    requireTasks(call);
    const { eventId } = await this.taskEvent(call, taskId);
    try {
      await this.ports.withdraw(call.caller, eventId);
    } catch (error) {
      if (!(error instanceof AppError) || error.status >= 500) return internal(error);
      if (error.status === 404) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Task not found');
      logger.info('mcp task cancel after a decision', { event_id: eventId, code: error.code });
    }
    return {};
  }

  /** The parked event a task id names, if this caller's agent holds it; else "not found". */
  async taskEvent(
    call: CallContext,
    taskId: unknown,
  ): Promise<{ eventId: string; createdAt: string; ttlMs: number; decided?: 'allow' | 'deny' }> {
    const notFound = () => new ProtocolError(ProtocolErrorCode.InvalidParams, 'Task not found');
    if (typeof taskId !== 'string' || taskId.length > MAX_SESSION_ID_CHARS) throw notFound();
    const signer = await this.ports.signer();
    const verified = await signer.verify<TaskPayload>(taskId, taskBinding(call.caller, agentOf(call)));
    if (!verified.ok) throw notFound();
    const eventId = EventIdArguments.safeParse({ event_id: verified.payload?.e });
    const createdAt = verified.payload?.c;
    const ttlMs = verified.payload?.t;
    if (!eventId.success || typeof createdAt !== 'string' || typeof ttlMs !== 'number') throw notFound();
    const decided = verified.payload?.d;
    return {
      eventId: eventId.data.event_id,
      createdAt,
      ttlMs,
      ...(decided === 'allow' || decided === 'deny' ? { decided } : {}),
    };
  }

  /**
   * One poll: the exactly-once execute, which answers pending, runs the approved call (the first
   * poll after approval), answers in flight at once, or replays the recorded result.
   */
  async pollTask(
    call: CallContext,
    taskId: string,
  ): Promise<{ status: TaskStatus; message: string; result: ToolResult; createdAt: string; ttlMs: number }> {
    const { eventId, createdAt, ttlMs, decided } = await this.taskEvent(call, taskId);
    if (decided) {
      const result = await this.decidedResult(call, eventId);
      return {
        status: 'completed',
        message: result.content.map((c) => ('text' in c ? c.text : '')).join(' '),
        result,
        createdAt,
        ttlMs,
      };
    }
    // Most polls find the request still pending: one read of the event (and its approval) answers
    // them and names who decides. Anything else goes to the exactly-once execute, which decides.
    let stored: StoredEvent | undefined;
    try {
      stored = await this.ports.getEvent(call.caller, eventId);
    } catch (error) {
      return internal(error);
    }
    const approval = stored?.approval;
    if (
      stored &&
      approval?.status === 'pending' &&
      !stored.execution &&
      Date.parse(approval.expires_at) > this.ports.now().getTime()
    ) {
      const message = workingMessage(
        pendingOf(stored, eventId, (id) => this.ports.approvalUrl(id)),
        'pending',
      );
      const result: ToolResult = {
        content: [{ type: 'text', text: message }],
        structuredContent: { status: 'pending', event_id: eventId },
      };
      return { status: 'working', message, result, createdAt, ttlMs };
    }
    const result = await this.runApproved(call.caller, eventId, { wait: false });
    const outcome = result.structuredContent?.status as string | undefined;
    if (outcome === 'not_found') throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Task not found');
    const status = taskStatusOf(outcome);
    let message = result.content.map((c) => ('text' in c ? c.text : '')).join(' ');
    if (status === 'working') {
      const view = outcome === 'pending' ? await this.ports.getEvent(call.caller, eventId) : undefined;
      message = workingMessage(
        pendingOf(view, eventId, (id) => this.ports.approvalUrl(id)),
        outcome,
      );
    }
    return { status, message, result, createdAt, ttlMs };
  }

  taskOf(taskId: string, poll: { status: TaskStatus; message: string; createdAt: string; ttlMs: number }) {
    return {
      taskId,
      status: poll.status,
      statusMessage: poll.message,
      createdAt: poll.createdAt,
      lastUpdatedAt: this.ports.now().toISOString(),
      ttl: poll.ttlMs,
      pollInterval: TASK_POLL_INTERVAL_MS,
    };
  }

  /** The recorded answer of a call policy decided at submit, as `tools/call` gave it (read, never re-run). */
  async decidedResult(call: CallContext, eventId: string): Promise<ToolResult> {
    let stored;
    try {
      stored = await this.ports.getEvent(call.caller, eventId);
    } catch (error) {
      return internal(error);
    }
    if (!stored || (stored.decision !== 'allow' && stored.decision !== 'deny'))
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Task not found');
    const body = {
      event_id: eventId,
      decision: stored.decision,
      reason: stored.reason,
      policy_version: stored.policy_version,
      ...(stored.result ? { result: stored.result } : {}),
    };
    return submitOutcome({ body: JSON.stringify(body) }, String(stored.request.tool ?? '')).result;
  }

  /** `tasks/result`: the call's result once terminal; waits at most TASK_RESULT_WAIT_MS, then says to poll. */
  async taskResult(call: CallContext, taskId: string): Promise<ToolResult> {
    const deadline = Date.now() + (this.ports.taskResultWaitMs ?? TASK_RESULT_WAIT_MS);
    for (;;) {
      const poll = await this.pollTask(call, taskId);
      if (poll.status !== 'working')
        return {
          ...poll.result,
          _meta: { 'io.modelcontextprotocol/related-task': { taskId } },
        } as ToolResult;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new ProtocolError(
          ProtocolErrorCode.InvalidRequest,
          `The task is still working (${poll.message}); poll tasks/get every ${TASK_POLL_INTERVAL_MS / 1000} s and ask for the result once it is completed.`,
          { status: 'working', pollInterval: TASK_POLL_INTERVAL_MS },
        );
      await new Promise((r) => setTimeout(r, Math.min(1_000, left)));
    }
  }

  /** `tasks/cancel`: withdraws the pending approval request; a decided one cannot be cancelled. */
  async cancelTask(call: CallContext, taskId: string) {
    const { eventId } = await this.taskEvent(call, taskId);
    try {
      await this.ports.withdraw(call.caller, eventId);
    } catch (error) {
      if (!(error instanceof AppError) || error.status >= 500) return internal(error);
      if (error.status === 404) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Task not found');
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Cannot cancel the task: ${error.message}`, {
        code: error.code,
      });
    }
    return this.taskOf(taskId, await this.pollTask(call, taskId));
  }

  async runApproved(
    caller: Caller,
    eventId: string,
    options: { wait: boolean } = { wait: true },
  ): Promise<ToolResult> {
    try {
      const execute = options.wait ? this.ports.execute : this.ports.executeNoWait;
      return executeOutcome(eventId, { response: await execute(caller, eventId) });
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return executeOutcome(eventId, { error });
      return fromCoreError(error);
    }
  }

  async approvalStatus(caller: Caller, eventId: string): Promise<ToolResult> {
    let stored;
    try {
      stored = await this.ports.getEvent(caller, eventId);
    } catch (error) {
      return internal(error);
    }
    return approvalStatusResult({
      stored,
      eventId,
      now: this.ports.now(),
      url: (id) => this.ports.approvalUrl(id),
    });
  }

  async callTool(call: CallContext, request: CallToolRequest, ctx: ServerContext): Promise<CallResult> {
    const { name } = request.params;
    if (name !== STATUS_TOOL && name !== EXECUTE_TOOL) return this.callGovernedTool(call, request, ctx);
    const args = EventIdArguments.safeParse(request.params.arguments ?? {});
    if (!args.success) {
      const issue = args.error.issues[0];
      return {
        isError: true,
        content: [
          {
            type: 'text',
            text: `invalid arguments for ${name}: ${issue?.path.join('.') || 'arguments'} ${issue?.message}`,
          },
        ],
      };
    }
    return name === STATUS_TOOL
      ? this.approvalStatus(call.caller, args.data.event_id)
      : this.runApproved(call.caller, args.data.event_id);
  }

  /**
   * `tools/resolve`: the tool as this call would meet it, with policy's preview (allow, deny, or
   * park for which approver group) in its `_meta`. Nothing is recorded and nothing runs; the
   * gateway tools need no preview (they are the same for every call).
   */
  async resolveTool(
    call: CallContext,
    name: string,
    args: Record<string, unknown>,
  ): Promise<{ tool: McpTool }> {
    const gateway = GATEWAY_TOOLS.find((tool) => tool.name === name);
    if (gateway) return { tool: gateway };
    let spec = this.ports.specsByTool.get(name);
    // An upstream tool (issue 25) is read from the caller's tenant's catalog (the edge took this
    // message's rate-limit token, as for every message but tools/call); another tenant's is unknown.
    if (!spec && this.ports.upstreamSpec?.shaped(name)) {
      spec = await this.ports.upstreamSpec.get(call.caller.tenantId, name);
    }
    if (!spec) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${name}`);
    let outcome: ResolveOutcome;
    try {
      outcome = this.ports.resolve(call.caller, agentOf(call), spec, args);
    } catch (error) {
      return internal(error, 'internal error: no preview; tools/call still decides');
    }
    if (!outcome.ok) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `${outcome.message}.`);
    return { tool: outcome.tool };
  }

  /** One server per request (the SDK's stateless idiom): its tools are the caller's tenant's. */
  serverFor(ctx: McpRequestContext): Server {
    const edge = ctx.authInfo?.extra as unknown as EdgeInfo;
    const { caller } = edge;
    const legacy = ctx.era === 'legacy';
    const server = new Server(MCP_SERVER_INFO, {
      // 2025-11-25 tasks: task-augmented tools/call, polled with tasks/get, tasks/result, tasks/cancel.
      // 2026-07-28: the Tasks extension (SEP-2663), used only for requests that declare it too.
      capabilities: legacy
        ? { tools: {}, tasks: { cancel: {}, requests: { tools: { call: {} } } } }
        : { tools: {}, extensions: { [TASKS_EXTENSION]: {} } },
      instructions: MCP_INSTRUCTIONS,
      // The list is this principal's (policy per tenant and agent): a shared cache must not keep it.
      cacheHints: { 'tools/list': { ttlMs: TOOLS_LIST_TTL_MS, cacheScope: 'private' } },
    });
    server.setRequestHandler('tools/list', async (_request, c) => {
      const call = contextOf(c, ctx.era, edge, ctx.requestInfo);
      const governed = await this.ports.listTools(caller, agentOf(call));
      // A governed call may park for a human: a 2025-11-25 client may ask for it as a task.
      const tools = legacy
        ? governed.map((tool) => ({ ...tool, execution: { taskSupport: 'optional' as const } }))
        : governed;
      return { tools: [...tools, ...GATEWAY_TOOLS] };
    });
    server.setRequestHandler('tools/resolve', { params: ResolveParams }, async (params, c) => {
      const call = contextOf(c, ctx.era, edge, ctx.requestInfo);
      return this.resolveTool(call, params.name, params.arguments);
    });
    if (legacy) {
      // The 2025-11-25 wire registry has these methods (the SDK validates their params and
      // results), but the 2.x types name only the current revision's: registered untyped.
      const onTask = server.setRequestHandler.bind(server) as unknown as (
        method: string,
        handler: (request: { params: { taskId: string } }, c: ServerContext) => Promise<unknown>,
      ) => void;
      const callOf = (c: ServerContext) => contextOf(c, ctx.era, edge, ctx.requestInfo);
      onTask('tasks/get', async (request, c) =>
        this.taskOf(request.params.taskId, await this.pollTask(callOf(c), request.params.taskId)),
      );
      onTask('tasks/result', async (request, c) => this.taskResult(callOf(c), request.params.taskId));
      onTask('tasks/cancel', async (request, c) => this.cancelTask(callOf(c), request.params.taskId));
    } else {
      // SEP-2663's methods; `tasks/result` and `tasks/list` are not among them (-32601, the SDK's).
      const callOf = (c: ServerContext) => contextOf(c, ctx.era, edge, ctx.requestInfo);
      server.setRequestHandler('tasks/get', { params: TaskParams }, async (params, c) =>
        this.getModernTask(callOf(c), params.taskId),
      );
      server.setRequestHandler('tasks/update', { params: UpdateTaskParams }, async (params, c) =>
        this.updateModernTask(callOf(c), params.taskId),
      );
      server.setRequestHandler('tasks/cancel', { params: TaskParams }, async (params, c) =>
        this.cancelModernTask(callOf(c), params.taskId),
      );
    }
    server.setRequestHandler('tools/call', async (request, c) =>
      this.callTool(contextOf(c, ctx.era, edge, ctx.requestInfo), request, c),
    );
    return server;
  }
}

/** The MCP server of a gateway: `answer` serves one authenticated HTTP request, as an `HttpResult`. */
export interface McpServerAdapter {
  /** `parsedBody`: the request's JSON as the edge parsed it (the SDK then reads no body). */
  answer(
    request: Request,
    caller: Caller,
    initialize?: InitializeParams,
    parsedBody?: unknown,
  ): Promise<HttpResult>;
}

export function mcpServer(ports: McpPorts): McpServerAdapter {
  const gateway = new GatewayMcp(ports);
  const handler = createMcpHandler((ctx) => gateway.serverFor(ctx), {
    legacy: 'stateless',
    responseMode: 'auto',
    maxRequestBodySize: LIMITS.maxBodyBytes,
    onerror: (error) => logger.info('mcp request refused', { error: error.message }),
  });
  return {
    async answer(request, caller, initialize, parsedBody) {
      // A 2025 session id is what this server signed for this key; any other is unknown: 404, as
      // the transport spec has it for a session the server does not have (the client starts anew).
      const sessionId = request.headers.get('mcp-session-id');
      let session: LegacySession | undefined;
      if (sessionId !== null) {
        session = await verifySession(await ports.signer(), sessionId, caller);
        if (!session) return SESSION_NOT_FOUND;
      }
      const edge: EdgeInfo = { caller, ...(session ? { session } : {}) };
      const response = await handler.fetch(request, {
        authInfo: { token: 'api-key', clientId: caller.tenantId, scopes: [], extra: { ...edge } },
        ...(parsedBody === undefined ? {} : { parsedBody }),
      });
      const headers: Record<string, string> = {};
      response.headers.forEach((value, key) => {
        if (key !== 'content-type') headers[key] = value;
      });
      // A 2025 `initialize` answered: the session id carries what the client said, signed.
      if (initialize && response.status === 200) {
        const claims = sessionClaims(initialize, randomBytes(12).toString('base64url'));
        headers['mcp-session-id'] = await (
          await ports.signer()
        ).mint(claims, sessionBinding(caller), MCP_STATE_TTL_SEC);
      }
      return {
        status: response.status,
        body: await response.text(),
        headers,
        contentType: response.headers.get('content-type') ?? 'application/json',
      };
    },
  };
}

const SESSION_NOT_FOUND: HttpResult = {
  status: 404,
  body: JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }),
  contentType: 'application/json',
};

async function verifySession(
  signer: McpSigner,
  sessionId: string,
  caller: Caller,
): Promise<LegacySession | undefined> {
  if (sessionId.length > MAX_SESSION_ID_CHARS) return undefined;
  const verified = await signer.verify(sessionId, sessionBinding(caller));
  if (!verified.ok) {
    logger.info('mcp session refused', { reason: verified.reason });
    return undefined;
  }
  return sessionOf(verified.payload);
}

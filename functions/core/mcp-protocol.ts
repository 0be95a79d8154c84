/**
 * The MCP protocol's pure parts, beside the catalog and result mapping of `core/mcp.ts`: who is
 * calling (era, client, session), what the edge needs of a message before the SDK reads it, the
 * pending-approval texts and the `oc_approval_status` answer. No SDK, no AWS, no environment: the
 * adapter (`adapters/mcp-server.ts`) wires these into the official SDK, the handler
 * (`handlers/mcp.ts`) into the HTTP edge.
 */
import { randomBytes } from 'node:crypto';
import { clientLabel, EXECUTE_TOOL, type PendingApproval, type ToolResult } from './mcp.js';
import type { StoredEvent } from './ports.js';

export const MCP_SERVER_INFO = { name: 'openclause-gateway', version: '0.1.0' } as const;

export const MCP_INSTRUCTIONS =
  'Every tool call is governed by the OpenClause gateway: policy allows it (it runs), denies it ' +
  `(an error with the reason) or parks it for a human approver (the result says pending and names the ` +
  `console page). Approval is never yours to give: after a human approves, call ${EXECUTE_TOOL} with ` +
  `the event_id, once. Pass idempotency_key to make a call safe to repeat; without one, re-sending the ` +
  'same JSON-RPC request (same id, same arguments) replays its first answer instead of running again.';

/** The 2026-07-28 per-request envelope's keys (in `params._meta`). */
export const CLIENT_INFO_KEY = 'io.modelcontextprotocol/clientInfo';
export const CLIENT_CAPABILITIES_KEY = 'io.modelcontextprotocol/clientCapabilities';
export const PROTOCOL_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';

export type McpEra = 'legacy' | 'modern';

/** Who is calling, from the API key (authentication runs before the SDK sees the request). */
export interface Caller {
  tenantId: string;
  agentId?: string;
}

/**
 * What a 2025-era client said at `initialize`, carried by the client itself: the session id this
 * server hands out is that information (base64url JSON) plus 96 random bits, so the server stays
 * stateless and each session's request ids are told apart (see `derivedIdempotencyKey`).
 */
export interface LegacySession {
  id: string;
  name: string;
  version: string;
  urlElicitation: boolean;
}

export interface InitializeParams {
  clientInfo?: unknown;
  capabilities?: unknown;
}

const urlElicitationOf = (capabilities: unknown): boolean =>
  (capabilities as { elicitation?: { url?: unknown } } | undefined)?.elicitation?.url !== undefined;

export function legacySessionId(init: InitializeParams): string {
  const info = clientLabel(init.clientInfo);
  const claims = { n: info.name, v: info.version, u: urlElicitationOf(init.capabilities) ? 1 : 0 };
  return `${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${randomBytes(12).toString('base64url')}`;
}

export function legacySession(header: string | null | undefined): LegacySession | undefined {
  const match = header && /^([A-Za-z0-9_-]{1,1024})\.([A-Za-z0-9_-]{16})$/.exec(header);
  if (!match) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(match[1]!, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    const info = clientLabel({ name: claims.n, version: claims.v });
    return { id: header, ...info, urlElicitation: claims.u === 1 };
  } catch {
    return undefined;
  }
}

/** The per-request view of the call: caller, era, client. */
export interface CallContext {
  caller: Caller;
  era: McpEra;
  session?: LegacySession;
  client: { name: string; version: string; protocol_version: string };
  urlElicitation: boolean;
}

/**
 * The call's context: on 2026-07-28 from the request's envelope, on 2025 from the session id and
 * the `MCP-Protocol-Version` header.
 */
export function callContext(input: {
  era: McpEra;
  caller: Caller;
  envelope?: Record<string, unknown>;
  sessionHeader?: string | null;
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
    };
  }
  const session = legacySession(input.sessionHeader);
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
 * What the edge needs of a single JSON-RPC message before the SDK reads it: whether it is a
 * governed `tools/call` (it takes its rate-limit token in the submit core, as on REST) and the
 * `initialize` params (a 2025 client's session id is made of them).
 */
export function peekMessage(
  bytes: Buffer,
  isGovernedTool: (name: string) => boolean,
): { governed: boolean; initialize?: InitializeParams } {
  let message: { method?: unknown; params?: { name?: unknown } & Record<string, unknown> };
  try {
    message = JSON.parse(bytes.toString('utf8')) as typeof message;
  } catch {
    return { governed: false };
  }
  if (typeof message !== 'object' || message === null) return { governed: false };
  const governed =
    message.method === 'tools/call' &&
    typeof message.params?.name === 'string' &&
    isGovernedTool(message.params.name);
  return {
    governed,
    ...(message.method === 'initialize'
      ? { initialize: (message.params ?? {}) as Record<string, unknown> }
      : {}),
  };
}

/** The text of the URL elicitation that points a client's human to the console. */
export const approvalMessage = (p: PendingApproval) =>
  `An OpenClause approver must decide this call (${p.reason}) before ${p.expiresAt}. Open the console to review it.`;

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
  };
  return answer(status, messages[status] ?? status, {
    ...(approval ? { approval: { id: approval.id, url, expires_at: approval.expires_at } } : {}),
    ...(status === 'denied' ? { reason: approval?.deny_reason ?? '' } : {}),
  });
}

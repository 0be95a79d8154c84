/**
 * Who acts, and so what they may see (issue 19, "agents are walls"): the tenant, the API key (by
 * id) and the agent the key is bound to. A key bound to an agent reads and executes only that
 * agent's events; an unbound key acts for the whole tenant. Out of scope answers as missing (404),
 * never 403, so a key learns nothing about other agents' events.
 */
import type { StoredEvent, ToolCallStore } from './ports.js';

export interface CallerScope {
  tenantId: string;
  /** The API key's id (`key_<16 hex>`), what the records name. */
  keyId: string;
  /** The agent the key is bound to; absent for a key of the whole tenant. */
  agentId?: string;
}

/** Whether the caller may see the event: its tenant's, and its agent's when the key is bound. */
export const inScope = (event: StoredEvent, scope: Pick<CallerScope, 'tenantId' | 'agentId'>): boolean =>
  event.tenant_id === scope.tenantId &&
  (scope.agentId === undefined || event.request.agent_id === scope.agentId);

/** The event as its caller may read it: undefined when missing or out of the caller's scope. */
export async function readEvent(
  events: Pick<ToolCallStore, 'getEvent'>,
  scope: Pick<CallerScope, 'tenantId' | 'agentId'>,
  eventId: string,
): Promise<StoredEvent | undefined> {
  const stored = await events.getEvent(scope.tenantId, eventId);
  return stored && inScope(stored, scope) ? stored : undefined;
}

/** The caller as an `execution.started` fact names it: the key id, and the bound agent or null. */
export const callerRecord = (scope: CallerScope): { key_id: string; agent_id: string | null } => ({
  key_id: scope.keyId,
  agent_id: scope.agentId ?? null,
});

/**
 * The tenant's rate limit, as every agent-key route takes it: one token per request (one per
 * JSON-RPC message on `/mcp`), whatever the request turns out to be (valid or not, a read, a
 * refused `/execute`, a `requestState` retry). A refusal is 429 with `Retry-After`, before
 * anything else is read or written.
 *
 * Two places take their token later, on purpose: `POST /v1/toolcalls` in the submit core, which
 * looks a refused call up first, so a replay is answered even while the tenant is limited (W30); and a
 * governed MCP `tools/call` in the MCP adapter, before its arguments are read, so a refusal is a
 * tool error the model can read. Approver (JWT) routes take none: humans deciding are not the
 * agents' traffic, and an agent flood must not lock approvers out.
 */
import { rateLimited } from '../shared/errors.js';
import type { AppState } from './app-state.js';

/** Takes `count` tokens of the tenant's bucket, all or none; 429 when they do not fit. */
export async function spendRateLimit(state: AppState, tenantId: string, count = 1): Promise<void> {
  if (count < 1) return;
  const token = await state.rateLimiter.take(tenantId, count);
  if (!token.allowed) throw rateLimited(token.retryAfterSec);
}

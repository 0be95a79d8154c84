/**
 * The Slack route's sender (`{"kind": "slack", "channel"}`): through the Slack connector's
 * internal actions (the connector Lambda in AWS, in process locally),
 * - `oc.approval.requested` posts the Block Kit approval message (`slack.approval.request`) and
 *   keeps the message's channel and `ts` on the delivery record;
 * - `oc.approval.decided` / `oc.approval.expired` replace that message (`slack.approval.update`:
 *   "Approved by …", "Denied by …: reason", "Expired", buttons removed), whichever surface decided.
 * The delivery id and the record's lease make a second post of one approval impossible; an update
 * whose message is not posted yet waits for it (retried), and one whose message was never posted
 * fails for good (there is nothing to update).
 */
import type { ConnectorInvoker, ExecutionResult } from '../connectors/types.js';
import {
  deliveryId,
  type DeliveryMessage,
  type RouteSender,
  type SendContext,
  type SendOutcome,
} from '../core/notifications.js';
import type { TenantConfig } from '../core/policy.js';
import { resolveQuorum } from '../core/approver-directory.js';
import { extensionNote } from '../core/slack-message.js';
import { slackOffers } from '../core/slack-offers.js';
import type { DeliveryStore } from './deliveries.js';

/** The agent id the connector logs for the gateway's own calls. */
export const NOTIFICATIONS_AGENT_ID = 'oc-notifications';

export interface SlackSenderOptions {
  connectors: () => ConnectorInvoker;
  deliveries: DeliveryStore;
  timeoutMs: number;
  /**
   * The tenant's policy data (issue 21): what a pending request's message offers besides
   * Approve and Deny (Extend, Approve + calls like it). Absent: it offers neither.
   */
  tenant?: (tenantId: string) => TenantConfig | undefined;
}

/** "slack: ratelimited (retry after 30 s)" -> 30 (the connector's public message carries it). */
const retryAfterOf = (message: string): number | undefined => {
  const m = /retry after (\d+) s/.exec(message);
  return m ? Number(m[1]) : undefined;
};

export function connectorOutcome(result: ExecutionResult): SendOutcome {
  if (result.status === 'success') {
    const channel = result.output?.channel;
    const ts = result.output?.ts;
    return typeof channel === 'string' && typeof ts === 'string'
      ? { kind: 'delivered', state: { channel, ts } }
      : { kind: 'delivered' };
  }
  if (result.status === 'timeout') return { kind: 'retry', error: 'slack: timed out' };
  const error = `${result.error?.code ?? 'CONNECTOR_ERROR'}: ${result.error?.message ?? 'failed'}`;
  // Params the connector refuses will be refused again: no retry.
  if (result.error?.code === 'INVALID_PARAMS') return { kind: 'failed', error };
  const retryAfterSec = retryAfterOf(result.error?.message ?? '');
  return { kind: 'retry', error, ...(retryAfterSec !== undefined ? { retryAfterSec } : {}) };
}

export class SlackSender implements RouteSender {
  readonly kind = 'slack' as const;

  constructor(private readonly options: SlackSenderOptions) {}

  async send(delivery: DeliveryMessage, _ctx: SendContext): Promise<SendOutcome> {
    const route = delivery.route;
    if (route.kind !== 'slack') return { kind: 'failed', error: 'not a slack route' };
    // A Slack message is an approval's view: the outbox sends it nothing else (issue 25's drift).
    if (!('approval_request_id' in delivery.data)) return { kind: 'failed', error: 'not an approval event' };
    const d = delivery.data;
    const base = {
      channel: route.channel,
      approval: {
        id: d.approval_request_id,
        event_id: d.event_id,
        tenant_id: d.tenant_id,
        tool: d.tool,
        action: d.action,
        resource: d.resource,
        risk_score: d.risk_score,
        reason: d.reason,
        agent_id: d.agent_id,
        user_id: d.raw.user_id,
        expires_at: d.expires_at,
        params: d.raw.params,
        ...(d.risk ? { risk: d.risk } : {}),
        ...(d.upstream_claims ? { upstream_claims: d.upstream_claims } : {}),
        // A legacy approval has no recorded view: the message renders the current version.
        ...(d.view.recorded === d.view.version
          ? { view_version: d.view.version, view_hash: d.view.hash }
          : {}),
      },
      console_url: d.approval_url,
      summary: d.summary,
      slack_view: route.view ?? 'full',
    };
    const tenant = this.options.tenant?.(d.tenant_id);
    // The quorum the call was parked with, as submit resolved it (the notice carries none yet).
    const quorum =
      d.quorum ?? resolveQuorum(tenant, `${d.tool}.${d.action}`, d.risk?.effective ?? d.risk_score);
    const offers = this.options.tenant
      ? slackOffers(tenant, { tool: d.tool, action: d.action, resource: d.resource, quorum })
      : {};
    const pending = { ...base, ...(Object.keys(offers).length ? { offers } : {}) };
    if (delivery.event_type === 'oc.approval.requested')
      return this.invoke(delivery, 'approval.request', pending);

    const posted = await this.options.deliveries.get(
      delivery.tenant_id,
      delivery.approval_id,
      deliveryId(delivery.approval_id, 'oc.approval.requested', route),
    );
    if (!posted || posted.status === 'failed' || posted.status === 'dead')
      return { kind: 'failed', error: 'the approval message was never posted: nothing to update' };
    const channel = posted.state?.channel;
    const ts = posted.state?.ts;
    if (posted.status !== 'delivered' || !channel || !ts)
      return { kind: 'retry', error: 'the approval message is not posted yet' };
    const outcome =
      delivery.event_type === 'oc.approval.vote'
        ? // Still open (issue 21): the request stays, with who has voted and what is still needed.
          {
            status: 'pending',
            progress: d.quorum?.summary ?? 'votes recorded',
            voters: (d.quorum?.stages ?? []).flatMap((s) => s.votes.map((v) => v.approver)),
          }
        : delivery.event_type === 'oc.approval.reminder'
          ? { status: 'pending', note: 'Reminder: nobody has decided yet, and this request expires soon' }
          : delivery.event_type === 'oc.approval.extended'
            ? {
                status: 'pending',
                note: extensionNote(d.extension),
              }
            : delivery.event_type === 'oc.approval.expired'
              ? { status: 'expired' }
              : delivery.event_type === 'oc.approval.withdrawn'
                ? { status: 'withdrawn', withdrawn_by: d.withdrawn_by ?? 'the agent' }
                : delivery.event_type === 'oc.approval.revoked'
                  ? {
                      status: 'revoked_by_policy',
                      decided_by: d.decided_by ?? 'unknown',
                      reason: d.revocation?.reason ?? 'the live policy refused it',
                    }
                  : d.decision === 'approved'
                    ? {
                        status: 'approved',
                        decided_by: d.decided_by ?? 'unknown',
                        // Made with the approval (from Slack or the API): the message keeps showing it.
                        ...(d.standing_grant ? { standing_grant: d.standing_grant } : {}),
                      }
                    : {
                        status: 'denied',
                        decided_by: d.decided_by ?? 'unknown',
                        ...(d.deny_reason ? { deny_reason: d.deny_reason } : {}),
                      };
    return this.invoke(delivery, 'approval.update', {
      ...(outcome.status === 'pending' ? pending : base),
      channel,
      ts,
      outcome,
    });
  }

  private async invoke(
    delivery: DeliveryMessage,
    action: 'approval.request' | 'approval.update',
    params: Record<string, unknown>,
  ): Promise<SendOutcome> {
    const result = await this.options.connectors().invoke(
      {
        event_id: delivery.data.event_id,
        tenant_id: delivery.tenant_id,
        agent_id: NOTIFICATIONS_AGENT_ID,
        tool: 'slack',
        action,
        params,
        resource: 'resource' in delivery.data ? delivery.data.resource : '',
      },
      { timeoutMs: this.options.timeoutMs },
    );
    return connectorOutcome(result);
  }
}

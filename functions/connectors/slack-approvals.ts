/**
 * The Slack connector's approval actions (reference §11.1, SPEC §5), called by the notification
 * delivery for a `{"kind": "slack", "channel"}` route:
 * - `slack.approval.request`: posts the Block Kit approval message (`chat.postMessage`); the
 *   answer's `channel` and `ts` are what `slack.approval.update` needs later.
 * - `slack.approval.update`: replaces it once decided or expired (`chat.update`): "Approved by
 *   …", "Denied by …: reason" or "Expired", buttons removed.
 * Live mode calls the Web API through `@slack/web-api` (`ok: false` is an error, `ratelimited`
 * honours `Retry-After`); mock mode answers `ok` and records what it would have sent.
 */
import * as z from 'zod';
import {
  approvalOutcomeMessage,
  approvalRequestMessage,
  type ApprovalOutcome,
  type SlackMessage,
} from '../core/slack-message.js';
import type { SlackConfig } from './config.js';
import type { ActionDefinition, ConnectorOutput } from './sdk.js';
import { SlackWebApi } from './slack-web-api.js';

const text = (max: number) => z.string().max(max);

const Approval = z.object({
  id: z.string().uuid(),
  event_id: z.string().uuid(),
  tenant_id: text(64).min(1),
  tool: text(64).min(1),
  action: text(64).min(1),
  resource: text(2048),
  risk_score: z.number().int().min(0).max(10),
  reason: text(1024),
  agent_id: text(128),
  user_id: text(256),
  expires_at: z.iso.datetime({ offset: true }),
  // What the approval view renders (core/approval-view.ts): every param, the risk assessment, and
  // the view's recorded version and hash (absent on a legacy approval).
  params: z.record(z.string(), z.unknown()).default({}),
  risk: z
    .object({ claimed: z.number().int(), floor: z.number().int(), effective: z.number().int() })
    .optional(),
  view_version: text(64).optional(),
  view_hash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  // An upstream MCP tool's own words (issue 25): part of the view, shown as its claims.
  upstream_claims: z
    .object({
      server: text(32).min(1),
      tool: text(64).min(1),
      hash: z.string().regex(/^[0-9a-f]{64}$/),
      title: text(200).optional(),
      description: text(4096).optional(),
      annotations: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
});

export const ApprovalRequestParams = z.object({
  channel: text(255).min(1),
  approval: Approval,
  console_url: z.url().max(3000),
  /** The webhook summary; the Slack message renders the view instead (kept for older callers). */
  summary: text(10_000).optional(),
  /** The tenant's `slack_view`: `target` keeps the params out of Slack. */
  slack_view: z.enum(['full', 'target']).default('full'),
  /**
   * Issue 21: what the tenant's policy data lets an approver do from a pending request's message
   * besides Approve and Deny (core/slack-offers.ts): Extend by `extend_sec`, and Approve + calls
   * like it with the standing grant's default scope. Absent: neither button.
   */
  offers: z
    .strictObject({
      extend_sec: z
        .number()
        .int()
        .min(60)
        .max(7 * 86_400)
        .optional(),
      standing_grant: z
        .strictObject({
          target_pattern: text(2048).min(1),
          max_uses: z.number().int().min(1).max(1000),
          expires_in_sec: z
            .number()
            .int()
            .min(60)
            .max(7 * 86_400),
        })
        .optional(),
    })
    .optional(),
});
export type ApprovalRequestParams = z.infer<typeof ApprovalRequestParams>;

export const ApprovalUpdateParams = ApprovalRequestParams.extend({
  /** The posted message's timestamp (`ts` from `approval.request`). */
  ts: z.string().regex(/^\d{1,12}\.\d{1,9}$/, 'must be a Slack message ts'),
  outcome: z.discriminatedUnion('status', [
    z.object({
      status: z.literal('approved'),
      decided_by: text(256).min(1),
      comment: text(1000).optional(),
      // The standing grant made with the approval (issue 21): the message keeps showing it.
      standing_grant: z
        .object({
          id: text(64).min(1),
          agent_id: text(128),
          tool: text(64).min(1),
          action: text(64).min(1),
          target_pattern: text(2048).min(1),
          max_uses: z.number().int().min(1),
          expires_at: z.iso.datetime({ offset: true }),
        })
        .optional(),
    }),
    z.object({
      status: z.literal('denied'),
      decided_by: text(256).min(1),
      deny_reason: text(1000).optional(),
    }),
    z.object({ status: z.literal('expired') }),
    z.object({
      status: z.literal('revoked_by_policy'),
      decided_by: text(256).min(1),
      reason: text(1000),
    }),
    z.object({ status: z.literal('withdrawn'), withdrawn_by: text(256).min(1) }),
    // Still open (issue 21): a quorum's vote (who voted, what is still needed), or the request
    // again after a reminder or an extension (a note under its new deadline); its buttons still decide.
    z.object({
      status: z.literal('pending'),
      progress: text(1000).min(1).optional(),
      voters: z.array(text(256).min(1)).max(50).optional(),
      note: text(300).min(1).optional(),
    }),
  ]),
});
export type ApprovalUpdateParams = z.infer<typeof ApprovalUpdateParams>;

function outcomeOf(o: Exclude<ApprovalUpdateParams['outcome'], { status: 'pending' }>): ApprovalOutcome {
  if (o.status === 'approved')
    return {
      status: 'approved',
      decidedBy: o.decided_by,
      ...(o.comment ? { comment: o.comment } : {}),
      ...(o.standing_grant ? { standingGrant: o.standing_grant } : {}),
    };
  if (o.status === 'denied')
    return {
      status: 'denied',
      decidedBy: o.decided_by,
      ...(o.deny_reason ? { denyReason: o.deny_reason } : {}),
    };
  if (o.status === 'revoked_by_policy')
    return { status: 'revoked_by_policy', decidedBy: o.decided_by, reason: o.reason };
  if (o.status === 'withdrawn') return { status: 'withdrawn', withdrawnBy: o.withdrawn_by };
  return { status: 'expired' };
}

const messageInput = (p: ApprovalRequestParams) => ({
  approval: p.approval,
  consoleUrl: p.console_url,
  slackView: p.slack_view,
  ...(p.offers ? { offers: p.offers } : {}),
});

export interface SlackApprovalOptions {
  config: SlackConfig;
  now?: () => Date;
  /** Web API base (tests: a loopback server). @default https://slack.com/api */
  apiBaseUrl?: string;
  timeoutMs?: number;
}

export type ApprovalSender = (
  method: 'post' | 'update',
  channel: string,
  message: SlackMessage,
  ts?: string,
) => Promise<ConnectorOutput>;

/** Posts or updates through the Web API (live) or records the message (mock). */
export function approvalSender(options: SlackApprovalOptions): ApprovalSender {
  if (options.config.mode === 'mock') {
    const now = options.now ?? (() => new Date());
    return async (_method, channel, message, ts) => ({
      channel,
      message: { text: message.text, blocks: message.blocks },
      mock: true,
      ok: true,
      ts: ts ?? `${Math.floor(now().getTime() / 1000)}.000001`,
    });
  }
  const api = new SlackWebApi({
    botToken: options.config.botToken,
    ...(options.apiBaseUrl ? { apiUrl: `${options.apiBaseUrl.replace(/\/+$/, '')}/` } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  return async (method, channel, message, ts) => {
    const posted =
      method === 'post'
        ? await api.postMessage(channel, message)
        : await api.update(channel, ts ?? '', message);
    return { channel: posted.channel, ok: true, ts: posted.ts };
  };
}

const ApprovalMessageOutput = z.looseObject({ ok: z.literal(true), channel: z.string(), ts: z.string() });

/**
 * `internal`: only the notification worker calls them (an agent posting approval buttons would be
 * phishing approvers), so they are not in the connector's specs and policy can never allow them.
 */
export function slackApprovalActions<C extends { sendApproval: ApprovalSender }>(): {
  'approval.request': ActionDefinition<typeof ApprovalRequestParams, C>;
  'approval.update': ActionDefinition<typeof ApprovalUpdateParams, C>;
} {
  return {
    'approval.request': {
      input: ApprovalRequestParams,
      target: null,
      output: ApprovalMessageOutput,
      timeoutMs: 8_000,
      risk: 0,
      internal: true,
      run: (p, { client }) => client.sendApproval('post', p.channel, approvalRequestMessage(messageInput(p))),
    },
    'approval.update': {
      input: ApprovalUpdateParams,
      target: null,
      output: ApprovalMessageOutput,
      timeoutMs: 8_000,
      risk: 0,
      internal: true,
      run: (p, { client }) =>
        client.sendApproval(
          'update',
          p.channel,
          p.outcome.status === 'pending'
            ? approvalRequestMessage({
                ...messageInput(p),
                ...(p.outcome.progress
                  ? { progress: { summary: p.outcome.progress, voters: p.outcome.voters ?? [] } }
                  : {}),
                ...(p.outcome.note ? { note: p.outcome.note } : {}),
              })
            : approvalOutcomeMessage(messageInput(p), outcomeOf(p.outcome)),
          p.ts,
        ),
    },
  };
}

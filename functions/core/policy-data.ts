/**
 * The policy folder's data (policy/actions.json, policy/tenants.json) and its schemas. Apart from
 * the Cedar engine, so that handlers needing tenant data (approvers, TTLs) do not load Cedar.
 */
import * as z from 'zod';
import { Directory, directoryIssues, Groups, Quorum } from './approver-directory.js';

// ---------------------------------------------------------------------------------------------
// Policy data (policy/actions.json, policy/tenants.json)

/** `<tool>.<action>` as the gateway builds it from the normalized request (reference §3.3). */
const ActionName = z
  .string()
  .max(129)
  .regex(/^[a-z0-9][a-z0-9._-]*\.[a-z0-9][a-z0-9._-]*$/, 'must be "<tool>.<action>" (a-z0-9._-)');

/** The approval events a route can ask for (SPEC §5); a route without `events` gets all three. */
export const NOTIFY_EVENTS = [
  'oc.approval.requested',
  'oc.approval.decided',
  'oc.approval.expired',
  'oc.approval.revoked',
  'oc.approval.withdrawn',
  'oc.approval.vote',
  'oc.approval.reminder',
  'oc.approval.extended',
  // An upstream tool's listing changed and the tool is disabled (issue 25): webhook routes only.
  'oc.upstream.drift',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
const RouteEvents = z.array(z.enum(NOTIFY_EVENTS)).min(1).max(NOTIFY_EVENTS.length).optional();

export const SlackView = z.enum(['full', 'target']);

export const NotifyRoute = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('webhook'),
    url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2048),
    /** Name of the signing secret; deliveries are always signed (W23). */
    secret_ref: z.string().min(1).max(128),
    events: RouteEvents,
  }),
  z.strictObject({
    kind: z.literal('slack'),
    channel: z.string().min(1).max(80),
    events: RouteEvents,
    /**
     * What the message shows (the tenant's `slack_view` unless the route says): `full`, the whole
     * approval view; `target`, the act and target and a link, no params (Slack is a third party)
     * and no one-click Approve.
     */
    view: SlackView.optional(),
  }),
]);
export type NotifyRoute = z.infer<typeof NotifyRoute>;

/**
 * The tenant's Slack workspace: a click is honoured only from it (Slack ids: `T…` for a workspace,
 * `E…` for an Enterprise Grid organization, compared with the payload's `team.id` and
 * `enterprise.id`).
 */
export const SlackWorkspace = z.strictObject({
  team_id: z.string().regex(/^T[A-Z0-9]{1,20}$/, 'must be a Slack workspace id (T…)'),
  enterprise_id: z
    .string()
    .regex(/^E[A-Z0-9]{1,20}$/, 'must be a Slack Enterprise Grid id (E…)')
    .optional(),
});
export type SlackWorkspace = z.infer<typeof SlackWorkspace>;

export const TenantConfig = z
  .strictObject({
    name: z.string().min(1).max(200),
    /** Read/write actions auto-allow when risk_score < this (risk >= 7 always needs approval). */
    max_risk_auto_approve: z.number().int().min(0).max(10),
    approver_group: z.string().max(128).default(''),
    notify: z.array(NotifyRoute).max(20).default([]),
    approvers: z
      .strictObject({
        emails: z.array(z.email()).default([]),
        slack_user_ids: z.array(z.string().min(1).max(64)).default([]),
        /**
         * OIDC approvers named by the token's exact `iss` and `sub` (for an IdP whose emails are not
         * verified, or to pin one account): matched as written, with no email needed.
         */
        subjects: z
          .array(z.strictObject({ issuer: z.string().min(1).max(2048), sub: z.string().min(1).max(512) }))
          .max(1000)
          .optional(),
      })
      .default({ emails: [], slack_user_ids: [] }),
    /**
     * The approver directory (issue 21): one id per approver with every identity they decide
     * from (email, OIDC issuer + `sub`, Slack user + workspace). With it, only its entries decide,
     * and votes and separation of duties count per id. See core/approver-directory.ts.
     */
    directory: Directory.optional(),
    /** Named groups of directory ids (what quorum stages draw from). */
    groups: Groups.optional(),
    /** How many distinct approvers, in which stages, an action, a risk band or the tenant needs. */
    quorum: Quorum.optional(),
    /** How long an approval request stays open; capped at 7 days (W2). */
    approval_ttl_sec: z
      .number()
      .int()
      .min(60)
      .max(7 * 86_400)
      .default(86_400),
    /**
     * Reminders (issue 21 deliverable 5): this long before a pending request expires, its routes
     * get `oc.approval.reminder` (and the Slack message says so). Absent: no reminders. A request
     * whose whole life is shorter gets none.
     */
    reminder_before_sec: z
      .number()
      .int()
      .min(60)
      .max(7 * 86_400)
      .optional(),
    /**
     * Extensions (issue 21 deliverable 5): an approver may move a pending deadline, by at most
     * `max_sec` past the deadline the request was created with, at most `max_times` times, and
     * never past 7 days after its creation (W2). Absent: deadlines cannot move.
     */
    extensions: z
      .strictObject({
        max_sec: z
          .number()
          .int()
          .min(60)
          .max(7 * 86_400),
        max_times: z.number().int().min(1).max(10).default(3),
      })
      .optional(),
    /**
     * Standing grants (issue 21 deliverable 6): the actions for which an approver may approve
     * "this and calls like it" (same agent, tool and action, a target pattern), with at most
     * `max_uses` uses and `max_ttl_sec` of life. A destructive action is refused at policy load
     * unless `allow_destructive` is true. Absent: no standing grants.
     */
    standing_grants: z
      .strictObject({
        actions: z.array(ActionName).min(1).max(200),
        max_uses: z.number().int().min(1).max(1000),
        max_ttl_sec: z
          .number()
          .int()
          .min(60)
          .max(7 * 86_400),
        allow_destructive: z.boolean().optional(),
      })
      .optional(),
    /** How long an approver's grant may be used to execute; capped at 1 day (W2). */
    grant_ttl_sec: z.number().int().min(60).max(86_400).default(3_600),
    /** Required with a Slack route or Slack approvers: the workspace their clicks must come from. */
    slack: SlackWorkspace.optional(),
    /**
     * What Slack approval messages show: `full` (the whole approval view: target and every param)
     * or `target` (the act, the target and a console link; no params leave for Slack, and no
     * one-click Approve). A Slack route's own `view` overrides it.
     */
    slack_view: SlackView.optional(),
    /**
     * When the policy changes between an approval and its execution, execute re-evaluates the call
     * under the live policy: a deny always revokes the approval (`revoked_by_policy`). This says
     * what a changed policy that still approves (or now allows) does: `false` runs the approved
     * call (the default); `true` revokes it too, so that a human approves it again under the live policy.
     */
    reapprove_on_policy_change: z.boolean().optional(),
    /**
     * Edit-on-approve (issue 21): per action (`tool.action`), the top-level params an approver may
     * change instead of only approving or denying (`POST /v1/approvals/{id}/edit`). An action not
     * named here cannot be edited. The target changes only if its param is listed. Every edit is
     * judged again as a submitted call (`core/edit.ts`).
     */
    editable_params: z.record(ActionName, z.array(z.string().min(1).max(128)).min(1).max(50)).optional(),
    /**
     * OAuth clients that act as this tenant's agents on `/mcp` (RFC 9068 access tokens): the
     * token's exact `iss` and `client_id` name the tenant, and `agent_id` the agent (absent: the
     * whole tenant, as an unbound API key). The tenant is never read from the token's claims.
     */
    oauth_clients: z
      .array(
        z.strictObject({
          issuer: z.string().min(1).max(2048),
          client_id: z.string().min(1).max(512),
          agent_id: z.string().min(1).max(128).optional(),
        }),
      )
      .max(1000)
      .optional(),
  })
  .superRefine((tenant, ctx) => {
    // One Slack app serves every tenant: without its workspace, a tenant's buttons could be
    // clicked from any workspace the app is installed in (by a user whose id happens to match).
    const usesSlack =
      tenant.notify.some((r) => r.kind === 'slack') ||
      tenant.approvers.slack_user_ids.length > 0 ||
      Object.values(tenant.directory ?? {}).some((e) => e.slack !== undefined);
    if (usesSlack && !tenant.slack)
      ctx.addIssue({
        code: 'custom',
        path: ['slack', 'team_id'],
        message:
          'required with a Slack route or slack_user_ids: the Slack workspace id (T…) whose clicks count, e.g. "slack": {"team_id": "T0001"}',
      });
    for (const issue of directoryIssues(tenant)) ctx.addIssue({ code: 'custom', ...issue });
  });
export type TenantConfig = z.infer<typeof TenantConfig>;

export const TenantsFile = z.record(z.string().min(1).max(128), TenantConfig).superRefine((tenants, ctx) => {
  // One OAuth client is one principal: listed twice, a token would have two tenants (or agents).
  const seen = new Map<string, string>();
  for (const [tenantId, tenant] of Object.entries(tenants))
    (tenant.oauth_clients ?? []).forEach((c, i) => {
      const key = oauthClientKey(c.issuer, c.client_id);
      const first = seen.get(key);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [tenantId, 'oauth_clients', i],
          message: `issuer ${c.issuer} client_id ${c.client_id} is already listed by ${first}`,
        });
      else seen.set(key, `${tenantId}.oauth_clients[${i}]`);
    });
});
export type TenantsFile = z.infer<typeof TenantsFile>;

const oauthClientKey = (issuer: string, clientId: string) => `${issuer}\n${clientId}`;

/** The tenant (and agent) an OAuth client acts for, from policy data only. */
export interface OAuthPrincipal {
  tenantId: string;
  agentId?: string;
}

/**
 * (`iss`, `client_id`) -> tenant and agent, as the tenants file lists them (exact strings: an
 * issuer with or without a trailing slash are two issuers, as RFC 8414 says).
 */
export function oauthPrincipals(
  tenants: TenantsFile,
): (issuer: string, clientId: string) => OAuthPrincipal | undefined {
  const index = new Map<string, OAuthPrincipal>();
  for (const [tenantId, tenant] of Object.entries(tenants))
    for (const c of tenant.oauth_clients ?? [])
      index.set(oauthClientKey(c.issuer, c.client_id), {
        tenantId,
        ...(c.agent_id ? { agentId: c.agent_id } : {}),
      });
  return (issuer, clientId) => index.get(oauthClientKey(issuer, clientId));
}

export const ActionsFile = z
  .strictObject({
    read: z.array(ActionName),
    write: z.array(ActionName),
    destructive: z.array(ActionName),
    /**
     * Per-action risk floors (0..10) that override the connector definitions' `risk` (W4): the
     * agent's `risk_score` is raised to at least this before policy decides.
     */
    risk_floors: z.record(ActionName, z.number().int().min(0).max(10)).optional(),
    /**
     * Upstream MCP tools' target params (issue 25): `<server>.<tool>` -> the param naming the
     * object the tool acts on (its value becomes the request's `resource`). An upstream action
     * not named here has no target: `resource` stays empty and approvers judge every param. A
     * native action's target is its connector's (`ActionDefinition.target`), never this.
     */
    targets: z
      .record(ActionName, z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a param name'))
      .optional(),
  })
  .superRefine((file, ctx) => {
    const listed = new Set([...file.read, ...file.write, ...file.destructive]);
    for (const key of ['risk_floors', 'targets'] as const)
      for (const name of Object.keys(file[key] ?? {})) {
        if (!listed.has(name)) {
          ctx.addIssue({ code: 'custom', path: [key, name], message: 'is not a listed action' });
        }
      }
  });
export type ActionsFile = z.infer<typeof ActionsFile>;

/** The policy folder, or one of its files, is invalid. */
export class PolicyLoadError extends Error {
  override readonly name = 'PolicyLoadError';
}

/**
 * Standing grants across the two files (issue 21 deliverable 6): a tenant's `standing_grants`
 * may name only listed actions, and a destructive one only with `allow_destructive: true`, said
 * explicitly by that tenant. Each problem is one line naming the tenant and the action.
 */
export function standingGrantProblems(actions: ActionsFile, tenants: TenantsFile): string[] {
  const listed = new Set([...actions.read, ...actions.write, ...actions.destructive]);
  const destructive = new Set(actions.destructive);
  const problems: string[] = [];
  for (const [tenantId, tenant] of Object.entries(tenants))
    for (const action of tenant.standing_grants?.actions ?? []) {
      if (!listed.has(action))
        problems.push(`${tenantId}.standing_grants.actions: ${action} is not a listed action`);
      else if (destructive.has(action) && tenant.standing_grants?.allow_destructive !== true)
        problems.push(
          `${tenantId}.standing_grants.actions: ${action} is destructive: standing grants for it need "allow_destructive": true`,
        );
    }
  return problems;
}

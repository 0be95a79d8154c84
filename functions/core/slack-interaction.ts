/**
 * What a Slack interaction asks for (SPEC §9), pure: the form body's `payload`, checked with
 * zod, reduced to the one thing this app answers, a click on Approve or Deny of an approval
 * message (or, issue 21, on its Extend or Approve + calls like it). Everything else is refused with a clear 400 before anything is read or written.
 */
import * as z from 'zod';
import { SLACK } from '../shared/constants.js';
import { AppError, badRequest } from '../shared/errors.js';
import { rules } from '../shared/input-rules.js';
import type { SlackWorkspace } from './policy-data.js';

export interface SlackClick {
  decision: 'approve' | 'deny';
  approvalId: string;
  eventId: string;
  tenantId: string;
  /** The hash of the view the clicked message showed, when it showed the whole view. */
  viewHash?: string;
  user: { id: string; name: string; teamId?: string };
  /** The workspace (and Enterprise Grid organization) the click came from, as Slack says. */
  workspace: { teamId?: string; enterpriseId?: string };
  responseUrl: string;
}

/**
 * A click on one of issue 21's workflow buttons: Extend (`extend`) or Approve + calls like it
 * (`grant`). Its own type, so that it can never reach the approve/deny path by mistake.
 */
export interface SlackWorkflowClick extends Omit<SlackClick, 'decision'> {
  workflow: 'extend' | 'grant';
}

export type SlackInteraction =
  | { kind: 'click'; click: SlackClick }
  | { kind: 'workflow'; click: SlackWorkflowClick }
  | { kind: 'ignored'; why: string };

const SlackUserId = rules.id(32).regex(/^[UW][A-Z0-9]{1,20}$/, 'must be a Slack user id');

const Payload = z.object({
  type: rules.id(64),
  user: z.object({
    id: SlackUserId,
    username: rules.line(256).optional(),
    name: rules.line(256).optional(),
    team_id: rules.id(32).optional(),
  }),
  team: z
    .object({ id: rules.id(32) })
    .nullable()
    .optional(),
  enterprise: z
    .object({ id: rules.id(32) })
    .nullable()
    .optional(),
  response_url: rules.id(2048),
  actions: z
    .array(
      z.object({
        action_id: rules.id(255),
        value: rules.id(2000).optional(),
      }),
    )
    .min(1)
    .max(5),
});

const ButtonValue = z.strictObject({
  d: z.enum(['approve', 'deny', 'extend', 'grant']),
  r: rules.uuid(),
  e: rules.uuid(),
  t: rules.tenantId(),
  // The hash of the view the message showed whole (absent when it could not: no one-click approve).
  h: rules.sha256Hex().optional(),
});

/** The form field `payload` of an interaction body (`application/x-www-form-urlencoded`). */
export function formPayload(body: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw badRequest('invalid form body: not UTF-8');
  }
  const form = new URLSearchParams(text);
  const raw = form.get('payload');
  if (!raw) throw badRequest('missing payload', [{ path: 'payload', message: 'required' }]);
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw badRequest('invalid interaction payload: not JSON', [{ path: 'payload', message: 'not JSON' }]);
  }
}

export function decodeButtonValue(value: string): z.infer<typeof ButtonValue> {
  const fail = (message: string) =>
    badRequest('invalid action value', [{ path: 'actions.0.value', message }]);
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(value)) throw fail('not base64url');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(value.replace(/=+$/, ''), 'base64url').toString('utf8'));
  } catch {
    throw fail('not JSON');
  }
  const parsed = ButtonValue.safeParse(json);
  if (!parsed.success) throw fail(parsed.error.issues[0]?.message ?? 'invalid');
  return parsed.data;
}

/**
 * The click this interaction is. Approve and Deny carry their value; the Open button (a link)
 * is reported by Slack too and answered with nothing to do. Only the first action counts, and its
 * action id must agree with the value's decision.
 */
export function parseInteraction(payload: unknown): SlackInteraction {
  const parsed = Payload.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest('invalid interaction payload', [
      { path: issue?.path.map(String).join('.') || 'payload', message: issue?.message ?? 'invalid' },
    ]);
  }
  const p = parsed.data;
  if (p.type !== 'block_actions')
    throw badRequest(`unsupported interaction type: ${p.type}`, [
      { path: 'type', message: 'only block_actions (the approval buttons) are handled' },
    ]);
  const action = p.actions[0];
  if (!action) throw badRequest('unsupported interaction type: no action');
  if (action.action_id === SLACK.openActionId) return { kind: 'ignored', why: 'open link' };
  const byAction: Record<string, z.infer<typeof ButtonValue>['d']> = {
    [SLACK.approveActionId]: 'approve',
    [SLACK.denyActionId]: 'deny',
    [SLACK.extendActionId]: 'extend',
    [SLACK.grantActionId]: 'grant',
  };
  const decision = Object.hasOwn(byAction, action.action_id) ? byAction[action.action_id] : undefined;
  if (!decision)
    throw badRequest(`unknown action: ${action.action_id}`, [
      {
        path: 'actions.0.action_id',
        message: `expected one of ${Object.keys(byAction).join(', ')}`,
      },
    ]);
  if (!action.value)
    throw badRequest('invalid action value', [{ path: 'actions.0.value', message: 'required' }]);
  const value = decodeButtonValue(action.value);
  if (value.d !== decision)
    throw badRequest('invalid action value', [
      { path: 'actions.0.value', message: `the value says ${value.d}, the button ${decision}` },
    ]);
  const click = {
    approvalId: value.r,
    eventId: value.e,
    tenantId: value.t,
    ...(value.h ? { viewHash: value.h } : {}),
    user: {
      id: p.user.id,
      name: p.user.username || p.user.name || p.user.id,
      ...(p.user.team_id ? { teamId: p.user.team_id } : {}),
    },
    workspace: {
      // An org-wide install may send no `team`: the user's own workspace is then the one.
      ...((p.team?.id ?? p.user.team_id) ? { teamId: p.team?.id ?? p.user.team_id } : {}),
      ...(p.enterprise?.id ? { enterpriseId: p.enterprise.id } : {}),
    },
    responseUrl: p.response_url,
  };
  return decision === 'approve' || decision === 'deny'
    ? { kind: 'click', click: { decision, ...click } }
    : { kind: 'workflow', click: { workflow: decision, ...click } };
}

export const otherWorkspace = () =>
  new AppError(403, 'FORBIDDEN', "this click comes from another Slack workspace than the tenant's");

/**
 * A click counts only from the tenant's own workspace (`team_id`, and `enterprise_id` where the
 * tenant sets one): one Slack app serves every tenant, and a signed request proves only that
 * Slack sent it, not from where. A tenant that names no workspace takes no clicks at all.
 */
export function checkWorkspace(
  tenant: SlackWorkspace | undefined,
  click: Pick<SlackClick, 'workspace'>,
): void {
  if (!tenant || click.workspace.teamId !== tenant.team_id) throw otherWorkspace();
  if (tenant.enterprise_id !== undefined && click.workspace.enterpriseId !== tenant.enterprise_id)
    throw otherWorkspace();
}

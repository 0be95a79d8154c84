/**
 * The approver directory and the quorum a call needs (issue 21), pure: policy data names each
 * approver once (`directory`: one id with their email, OIDC identities and Slack user), groups name
 * directory ids, and `quorum` says how many distinct approvers, in which ordered stages, an action,
 * a risk band or the whole tenant needs. Every decision surface (API and console JWT, Slack click)
 * resolves its caller to one directory id, so one person is one vote whichever surface they use.
 *
 * A tenant without a directory keeps today's lists (`approvers.emails|slack_user_ids|subjects`):
 * each listed identity is its own approver, which is why such a tenant may not ask for more than
 * one approver (the schema refuses it): two identities of one person would be two votes.
 */
import * as z from 'zod';
import { normalizeIdentity } from '../shared/input-rules.js';

/** A directory id: what votes, separation of duties and `decided_by` name. */
export const DirectoryId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be a directory id (a-z0-9._-, at most 64)');

export const DirectoryEntry = z
  .strictObject({
    /** A verified email (API and console tokens; a Slack email in live mode). */
    email: z.email().max(320).optional(),
    /** OIDC identities by the token's exact `iss` and `sub`. */
    oidc: z
      .array(z.strictObject({ issuer: z.string().min(1).max(2048), sub: z.string().min(1).max(512) }))
      .max(20)
      .optional(),
    /** The Slack user and the workspace it belongs to (a user id is unique only within it). */
    slack: z
      .strictObject({
        user_id: z.string().regex(/^[UW][A-Z0-9]{1,20}$/, 'must be a Slack user id (U… or W…)'),
        team_id: z.string().regex(/^T[A-Z0-9]{1,20}$/, 'must be a Slack workspace id (T…)'),
      })
      .optional(),
  })
  .refine((e) => e.email !== undefined || (e.oidc?.length ?? 0) > 0 || e.slack !== undefined, {
    message: 'an approver needs at least one identity: email, oidc or slack',
  });
export type DirectoryEntry = z.infer<typeof DirectoryEntry>;

export const Directory = z.record(DirectoryId, DirectoryEntry);
export type Directory = z.infer<typeof Directory>;

const GroupName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be a group name (a-z0-9._-)');
export const Groups = z.record(GroupName, z.array(DirectoryId).min(1).max(1000));

/** One stage: `n` distinct approvers, from `group` when it names one (else any approver). */
export const QuorumStage = z.strictObject({
  group: GroupName.optional(),
  n: z.number().int().min(1).max(10),
});
export type QuorumStage = z.infer<typeof QuorumStage>;

/** `n` distinct approvers (optionally of one group), or ordered stages: one or the other. */
const ruleFields = {
  n: z.number().int().min(1).max(10).optional(),
  group: GroupName.optional(),
  stages: z.array(QuorumStage).min(1).max(5).optional(),
};
const oneShape = (r: {
  n?: number | undefined;
  group?: string | undefined;
  stages?: unknown[] | undefined;
}) => (r.stages !== undefined ? r.n === undefined && r.group === undefined : r.n !== undefined);
const ONE_SHAPE = { message: 'give either n (with an optional group) or stages' };
export const QuorumRule = z.strictObject(ruleFields).refine(oneShape, ONE_SHAPE);
export type QuorumRule = z.infer<typeof QuorumRule>;
const RiskBand = z
  .strictObject({ min_risk: z.number().int().min(0).max(10), ...ruleFields })
  .refine(oneShape, ONE_SHAPE);

const ActionName = z
  .string()
  .max(129)
  .regex(/^[a-z0-9][a-z0-9._-]*\.[a-z0-9][a-z0-9._-]*$/, 'must be "<tool>.<action>" (a-z0-9._-)');

/** Most specific first: the action's rule, else the highest risk band reached, else the default. */
export const Quorum = z.strictObject({
  default: QuorumRule.optional(),
  risk_bands: z.array(RiskBand).max(11).optional(),
  actions: z.record(ActionName, QuorumRule).optional(),
});
export type Quorum = z.infer<typeof Quorum>;

/** What an approval stores of its quorum at creation: the ordered stages (one for `n` of any). */
export interface QuorumRequirement {
  stages: QuorumStage[];
  /** Where it came from: `action:<name>`, `risk>=<n>` or `default`. */
  rule: string;
}

/** The part of a tenant's data this module reads. */
export interface DirectoryTenant {
  approvers: {
    emails: string[];
    slack_user_ids: string[];
    subjects?: { issuer: string; sub: string }[] | undefined;
  };
  slack?: { team_id: string } | undefined;
  directory?: Directory | undefined;
  groups?: Record<string, string[]> | undefined;
  quorum?: Quorum | undefined;
}

const stagesOf = (rule: QuorumRule): QuorumStage[] =>
  rule.stages ?? [{ n: rule.n ?? 1, ...(rule.group ? { group: rule.group } : {}) }];

/**
 * The quorum a call needs, fixed when it is parked (a policy change later does not move a vote
 * already cast). Undefined: one approver of the tenant's lists (today's single-approver path).
 */
export function resolveQuorum(
  tenant: DirectoryTenant | undefined,
  action: string,
  riskScore: number,
): QuorumRequirement | undefined {
  const q = tenant?.quorum;
  if (!q) return undefined;
  let found: { rule: QuorumRule; name: string } | undefined;
  const byAction = q.actions && Object.hasOwn(q.actions, action) ? q.actions[action] : undefined;
  if (byAction) found = { rule: byAction, name: `action:${action}` };
  if (!found) {
    const band = [...(q.risk_bands ?? [])]
      .filter((b) => riskScore >= b.min_risk)
      .sort((a, b) => b.min_risk - a.min_risk)[0];
    if (band) found = { rule: band, name: `risk>=${band.min_risk}` };
  }
  if (!found && q.default) found = { rule: q.default, name: 'default' };
  if (!found) return undefined;
  const stages = stagesOf(found.rule);
  // One approver of anyone is today's path: nothing to store.
  if (stages.length === 1 && stages[0]!.n === 1 && !stages[0]!.group) return undefined;
  return { stages, rule: found.name };
}

/** Schema checks across the fields (called from the tenant schema's superRefine). */
export function directoryIssues(tenant: DirectoryTenant): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const dir = tenant.directory;
  const legacy =
    tenant.approvers.emails.length +
    tenant.approvers.slack_user_ids.length +
    (tenant.approvers.subjects?.length ?? 0);
  if (dir && legacy > 0)
    issues.push({
      path: ['approvers'],
      message:
        'with a directory, approvers are named there only: move approvers.emails, slack_user_ids and subjects into directory entries (two lists would make one person two approvers)',
    });
  if (!dir && tenant.groups)
    issues.push({ path: ['groups'], message: 'groups name directory ids: add a directory' });
  if (!dir && tenant.quorum) {
    issues.push({
      path: ['quorum'],
      message:
        'a quorum counts distinct people: it needs a directory (one id per approver with every identity they use)',
    });
  }
  if (dir) {
    // One identity, one approver: an email, OIDC pair or Slack user listed twice would let its
    // holder vote as either entry.
    const seen = new Map<string, string>();
    const claim = (key: string, id: string, path: (string | number)[]) => {
      const first = seen.get(key);
      if (first !== undefined && first !== id)
        issues.push({ path, message: `this identity is already directory entry ${first}` });
      else seen.set(key, id);
    };
    for (const [id, e] of Object.entries(dir)) {
      if (e.email) claim(`email\n${e.email.toLowerCase()}`, id, ['directory', id, 'email']);
      (e.oidc ?? []).forEach((o, i) =>
        claim(`oidc\n${o.issuer}\n${o.sub}`, id, ['directory', id, 'oidc', i]),
      );
      if (e.slack) {
        claim(`slack\n${e.slack.team_id}\n${e.slack.user_id}`, id, ['directory', id, 'slack']);
        if (tenant.slack && e.slack.team_id !== tenant.slack.team_id)
          issues.push({
            path: ['directory', id, 'slack', 'team_id'],
            message: `is not the tenant's Slack workspace (${tenant.slack.team_id}): clicks from it are refused`,
          });
      }
    }
    for (const [group, members] of Object.entries(tenant.groups ?? {}))
      members.forEach((m, i) => {
        if (!Object.hasOwn(dir, m))
          issues.push({ path: ['groups', group, i], message: `${m} is not in the directory` });
      });
  }
  const rules: [QuorumRule, (string | number)[]][] = [];
  if (tenant.quorum?.default) rules.push([tenant.quorum.default, ['quorum', 'default']]);
  (tenant.quorum?.risk_bands ?? []).forEach((b, i) => rules.push([b, ['quorum', 'risk_bands', i]]));
  for (const [name, rule] of Object.entries(tenant.quorum?.actions ?? {}))
    rules.push([rule, ['quorum', 'actions', name]]);
  for (const [rule, path] of rules)
    stagesOf(rule).forEach((s, i) => {
      const pool = s.group
        ? (tenant.groups?.[s.group]?.length ?? -1)
        : Object.keys(tenant.directory ?? {}).length;
      if (s.group && pool === -1)
        issues.push({ path: [...path, 'stages', i, 'group'], message: `group ${s.group} is not defined` });
      else if (pool < s.n)
        issues.push({
          path: [...path, 'stages', i, 'n'],
          message: `needs ${s.n} approvers but ${s.group ? `group ${s.group}` : 'the directory'} has ${pool}: it could never be approved`,
        });
    });
  return issues;
}

/** How a caller proved who they are, as the decision surfaces see it. */
export interface CallerIdentity {
  via: 'api' | 'slack';
  sub: string;
  email: string;
  issuer?: string;
  /** Slack: the workspace of the click. */
  teamId?: string;
}

/**
 * The directory id of a caller, or undefined (not an approver). With a directory: Slack by (team,
 * user id); API by the token's exact (issuer, `sub`), else its verified email. Without one, today's
 * lists, each identity its own id: `slack:<user id>` or the email or `<sub>` as decisions named them.
 */
export function approverIdOf(
  tenant: DirectoryTenant | undefined,
  caller: CallerIdentity,
): string | undefined {
  if (!tenant) return undefined;
  const dir = tenant.directory;
  if (dir) {
    for (const [id, e] of Object.entries(dir)) {
      if (caller.via === 'slack') {
        if (
          e.slack &&
          e.slack.user_id === caller.sub &&
          e.slack.team_id === (caller.teamId ?? tenant.slack?.team_id)
        )
          return id;
        continue;
      }
      if (
        caller.issuer !== undefined &&
        (e.oidc ?? []).some((o) => o.issuer === caller.issuer && o.sub === caller.sub)
      )
        return id;
    }
    if (caller.via === 'api' && caller.email !== '')
      for (const [id, e] of Object.entries(dir))
        if (e.email && e.email.toLowerCase() === caller.email.toLowerCase()) return id;
    return undefined;
  }
  if (caller.via === 'slack')
    return tenant.approvers.slack_user_ids.some((u) => u.toLowerCase() === caller.sub.toLowerCase())
      ? `slack:${caller.sub}`
      : undefined;
  const byEmail =
    caller.email !== '' &&
    tenant.approvers.emails.some((e) => e.toLowerCase() === caller.email.toLowerCase());
  const bySubject =
    caller.issuer !== undefined &&
    (tenant.approvers.subjects ?? []).some((s) => s.issuer === caller.issuer && s.sub === caller.sub);
  return byEmail || bySubject ? caller.email || caller.sub : undefined;
}

/**
 * Is the requester this approver? The requester (`user_id`) is compared as a human reads it with
 * the caller's own identities and, with a directory, with every identity of the caller's entry:
 * alice who asked from her email cannot approve from her Slack user.
 */
export function isRequester(
  tenant: DirectoryTenant | undefined,
  approverId: string,
  caller: CallerIdentity,
  requester: string,
): boolean {
  const who = normalizeIdentity(requester);
  if (!who) return false;
  const names = [caller.email, caller.sub, approverId];
  const e =
    tenant?.directory && Object.hasOwn(tenant.directory, approverId)
      ? tenant.directory[approverId]
      : undefined;
  if (e) names.push(e.email ?? '', e.slack?.user_id ?? '', ...(e.oidc ?? []).map((o) => o.sub));
  return names.some((n) => n !== '' && normalizeIdentity(n) === who);
}

/** May this directory id vote in this stage? */
export function inStage(
  tenant: DirectoryTenant | undefined,
  stage: QuorumStage,
  approverId: string,
): boolean {
  if (!stage.group) return true;
  return (tenant?.groups?.[stage.group] ?? []).includes(approverId);
}

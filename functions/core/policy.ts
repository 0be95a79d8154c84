/**
 * Tool-call policy (SPEC §6, ARCHITECTURE "Policy: Cedar"): Cedar policies over
 *   principal Agent::"<agent>" (member of Tenant::"<tenant>"),
 *   action    Action::"<tool>.<action>" (member of the groups listed for it in actions.json),
 *   resource  Tenant::"<tenant>" (attributes from tenants.json),
 *   context   risk score, risk factors, labels, user, session, time.
 * One Cedar evaluation gives three outcomes: a satisfied forbid or no satisfied permit -> deny;
 * a satisfied permit annotated @outcome("approve") -> approve (dominates allow); else allow.
 * The reason is the @reason of the determining policy with the highest @priority.
 *
 * Pure: no I/O. Everything is parsed and validated once in createPolicyEngine; evaluate() only
 * builds the request and calls the pre-parsed policy set, and never throws (fails closed).
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type {
  ActionType,
  CedarValueJson,
  Context,
  DetailedError,
  EntityJson,
  EntityUidJson,
  PolicyJson,
  SchemaJson,
} from '@cedar-policy/cedar-wasm/nodejs';
import * as z from 'zod';

export { ActionsFile, NotifyRoute, PolicyLoadError, TenantConfig, TenantsFile } from './policy-data.js';
import {
  ActionsFile,
  PolicyLoadError,
  TenantsFile,
  type NotifyRoute,
  type TenantConfig,
} from './policy-data.js';

// ---------------------------------------------------------------------------------------------
// Engine API

export interface PolicyBundle {
  /** Cedar schema text (policy/schema.cedarschema). */
  schema: string;
  /** Cedar policy text (policy/policies.cedar); every policy has @id and @reason. */
  policies: string;
  actions: ActionsFile;
  tenants: TenantsFile;
  /** Digest of the policy folder, recorded with every decision as policy_version. */
  version: string;
}

export interface PolicyRequest {
  tenantId: string;
  agentId: string;
  tool: string;
  action: string;
  /** The request's `resource` ("" when absent). */
  resource: string;
  /** The effective risk score (0..10): callers floor the agent's self-reported score (W4). */
  riskScore: number;
  riskFactors: string[];
  labels: Record<string, string>;
  userId: string;
  sessionId: string;
  now: Date;
}

export type Decision = 'allow' | 'deny' | 'approve';

export interface PolicyDecision {
  decision: Decision;
  reason: string;
  policyVersion: string;
  /** Tenant's approver group when approve, else "". */
  approverGroup: string;
  /** Tenant's notification routes when approve, else []. */
  notify: NotifyRoute[];
  /** {"approval_scope":"single_use"} when approve, else {}. */
  requirements: Record<string, string>;
  approvalTtlSec: number;
  /** Ids of the policies that determined the outcome, highest precedence first. */
  determiningPolicies: string[];
}

export interface PolicyEngine {
  readonly version: string;
  /**
   * Whether any policy reads `context.now`: when false, a decision does not depend on the time
   * (a replay may then reuse it for an identical request at another time). Unknown: assume true.
   */
  readonly readsTime?: boolean;
  evaluate(req: PolicyRequest): PolicyDecision;
  /**
   * What of `req` its decision depends on, as a string: two requests with the same key are decided
   * alike. The tenant, the agent and the action, and of the context only the attributes the
   * action's policies read (they cannot observe the others); undefined for a request evaluate()
   * refuses as malformed. For a memo of decisions (`oc policy replay`). Unknown: key on everything.
   */
  decisionKey?(req: PolicyRequest): string | undefined;
  /** The tenant's configuration (frozen), or undefined for a tenant not in tenants.json. */
  tenant(tenantId: string): TenantConfig | undefined;
}

const DEFAULT_MAX_RISK_AUTO_APPROVE = 7;
const DEFAULT_APPROVAL_TTL_SEC = 86_400;
const REASON_NOT_ALLOWLISTED = 'action not in allowlist';
const REASON_EVALUATION_FAILED = 'policy evaluation failed';
/** The only approval scope the approvals service grants (W2): never widened by policy data. */
const APPROVE_REQUIREMENTS = { approval_scope: 'single_use' } as const;
const ACTION_GROUPS = ['read', 'write', 'destructive'] as const;
const CONTEXT_ATTRIBUTES = [
  'tool',
  'tool_action',
  'resource_name',
  'risk_score',
  'risk_factors',
  'labels',
  'user_id',
  'session_id',
  'now',
] as const;
type ContextAttribute = (typeof CONTEXT_ATTRIBUTES)[number];
const LABELS_UID = { type: 'Labels', id: 'labels' } as const;

// ---------------------------------------------------------------------------------------------
// Loading

type Outcome = 'allow' | 'approve' | 'deny';

interface PolicyMeta {
  id: string;
  outcome: Outcome;
  reason: string;
  priority: number;
}

/**
 * The policies that can apply to one action, pre-parsed in Cedar, and the context attributes
 * they read. Cedar never satisfies a policy whose action scope does not match, so evaluating
 * only these is equivalent to evaluating the whole set, and much cheaper.
 */
interface Slice {
  /** Pre-parsed policy set id; undefined when no policy can apply (then: deny). */
  policySetId: string | undefined;
  /** Context attributes read by the slice's policies. */
  contextAttributes: ReadonlySet<ContextAttribute>;
}

interface ActionInfo {
  entity: EntityJson;
  slice: Slice;
}

/** Pre-parsed policy sets live in the Wasm module for the process lifetime: share identical ones. */
const preparsedSets = new Map<string, string>();

export interface PolicyEngineOptions {
  /**
   * Validate every policy against the schema and try one schema-checked request (≈ 100 ms of
   * Cedar work). Turn off only where the same bundle was validated at build time: the deployed
   * Lambda, whose policy folder `cdk synth` validated before packaging it.
   * @default true
   */
  validate?: boolean;
}

/**
 * A policy bundle parsed and checked, as plain JSON: what `cdk synth` writes beside the policy
 * files (`compiled.json`), so that a cold start skips parsing the schema and the policies
 * (about 100 ms of Cedar work). Only Cedar's own pre-parse of the policy sets remains at load.
 */
export interface CompiledPolicy {
  format: 'oc-compiled-policy/v1';
  /** The version (digest) of the bundle it was compiled from. */
  version: string;
  schema: SchemaJson<string>;
  policies: { text: string; json: PolicyJson; meta: PolicyMeta }[];
  tenants: TenantsFile;
}

export function compilePolicy(bundle: PolicyBundle, options: PolicyEngineOptions = {}): CompiledPolicy {
  if (typeof bundle.version !== 'string' || bundle.version === '') {
    throw new PolicyLoadError('policy bundle has no version');
  }
  const actions = parseData(ActionsFile, bundle.actions, 'actions');
  const tenants = parseData(TenantsFile, bundle.tenants, 'tenants');
  const schema = buildSchema(bundle.schema, actions);
  const policies = parsePolicies(bundle.policies);
  if (options.validate !== false) {
    validatePolicies(schema, policies);
    checkRequestShape(schema);
  }
  return {
    format: 'oc-compiled-policy/v1',
    version: bundle.version,
    schema,
    policies: [...policies.values()],
    tenants,
  };
}

export function createPolicyEngine(bundle: PolicyBundle, options: PolicyEngineOptions = {}): PolicyEngine {
  return policyEngineFrom(compilePolicy(bundle, options));
}

/** The engine of a compiled bundle (from `compilePolicy`, here or at build time). */
export function policyEngineFrom(compiled: CompiledPolicy): PolicyEngine {
  if (compiled.format !== 'oc-compiled-policy/v1')
    throw new PolicyLoadError('unknown compiled policy format');
  const { schema, tenants } = compiled;
  const policies = new Map(compiled.policies.map((p) => [p.meta.id, p]));

  const slices = new Map<string, Slice>();
  const sliceFor = (ids: string[]): Slice => {
    const key = ids.join('\n');
    let slice = slices.get(key);
    if (!slice) {
      slice = buildSlice(ids.map((id) => policies.get(id)!));
      slices.set(key, slice);
    }
    return slice;
  };

  const known = new Map<string, ActionInfo>();
  const ancestors = actionAncestors(schema);
  for (const [name, groups] of ancestors) {
    const applicable = [...policies.values()]
      .filter((p) => actionScopeMatches(p.json, name, groups))
      .map((p) => p.meta.id);
    known.set(name, {
      entity: { uid: { type: 'Action', id: name }, attrs: {}, parents: [...groups].map(actionUid) },
      slice: sliceFor(applicable),
    });
  }
  const unknownSlice = sliceFor(
    [...policies.values()].filter((p) => p.json.action.op === 'All').map((p) => p.meta.id),
  );

  const tenantMap = new Map<string, { config: TenantConfig; entity: EntityJson }>();
  for (const [id, config] of Object.entries(tenants)) {
    tenantMap.set(id, {
      config: deepFreeze(config),
      entity: tenantEntity(id, config.max_risk_auto_approve),
    });
  }
  const metas = new Map([...policies].map(([id, p]) => [id, p.meta]));

  const readsTime = [...slices.values()].some((slice) => slice.contextAttributes.has('now'));
  return new CedarPolicyEngine(compiled.version, metas, known, unknownSlice, tenantMap, readsTime);
}

function parseData<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new PolicyLoadError(`invalid ${what} data: ${issues.join('; ')}`);
  }
  return result.data;
}

function errorText(errors: DetailedError[]): string {
  return errors.map((e) => e.message).join('; ');
}

/**
 * The schema text plus one action per actions.json entry, as a member of its group(s) with the
 * group's appliesTo. Unlisted actions stay undeclared.
 */
function buildSchema(text: string, actions: ActionsFile): SchemaJson<string> {
  if (typeof text !== 'string') throw new PolicyLoadError('schema: not a string');
  const parsed = cedar.schemaToJson(text);
  if (parsed.type === 'failure') throw new PolicyLoadError(`schema: ${errorText(parsed.errors)}`);
  const schema = parsed.json;
  const root = schema[''];
  if (!root) throw new PolicyLoadError('schema: entity types and actions must be in the empty namespace');

  const declared = new Set(Object.keys(root.actions));
  for (const group of ACTION_GROUPS) {
    const appliesTo = root.actions[group]?.appliesTo;
    if (!appliesTo)
      throw new PolicyLoadError(`schema: action group "${group}" must be declared with appliesTo`);
    if (!appliesTo.principalTypes.includes('Agent') || !appliesTo.resourceTypes.includes('Tenant')) {
      throw new PolicyLoadError(
        `schema: action group "${group}" must apply to principal Agent and resource Tenant`,
      );
    }
    for (const name of actions[group]) {
      if (declared.has(name)) {
        throw new PolicyLoadError(
          `schema: action "${name}" is listed in actions.json; do not declare it in the schema`,
        );
      }
      const existing: ActionType<string> | undefined = root.actions[name];
      if (existing) {
        if (!existing.memberOf?.some((m) => m.id === group)) existing.memberOf?.push({ id: group });
      } else {
        root.actions[name] = { memberOf: [{ id: group }], appliesTo: structuredClone(appliesTo) };
      }
    }
  }
  return schema; // checked by validatePolicies
}

interface ParsedPolicy {
  text: string;
  json: PolicyJson;
  meta: PolicyMeta;
}

function parsePolicies(text: string): Map<string, ParsedPolicy> {
  if (typeof text !== 'string') throw new PolicyLoadError('policies: not a string');
  const parts = cedar.policySetTextToParts(text);
  if (parts.type === 'failure') throw new PolicyLoadError(`policies: ${errorText(parts.errors)}`);
  if (parts.policy_templates.length > 0) throw new PolicyLoadError('policies: templates are not supported');
  if (parts.policies.length === 0) throw new PolicyLoadError('policies: no policies');

  const policies = new Map<string, ParsedPolicy>();
  for (const policyText of parts.policies) {
    const parsed = cedar.policyToJson(policyText);
    if (parsed.type === 'failure') throw new PolicyLoadError(`policies: ${errorText(parsed.errors)}`);
    const json = parsed.json;
    const annotations = json.annotations ?? {};
    const id = annotations['id'];
    const where = id ? `policy "${id}"` : `policy \`${policyText.replace(/\s+/g, ' ').slice(0, 80)}\``;
    if (!id) throw new PolicyLoadError(`policies: ${where} has no @id("...")`);
    if (policies.has(id)) throw new PolicyLoadError(`policies: duplicate @id("${id}")`);
    const reason = annotations['reason'];
    if (!reason) throw new PolicyLoadError(`policies: ${where} has no @reason("...")`);
    const priorityText = annotations['priority'] ?? '0';
    if (!/^-?\d{1,6}$/.test(priorityText)) {
      throw new PolicyLoadError(`policies: ${where} has a non-integer @priority("${priorityText}")`);
    }
    const outcomeText = annotations['outcome'];
    let outcome: Outcome;
    if (json.effect === 'forbid') {
      if (outcomeText !== undefined && outcomeText !== 'deny') {
        throw new PolicyLoadError(`policies: ${where} is a forbid; @outcome can only be "deny"`);
      }
      outcome = 'deny';
    } else {
      if (outcomeText !== undefined && outcomeText !== 'allow' && outcomeText !== 'approve') {
        throw new PolicyLoadError(
          `policies: ${where} has @outcome("${outcomeText}"); use "approve" or "allow"`,
        );
      }
      outcome = outcomeText ?? 'allow';
    }
    policies.set(id, {
      text: policyText,
      json,
      meta: { id, outcome, reason, priority: Number(priorityText) },
    });
  }
  return policies;
}

function validatePolicies(schema: SchemaJson<string>, policies: Map<string, ParsedPolicy>): void {
  const staticPolicies = Object.fromEntries([...policies].map(([id, p]) => [id, p.text]));
  const answer = cedar.validate({
    schema,
    policies: { staticPolicies },
    validationSettings: { mode: 'strict' },
  });
  if (answer.type === 'failure')
    throw new PolicyLoadError(`schema or policies invalid: ${errorText(answer.errors)}`);
  // Warnings (an impossible policy, confusable identifiers) are mistakes too: fail fast.
  const problems = [...answer.validationErrors, ...answer.validationWarnings];
  if (problems.length > 0) {
    // Cedar reports a problem once per action the policy applies to: show a few.
    const lines = [...new Set(problems.map((p) => `${p.policyId}: ${p.error.message}`))];
    const more = lines.length > 5 ? `; (${lines.length - 5} more)` : '';
    throw new PolicyLoadError(
      `policies do not validate against the schema: ${lines.slice(0, 5).join('; ')}${more}`,
    );
  }
}

/**
 * The engine builds requests itself (without the schema, for speed): make sure the schema
 * describes exactly what it builds, so that validated policies cannot meet a missing attribute.
 * One schema-validated authorization per distinct group signature checks entities and context.
 */
function checkRequestShape(schema: SchemaJson<string>): void {
  const sample = sampleRequest();
  const checked = new Set<string>();
  for (const group of ACTION_GROUPS) {
    const signature = JSON.stringify(schema['']?.actions[group]?.appliesTo);
    if (checked.has(signature)) continue;
    checked.add(signature);
    const answer = cedar.isAuthorized({
      principal: sample.entities[1]!.uid,
      action: actionUid(group),
      resource: sample.entities[0]!.uid,
      context: sample.context,
      entities: sample.entities,
      schema,
      validateRequest: true,
      policies: { staticPolicies: {} },
    });
    if (answer.type === 'failure') {
      throw new PolicyLoadError(
        `schema does not describe the requests the engine builds: ${errorText(answer.errors)}`,
      );
    }
  }
}

function sampleRequest(): { context: Context; entities: EntityJson[] } {
  const req: PolicyRequest = {
    tenantId: 'tenant',
    agentId: 'agent',
    tool: 'tool',
    action: 'action',
    resource: 'resource',
    riskScore: 0,
    riskFactors: ['factor'],
    labels: { key: 'value' },
    userId: 'user',
    sessionId: 'session',
    now: new Date(0),
  };
  const tenant = tenantEntity(req.tenantId, DEFAULT_MAX_RISK_AUTO_APPROVE);
  return {
    context: buildContext(req, new Set(CONTEXT_ATTRIBUTES)),
    entities: [tenant, agentEntity(req.agentId, req.tenantId), labelsEntity(req.labels)],
  };
}

/** Each declared non-group action and all the action groups it is (transitively) in. */
function actionAncestors(schema: SchemaJson<string>): Map<string, Set<string>> {
  const actions = schema['']?.actions ?? {};
  const parents = (name: string) => (actions[name]?.memberOf ?? []).map((m) => m.id);
  const result = new Map<string, Set<string>>();
  for (const name of Object.keys(actions)) {
    if ((ACTION_GROUPS as readonly string[]).includes(name)) continue;
    const seen = new Set<string>();
    const queue = parents(name);
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push(...parents(next));
    }
    result.set(name, seen);
  }
  return result;
}

function uidId(uid: EntityUidJson): { type: string; id: string } {
  return '__entity' in uid ? uid.__entity : uid;
}

function actionScopeMatches(policy: PolicyJson, action: string, groups: ReadonlySet<string>): boolean {
  const scope = policy.action;
  if (scope.op === 'All') return true;
  const isSelfOrGroup = (uid: EntityUidJson) => {
    const { type, id } = uidId(uid);
    return type === 'Action' && (id === action || (scope.op === 'in' && groups.has(id)));
  };
  if ('entity' in scope) return isSelfOrGroup(scope.entity);
  if ('entities' in scope) return scope.entities.some(isSelfOrGroup);
  return true; // a slot: cannot happen without templates; keep the policy
}

function buildSlice(policies: ParsedPolicy[]): Slice {
  if (policies.length === 0) return { policySetId: undefined, contextAttributes: new Set() };
  const used = new Set<ContextAttribute>();
  for (const p of policies) {
    const attrs = contextAttributesUsed(p.json);
    for (const a of attrs === 'all' ? CONTEXT_ATTRIBUTES : attrs) used.add(a);
  }
  const staticPolicies = Object.fromEntries(policies.map((p) => [p.meta.id, p.text]));
  const key = JSON.stringify(Object.entries(staticPolicies).sort(([a], [b]) => (a < b ? -1 : 1)));
  let policySetId = preparsedSets.get(key);
  if (!policySetId) {
    policySetId = `oc-policy-${preparsedSets.size + 1}`;
    const answer = cedar.preparsePolicySet(policySetId, { staticPolicies });
    if (answer.type === 'failure') throw new PolicyLoadError(`policies: ${errorText(answer.errors)}`);
    preparsedSets.set(key, policySetId);
  }
  return { policySetId, contextAttributes: used };
}

/**
 * The context attributes a policy reads (`context.x`, `context has x`), or 'all' when it uses
 * the context record some other way. Unknown expression shapes count as 'all' (safe).
 */
function contextAttributesUsed(policy: PolicyJson): Set<ContextAttribute> | 'all' {
  const used = new Set<ContextAttribute>();
  let all = false;
  const note = (attr: string) => {
    if ((CONTEXT_ATTRIBUTES as readonly string[]).includes(attr)) used.add(attr as ContextAttribute);
    else all = true;
  };
  const isContext = (e: unknown) =>
    typeof e === 'object' && e !== null && (e as { Var?: unknown }).Var === 'context';
  const walk = (e: unknown): void => {
    if (all || typeof e !== 'object' || e === null) return;
    if (Array.isArray(e)) return e.forEach(walk);
    const node = e as Record<string, unknown>;
    const keys = Object.keys(node);
    if (keys.length !== 1) {
      all = true;
      return;
    }
    const key = keys[0]!;
    const body = node[key];
    if (key === 'Value' || key === 'Slot') return;
    if (key === 'Var') {
      if (body === 'context') all = true;
      return;
    }
    if ((key === '.' || key === 'has') && typeof body === 'object' && body !== null) {
      const { left, attr } = body as { left?: unknown; attr?: unknown };
      const first = Array.isArray(attr) ? attr[0] : attr;
      if (isContext(left) && typeof first === 'string') return note(first);
    }
    if (typeof body === 'object' && body !== null) Object.values(body).forEach(walk);
  };
  for (const clause of policy.conditions) walk(clause.body);
  return all ? 'all' : used;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Requests

function actionUid(id: string): { type: 'Action'; id: string } {
  return { type: 'Action', id };
}

function tenantEntity(tenantId: string, maxRiskAutoApprove: number): EntityJson {
  return {
    uid: { type: 'Tenant', id: tenantId },
    attrs: { max_risk_auto_approve: maxRiskAutoApprove },
    parents: [],
  };
}

function agentEntity(agentId: string, tenantId: string): EntityJson {
  return { uid: { type: 'Agent', id: agentId }, attrs: {}, parents: [{ type: 'Tenant', id: tenantId }] };
}

function labelsEntity(labels: Record<string, string>): EntityJson {
  return { uid: LABELS_UID, attrs: {}, parents: [], tags: labels };
}

/**
 * Only the attributes the evaluated policies read: they cannot observe the others, and each
 * one costs parse time in Cedar (a datetime ~15 µs).
 */
function buildContext(req: PolicyRequest, attrs: ReadonlySet<ContextAttribute>): Context {
  const context: Record<string, CedarValueJson> = {};
  for (const attr of attrs) {
    switch (attr) {
      case 'tool':
        context[attr] = req.tool;
        break;
      case 'tool_action':
        context[attr] = `${req.tool}.${req.action}`;
        break;
      case 'resource_name':
        context[attr] = req.resource;
        break;
      case 'risk_score':
        context[attr] = req.riskScore;
        break;
      case 'risk_factors':
        context[attr] = req.riskFactors;
        break;
      case 'labels':
        // A Labels entity absent from the store has no tags, exactly like empty labels.
        context[attr] = { __entity: LABELS_UID };
        break;
      case 'user_id':
        context[attr] = req.userId;
        break;
      case 'session_id':
        context[attr] = req.sessionId;
        break;
      case 'now':
        context[attr] = { __extn: { fn: 'datetime', arg: req.now.toISOString() } };
        break;
    }
  }
  return context;
}

/**
 * Node 20's V8 (11.3) aborts the process ("Fatal error ... unreachable code" in
 * Deoptimizer::DoComputeBuiltinContinuation) when an optimized function into which a JS->Wasm
 * call was inlined is lazily deoptimized during that call (e.g. a GC changes an allocation-site
 * decision while Cedar runs). Calling through a Proxy keeps TurboFan from inlining the Cedar
 * call into evaluate(): the call then returns through an ordinary call frame. Same effect as
 * node --no-turbo-inline-js-wasm-calls, without a process-wide flag. The robustness tests replay
 * the sequence that crashed.
 */
const authorize: typeof cedar.statefulIsAuthorized = new Proxy(cedar.statefulIsAuthorized, {});

/** The request's fields have the types Cedar expects (evaluate() may be handed anything). */
function wellFormed(req: PolicyRequest): boolean {
  if (
    typeof req.tenantId !== 'string' ||
    typeof req.agentId !== 'string' ||
    typeof req.tool !== 'string' ||
    typeof req.action !== 'string' ||
    typeof req.resource !== 'string' ||
    typeof req.userId !== 'string' ||
    typeof req.sessionId !== 'string' ||
    !Number.isSafeInteger(req.riskScore) ||
    !Array.isArray(req.riskFactors) ||
    typeof req.labels !== 'object' ||
    req.labels === null ||
    Array.isArray(req.labels) ||
    !(req.now instanceof Date) ||
    !Number.isFinite(req.now.getTime())
  ) {
    return false;
  }
  for (let i = 0; i < req.riskFactors.length; i++) if (typeof req.riskFactors[i] !== 'string') return false;
  for (const key in req.labels) if (typeof req.labels[key] !== 'string') return false;
  return true;
}

const precedes = (a: PolicyMeta, b: PolicyMeta): boolean =>
  a.priority !== b.priority ? a.priority > b.priority : a.id < b.id;

/** Highest precedence first (insertion sort: a handful of policies at most). */
function byPrecedence(metas: PolicyMeta[]): PolicyMeta[] {
  for (let i = 1; i < metas.length; i++) {
    const current = metas[i]!;
    let j = i - 1;
    for (; j >= 0 && precedes(current, metas[j]!); j--) metas[j + 1] = metas[j]!;
    metas[j + 1] = current;
  }
  return metas;
}

class CedarPolicyEngine implements PolicyEngine {
  constructor(
    readonly version: string,
    private readonly metas: ReadonlyMap<string, PolicyMeta>,
    private readonly actions: ReadonlyMap<string, ActionInfo>,
    private readonly unknownAction: Slice,
    private readonly tenants: ReadonlyMap<string, { config: TenantConfig; entity: EntityJson }>,
    readonly readsTime: boolean,
  ) {}

  tenant(tenantId: string): TenantConfig | undefined {
    return this.tenants.get(tenantId)?.config;
  }

  decisionKey(req: PolicyRequest): string | undefined {
    if (!wellFormed(req)) return undefined;
    // What evaluate() passes to Cedar: the entities (tenant, agent, action, labels if read) and
    // the context built from the slice's attributes; the outcome adds only the tenant's data.
    const attrs = (this.actions.get(`${req.tool}.${req.action}`)?.slice ?? this.unknownAction)
      .contextAttributes;
    return JSON.stringify([
      req.tenantId,
      req.agentId,
      req.tool,
      req.action,
      attrs.has('resource_name') ? req.resource : null,
      attrs.has('risk_score') ? req.riskScore : null,
      attrs.has('risk_factors') ? req.riskFactors : null,
      attrs.has('labels') ? req.labels : null,
      attrs.has('user_id') ? req.userId : null,
      attrs.has('session_id') ? req.sessionId : null,
      attrs.has('now') ? req.now.getTime() : null,
    ]);
  }

  evaluate(req: PolicyRequest): PolicyDecision {
    let ttl = DEFAULT_APPROVAL_TTL_SEC;
    try {
      const tenant = typeof req.tenantId === 'string' ? this.tenants.get(req.tenantId) : undefined;
      ttl = tenant?.config.approval_ttl_sec ?? DEFAULT_APPROVAL_TTL_SEC;
      if (!wellFormed(req)) return this.failed(ttl);

      const known = this.actions.get(`${req.tool}.${req.action}`);
      const slice = known?.slice ?? this.unknownAction;
      if (slice.policySetId === undefined) return this.outcome('deny', [], tenant?.config, ttl);

      const entities: EntityJson[] = [
        tenant?.entity ?? tenantEntity(req.tenantId, DEFAULT_MAX_RISK_AUTO_APPROVE),
        agentEntity(req.agentId, req.tenantId),
      ];
      if (known) entities.push(known.entity);
      if (slice.contextAttributes.has('labels')) {
        for (const _ in req.labels) {
          entities.push(labelsEntity(req.labels));
          break;
        }
      }
      const answer = authorize({
        principal: { type: 'Agent', id: req.agentId },
        action: actionUid(`${req.tool}.${req.action}`),
        resource: { type: 'Tenant', id: req.tenantId },
        context: buildContext(req, slice.contextAttributes),
        entities,
        preparsedPolicySetId: slice.policySetId,
      });
      // Fail closed on any error, even one in a policy that did not determine the outcome.
      if (answer.type !== 'success' || answer.response.diagnostics.errors.length > 0) return this.failed(ttl);

      const determining: PolicyMeta[] = [];
      const approving: PolicyMeta[] = [];
      const ids = answer.response.diagnostics.reason;
      for (let i = 0; i < ids.length; i++) {
        const meta = this.metas.get(ids[i]!);
        if (meta === undefined) return this.failed(ttl);
        determining.push(meta);
        if (meta.outcome === 'approve') approving.push(meta);
      }
      if (answer.response.decision === 'deny') return this.outcome('deny', determining, tenant?.config, ttl);
      return approving.length > 0
        ? this.outcome('approve', approving, tenant?.config, ttl)
        : this.outcome('allow', determining, tenant?.config, ttl);
    } catch {
      return this.failed(ttl);
    }
  }

  private outcome(
    decision: Decision,
    determining: PolicyMeta[],
    tenant: TenantConfig | undefined,
    approvalTtlSec: number,
  ): PolicyDecision {
    const ordered = byPrecedence(determining);
    if (decision !== 'deny' && ordered.length === 0) return this.failed(approvalTtlSec);
    const approve = decision === 'approve';
    const notify: NotifyRoute[] = [];
    if (approve && tenant)
      for (const route of tenant.notify)
        // A Slack route takes the tenant's slack_view unless it names its own.
        notify.push(
          route.kind === 'slack' && !route.view && tenant.slack_view
            ? { ...route, view: tenant.slack_view }
            : { ...route },
        );
    const determiningPolicies: string[] = [];
    for (const meta of ordered) determiningPolicies.push(meta.id);
    return {
      decision,
      reason: ordered[0]?.reason ?? REASON_NOT_ALLOWLISTED,
      policyVersion: this.version,
      approverGroup: approve ? (tenant?.approver_group ?? '') : '',
      notify,
      requirements: approve ? { ...APPROVE_REQUIREMENTS } : {},
      approvalTtlSec,
      determiningPolicies,
    };
  }

  private failed(approvalTtlSec: number): PolicyDecision {
    return {
      decision: 'deny',
      reason: REASON_EVALUATION_FAILED,
      policyVersion: this.version,
      approverGroup: '',
      notify: [],
      requirements: {},
      approvalTtlSec,
      determiningPolicies: [],
    };
  }
}

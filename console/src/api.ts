/** The console's calls to the gateway API, with the signed-in approver's token. */
import type { ConsoleConfig } from './session.js';
import { bearer } from './session.js';

export interface Approval {
  id: string;
  event_id: string;
  tenant_id: string;
  agent_id: string;
  user_id: string;
  tool: string;
  action: string;
  resource: string;
  params: Record<string, unknown>;
  risk_score: number;
  reason: string;
  approver_group: string;
  status: 'pending' | 'approved' | 'denied' | 'expired' | 'revoked_by_policy' | 'withdrawn';
  created_at: string;
  expires_at: string;
  decided_by?: string;
  decided_at?: string;
  comment?: string;
  deny_reason?: string;
  grant?: { id: string; uses_left: number; expires_at: string };
  policy_version?: string;
  /** Why a `revoked_by_policy` approval was revoked at execute. */
  revocation?: {
    at: string;
    approved_under: string;
    policy_version: string;
    decision: string;
    reason: string;
    reapproval_required?: true;
  };
  /** The approval view (`oc-approval-view/v1`): the lines to show, the act, the hash to decide on. */
  view: { version: string; recorded: string; hash: string; act: string; lines: string[] };
  facts?: { kind: string; fact_id: string; at: string; seq?: number }[];
  /** An approver edited the request: the RFC 6902 patch from the agent's, and who edited it. */
  edit?: {
    patch: { op: string; path: string; value?: unknown }[];
    editors: string[];
    edited_by: string;
    edited_at: string;
    count: number;
    comment?: string;
  };
  /** The params this tenant lets an approver edit (one pending approval's read). */
  editable_params?: string[];
  /** The step an Extend offers now, where policy data allows extensions (Slack's step). */
  extend_sec?: number;
  /** A quorum approval (issue 21): each stage's votes and what is still needed, worded by the server. */
  quorum?: {
    rule: string;
    current_stage: number;
    summary: string;
    stages: {
      group?: string;
      n: number;
      complete: boolean;
      votes: {
        approver: string;
        at: string;
        via: string;
        /** The standing grant the vote asked for: created only if every vote of the quorum asks. */
        standing_grant?: { target_pattern: string; max_uses: number; expires_at: string };
      }[];
    }[];
  };
  /** Issue 21: when its reminder went out, its deadline's moves, the standing grant made with it. */
  reminded_at?: string;
  extensions?: { by: string; at: string; from: string; to: string; comment?: string }[];
  standing_grant?: { id: string; target_pattern: string; max_uses: number; expires_at: string };
}

/** A scoped standing grant (issue 21): calls like the approved one run without a human while active. */
export interface StandingGrant {
  id: string;
  agent_id: string;
  tool: string;
  action: string;
  target_pattern: string;
  max_uses: number;
  uses_left: number;
  expires_at: string;
  created_by: string;
  created_at: string;
  approval_id: string;
  status: 'active' | 'exhausted' | 'expired' | 'revoked';
  revoked_by?: string;
  revoked_at?: string;
}

/** One item of a batch decision: the approval as decided, or the error deciding it alone gave. */
export type BatchItem =
  | { approval_id: string; status: 200; result: 'decided' | 'voted'; progress?: string; approval: Approval }
  | { approval_id: string; status: number; error: ErrorBody };

export interface Page {
  items: Approval[];
  next_cursor?: string;
}

export interface Delivery {
  delivery_id: string;
  event_type: string;
  route: { kind: 'webhook'; target: string } | { kind: 'slack'; channel: string };
  status: 'pending' | 'delivered' | 'failed' | 'dead';
  attempts: number;
  last_status_code?: number;
  last_error?: string;
  last_attempt_at?: string;
  next_attempt_at?: string;
  delivered_at?: string;
  in_dlq: boolean;
}

interface ErrorBody {
  code: string;
  message: string;
  details?: { path: string; message: string }[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body?: ErrorBody,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (auth) {
    const token = bearer();
    if (!token) throw new ApiError(401, 'UNAUTHORIZED', 'not signed in');
    headers.Authorization = `Bearer ${token}`;
  }
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (json ?? {}) as Partial<ErrorBody>;
    throw new ApiError(
      res.status,
      e.code ?? 'HTTP_ERROR',
      e.message ?? `HTTP ${res.status}`,
      json as ErrorBody | undefined,
    );
  }
  return json as T;
}

export const api = {
  config: () => call<ConsoleConfig>('GET', '/console/config.json', undefined, false),
  list: (status: string, limit: number, cursor?: string) =>
    call<Page>(
      'GET',
      `/v1/approvals?${new URLSearchParams({ status, limit: String(limit), ...(cursor ? { cursor } : {}) })}`,
    ),
  get: (id: string) => call<Approval>('GET', `/v1/approvals/${encodeURIComponent(id)}`),
  deliveries: async (id: string) =>
    (await call<{ items: Delivery[] }>('GET', `/v1/approvals/${encodeURIComponent(id)}/deliveries`)).items,
  /** The decision names the view it was made on: the server refuses it (409) for any other. */
  decide: (id: string, decision: 'approve' | 'deny', note: string, viewHash: string) =>
    call<Approval>('POST', `/v1/approvals/${encodeURIComponent(id)}/${decision}`, {
      ...(note ? (decision === 'approve' ? { comment: note } : { reason: note }) : {}),
      view_hash: viewHash,
    }),
  /** Edit-on-approve: the params to set, judged again by policy; the view edited is named. */
  edit: (id: string, params: Record<string, unknown>, viewHash: string, comment: string) =>
    call<Approval>('POST', `/v1/approvals/${encodeURIComponent(id)}/edit`, {
      params,
      view_hash: viewHash,
      ...(comment ? { comment } : {}),
    }),
  /** Several approvals decided at once, each by the view hash shown for it. */
  batch: (decision: 'approve' | 'deny', items: { id: string; viewHash: string }[], note: string) =>
    call<{ decided: number; voted: number; refused: number; results: BatchItem[] }>(
      'POST',
      '/v1/approvals/batch',
      {
        decision,
        items: items.map((i) => ({ approval_id: i.id, view_hash: i.viewHash })),
        ...(note ? (decision === 'approve' ? { comment: note } : { reason: note }) : {}),
      },
    ),
  /** Moves a pending deadline (within the tenant's bound), on the view the approver saw. */
  extend: (id: string, seconds: number, viewHash: string) =>
    call<Approval>('POST', `/v1/approvals/${encodeURIComponent(id)}/extend`, {
      extend_sec: seconds,
      view_hash: viewHash,
    }),
  grants: async () => (await call<{ items: StandingGrant[] }>('GET', '/v1/grants?limit=100')).items,
  revokeGrant: (id: string) => call<StandingGrant>('POST', `/v1/grants/${encodeURIComponent(id)}/revoke`, {}),
  devSignIn: (email: string) =>
    call<{ token: string; email: string; tenant_id: string; expires_at: string }>(
      'POST',
      '/console/dev-sign-in',
      { email },
      false,
    ),
};

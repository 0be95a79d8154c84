/**
 * What every API route accepts besides its credential, by handler name (the names of ROUTES):
 * path parameters, query and body, as strict schemas built from the shared string rules. Each
 * handler reads its request with `parseRequest(event, ROUTE_INPUTS[name])`; a test walks these
 * schemas and fails if any string in them skips the rules, or if a route has no entry.
 */
import * as z from 'zod';
import { ToolCallRequestBody } from '../core/toolcall.js';
import { APPROVAL_STATES, LIMITS, STANDING_GRANT_STATES } from '../shared/constants.js';
import type { RouteInput } from '../shared/http.js';
import { rules } from '../shared/input-rules.js';

const eventPath = z.strictObject({ event_id: rules.uuid() });
const approvalPath = z.strictObject({ approval_id: rules.uuid() });
const grantPath = z.strictObject({ grant_id: rules.uuid() });

export const ROUTE_INPUTS = {
  'submit-toolcall': {
    body: { schema: ToolCallRequestBody, required: true, parsedBy: 'core' },
  },
  'get-toolcall': { path: eventPath },
  'get-toolcall-proof': { path: eventPath },
  // MCP: the official SDK parses the JSON-RPC body; a governed call's arguments pass the shared
  // JSON rules (core/mcp.ts), then ToolCallRequestBody and the action's own schema and target rule
  // in the submit core, as a REST call does; event ids rules.uuid.
  mcp: {},
  // Execute reads no body (any is ignored): the stored request runs, never a new one.
  'execute-toolcall': { path: eventPath },
  // Nothing to send: a body, if any, is `{}` (hostile bodies are refused before anything is written).
  'withdraw-toolcall': { path: eventPath, body: { schema: z.strictObject({}), required: false } },
  'list-approvals': {
    query: z.strictObject({
      status: z.enum(APPROVAL_STATES).default('pending'),
      limit: z.coerce.number().int().min(1).max(100).default(50),
      cursor: rules.cursor().optional(),
    }),
  },
  'get-approval': { path: approvalPath },
  'get-approval-deliveries': { path: approvalPath },
  'approve-approval': {
    path: approvalPath,
    // view_hash: the view the approver acted on (core/approval-view.ts); another view is a 409.
    body: {
      schema: z.strictObject({
        comment: rules.text(1000).optional(),
        view_hash: rules.sha256Hex().optional(),
      }),
      required: false,
    },
  },
  'deny-approval': {
    path: approvalPath,
    body: {
      schema: z.strictObject({
        reason: rules.text(1000).optional(),
        view_hash: rules.sha256Hex().optional(),
      }),
      required: false,
    },
  },
  // Edit-on-approve (core/edit.ts): the params to set (each listed as editable for the action; the
  // merged params pass the request's own rules and the action's schema) and the view edited.
  'edit-approval': {
    path: approvalPath,
    body: {
      schema: z.strictObject({
        params: ToolCallRequestBody.shape.params.refine((p) => Object.keys(p).length > 0, {
          message: 'name at least one param to change',
        }),
        view_hash: rules.sha256Hex(),
        comment: rules.text(1000).optional(),
      }),
      required: true,
    },
  },
  // Issue 21 deliverable 5: move a pending deadline by `extend_sec` (policy data bounds it).
  'extend-approval': {
    path: approvalPath,
    body: {
      schema: z.strictObject({
        extend_sec: z
          .number()
          .int()
          .min(60)
          .max(7 * 86_400),
        comment: rules.text(1000).optional(),
        view_hash: rules.sha256Hex().optional(),
      }),
      required: true,
    },
  },
  // A batch of decisions (core/batch.ts): each item names its approval and the view shown (never
  // blind), each approval at most once; a comment goes with approve, a reason with deny.
  'batch-approvals': {
    body: {
      schema: z
        .strictObject({
          decision: z.enum(['approve', 'deny']),
          items: z
            .array(z.strictObject({ approval_id: rules.uuid(), view_hash: rules.sha256Hex() }))
            .min(1)
            .max(50)
            .refine((items) => new Set(items.map((i) => i.approval_id)).size === items.length, {
              message: 'names an approval twice',
            }),
          comment: rules.text(1000).optional(),
          reason: rules.text(1000).optional(),
        })
        .refine((b) => !(b.decision === 'approve' && b.reason !== undefined), {
          message: 'a reason goes with deny',
          path: ['reason'],
        })
        .refine((b) => !(b.decision === 'deny' && b.comment !== undefined), {
          message: 'a comment goes with approve',
          path: ['comment'],
        }),
      required: true,
    },
  },
  // Issue 21 deliverable 6: approve this call and calls like it (policy data bounds uses and life).
  'create-standing-grant': {
    path: approvalPath,
    body: {
      schema: z.strictObject({
        // Not empty, one trailing `*` at most: core/grants.ts (`patternProblem`), a 422 naming it.
        target_pattern: rules.line(LIMITS.maxResourceBytes, LIMITS.maxResourceBytes),
        max_uses: z.number().int().min(1).max(1000),
        expires_in_sec: z
          .number()
          .int()
          .min(60)
          .max(7 * 86_400),
        comment: rules.text(1000).optional(),
        view_hash: rules.sha256Hex().optional(),
      }),
      required: true,
    },
  },
  'list-grants': {
    query: z.strictObject({
      status: z.enum(STANDING_GRANT_STATES).optional(),
      limit: z.coerce.number().int().min(1).max(100).default(50),
      cursor: rules.cursor().optional(),
    }),
  },
  'get-grant': { path: grantPath },
  'revoke-grant': {
    path: grantPath,
    body: { schema: z.strictObject({ reason: rules.text(1000).optional() }), required: false },
  },
  // `/console` has no path parameter; `/console/{path+}` names a page or an asset.
  console: { path: z.strictObject({ path: rules.line(512).optional() }) },
} as const satisfies Record<string, RouteInput>;

export type RouteName = keyof typeof ROUTE_INPUTS;

/**
 * The approve function's second route, `POST /v1/approvals/{approval_id}/withdraw-vote` (issue 21):
 * ROUTE_INPUTS is by handler, so it has its own entry here; it reads the approval id (the same
 * rule as every approval route) and nothing else (`{}` at most).
 */
export const WITHDRAW_VOTE_INPUT = {
  path: approvalPath,
  body: { schema: z.strictObject({}), required: false },
} satisfies RouteInput;

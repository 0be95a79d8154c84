/**
 * GET /v1/approvals/{approval_id}/deliveries: each notification of the approval, per route: its
 * attempts, last status code and error, next attempt, and whether it sits in the DLQ. The same
 * rules as GET /v1/approvals/{approval_id} (an approver not on the allowlist, or another tenant's
 * approval, is 404). Routes show as `scheme://host[:port]/path` or a Slack channel: never a query,
 * credentials or a secret name.
 */
import { getApproval } from '../core/approvals.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { DeliveryStore, type DeliveryRecord } from '../store/deliveries.js';
import { authenticated } from './authentication.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover, approvalDeps } from './approvals-state.js';
import { ROUTE_INPUTS } from './inputs.js';

export function deliveryView(r: DeliveryRecord) {
  return {
    delivery_id: r.delivery_id,
    event_type: r.event_type,
    route: r.route,
    status: r.status,
    attempts: r.attempts,
    ...(r.last_status_code !== undefined ? { last_status_code: r.last_status_code } : {}),
    ...(r.last_error !== undefined ? { last_error: r.last_error } : {}),
    ...(r.last_attempt_at !== undefined ? { last_attempt_at: r.last_attempt_at } : {}),
    ...(r.next_attempt_at !== undefined && r.status === 'pending'
      ? { next_attempt_at: r.next_attempt_at }
      : {}),
    ...(r.delivered_at !== undefined ? { delivered_at: r.delivered_at } : {}),
    in_dlq: r.in_dlq,
  };
}

/**
 * Oldest first, as the notifications happened (requested, votes, reminder, decided): the store
 * answers in the order of the delivery ids, which are hashes, so a console showed "expired"
 * above "requested".
 */
export const deliveriesInOrder = (records: DeliveryRecord[]) =>
  [...records]
    .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.delivery_id.localeCompare(b.delivery_id))
    .map(deliveryView);

// Only the records' store: this route bundles neither SQS nor the signing libraries.
const stores = new WeakMap<AppState, DeliveryStore>();
const deliveriesOf = (state: AppState) => {
  let store = stores.get(state);
  if (!store) stores.set(state, (store = new DeliveryStore(state.doc, state.config.tableName)));
  return store;
};

export const getApprovalDeliveriesRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { path } = parseRequest(event, ROUTE_INPUTS['get-approval-deliveries']);
      const state = getState();
      // 404 exactly when GET /v1/approvals/{id} is.
      await getApproval(approvalDeps(state), apiApprover(approver), path.approval_id);
      const records = await deliveriesOf(state).forApproval(approver.tenantId, path.approval_id);
      return { status: 200, body: JSON.stringify({ items: deliveriesInOrder(records) }) };
    }),
  );

warmInLambda((state) => state.approverTokens);
export const handler = lambda(getApprovalDeliveriesRoute(appState));

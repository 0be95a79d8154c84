/**
 * GET /v1/approvals/{id}/deliveries lists an approval's notifications in the order they happened
 * (the console's delivery table shows them so). The store answers in delivery-id order, and
 * delivery ids are hashes: found by scripts/approval-transcripts.ts, whose console screenshot of an
 * expired approval listed "reminder", "expired", then "requested".
 */
import { deliveriesInOrder } from '../../functions/handlers/get-approval-deliveries.js';
import type { DeliveryRecord } from '../../functions/store/deliveries.js';

const record = (delivery_id: string, event_type: string, created_at: string): DeliveryRecord =>
  ({
    tenant_id: 'tenant2',
    approval_id: 'a1',
    delivery_id,
    event_type,
    route_index: 0,
    route: { kind: 'webhook', target: 'http://localhost:8090/hooks' },
    status: 'delivered',
    attempts: 1,
    created_at,
    in_dlq: false,
  }) as DeliveryRecord;

describe('the deliveries of an approval', () => {
  it('are listed oldest first, whatever their ids', () => {
    const stored = [
      record('0a-reminder', 'oc.approval.reminder', '2026-12-07T21:27:54.000Z'),
      record('3f-expired', 'oc.approval.expired', '2026-12-07T21:28:54.000Z'),
      record('c2-requested', 'oc.approval.requested', '2026-12-07T21:27:42.000Z'),
    ];
    expect(deliveriesInOrder(stored).map((d) => d.event_type)).toEqual([
      'oc.approval.requested',
      'oc.approval.reminder',
      'oc.approval.expired',
    ]);
  });

  it('two of the same moment (one event, two routes) keep one order', () => {
    const at = '2026-12-07T21:27:42.000Z';
    const one = record('b-slack', 'oc.approval.requested', at);
    const two = record('a-webhook', 'oc.approval.requested', at);
    expect(deliveriesInOrder([one, two]).map((d) => d.delivery_id)).toEqual(['a-webhook', 'b-slack']);
  });
});

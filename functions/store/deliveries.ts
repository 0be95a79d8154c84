/**
 * Delivery records (one per approval event and route, keyed by the stable delivery id): the
 * durable truth about notifications. Created conditionally by the outbox, so a replayed stream
 * record finds the delivery it already made; each attempt takes a short lease with a conditional
 * update, so two copies of one SQS message never send at once; a delivered (or given up) record
 * turns every later copy into a no-op. `state` holds what a route's sender keeps between events
 * (the Slack sender: channel and message `ts`).
 */
import {
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { NotifyEvent, RouteView } from '../core/notifications.js';
import { ITEM_TYPE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { isConditionalFailure, queryAll, readOrFail } from './dynamo.js';
import { keys } from './keys.js';

/** pending: will be (re)tried; delivered; failed: stopped for good (410, no secret); dead: attempts exhausted, in the DLQ. */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'dead';

export interface DeliveryRecord {
  tenant_id: string;
  approval_id: string;
  delivery_id: string;
  event_type: NotifyEvent;
  /** Index of the route in the approval's `notify` list (the full route, URL and secret name, lives there). */
  route_index: number;
  route: RouteView;
  status: DeliveryStatus;
  attempts: number;
  created_at: string;
  in_dlq: boolean;
  last_status_code?: number;
  last_error?: string;
  last_attempt_at?: string;
  next_attempt_at?: string;
  delivered_at?: string;
  /** While an attempt runs: until when no other copy of the message may attempt. */
  lease_until?: string;
  /** Route-specific state kept across events (e.g. Slack channel and message ts). */
  state?: Record<string, string>;
}

export type NewDelivery = Omit<DeliveryRecord, 'status' | 'attempts' | 'in_dlq'>;

export type AttemptClaim =
  | { kind: 'claimed'; record: DeliveryRecord }
  /** Delivered or stopped: the message is done. */
  | { kind: 'done'; record: DeliveryRecord }
  /** Another copy is attempting now: look again after the lease. */
  | { kind: 'busy'; retryInSec: number }
  | { kind: 'missing' };

export interface AttemptResult {
  status: DeliveryStatus;
  statusCode?: number;
  error?: string;
  nextAttemptAt?: string;
  deliveredAt?: string;
  inDlq?: boolean;
  state?: Record<string, string>;
}

function toRecord(item: Record<string, unknown>): DeliveryRecord {
  const {
    pk: _pk,
    sk: _sk,
    type: _type,
    route,
    state,
    ...rest
  } = item as Record<string, unknown> & { route: string; state?: string };
  return {
    ...(rest as unknown as DeliveryRecord),
    route: JSON.parse(route) as RouteView,
    in_dlq: rest.in_dlq === true,
    ...(typeof state === 'string' ? { state: JSON.parse(state) as Record<string, string> } : {}),
  };
}

export class DeliveryStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Creates the record once; an existing one (a replayed stream record) is returned as it is. */
  async create(d: NewDelivery): Promise<{ created: true } | { created: false; existing: DeliveryRecord }> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...keys.delivery(d.tenant_id, d.approval_id, d.delivery_id),
            type: ITEM_TYPE.delivery,
            tenant_id: d.tenant_id,
            approval_id: d.approval_id,
            delivery_id: d.delivery_id,
            event_type: d.event_type,
            route_index: d.route_index,
            route: JSON.stringify(d.route),
            status: 'pending',
            attempts: 0,
            created_at: d.created_at,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return { created: true };
    } catch (error) {
      if (isConditionalFailure(error)) {
        const existing = await this.get(d.tenant_id, d.approval_id, d.delivery_id);
        if (existing) return { created: false, existing };
      }
      throw new StorageError('delivery record write failed', error);
    }
  }

  async get(tenantId: string, approvalId: string, id: string): Promise<DeliveryRecord | undefined> {
    const out = await readOrFail(
      () =>
        this.doc.send(
          new GetCommand({
            TableName: this.table,
            Key: keys.delivery(tenantId, approvalId, id),
            ConsistentRead: true,
          }),
        ),
      'delivery record read',
    );
    return out.Item ? toRecord(out.Item) : undefined;
  }

  /**
   * Takes the lease for one attempt and counts it. A record in the DLQ (`dead`) whose message
   * came back was redriven: it starts a fresh round of attempts.
   */
  async beginAttempt(
    tenantId: string,
    approvalId: string,
    id: string,
    now: Date,
    leaseSec: number,
  ): Promise<AttemptClaim> {
    const key = keys.delivery(tenantId, approvalId, id);
    const at = now.toISOString();
    const lease = new Date(now.getTime() + leaseSec * 1000).toISOString();
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression:
            'SET attempts = if_not_exists(attempts, :zero) + :one, last_attempt_at = :at, lease_until = :lease REMOVE next_attempt_at',
          ConditionExpression:
            'attribute_exists(pk) AND #status = :pending AND (attribute_not_exists(lease_until) OR lease_until < :at)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':zero': 0,
            ':one': 1,
            ':at': at,
            ':lease': lease,
            ':pending': 'pending',
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { kind: 'claimed', record: toRecord(out.Attributes ?? {}) };
    } catch (error) {
      if (!isConditionalFailure(error)) throw new StorageError('delivery attempt claim failed', error);
    }
    const current = await this.get(tenantId, approvalId, id);
    if (!current) return { kind: 'missing' };
    if (current.status === 'dead') {
      await this.redriven(tenantId, approvalId, id);
      return this.beginAttempt(tenantId, approvalId, id, now, leaseSec);
    }
    if (current.status !== 'pending') return { kind: 'done', record: current };
    const leftMs = Date.parse(current.lease_until ?? at) - now.getTime();
    return { kind: 'busy', retryInSec: Math.max(1, Math.ceil(leftMs / 1000)) };
  }

  private async redriven(tenantId: string, approvalId: string, id: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.delivery(tenantId, approvalId, id),
          UpdateExpression: 'SET #status = :pending, attempts = :zero, in_dlq = :no REMOVE lease_until',
          ConditionExpression: '#status = :dead',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':pending': 'pending', ':zero': 0, ':no': false, ':dead': 'dead' },
        }),
      );
    } catch (error) {
      // Another copy reset it first: fine.
      if (!isConditionalFailure(error)) throw new StorageError('delivery redrive reset failed', error);
    }
  }

  /** Records how the attempt ended and gives the lease back. */
  async finishAttempt(
    tenantId: string,
    approvalId: string,
    id: string,
    result: AttemptResult,
  ): Promise<void> {
    const sets = ['#status = :status'];
    const removes = ['lease_until'];
    const values: Record<string, unknown> = { ':status': result.status };
    const put = (name: string, value: unknown) => {
      if (value === undefined) removes.push(name);
      else {
        sets.push(`${name} = :${name}`);
        values[`:${name}`] = value;
      }
    };
    put('last_status_code', result.statusCode);
    put('last_error', result.error);
    put('next_attempt_at', result.nextAttemptAt);
    if (result.deliveredAt) put('delivered_at', result.deliveredAt);
    sets.push('in_dlq = :in_dlq');
    values[':in_dlq'] = result.inDlq === true;
    if (result.state) {
      sets.push('#state = :state');
      values[':state'] = JSON.stringify(result.state);
    }
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.delivery(tenantId, approvalId, id),
          UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#status': 'status', ...(result.state ? { '#state': 'state' } : {}) },
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      throw new StorageError('delivery record update failed', error);
    }
  }

  /** The approval's deliveries, in delivery id order. */
  async forApproval(tenantId: string, approvalId: string): Promise<DeliveryRecord[]> {
    const found: DeliveryRecord[] = [];
    const items = queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :dlv)',
        ExpressionAttributeValues: {
          ':pk': keys.delivery(tenantId, approvalId, '').pk,
          ':dlv': keys.deliveryPrefix,
        },
        ConsistentRead: true,
      },
      'deliveries query',
    );
    for await (const item of items) found.push(toRecord(item));
    return found;
  }

  /** Every pending delivery of the table (the local host re-enqueues them after a restart). */
  async *pending(): AsyncGenerator<DeliveryRecord> {
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await readOrFail(
        () =>
          this.doc.send(
            new ScanCommand({
              TableName: this.table,
              FilterExpression: '#type = :delivery AND #status = :pending',
              ExpressionAttributeNames: { '#type': 'type', '#status': 'status' },
              ExpressionAttributeValues: { ':delivery': ITEM_TYPE.delivery, ':pending': 'pending' },
              ExclusiveStartKey: startKey,
              ConsistentRead: true,
            }),
          ),
        'pending deliveries scan',
      );
      for (const item of out.Items ?? []) yield toRecord(item);
      startKey = out.LastEvaluatedKey;
    } while (startKey);
  }
}

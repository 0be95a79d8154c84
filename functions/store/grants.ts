/**
 * DynamoDB repository for standing grants (issue 21 deliverable 6). A tenant's grants live in one
 * partition (`T#<tenant>#SGR`, sort key the grant id): one Query lists them, one GetItem shows
 * one, and the lookup at a call's use is one strongly consistent Query of that partition filtered
 * to the call's agent, tool and action (a revocation written a moment before is seen). The use
 * itself is a conditional decrement in the call's own claiming transaction (store/toolcalls.ts).
 */
import { GetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { FactRecord } from '../core/evidence.js';
import type { StandingGrant } from '../core/grants.js';
import { ITEM_TYPE, TABLE } from '../shared/constants.js';
import { badRequest, StorageError } from '../shared/errors.js';
import { UUID_PATTERN } from '../shared/input-rules.js';
import { queryAll, readOrFail } from './dynamo.js';
import { keys } from './keys.js';
import { putFact } from './toolcalls.js';
import { transact } from './transact.js';

/** The grant's fields, as the item holds them (top-level: the use's condition reads them). */
const FIELDS = [
  'id',
  'tenant_id',
  'agent_id',
  'tool',
  'action',
  'target_pattern',
  'max_uses',
  'uses_left',
  'expires_at',
  'created_by',
  'created_at',
  'approval_id',
  'event_id',
  'status',
  'revoked_by',
  'revoked_at',
  'revoke_reason',
  'last_used_at',
  'comment',
] as const;

/** Kept 90 days past its expiry (the listing shows it meanwhile), then removed by TTL. */
const ttlOf = (g: StandingGrant) => Math.floor(Date.parse(g.expires_at) / 1000) + 90 * 86_400;

export function standingGrantItem(g: StandingGrant): Record<string, unknown> {
  return {
    ...keys.standingGrant(g.tenant_id, g.id),
    type: ITEM_TYPE.standingGrant,
    ...g,
    [TABLE.ttlAttribute]: ttlOf(g),
  };
}

export function toStandingGrant(item: Record<string, unknown>): StandingGrant {
  const g: Record<string, unknown> = {};
  for (const f of FIELDS) if (item[f] !== undefined) g[f] = item[f];
  return g as unknown as StandingGrant;
}

/** The update that spends one use: only while active, unexpired and not used up (the revocation check). */
export function grantUseUpdate(table: string, tenantId: string, grantId: string, at: string) {
  return {
    Update: {
      TableName: table,
      Key: keys.standingGrant(tenantId, grantId),
      UpdateExpression: 'SET uses_left = uses_left - :one, last_used_at = :at',
      ConditionExpression: '#status = :active AND uses_left >= :one AND expires_at > :at',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':one': 1, ':at': at, ':active': 'active' },
    },
  };
}

const encodeCursor = (key: Record<string, unknown>) =>
  Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');

/** A cursor must be exactly a key this tenant's listing could have returned; anything else is a 400. */
function decodeCursor(cursor: string, tenantId: string): Record<string, unknown> {
  const fail = () =>
    badRequest('invalid cursor', [{ path: '/cursor', message: 'use next_cursor from a previous page' }]);
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw fail();
  }
  if (typeof key !== 'object' || key === null || Array.isArray(key)) throw fail();
  const k = key as Record<string, unknown>;
  if (Object.keys(k).length !== 2 || typeof k.sk !== 'string' || !UUID_PATTERN.test(k.sk)) throw fail();
  const expected = keys.standingGrant(tenantId, k.sk);
  if (k.pk !== expected.pk) throw fail();
  return expected;
}

export class StandingGrantStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(tenantId: string, grantId: string): Promise<StandingGrant | undefined> {
    const out = await readOrFail(() =>
      this.doc.send(
        new GetCommand({
          TableName: this.table,
          Key: keys.standingGrant(tenantId, grantId),
          ConsistentRead: true,
        }),
      ),
    );
    return out.Item ? toStandingGrant(out.Item) : undefined;
  }

  async list(
    tenantId: string,
    limit: number,
    cursor: string | undefined,
  ): Promise<{ items: StandingGrant[]; nextCursor?: string }> {
    // Decoded before the read: a bad cursor is the caller's 400, never a storage failure.
    const startKey = cursor ? decodeCursor(cursor, tenantId) : undefined;
    const out = await readOrFail(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': keys.standingGrantsPartition(tenantId) },
          Limit: limit,
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      ),
    );
    return {
      items: (out.Items ?? []).map(toStandingGrant),
      ...(out.LastEvaluatedKey ? { nextCursor: encodeCursor(out.LastEvaluatedKey) } : {}),
    };
  }

  /**
   * The tenant's grants that may cover a call of this agent, tool and action now: strongly
   * consistent, so a revocation or the last use committed before this read is seen.
   */
  async candidates(
    tenantId: string,
    call: { agent_id: string; tool: string; action: string },
    now: Date,
  ): Promise<StandingGrant[]> {
    const found: StandingGrant[] = [];
    const items = queryAll(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        FilterExpression:
          'agent_id = :agent AND tool = :tool AND #action = :action AND #status = :active AND uses_left >= :one AND expires_at > :now',
        ExpressionAttributeNames: { '#action': 'action', '#status': 'status' },
        ExpressionAttributeValues: {
          ':pk': keys.standingGrantsPartition(tenantId),
          ':agent': call.agent_id,
          ':tool': call.tool,
          ':action': call.action,
          ':active': 'active',
          ':one': 1,
          ':now': now.toISOString(),
        },
        ConsistentRead: true,
      },
      'standing grants query',
    );
    for await (const item of items) found.push(toStandingGrant(item));
    return found;
  }

  /** `revoked` only while it is `active`, with its fact, in one transaction; false if revoked already. */
  async revoke(
    g: StandingGrant,
    r: { by: string; at: string; reason?: string; fact: FactRecord },
  ): Promise<boolean> {
    const result = await transact(this.doc, [
      {
        Update: {
          TableName: this.table,
          Key: keys.standingGrant(g.tenant_id, g.id),
          UpdateExpression:
            'SET #status = :revoked, revoked_by = :by, revoked_at = :at' +
            (r.reason ? ', revoke_reason = :reason' : ''),
          ConditionExpression: '#status = :active',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':revoked': 'revoked',
            ':active': 'active',
            ':by': r.by,
            ':at': r.at,
            ...(r.reason ? { ':reason': r.reason } : {}),
          },
        },
      },
      putFact(this.table, r.fact),
    ]);
    if (result.ok) return true;
    if (result.index !== 0)
      throw new StorageError(`standing grant revocation rejected at item ${result.index}`);
    return false;
  }
}

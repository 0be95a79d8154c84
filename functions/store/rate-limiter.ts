/**
 * Per-tenant rate limit shared by every Lambda instance: a sliding window over one-second
 * counters kept on one item per tenant. One UpdateItem per request, no read-modify-write race:
 * DynamoDB serializes the ADDs. The window holds `burst` requests over burst/rate seconds, so a
 * tenant sustains `rate` per second and may spend `burst` at once.
 */
import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Clock, RateLimiter } from '../core/ports.js';
import { ITEM_TYPE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { keys } from './keys.js';

export interface RateLimitConfig {
  perSecond: number;
  burst: number;
}

export class DynamoRateLimiter implements RateLimiter {
  private readonly windowSec: number;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly config: RateLimitConfig,
    private readonly clock: Clock,
  ) {
    this.windowSec = Math.max(1, Math.ceil(config.burst / config.perSecond));
  }

  async take(tenantId: string): Promise<{ allowed: true } | { allowed: false; retryAfterSec: number }> {
    const nowMs = this.clock.now().getTime();
    const second = Math.floor(nowMs / 1000);
    const names: Record<string, string> = { '#cur': `c${second}`, '#type': 'type' };
    // Counters older than the window are dropped in the same update.
    const stale = [1, 2, 3].map((k) => second - this.windowSec - k);
    stale.forEach((s, i) => (names[`#old${i}`] = `c${s}`));
    let attributes: Record<string, unknown> | undefined;
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.rateLimit(tenantId),
          UpdateExpression: `ADD #cur :one SET #type = :type, #ttl = :ttl REMOVE ${stale.map((_, i) => `#old${i}`).join(', ')}`,
          ExpressionAttributeNames: { ...names, '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':one': 1, ':type': ITEM_TYPE.rateLimit, ':ttl': second + 3600 },
          ReturnValues: 'ALL_NEW',
        }),
      );
      attributes = out.Attributes;
    } catch (error) {
      throw new StorageError('rate limit unavailable', error);
    }
    const fraction = (nowMs % 1000) / 1000;
    let used = 0;
    for (let k = 0; k < this.windowSec; k++) used += Number(attributes?.[`c${second - k}`] ?? 0);
    // The oldest second counts only for the part of it still inside the window.
    used += Number(attributes?.[`c${second - this.windowSec}`] ?? 0) * (1 - fraction);
    if (used <= this.config.burst) return { allowed: true };
    // A rejected request gives its count back, so a tenant that overshoots still gets its rate.
    await this.doc
      .send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.rateLimit(tenantId),
          UpdateExpression: 'ADD #cur :minus',
          ExpressionAttributeNames: { '#cur': `c${second}` },
          ExpressionAttributeValues: { ':minus': -1 },
        }),
      )
      .catch(() => undefined);
    return { allowed: false, retryAfterSec: 1 };
  }
}

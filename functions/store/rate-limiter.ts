/**
 * Per-tenant rate limit shared by every Lambda instance: a sliding window over one-second
 * counters kept on one item per tenant. One UpdateItem per lease of permits (one per request at
 * low rates), no read-modify-write race: DynamoDB serializes the ADDs. The window holds `burst` requests over burst/rate seconds, so a
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

/** A share of the current second's window this instance took in one write and has not spent yet. */
interface Lease {
  second: number;
  left: number;
}

export class DynamoRateLimiter implements RateLimiter {
  private readonly windowSec: number;
  /** The most a lease may hold: 1/10 of the tenant's rate, so idle leases strand little of it. */
  private readonly maxLease: number;
  private readonly leases = new Map<string, Lease>();
  /** One lease write at a time per tenant: concurrent requests of this instance wait for it. */
  private readonly inFlight = new Map<string, Promise<number>>();
  /** Requests this instance saw per tenant in the current and the previous second. */
  private readonly seen = new Map<string, { second: number; current: number; previous: number }>();

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly config: RateLimitConfig,
    private readonly clock: Clock,
  ) {
    this.windowSec = Math.max(1, Math.ceil(config.burst / config.perSecond));
    this.maxLease = Math.max(1, Math.floor(config.perSecond / 10));
  }

  /**
   * `count` permits, all or none (one for a request; more for an MCP batch, see `takeMany`). One
   * permit: a busy instance leases several of the current second's permits in one write (a
   * quarter of what it used in the previous second, at most `maxLease`) and spends them locally
   * until the second ends; unspent ones stay counted, so the shared limit is never exceeded and at
   * worst a tenant is held slightly below its rate. At low rates every request takes one permit.
   */
  async take(
    tenantId: string,
    count = 1,
  ): Promise<{ allowed: true } | { allowed: false; retryAfterSec: number }> {
    const nowMs = this.clock.now().getTime();
    const second = Math.floor(nowMs / 1000);
    if (count > 1) return this.takeMany(tenantId, nowMs, count);
    const rate = this.observe(tenantId, second, 1);
    for (;;) {
      const lease = this.leases.get(tenantId);
      if (lease && lease.second === second && lease.left > 0) {
        lease.left -= 1;
        return { allowed: true };
      }
      const pending = this.inFlight.get(tenantId);
      if (pending) {
        // Another request of this instance is leasing: share its permits, or its refusal.
        if ((await pending) === 0) return { allowed: false, retryAfterSec: 1 };
        continue;
      }
      const want = Math.min(this.maxLease, Math.max(1, Math.floor(rate / 4)));
      const request = this.lease(tenantId, nowMs, want).then((granted) => {
        this.leases.set(tenantId, { second, left: granted });
        return granted;
      });
      this.inFlight.set(tenantId, request);
      try {
        if ((await request) === 0) return { allowed: false, retryAfterSec: 1 };
      } finally {
        this.inFlight.delete(tenantId);
      }
    }
  }

  /**
   * Several permits at once (an MCP batch): one write of its own, outside the lease, all or none;
   * a refused batch gives back what it was granted, so only a batch that fits spends anything. A
   * batch larger than the burst never fits.
   */
  private async takeMany(
    tenantId: string,
    nowMs: number,
    count: number,
  ): Promise<{ allowed: true } | { allowed: false; retryAfterSec: number }> {
    this.observe(tenantId, Math.floor(nowMs / 1000), count);
    const granted = await this.lease(tenantId, nowMs, count, { allOrNone: true });
    return granted === count ? { allowed: true } : { allowed: false, retryAfterSec: 1 };
  }

  private observe(tenantId: string, second: number, count: number): number {
    let s = this.seen.get(tenantId);
    if (!s || s.second < second - 1) s = { second, current: 0, previous: 0 };
    else if (s.second === second - 1) s = { second, current: 0, previous: s.current };
    s.current += count;
    this.seen.set(tenantId, s);
    return s.previous;
  }

  /** Adds `want` to the current second's counter; keeps what fits under the burst, gives the rest back. */
  private async lease(
    tenantId: string,
    nowMs: number,
    want: number,
    options: { allOrNone?: boolean } = {},
  ): Promise<number> {
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
          UpdateExpression: `ADD #cur :n SET #type = :type, #ttl = :ttl REMOVE ${stale.map((_, i) => `#old${i}`).join(', ')}`,
          ExpressionAttributeNames: { ...names, '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':n': want, ':type': ITEM_TYPE.rateLimit, ':ttl': second + 3600 },
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
    let over = Math.min(want, Math.max(0, Math.ceil(used - this.config.burst)));
    if (over > 0 && options.allOrNone) over = want;
    if (over > 0) {
      // What did not fit is given back, so a tenant that overshoots still gets its rate.
      await this.doc
        .send(
          new UpdateCommand({
            TableName: this.table,
            Key: keys.rateLimit(tenantId),
            UpdateExpression: 'ADD #cur :minus',
            ExpressionAttributeNames: { '#cur': `c${second}` },
            ExpressionAttributeValues: { ':minus': -over },
          }),
        )
        .catch(() => undefined);
    }
    return want - over;
  }
}

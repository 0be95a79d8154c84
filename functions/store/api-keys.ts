/**
 * Agent API keys (W31): stored only as SHA-256 hashes, each bound to one tenant and optionally
 * one agent, with an optional expiry. Operators list, revoke and rotate them by `key_id` (the
 * first 16 hex digits of the hash: enough to name a key, useless for finding one).
 *
 * Lookups are cached per instance for `cacheMs` (30 s): a revoked key stops working within
 * that time everywhere; an expiry is exact (a cached key is refused from its `expires_at` on).
 * The last-used time is written after an accepted request (never for a refused one), at most once
 * a minute per key (a conditional update), so a busy key costs one extra write a minute.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  BatchGetCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { ITEM_TYPE, TABLE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { logger } from '../shared/powertools.js';
import { isConditionalFailure } from './dynamo.js';
import { keys } from './keys.js';

export interface KeyIdentity {
  tenantId: string;
  agentId?: string;
}

export interface KeyOptions {
  label?: string;
  /** The key is refused from this instant on. */
  expiresAt?: Date;
}

/** What `oc keys list` shows: never the key or its full hash. */
export interface ApiKeyRecord {
  key_id: string;
  tenant_id: string;
  agent_id?: string;
  label: string;
  created_at: string;
  expires_at?: string;
  revoked_at?: string;
  last_used_at?: string;
  status: 'active' | 'expired' | 'revoked';
}

export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');
export const keyIdOf = (hash: string): string => `key_${hash.slice(0, 16)}`;

/** A new random key: `sk-oc-` + 32 bytes base64url. */
export const generateApiKey = (): string => `sk-oc-${randomBytes(32).toString('base64url')}`;

/** How long a looked-up key is reused by one instance: the bound on revocation taking effect. */
export const API_KEY_CACHE_MS = 30_000;
/** At most one last-used write per key per this interval. */
export const LAST_USED_RESOLUTION_MS = 60_000;

export class KeyNotFoundError extends Error {
  constructor(keyId: string, tenantId: string) {
    super(`no key ${keyId} for tenant ${tenantId}`);
    this.name = 'KeyNotFoundError';
  }
}

interface CachedKey {
  identity: KeyIdentity | undefined;
  until: number;
  /** Last use as this instance knows it (ms), to skip the write within a minute. */
  lastUsed: number;
}

const listingKeys = (tenantId: string, createdAt: string, keyId: string) => ({
  gsi1pk: `T#${tenantId}#KEYS`,
  gsi1sk: `${createdAt}#${keyId}`,
});

export class ApiKeyStore {
  private readonly cache = new Map<string, CachedKey>();

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly cacheMs = API_KEY_CACHE_MS,
    /**
     * How long an unknown key stays refused without a lookup: short, so that a key created (or
     * seeded) just after a failed attempt works at once, yet a flood of one bad key costs little.
     */
    private readonly missCacheMs = 2_000,
    /** The clock for expiry, caching and last-used times (tests move it). */
    private readonly now: () => Date = () => new Date(),
  ) {}

  async put(
    key: string,
    identity: KeyIdentity,
    labelOrOptions: string | KeyOptions = '',
  ): Promise<'created' | 'exists'> {
    const options = typeof labelOrOptions === 'string' ? { label: labelOrOptions } : labelOrOptions;
    const hash = hashApiKey(key);
    const createdAt = this.now().toISOString();
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...keys.apiKey(hash),
            ...listingKeys(identity.tenantId, createdAt, keyIdOf(hash)),
            type: ITEM_TYPE.apiKey,
            key_id: keyIdOf(hash),
            tenant_id: identity.tenantId,
            agent_id: identity.agentId,
            label: options.label ?? '',
            created_at: createdAt,
            ...(options.expiresAt ? { expires_at: options.expiresAt.toISOString() } : {}),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (isConditionalFailure(error)) return 'exists';
      throw new StorageError('could not store API key', error);
    }
    // The tenant registry: scheduled work (the expiry sweep) walks every tenant that has a key.
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...keys.tenant(identity.tenantId), type: ITEM_TYPE.tenant },
        }),
      );
    } catch (error) {
      throw new StorageError('could not register tenant', error);
    }
    return 'created';
  }

  /** Drops this instance's cached lookups (the benchmark starts measured calls from a known state). */
  forgetCached(): void {
    this.cache.clear();
  }

  async resolve(key: string): Promise<KeyIdentity | undefined> {
    const hash = hashApiKey(key);
    const now = this.now().getTime();
    const cached = this.cache.get(hash);
    if (cached && cached.until > now) return cached.identity;
    let item: Record<string, unknown> | undefined;
    try {
      item = (await this.doc.send(new GetCommand({ TableName: this.table, Key: keys.apiKey(hash) }))).Item;
    } catch (error) {
      throw new StorageError('API key lookup failed', error);
    }
    const expiresAt =
      typeof item?.expires_at === 'string' ? Date.parse(item.expires_at) : Number.POSITIVE_INFINITY;
    const usable = item !== undefined && item.revoked_at === undefined && expiresAt > now;
    const identity = usable
      ? {
          tenantId: String(item!.tenant_id),
          ...(typeof item!.agent_id === 'string' ? { agentId: item!.agent_id } : {}),
        }
      : undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    // A cached key is refused from its expiry on, whatever the cache lifetime.
    const until = identity ? Math.min(now + this.cacheMs, expiresAt) : now + this.missCacheMs;
    const stored = typeof item?.last_used_at === 'string' ? Date.parse(item.last_used_at) : Number.NaN;
    const known = Math.max(
      cached?.lastUsed ?? Number.NEGATIVE_INFINITY,
      Number.isNaN(stored) ? -Infinity : stored,
    );
    this.cache.set(hash, { identity, until, lastUsed: known });
    return identity;
  }

  /**
   * Records that `key` was used for an accepted request (the gateway calls it after a handler
   * answered, so a refused request writes nothing), at most once per `LAST_USED_RESOLUTION_MS`
   * per key: skipped while this instance knows a recent use, and conditional across instances.
   */
  async recordUse(key: string): Promise<void> {
    const hash = hashApiKey(key);
    const entry = this.cache.get(hash);
    if (!entry?.identity) return;
    const now = this.now().getTime();
    if (now - entry.lastUsed < LAST_USED_RESOLUTION_MS) return;
    entry.lastUsed = now;
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.apiKey(hash),
          UpdateExpression: 'SET last_used_at = :now',
          ConditionExpression:
            'attribute_exists(pk) AND (attribute_not_exists(last_used_at) OR last_used_at < :cutoff)',
          ExpressionAttributeValues: {
            ':now': new Date(now).toISOString(),
            ':cutoff': new Date(now - LAST_USED_RESOLUTION_MS).toISOString(),
          },
        }),
      );
    } catch (error) {
      // Another instance wrote it first, or the write failed: last-used is bookkeeping, never a
      // reason to refuse a valid key.
      if (!isConditionalFailure(error))
        logger.warn('could not record API key use', { error: error as Error });
    }
  }

  /** The tenant's keys, oldest first. */
  async list(tenantId: string): Promise<ApiKeyRecord[]> {
    return (await this.listItems(tenantId)).map(({ item }) => this.toRecord(tenantId, item));
  }

  /**
   * The index holds only the listing keys (its projection serves the approval listings), so the
   * listing names the items and a batch read fetches them: an operator command, not a request path.
   */
  private async listItems(tenantId: string): Promise<{ hash: string; item: Record<string, unknown> }[]> {
    const hashes: string[] = [];
    let start: Record<string, unknown> | undefined;
    try {
      do {
        const page = await this.doc.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: TABLE.gsi1.name,
            KeyConditionExpression: `${TABLE.gsi1.partitionKey} = :pk`,
            ExpressionAttributeValues: { ':pk': listingKeys(tenantId, '', '').gsi1pk },
            ExclusiveStartKey: start,
          }),
        );
        for (const entry of page.Items ?? []) {
          if (typeof entry.pk === 'string' && entry.pk.startsWith('KEY#')) hashes.push(entry.pk.slice(4));
        }
        start = page.LastEvaluatedKey;
      } while (start);
      const items = new Map<string, Record<string, unknown>>();
      for (let i = 0; i < hashes.length; i += 100) {
        let request: Record<string, { Keys: Record<string, unknown>[] }> | undefined = {
          [this.table]: { Keys: hashes.slice(i, i + 100).map((hash) => keys.apiKey(hash)) },
        };
        while (request && Object.keys(request).length > 0) {
          const page: BatchGetCommandOutput = await this.doc.send(
            new BatchGetCommand({ RequestItems: request }),
          );
          for (const item of page.Responses?.[this.table] ?? []) items.set(String(item.pk).slice(4), item);
          request = page.UnprocessedKeys as typeof request;
        }
      }
      return hashes
        .filter((hash) => items.get(hash)?.tenant_id === tenantId)
        .map((hash) => ({ hash, item: items.get(hash)! }));
    } catch (error) {
      throw new StorageError('could not list API keys', error);
    }
  }

  private toRecord(tenantId: string, item: Record<string, unknown>): ApiKeyRecord {
    const str = (name: string) => (typeof item[name] === 'string' ? { [name]: item[name] as string } : {});
    const expired =
      typeof item.expires_at === 'string' && Date.parse(item.expires_at) <= this.now().getTime();
    return {
      key_id: String(item.key_id),
      tenant_id: tenantId,
      ...str('agent_id'),
      label: typeof item.label === 'string' ? item.label : '',
      created_at: String(item.created_at),
      ...str('expires_at'),
      ...str('revoked_at'),
      ...str('last_used_at'),
      status: item.revoked_at !== undefined ? 'revoked' : expired ? 'expired' : 'active',
    };
  }

  /**
   * Revokes `keyId` of `tenantId` (now, or at `at`: a rotation's grace period). Refused for another
   * tenant's key, which is simply not found. Returns the revoked key's record.
   *
   * A grace period never lengthens a key's life: the earlier of the key's expiry and `at` wins (a
   * key created to expire in 90 s and rotated with an hour's grace still dies in 90 s; rotating a
   * key already in grace keeps its grace). The condition makes that hold against a concurrent
   * revoke too: a write that would move the expiry later is not made.
   */
  async revoke(tenantId: string, keyId: string, at?: Date): Promise<ApiKeyRecord> {
    const { hash, record } = await this.find(tenantId, keyId);
    const when = (at ?? this.now()).toISOString();
    if (at && record.expires_at !== undefined && Date.parse(record.expires_at) <= at.getTime()) return record;
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.apiKey(hash),
          // A grace period is an earlier expiry; an immediate revocation is recorded as such.
          UpdateExpression: at ? 'SET expires_at = :at' : 'SET revoked_at = :at',
          ConditionExpression: at
            ? 'attribute_exists(pk) AND tenant_id = :tenant AND (attribute_not_exists(expires_at) OR expires_at > :at)'
            : 'attribute_exists(pk) AND tenant_id = :tenant',
          ExpressionAttributeValues: { ':at': when, ':tenant': tenantId },
        }),
      );
    } catch (error) {
      if (isConditionalFailure(error)) {
        // The key is gone, or someone set an earlier expiry meanwhile: that one stands.
        if (at) return (await this.find(tenantId, keyId)).record;
        throw new KeyNotFoundError(keyId, tenantId);
      }
      throw new StorageError('could not revoke API key', error);
    }
    this.cache.delete(hash);
    return at ? { ...record, expires_at: when } : { ...record, revoked_at: when, status: 'revoked' };
  }

  /**
   * A new key with the old one's tenant, agent binding, label and expiry; the old key is revoked
   * at once, or expires after `graceMs` (time to roll the new key out).
   */
  async rotate(
    tenantId: string,
    keyId: string,
    options: { graceMs?: number } = {},
  ): Promise<{ key: string; record: ApiKeyRecord; old: ApiKeyRecord }> {
    const { record } = await this.find(tenantId, keyId);
    if (record.status !== 'active') throw new KeyNotFoundError(keyId, tenantId);
    const key = generateApiKey();
    const identity = { tenantId, ...(record.agent_id ? { agentId: record.agent_id } : {}) };
    const created = await this.put(key, identity, {
      label: record.label,
      ...(record.expires_at ? { expiresAt: new Date(record.expires_at) } : {}),
    });
    if (created === 'exists') throw new StorageError('a generated key collided with an existing one');
    const graceMs = options.graceMs ?? 0;
    const old = await this.revoke(
      tenantId,
      keyId,
      graceMs > 0 ? new Date(this.now().getTime() + graceMs) : undefined,
    );
    const fresh = (await this.list(tenantId)).find((k) => k.key_id === keyIdOf(hashApiKey(key)))!;
    return { key, record: fresh, old };
  }

  private async find(tenantId: string, keyId: string): Promise<{ hash: string; record: ApiKeyRecord }> {
    const found = (await this.listItems(tenantId)).find(({ item }) => item.key_id === keyId);
    if (!found) throw new KeyNotFoundError(keyId, tenantId);
    return { hash: found.hash, record: this.toRecord(tenantId, found.item) };
  }
}

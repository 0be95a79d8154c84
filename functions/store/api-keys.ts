/** Agent API keys: stored only as SHA-256 hashes, each bound to one tenant (and optionally one agent). */
import { createHash, randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ITEM_TYPE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { isConditionalFailure } from './dynamo.js';
import { keys } from './keys.js';

export interface KeyIdentity {
  tenantId: string;
  agentId?: string;
}

export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

/** A new random key: `sk-oc-` + 32 bytes base64url. */
export const generateApiKey = (): string => `sk-oc-${randomBytes(32).toString('base64url')}`;

export class ApiKeyStore {
  private readonly cache = new Map<string, { identity: KeyIdentity | undefined; until: number }>();

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    /** How long a found key is reused in this process. */
    private readonly cacheMs = 30_000,
    /**
     * How long an unknown key stays refused without a lookup: short, so that a key created (or
     * seeded) just after a failed attempt works at once, yet a flood of one bad key costs little.
     */
    private readonly missCacheMs = 2_000,
  ) {}

  async put(key: string, identity: KeyIdentity, label = ''): Promise<'created' | 'exists'> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...keys.apiKey(hashApiKey(key)),
            type: ITEM_TYPE.apiKey,
            tenant_id: identity.tenantId,
            agent_id: identity.agentId,
            label,
            created_at: new Date().toISOString(),
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
    const cached = this.cache.get(hash);
    if (cached && cached.until > Date.now()) return cached.identity;
    let item: Record<string, unknown> | undefined;
    try {
      item = (await this.doc.send(new GetCommand({ TableName: this.table, Key: keys.apiKey(hash) }))).Item;
    } catch (error) {
      throw new StorageError('API key lookup failed', error);
    }
    const identity = item
      ? {
          tenantId: String(item.tenant_id),
          ...(typeof item.agent_id === 'string' ? { agentId: item.agent_id } : {}),
        }
      : undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { identity, until: Date.now() + (identity ? this.cacheMs : this.missCacheMs) });
    return identity;
  }
}

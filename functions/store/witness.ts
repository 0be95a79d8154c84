/**
 * The witness's state and its service: the latest checkpoint (size, root) it cosigned per log
 * origin, in its own DynamoDB table (`pk` = origin), moved only by a conditional write from the
 * state the request was checked against, so that two add-checkpoint calls for the same log cannot
 * both succeed from the same size (tlog-witness: check and persist atomically) and a rollback can
 * never be written. The state is persisted before the cosignature is returned.
 */
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  checkAddCheckpoint,
  parseAddCheckpoint,
  WitnessRefusal,
  type FollowedLogs,
  type WitnessedState,
} from '../core/witness.js';
import {
  b64,
  parseVerifierKey,
  rawEd25519,
  signCosignature,
  unb64,
  verifierKey,
} from '../core/signed-note.js';
import { StorageError } from '../shared/errors.js';
import { isConditionalFailure, readOrFail } from './dynamo.js';
import type { CheckpointSigner } from './checkpoint-signer.js';

export class WitnessStateStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async latest(origin: string): Promise<WitnessedState | undefined> {
    const out = await readOrFail(() =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: { pk: origin }, ConsistentRead: true })),
    );
    const item = out.Item;
    if (!item) return undefined;
    const root = unb64(String(item.root));
    if (typeof item.size !== 'number' || !root || root.length !== 32)
      throw new StorageError(`witness state for ${origin} is malformed`);
    return { size: item.size, root };
  }

  /** Moves the origin's state from `from` (undefined: none yet) to `to`; false if another request moved it first. */
  async advance(
    origin: string,
    from: WitnessedState | undefined,
    to: WitnessedState,
    now: Date,
  ): Promise<boolean> {
    try {
      if (!from)
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk: origin, size: to.size, root: b64(to.root), updated_at: now.toISOString() },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      else
        await this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: origin },
            UpdateExpression: 'SET #size = :size, #root = :root, updated_at = :now',
            ConditionExpression: '#size = :oldSize AND #root = :oldRoot',
            ExpressionAttributeNames: { '#size': 'size', '#root': 'root' },
            ExpressionAttributeValues: {
              ':size': to.size,
              ':root': b64(to.root),
              ':now': now.toISOString(),
              ':oldSize': from.size,
              ':oldRoot': b64(from.root),
            },
          }),
        );
      return true;
    } catch (error) {
      if (isConditionalFailure(error)) return false;
      throw new StorageError('witness state write failed', error);
    }
  }
}

export interface WitnessOptions {
  /** The witness's name: its key name in cosignature lines and vkeys. */
  name: string;
  logs: readonly FollowedLogs[];
  store: WitnessStateStore;
  /** Its own Ed25519 key (KMS in AWS, a key file locally). */
  signer: Pick<CheckpointSigner, 'publicKeyPem' | 'sign'>;
  now?: () => Date;
}

export class Witness {
  private key: Promise<Buffer> | undefined;
  private readonly now: () => Date;

  constructor(private readonly options: WitnessOptions) {
    this.now = options.now ?? (() => new Date());
  }

  private publicKey(): Promise<Buffer> {
    return (this.key ??= this.options.signer.publicKeyPem().then((pem) => rawEd25519(pem)));
  }

  /** The witness's verifier key (type 0x04), what a tlog-policy names it by. */
  async vkey(): Promise<string> {
    return verifierKey(this.options.name, await this.publicKey(), 0x04);
  }

  /**
   * An add-checkpoint request body in, the cosignature line out; refusals are `WitnessRefusal`
   * (the handler turns them into the spec's statuses). Persisted before it answers.
   */
  async addCheckpoint(text: string): Promise<string> {
    const request = parseAddCheckpoint(text);
    const origin = request.checkpoint.origin;
    const latest = await this.options.store.latest(origin);
    const next = checkAddCheckpoint(request, this.options.logs, latest);
    if (next && !(await this.options.store.advance(origin, latest, next, this.now()))) {
      // Another request for this log moved it first: the old size is no longer the latest.
      const now = await this.options.store.latest(origin);
      throw new WitnessRefusal(409, `another checkpoint of ${origin} was cosigned meanwhile`, now?.size ?? 0);
    }
    const timestamp = Math.floor(this.now().getTime() / 1000);
    const sig = await signCosignature(
      request.body,
      this.options.name,
      await this.publicKey(),
      timestamp,
      (message) => this.options.signer.sign(message),
    );
    return `— ${sig.name} ${b64(Buffer.concat([sig.keyId, sig.signature]))}\n`;
  }
}

/**
 * The followed logs from configuration: the deployments' log vkeys (Ed25519, type 0x01; the key
 * name is the deployment), comma or newline separated (CDK context `witnessLogs`, OC_WITNESS_LOGS).
 */
export function parseFollowedLogs(text: string): FollowedLogs[] {
  return text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const key = parseVerifierKey(entry);
      if (key.type !== 0x01)
        throw new Error(`a followed log's vkey must be an Ed25519 key (type 0x01): ${entry}`);
      return { name: key.name, key: key.publicKey };
    });
}

/**
 * Slack request signatures already acted on (SPEC §9, W26): one item per signature, written
 * conditionally before the click decides anything, so a captured request replayed inside Slack's
 * five-minute window finds its signature and is refused. Items expire by TTL after the window.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ITEM_TYPE, SLACK, TABLE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { keys } from './keys.js';

export class SlackReplayStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** True the first time a signature is seen; false for a replay. Storage failures throw (fail closed). */
  async claim(signature: string, now: Date): Promise<boolean> {
    const nowSec = Math.floor(now.getTime() / 1000);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...keys.slackReplay(signature),
            [TABLE.typeAttribute]: ITEM_TYPE.slackReplay,
            seen_at: now.toISOString(),
            // Kept past the window in both directions, then DynamoDB deletes it.
            [TABLE.ttlAttribute]: nowSec + 2 * SLACK.signatureWindowSec + 60,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw new StorageError('slack replay claim failed', error);
    }
  }
}

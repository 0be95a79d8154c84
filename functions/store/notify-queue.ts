/** The notification queue (SQS): one message per delivery, backoff by message visibility, the DLQ. */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { DeliveryMessage } from '../core/notifications.js';

export type { DeliveryMessage };
import { NOTIFICATIONS } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';

/** The message attribute naming the parked record a released message comes from. */
export const PARKED_ATTRIBUTE = 'oc_parked';

/**
 * What SQS accepts in a message body, as UTF-16 code units: #x9 | #xA | #xD | #x20–#xD7FF |
 * #xE000–#xFFFD. SQS itself also takes #x10000–#x10FFFF, but fauxqs checks code units and refuses
 * them, so supplementary characters are escaped too (as their surrogate pair): one rule, valid on both.
 */
const OUTSIDE_SQS = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd]/g;

/**
 * JSON text with every code unit SQS would refuse written as a JSON `\uXXXX` escape
 * (JSON.stringify leaves U+FFFE, U+FFFF and paired surrogates raw). Such characters only occur
 * inside JSON strings, where the escape means the same character: JSON.parse gives back the same value.
 */
export const escapeForSqs = (json: string): string =>
  json.replace(OUTSIDE_SQS, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** A message's body: escaped (no character a record holds makes the queue refuse it), within the size limit. */
export function sqsBody(value: unknown): string {
  const body = escapeForSqs(JSON.stringify(value));
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > NOTIFICATIONS.maxMessageBytes)
    throw new StorageError(
      `notification message is ${bytes} bytes, over the queue's ${NOTIFICATIONS.maxMessageBytes}`,
    );
  return body;
}

export class NotifyQueue {
  constructor(
    readonly sqs: SQSClient,
    readonly queueUrl: string,
    readonly dlqUrl: string | undefined,
  ) {}

  /** Sends the messages in batches of 10; any message SQS refuses is a StorageError (the stream retries). */
  async send(messages: readonly DeliveryMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const chunk = messages.slice(i, i + 10);
      let out;
      try {
        out = await this.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: chunk.map((m, n) => ({ Id: String(n), MessageBody: sqsBody(m) })),
          }),
        );
      } catch (error) {
        throw new StorageError('notification enqueue failed', error);
      }
      if (out.Failed && out.Failed.length > 0)
        throw new StorageError(`notification enqueue refused ${out.Failed.length} message(s)`);
    }
  }

  /**
   * Sends a parked message's body back to the queue (release-parked), marked with the parked
   * record it comes from: the delivery worker removes that record once it has handled the message.
   */
  async sendParked(body: string, parked: string): Promise<void> {
    try {
      await this.sqs.send(
        new SendMessageCommand({
          QueueUrl: this.queueUrl,
          MessageBody: escapeForSqs(body),
          MessageAttributes: { [PARKED_ATTRIBUTE]: { DataType: 'String', StringValue: parked } },
        }),
      );
    } catch (error) {
      throw new StorageError('notification enqueue failed', error);
    }
  }

  /** The message comes back after `seconds` (the retry backoff). */
  async delay(receiptHandle: string, seconds: number): Promise<void> {
    await this.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.queueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  }

  /** Puts a message whose attempts are exhausted in the DLQ (the caller then lets it be deleted). */
  async toDeadLetter(body: string): Promise<void> {
    if (!this.dlqUrl) throw new StorageError('no dead-letter queue configured');
    await this.sqs.send(new SendMessageCommand({ QueueUrl: this.dlqUrl, MessageBody: body }));
  }
}

/** Moves DLQ messages back to the queue by hand (what `StartMessageMoveTask` does in AWS), optionally one tenant's only. */
export async function moveMessages(
  sqs: SQSClient,
  from: string,
  to: string,
  keep: (body: string) => boolean = () => true,
): Promise<{ moved: number; skipped: number }> {
  let moved = 0;
  let skipped = 0;
  const seen = new Set<string>();
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: from,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 30,
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) break;
    let fresh = 0;
    for (const m of messages) {
      if (!m.Body || !m.ReceiptHandle || !m.MessageId) continue;
      if (seen.has(m.MessageId)) continue;
      seen.add(m.MessageId);
      fresh += 1;
      if (!keep(m.Body)) {
        skipped += 1;
        // Left for others: visible again at once.
        await sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: from,
            ReceiptHandle: m.ReceiptHandle,
            VisibilityTimeout: 0,
          }),
        );
        continue;
      }
      await sqs.send(new SendMessageCommand({ QueueUrl: to, MessageBody: m.Body }));
      await sqs.send(new DeleteMessageCommand({ QueueUrl: from, ReceiptHandle: m.ReceiptHandle }));
      moved += 1;
    }
    if (fresh === 0) break;
  }
  return { moved, skipped };
}

/**
 * Local stand-in for Lambda's SQS event source mapping: several workers each receive up to a
 * batch of messages (long polling), invoke the handler with the same event shape, and delete the
 * messages it did not report failed (`ReportBatchItemFailures`); failed ones come back when their
 * visibility ends (the handler set it to the backoff), and fauxqs moves a message received more
 * than the redrive policy allows to the DLQ, as SQS does. Several workers, so a slow receiver in
 * one batch holds up no other (Lambda runs batches concurrently too).
 */
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { Backoff, FailureLog } from './backoff.js';

export interface QueuePollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  batchSize: number;
  /** @default 4 */
  workers?: number;
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>;
  log?: (line: string) => void;
}

export class QueuePoller {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly failures: FailureLog;
  private readonly controller = new AbortController();
  private busyWorkers = 0;

  constructor(private readonly options: QueuePollerOptions) {
    this.failures = new FailureLog({
      what: '[oc] queue poller',
      log: options.log ?? ((line) => console.error(line)),
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (let i = 0; i < (this.options.workers ?? 4); i++) this.loops.push(this.work());
  }

  async stop(): Promise<void> {
    this.running = false;
    this.controller.abort();
    await Promise.allSettled(this.loops);
  }

  /** How many workers are handling a batch now. */
  get busy(): number {
    return this.busyWorkers;
  }

  private async work(): Promise<void> {
    const backoff = new Backoff({ initialMs: 200, maxMs: 5000 });
    while (this.running) {
      try {
        const out = await this.options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.options.queueUrl,
            MaxNumberOfMessages: this.options.batchSize,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
            // Lambda's event source passes every message attribute (release-parked marks its sends).
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: this.controller.signal },
        );
        const messages = out.Messages ?? [];
        backoff.succeed();
        this.failures.success();
        if (messages.length === 0) continue;
        this.busyWorkers += 1;
        try {
          await this.deliver(messages);
        } finally {
          this.busyWorkers -= 1;
        }
      } catch (error) {
        if (!this.running) return;
        this.failures.failure(error);
        await new Promise((resolve) => setTimeout(resolve, backoff.fail()));
      }
    }
  }

  private async deliver(messages: Message[]): Promise<void> {
    const records: SQSRecord[] = messages.map((m) => ({
      messageId: m.MessageId ?? '',
      receiptHandle: m.ReceiptHandle ?? '',
      body: m.Body ?? '',
      attributes: {
        ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
        SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
        SenderId: 'local',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: Object.fromEntries(
        Object.entries(m.MessageAttributes ?? {}).map(([name, value]) => [
          name,
          { dataType: value.DataType ?? 'String', stringValue: value.StringValue },
        ]),
      ),
      md5OfBody: m.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: this.options.queueArn,
      awsRegion: 'local',
    }));
    let failed = new Set<string>();
    try {
      const response = await this.options.handler({ Records: records });
      failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    } catch {
      // A thrown handler fails the whole batch: every message comes back after its visibility.
      return;
    }
    const done = records.filter((r) => !failed.has(r.messageId));
    for (let i = 0; i < done.length; i += 10) {
      await this.options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.options.queueUrl,
          Entries: done.slice(i, i + 10).map((r, n) => ({ Id: String(n), ReceiptHandle: r.receiptHandle })),
        }),
      );
    }
  }
}

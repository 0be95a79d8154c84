import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { STREAM_CONSUMERS } from '../functions/shared/constants.js';
import type { OcFunction } from './function.js';
import { StreamConsumer } from './stream-consumer.js';
import type { Queue } from 'aws-cdk-lib/aws-sqs';

export interface EvidenceProps {
  readonly table: ITable;
  /**
   * Retention of the sequencer's log group.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * The evidence chain's sequencer: seals fact INSERTs from the table's stream into each tenant's
 * hash chain (ARCHITECTURE "Evidence").
 */
export class Evidence extends Construct {
  readonly sequencer: OcFunction;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: EvidenceProps) {
    super(scope, id);
    const consumer = STREAM_CONSUMERS.find((c) => c.handler === 'sequencer');
    if (!consumer) throw new Error('STREAM_CONSUMERS has no sequencer entry');
    const sequencer = new StreamConsumer(this, 'Sequencer', {
      table: props.table,
      consumer,
      access: 'readwrite',
      logRetention: props.logRetention,
    });
    this.sequencer = sequencer.function;
    this.deadLetterQueue = sequencer.deadLetterQueue;
  }
}

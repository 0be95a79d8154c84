/**
 * Sequencer: consumes the INSERTs of fact-carrying items (event items with their decision, fact
 * items) from the table's stream (event-source filter) and seals their facts
 * into each tenant's chain, in stream order. A storage failure reports the first unsealed record so
 * that Lambda retries from there; facts sealed by an earlier delivery are skipped, never sealed
 * twice. A fact that cannot be sealed (a record that cannot be parsed or canonicalized) does not
 * block the shard: its tenant's chain is held at it and its later facts are parked (ChainStore),
 * while every other tenant keeps sealing; `release-held-chains` retries the held chain.
 */
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { lambda } from '../shared/middleware.js';
import { logger } from '../shared/powertools.js';
import { streamImage } from '../shared/stream-image.js';
import { factRefOf, type ChainStore, type FactRef } from '../store/chain.js';
import { appState, warmInLambda } from './app-state.js';
import { chainOf } from './chain-state.js';

interface ParsedRecord {
  sequenceNumber: string;
  tenantId: string;
  fact: FactRef;
}

/** `T#<tenant>#EVT#<event id>`: every fact lives in its event's partition. */
const EVENT_PARTITION = /^T#([^#]+)#EVT#/;

function parse(record: DynamoDBRecord): ParsedRecord | undefined {
  if (record.eventName !== 'INSERT' || !record.dynamodb?.NewImage) return undefined;
  const image = streamImage(record.dynamodb.NewImage);
  if (image.record === undefined) return undefined;
  const key = { pk: String(image.pk), sk: String(image.sk) };
  // The record is read defensively: one that cannot be parsed or sealed must not stop the stream.
  const fact = factRefOf(key, image.record);
  const tenantId = EVENT_PARTITION.exec(key.pk)?.[1];
  if (!tenantId) {
    logger.error('fact outside any tenant partition ignored', { key });
    return undefined;
  }
  return { sequenceNumber: record.dynamodb.SequenceNumber ?? '', tenantId, fact };
}

export const sequence =
  (getChain: () => ChainStore) =>
  async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const byTenant = new Map<string, ParsedRecord[]>();
    for (const record of event.Records) {
      const parsed = parse(record);
      if (!parsed) continue;
      const list = byTenant.get(parsed.tenantId) ?? [];
      list.push(parsed);
      byTenant.set(parsed.tenantId, list);
    }
    const failures: string[] = [];
    await Promise.all(
      [...byTenant].map(async ([tenantId, records]) => {
        try {
          const sealed = await getChain().seal(
            tenantId,
            records.map((r) => r.fact),
          );
          logger.debug('facts sealed', { tenantId, sealed, received: records.length });
        } catch (error) {
          logger.error('sealing failed', { tenantId, error: error as Error });
          if (records[0]) failures.push(records[0].sequenceNumber);
        }
      }),
    );
    // Lambda retries from the earliest failed record; later ones already sealed are skipped then.
    const order = event.Records.map((r) => r.dynamodb?.SequenceNumber ?? '');
    const first = failures.sort((a, b) => order.indexOf(a) - order.indexOf(b))[0];
    return { batchItemFailures: first ? [{ itemIdentifier: first }] : [] };
  };

warmInLambda();
export const handler = lambda(sequence(() => chainOf(appState())));

/**
 * Sequencer: consumes the INSERTs of fact-carrying items (event items with their decision, fact
 * items) from the table's stream (event-source filter) and seals their facts
 * into each tenant's chain, in stream order. A failure reports the first unsealed record so that
 * Lambda retries from there; facts sealed by an earlier delivery are skipped, never sealed twice.
 */
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { FactRecord } from '../core/evidence.js';
import { lambda } from '../shared/middleware.js';
import { logger } from '../shared/powertools.js';
import type { ChainStore, FactRef } from '../store/chain.js';
import { appState, warmInLambda } from './app-state.js';

interface ParsedRecord {
  sequenceNumber: string;
  fact: FactRef;
}

function parse(record: DynamoDBRecord): ParsedRecord | undefined {
  if (record.eventName !== 'INSERT' || !record.dynamodb?.NewImage) return undefined;
  const image = unmarshall(record.dynamodb.NewImage as Record<string, AttributeValue>);
  if (typeof image.record !== 'string') return undefined;
  return {
    sequenceNumber: record.dynamodb.SequenceNumber ?? '',
    fact: {
      key: { pk: String(image.pk), sk: String(image.sk) },
      record: JSON.parse(image.record) as FactRecord,
    },
  };
}

export const sequence =
  (getChain: () => ChainStore) =>
  async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const byTenant = new Map<string, ParsedRecord[]>();
    for (const record of event.Records) {
      const parsed = parse(record);
      if (!parsed) continue;
      const list = byTenant.get(parsed.fact.record.tenant_id) ?? [];
      list.push(parsed);
      byTenant.set(parsed.fact.record.tenant_id, list);
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
export const handler = lambda(sequence(() => appState().chain));

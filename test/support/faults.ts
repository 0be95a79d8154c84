/**
 * Fault injection around the REAL document client: chosen commands fail as DynamoDB would fail
 * (a 500-class service error) while everything else reaches DynamoDB Local.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { dynamoEndpoint } from './stack.js';

export interface FaultPlan {
  /** Fail the next call of this command (e.g. 'TransactWriteCommand'), counting from 1. */
  fail?: { command: string; nth: number };
  counts: Record<string, number>;
}

export function faultyDocumentClient(): { doc: DynamoDBDocumentClient; plan: FaultPlan } {
  const doc = createDocumentClient({ endpoint: dynamoEndpoint(), maxAttempts: 1 });
  const plan: FaultPlan = { counts: {} };
  const send = doc.send.bind(doc) as (command: unknown) => Promise<unknown>;
  (doc as { send: unknown }).send = async (command: { constructor: { name: string } }) => {
    const name = command.constructor.name;
    plan.counts[name] = (plan.counts[name] ?? 0) + 1;
    if (plan.fail && plan.fail.command === name) {
      plan.fail.nth -= 1;
      if (plan.fail.nth === 0) {
        plan.fail = undefined;
        throw Object.assign(new Error('injected fault'), { name: 'InternalServerError', $fault: 'server' });
      }
    }
    return send(command);
  };
  return { doc, plan };
}

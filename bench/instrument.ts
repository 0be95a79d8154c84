/**
 * A DynamoDB document client that counts what it sends: requests by operation and the capacity
 * units DynamoDB (Local) reports consuming (ReturnConsumedCapacity), split into reads and writes.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { invokedFunction } from '../bin/local/host.js';
import { createDocumentClient } from '../functions/store/dynamo.js';

export interface Counters {
  requests: Record<string, number>;
  /** Milliseconds spent waiting for DynamoDB, by operation. */
  ms: Record<string, number>;
  readUnits: number;
  writeUnits: number;
  /** Requests by the local function that sent them (`sequencer`, `submit-toolcall`, ...; `-` outside any). */
  byFunction?: Record<string, number>;
  /** The same by function and operation (`sequencer UpdateItemCommand`). */
  byFunctionOp?: Record<string, number>;
}

// The document client reports the underlying operation's name (GetItemCommand, ...).
const READS = new Set([
  'GetItemCommand',
  'QueryCommand',
  'ScanCommand',
  'BatchGetItemCommand',
  'TransactGetItemsCommand',
]);

export function countingDocumentClient(endpoint: string): {
  doc: DynamoDBDocumentClient;
  counters: Counters;
} {
  const doc = createDocumentClient({ endpoint });
  const counters: Counters = {
    requests: {},
    ms: {},
    readUnits: 0,
    writeUnits: 0,
    byFunction: {},
    byFunctionOp: {},
  };
  doc.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      counters.requests[name] = (counters.requests[name] ?? 0) + 1;
      const fn = invokedFunction() ?? '-';
      const byFunction = (counters.byFunction ??= {});
      const byFunctionOp = (counters.byFunctionOp ??= {});
      byFunction[fn] = (byFunction[fn] ?? 0) + 1;
      byFunctionOp[`${fn} ${name}`] = (byFunctionOp[`${fn} ${name}`] ?? 0) + 1;
      (args.input as Record<string, unknown>).ReturnConsumedCapacity = 'TOTAL';
      const start = performance.now();
      const result = await next(args);
      counters.ms[name] = (counters.ms[name] ?? 0) + performance.now() - start;
      const consumed = (result.output as { ConsumedCapacity?: unknown }).ConsumedCapacity;
      const list = (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) as Array<{
        CapacityUnits?: number;
      }>;
      const units = list.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
      if (READS.has(name)) counters.readUnits += units;
      else counters.writeUnits += units;
      return result;
    },
    { step: 'initialize', name: 'benchCounters' },
  );
  return { doc, counters };
}

export function snapshot(c: Counters): Counters {
  return {
    requests: { ...c.requests },
    ms: { ...c.ms },
    readUnits: c.readUnits,
    writeUnits: c.writeUnits,
    byFunction: { ...c.byFunction },
    byFunctionOp: { ...c.byFunctionOp },
  };
}

/** What happened between two snapshots. */
export function since(c: Counters, before: Counters): Counters {
  const diff = (now: Record<string, number>, then: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(now)
        .map(([k, v]) => [k, v - (then[k] ?? 0)] as const)
        .filter(([, v]) => v > 0),
    );
  return {
    requests: diff(c.requests, before.requests),
    ms: diff(c.ms, before.ms),
    readUnits: c.readUnits - before.readUnits,
    writeUnits: c.writeUnits - before.writeUnits,
    byFunction: diff(c.byFunction ?? {}, before.byFunction ?? {}),
    byFunctionOp: diff(c.byFunctionOp ?? {}, before.byFunctionOp ?? {}),
  };
}

export const totalRequests = (c: Counters): number => Object.values(c.requests).reduce((a, b) => a + b, 0);

export function describeRequests(c: Counters): string {
  return Object.entries(c.requests)
    .map(([k, v]) => `${v} ${k.replace('Command', '')}`)
    .join(', ');
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

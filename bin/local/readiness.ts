/**
 * `/readyz` for the local stack: each part (DynamoDB, the stream poller, SQS, S3) is probed with
 * a cheap request and a short timeout, and the answer is cached for a second, so a probe storm
 * costs the emulators nothing. 200 `OK` when every part answers; otherwise 503 with a JSON body
 * naming each part and why it is down.
 */
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { API_HEADERS, type HttpResponse } from '../../functions/shared/http.js';
import { Backoff, FailureLog, describeError, systemClock, type Clock } from './backoff.js';
import { S3RVER_CREDENTIALS } from './emulators.js';

export type PartName = 'host' | 'dynamodb' | 'stream-poller' | 'sqs' | 's3';

export interface ReadinessPart {
  name: PartName;
  /** Resolves when the part works; rejects with what is wrong. */
  check(): Promise<void>;
  /** Releases the part's client. */
  close?(): void;
}

export interface PartStatus {
  name: PartName;
  ok: boolean;
  detail?: string;
}

export interface ReadinessReport {
  ready: boolean;
  parts: PartStatus[];
}

/** The body of a 503 from `/readyz` (api/openapi.yaml `NotReady`). */
export interface NotReadyBody {
  status: 'unavailable';
  parts: PartStatus[];
}

/** Probe clients give up quickly: a probe that waits on a dead emulator is a probe that hangs. */
export const PROBE_CLIENT = {
  maxAttempts: 1,
  requestHandler: { connectionTimeout: 500, requestTimeout: 1000, throwOnRequestTimeout: true },
} as const;

export class TableMissingError extends Error {
  constructor(readonly table: string) {
    super(`table ${table} does not exist`);
    this.name = 'TableMissingError';
  }
}

export function dynamoDbPart(endpoint: string | undefined, table: string): ReadinessPart {
  const client = new DynamoDBClient({ ...(endpoint ? { endpoint } : {}), ...PROBE_CLIENT });
  return {
    name: 'dynamodb',
    async check() {
      let status: string | undefined;
      try {
        status = (await client.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus;
      } catch (error) {
        if ((error as Error).name === 'ResourceNotFoundException') throw new TableMissingError(table);
        throw error;
      }
      if (status !== 'ACTIVE') throw new Error(`table ${table} is ${status ?? 'in an unknown state'}`);
    },
    close: () => client.destroy(),
  };
}

export function sqsPart(endpoint: string): ReadinessPart {
  const client = new SQSClient({ endpoint, ...PROBE_CLIENT });
  return {
    name: 'sqs',
    check: async () => void (await client.send(new ListQueuesCommand({ MaxResults: 1 }))),
    close: () => client.destroy(),
  };
}

export function s3Part(endpoint: string, bucket: string): ReadinessPart {
  const client = new S3Client({
    endpoint,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    ...PROBE_CLIENT,
  });
  return {
    name: 's3',
    check: async () => {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (error) {
        // A HEAD answer has no body: the status is all there is to say.
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 404) throw new Error(`bucket ${bucket} does not exist`);
        throw status ? new Error(`HeadBucket ${bucket}: HTTP ${status}`) : error;
      }
    },
    close: () => client.destroy(),
  };
}

function withTimeout(run: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([run, timeout]).finally(() => clearTimeout(timer));
}

export interface ReadinessOptions {
  /** How long an answer is reused. @default 1000 */
  cacheMs?: number;
  /** A part that has not answered by then is down. @default 1500 */
  timeoutMs?: number;
  clock?: Clock;
  /** Told when the stack stops being ready and when it is again (rate-limited). */
  log?: (line: string) => void;
}

export class Readiness {
  private cached?: { at: number; report: ReadinessReport };
  private inFlight?: Promise<ReadinessReport>;
  private readonly failures?: FailureLog;

  constructor(
    private readonly parts: readonly ReadinessPart[],
    private readonly options: ReadinessOptions = {},
  ) {
    if (options.log)
      this.failures = new FailureLog({
        what: '[oc] /readyz',
        log: options.log,
        clock: options.clock,
        summaryEveryMs: 30_000,
      });
  }

  /** Every part's status: the cached one if it is fresh, else probed now (one probe at a time). */
  check(): Promise<ReadinessReport> {
    const now = (this.options.clock ?? systemClock).now();
    if (this.cached && now - this.cached.at < (this.options.cacheMs ?? 1000))
      return Promise.resolve(this.cached.report);
    this.inFlight ??= this.probe().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async probe(): Promise<ReadinessReport> {
    const parts = await Promise.all(
      this.parts.map(async (part): Promise<PartStatus> => {
        try {
          await withTimeout(part.check(), this.options.timeoutMs ?? 1500);
          return { name: part.name, ok: true };
        } catch (error) {
          const detail =
            (error as Error).name === 'TimeoutError' ? 'no answer in time' : describeError(error);
          return { name: part.name, ok: false, detail: detail.slice(0, 500) };
        }
      }),
    );
    const report = { ready: parts.every((p) => p.ok), parts };
    if (report.ready) this.failures?.success();
    else this.failures?.failure(new Error(downParts(report)));
    this.cached = { at: (this.options.clock ?? systemClock).now(), report };
    return report;
  }

  close(): void {
    for (const part of this.parts) part.close?.();
  }
}

/**
 * Checks readiness in the background, so that the log says when a part goes down or comes back
 * (and a vanished table is re-created) even if nobody asks `/readyz`; less often while it stays down.
 */
export class ReadinessMonitor {
  private readonly backoff = new Backoff({ initialMs: 500, maxMs: 5000 });
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly readiness: Readiness) {}

  start(): void {
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    const report = await this.readiness.check();
    if (this.stopped) return;
    if (report.ready) this.backoff.succeed();
    this.timer = setTimeout(() => void this.tick(), report.ready ? 2000 : this.backoff.fail());
    this.timer.unref();
  }
}

/** What `/readyz` answers for a report (never cached: it is true only now). */
export function readyzResponse(report: ReadinessReport): HttpResponse {
  if (report.ready)
    return { statusCode: 200, headers: { 'Content-Type': 'text/plain', ...API_HEADERS }, body: 'OK' };
  const body: NotReadyBody = { status: 'unavailable', parts: report.parts };
  return {
    statusCode: 503,
    headers: { 'Content-Type': 'application/json', ...API_HEADERS },
    body: JSON.stringify(body),
  };
}

/** A short line naming the parts that are down, for the log. */
export function downParts(report: ReadinessReport): string {
  return report.parts
    .filter((p) => !p.ok)
    .map((p) => `${p.name}: ${p.detail ?? 'down'}`)
    .join('; ');
}

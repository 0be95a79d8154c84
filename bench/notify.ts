/**
 * The notification figures of `npm run bench`: approval -> webhook latency (sequential approvals,
 * from the POST until a loopback receiver has the signed `oc.approval.requested`), webhook
 * deliveries per second (a backlog of approvals released to the outbox at once, to a receiver that
 * answers at once), and what one notification costs: the delivery records' DynamoDB units, the SQS
 * requests (send, receive, delete) and the outbox and delivery Lambda time, counted in this run.
 * Its own stack (table, queues, receiver) on a DynamoDB Local and a fauxqs of its own (`npm run bench`
 * starts a fresh DynamoDB Local for it), so neither disturbs the other figures nor inherits their
 * load: an emulator that had just taken the sustained-load steps served it 7× slower.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { freePort, startSqs } from '../bin/local/emulators.js';
import { startLocalHost } from '../bin/local/host.js';
import { loadConfig } from '../functions/shared/config.js';
import { DEV_WEBHOOK, NOTIFICATIONS } from '../functions/shared/constants.js';
import { loadNotifyConfig } from '../functions/shared/notify-config.js';
import { createDocumentClient } from '../functions/store/dynamo.js';
import { defaultPolicyDir } from '../functions/store/policy-files.js';
import { countingDocumentClient, percentile, since, snapshot } from './instrument.js';
import { startReceiver } from '../test/support/webhook-receiver.js';

export interface NotifyFigures {
  latency: { n: number; p50Ms: number; p95Ms: number; maxMs: number };
  throughput: { n: number; seconds: number; perSec: number };
  /**
   * Approvals announced while every other one is a record the queue refuses (parked in its
   * tenant's partition by the outbox): their latency, and how many records were parked.
   */
  besideParked: { n: number; p50Ms: number; p95Ms: number; parked: number };
  /** Per notification (one approval, one route), from the sequential phase. */
  perNotification: {
    writeUnits: number;
    readUnits: number;
    dynamoRequests: Record<string, number>;
    sqsRequests: number;
    sqsByKind: Record<string, number>;
    outboxMs: number;
    deliveryMs: number;
    outboxInvocations: number;
    deliveryInvocations: number;
  };
}

/** An SQS client that counts what it sends by command; empty receives (idle long polls) apart. */
function countingSqs(endpoint: string) {
  const sqs = new SQSClient({ endpoint });
  const counts: Record<string, number> = {};
  /** While set, a batch holding a message whose body this matches is refused (as SQS refuses one). */
  const fault: { refuse?: (body: string) => boolean } = {};
  const send = sqs.send.bind(sqs) as (command: unknown, options?: unknown) => Promise<unknown>;
  (sqs as { send: unknown }).send = async (command: { constructor: { name: string } }, options?: unknown) => {
    if (fault.refuse && command instanceof SendMessageBatchCommand) {
      const bad = (command.input.Entries ?? []).filter((e) => fault.refuse!(e.MessageBody ?? ''));
      if (bad.length > 0)
        return { Successful: [], Failed: bad.map((e) => ({ Id: e.Id, SenderFault: true, Code: 'Refused' })) };
    }
    const out = (await send(command, options)) as { Messages?: unknown[] };
    let name = command.constructor.name.replace('Command', '');
    if (name === 'ReceiveMessage' && !(out.Messages && out.Messages.length > 0))
      name = 'ReceiveMessage (empty)';
    counts[name] = (counts[name] ?? 0) + 1;
    return out;
  };
  return { sqs, counts, fault };
}

export async function measureNotifications(options: {
  dynamoEndpoint: string;
  approvals: number;
  backlog: number;
  log: (line: string) => void;
}): Promise<NotifyFigures> {
  const receiver = await startReceiver('/hooks/bench');
  const sqsServer = await startSqs(await freePort());
  const policyDir = mkdtempSync(path.join(os.tmpdir(), 'oc-bench-policy-'));
  cpSync(defaultPolicyDir(), policyDir, { recursive: true });
  const tenantsFile = path.join(policyDir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(tenantsFile, 'utf8')) as Record<string, { notify: unknown[] }>;
  tenants.tenant1!.notify = [{ kind: 'webhook', url: receiver.url, secret_ref: DEV_WEBHOOK.secretRef }];
  writeFileSync(tenantsFile, JSON.stringify(tenants));

  const { doc } = countingDocumentClient(options.dynamoEndpoint);
  const deliveries = countingDocumentClient(options.dynamoEndpoint);
  const { sqs, counts: sqsCounts, fault } = countingSqs(sqsServer.endpoint);
  const invocations: Record<string, number[]> = {};
  const host = await startLocalHost({
    config: loadConfig({
      OC_TABLE_NAME: 'oc-bench-notify',
      OC_DYNAMODB_ENDPOINT: options.dynamoEndpoint,
      OC_CONNECTORS_MODE: 'mock',
      OC_JWT_MODE: 'dev',
      OC_POLICY_DIR: policyDir,
      OC_RATE_LIMIT_PER_SEC: '1000000',
      OC_RATE_LIMIT_BURST: '2000000',
    }),
    port: 0,
    overrides: { doc },
    pollerDoc: createDocumentClient({ endpoint: options.dynamoEndpoint }),
    onInvoke: (name, ms) => (invocations[name] ??= []).push(ms),
    notifications: {
      sqsEndpoint: sqsServer.endpoint,
      config: loadNotifyConfig({
        OC_ALLOW_PRIVATE_WEBHOOKS: 'true',
        OC_WEBHOOK_SECRETS: `${DEV_WEBHOOK.secretRef}=${DEV_WEBHOOK.secret}`,
      }),
      overrides: { sqs, doc: deliveries.doc },
    },
  });
  await host.state.apiKeys.put('sk-bench-notify', { tenantId: 'tenant1' });
  let seq = 0;
  const park = async (resource = 'OPS-1') => {
    const r = await fetch(`${host.url}/v1/toolcalls`, {
      method: 'POST',
      headers: { 'X-API-Key': 'sk-bench-notify', 'Content-Type': 'application/json' },
      body: JSON.stringify({
        agent_id: 'agent-1',
        idempotency_key: `n-${++seq}-${Date.now()}`,
        tool: 'jira',
        action: 'issue.delete',
        resource,
        params: {},
        risk_score: 3,
      }),
    });
    const json = (await r.json()) as { approval?: { id: string } };
    if (!json.approval) throw new Error(`approval not parked (${r.status})`);
    return json.approval.id;
  };
  const arrived = (id: string) =>
    receiver.received.find((r) => (r.json as { subject?: string })?.subject === id);
  const waitFor = async (ids: string[], timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    const want = new Set(ids);
    for (;;) {
      for (const r of receiver.received) want.delete((r.json as { subject?: string })?.subject ?? '');
      if (want.size === 0) return;
      if (Date.now() > deadline) throw new Error(`${want.size} notification(s) did not arrive`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  try {
    // Warm-up: the handlers' first calls load their modules.
    for (let i = 0; i < 5; i++) await waitFor([await park()], 30_000);

    // 1. latency, one approval at a time
    const before = snapshot(deliveries.counters);
    const sqsBefore = { ...sqsCounts };
    const invBefore = Object.fromEntries(Object.entries(invocations).map(([k, v]) => [k, v.length]));
    const latencies: number[] = [];
    for (let i = 0; i < options.approvals; i++) {
      const t0 = Date.now();
      const id = await park();
      await waitFor([id], 30_000);
      latencies.push(arrived(id)!.at - t0);
    }
    const used = since(deliveries.counters, before);
    const sqsUsed = Object.fromEntries(
      Object.entries(sqsCounts)
        .map(([k, v]) => [k, v - (sqsBefore[k] ?? 0)] as const)
        .filter(([k, v]) => v > 0 && !k.includes('empty')),
    );
    const newInvocations = (name: string) => (invocations[name] ?? []).slice(invBefore[name] ?? 0);
    const outboxRuns = newInvocations('outbox');
    const deliveryRuns = newInvocations(NOTIFICATIONS.deliveryHandler);
    const n = options.approvals;

    // 2. throughput: a backlog released to the outbox at once
    options.log(`notifications: ${options.backlog} approvals parked with the outbox paused`);
    await host.outboxPoller?.stop();
    const backlog: string[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (backlog.length < options.backlog) backlog.push(await park());
      }),
    );
    const t0 = performance.now();
    host.outboxPoller?.start();
    await waitFor(backlog, 300_000);
    const seconds = (performance.now() - t0) / 1000;

    // 3. beside parked records: every other approval's messages are refused by the queue, so the
    // outbox parks its record; the others must be announced as fast as before.
    const sideN = Math.min(options.approvals, 40);
    const parkedBefore = await host.state.parked.count();
    const besideLatencies: number[] = [];
    fault.refuse = (body) => body.includes('"POISON-');
    try {
      for (let i = 0; i < sideN; i++) {
        await park(`POISON-${i + 1}`);
        const t1 = Date.now();
        const id = await park();
        await waitFor([id], 30_000);
        besideLatencies.push(arrived(id)!.at - t1);
      }
    } finally {
      fault.refuse = undefined;
    }
    await host.outboxPoller?.drained();
    // The listing index is eventually consistent: give it a moment.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const parked = (await host.state.parked.count()) - parkedBefore;

    return {
      latency: {
        n,
        p50Ms: percentile(latencies, 50),
        p95Ms: percentile(latencies, 95),
        maxMs: Math.max(...latencies),
      },
      throughput: { n: backlog.length, seconds, perSec: backlog.length / seconds },
      besideParked: {
        n: sideN,
        p50Ms: percentile(besideLatencies, 50),
        p95Ms: percentile(besideLatencies, 95),
        parked,
      },
      perNotification: {
        writeUnits: used.writeUnits / n,
        readUnits: used.readUnits / n,
        dynamoRequests: Object.fromEntries(Object.entries(used.requests).map(([k, v]) => [k, v / n])),
        sqsRequests: Object.values(sqsUsed).reduce((a, b) => a + b, 0) / n,
        sqsByKind: Object.fromEntries(Object.entries(sqsUsed).map(([k, v]) => [k, v / n])),
        outboxMs: percentile(outboxRuns, 50),
        deliveryMs: percentile(deliveryRuns, 50),
        outboxInvocations: outboxRuns.length / n,
        deliveryInvocations: deliveryRuns.length / n,
      },
    };
  } finally {
    await host.stop();
    await sqsServer.stop();
    await receiver.close();
    rmSync(policyDir, { recursive: true, force: true });
  }
}

/** `npx tsx bench/notify.ts [--quick]`: these figures alone, on a DynamoDB Local of their own. */
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  const { startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  try {
    const quick = process.argv.includes('--quick');
    const f = await measureNotifications({
      dynamoEndpoint: dynamo.endpoint,
      approvals: 100,
      backlog: quick ? 200 : 500,
      log: (line) => console.error(`[bench] ${line}`),
    });
    console.log(JSON.stringify(f, null, 2));
  } finally {
    await dynamo.stop();
  }
}

/**
 * A local host outliving its DynamoDB Local: the real Java process is killed with SIGKILL, then
 * a DynamoDB Local is started again on the same port (as anyone could). Meanwhile requests fail
 * closed with the error body and `/readyz` names DynamoDB; afterwards the same host serves and
 * seals again, with no restart. Each test runs its own DynamoDB Local on a free port.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startDynamoDbLocal, type ChildEmulator } from '../../bin/local/emulators.js';
import { startLocalHost, type LocalHost } from '../../bin/local/host.js';
import { gatewayClient } from '../support/gateway-client.js';
import { dynamoDbJava, waitFor } from '../support/processes.js';
import { KEYS, testConfig, toolCall, type TestResponse } from '../support/stack.js';

interface Outage {
  dir: string;
  port: number;
  dynamo: ChildEmulator;
  host: LocalHost;
  lines: string[];
  request(method: string, path: string, body?: unknown): Promise<TestResponse>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(onDisk: boolean): Promise<Outage> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oc-recovery-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const startDynamo = () => startDynamoDbLocal({ port, dataDir: onDisk ? dir : undefined });
  const outage = { dir, port, lines: [] as string[] } as Outage;
  outage.dynamo = await startDynamo();
  cleanups.push(() => outage.dynamo.stop());
  outage.host = await startLocalHost({
    config: testConfig({ OC_DYNAMODB_ENDPOINT: outage.dynamo.endpoint }),
    port: 0,
    log: (line) => outage.lines.push(line),
    beforeReady: async (state) => {
      await state.apiKeys.put(KEYS.tenant1, { tenantId: 'tenant1' });
    },
  });
  cleanups.push(() => outage.host.stop());
  // The client fails a request that hangs: far above any answer, dependency down or not.
  outage.request = (method, p, body) =>
    gatewayClient(outage.host.url).request(method, p, { body, key: KEYS.tenant1 });
  return outage;
}

async function sealedEvidence(outage: Outage, eventId: string) {
  return waitFor(`event ${eventId} sealed`, async () => {
    const r = await outage.request('GET', `/v1/toolcalls/${eventId}`);
    const evidence = r.json?.evidence as { status: string; seq?: number }[] | undefined;
    return evidence?.length && evidence.every((f) => f.status === 'sealed') ? evidence : undefined;
  });
}

/** Kills DynamoDB Local's Java process (not its guardian) with SIGKILL, as the OOM killer would. */
async function killJava(outage: Outage): Promise<void> {
  const java = dynamoDbJava(outage.port);
  expect(java).toBeDefined();
  process.kill(java!.pid, 'SIGKILL');
  await outage.dynamo.exited;
}

async function expectFailingClosed(outage: Outage, earlierEventId: string): Promise<void> {
  const ready = await waitFor('/readyz 503 naming dynamodb', async () => {
    const r = await outage.request('GET', '/readyz');
    return r.status === 503 &&
      r.json.parts.some((p: { name: string; ok: boolean }) => p.name === 'dynamodb' && !p.ok)
      ? r
      : undefined;
  });
  expect(ready.json.status).toBe('unavailable');
  expect(ready.json.parts).toContainEqual({
    name: 'dynamodb',
    ok: false,
    detail: expect.stringContaining('ECONNREFUSED'),
  });
  // Writes and reads fail closed, with the error body, never a 200 on a write.
  const submit = await outage.request('POST', '/v1/toolcalls', toolCall());
  const read = await outage.request('GET', `/v1/toolcalls/${earlierEventId}`);
  for (const r of [submit, read]) {
    expect(r.status).toBe(500);
    expect(r.json).toEqual({
      code: 'INTERNAL_ERROR',
      message: expect.any(String),
      retryable: true,
      request_id: expect.any(String),
    });
  }
  // Liveness is this process's, and it is alive.
  expect((await outage.request('GET', '/healthz')).status).toBe(200);
  // The poller notices too (it reads the stream on its own schedule).
  await waitFor('the stream poller reported down', async () => {
    const r = await outage.request('GET', '/readyz');
    return r.json?.parts?.some((p: { name: string; ok: boolean }) => p.name === 'stream-poller' && !p.ok)
      ? true
      : undefined;
  });
}

async function expectServingAgain(outage: Outage): Promise<{ seq?: number }[]> {
  await waitFor('/readyz 200 again', async () => {
    const r = await outage.request('GET', '/readyz');
    return r.status === 200 && r.text === 'OK' ? true : undefined;
  });
  const after = await outage.request('POST', '/v1/toolcalls', toolCall());
  expect(after.status).toBe(200);
  expect(after.json.decision).toBe('allow');
  return sealedEvidence(outage, after.json.event_id);
}

/**
 * The host's log during an outage stays bounded: per failing loop a first line, a summary at
 * most every 5 s (the poller) or 30 s (readiness), one recovery line, and the table notices.
 */
function expectBoundedLog(lines: string[], outageMs: number): void {
  const summaries = Math.floor(outageMs / 5000) + Math.floor(outageMs / 30_000);
  expect({ lines: lines.length, bound: lines.length <= 8 + summaries }).toEqual({
    lines: lines.length,
    bound: true,
  });
  expect(lines).toContainEqual(expect.stringMatching(/^\[oc\] stream poller failing: .*ECONNREFUSED/));
  expect(lines).toContainEqual(
    expect.stringMatching(/^\[oc\] stream poller recovered after \d+ errors? in /),
  );
  expect(lines).toContainEqual(expect.stringMatching(/^\[oc\] \/readyz recovered after /));
}

describe('a local host whose DynamoDB Local is killed', () => {
  it('fails closed, names dynamodb on /readyz, and seals again once DynamoDB Local is back on disk', async () => {
    const outage = await setup(true);
    expect(await outage.request('GET', '/readyz')).toMatchObject({ status: 200, text: 'OK' });
    const before = await outage.request('POST', '/v1/toolcalls', toolCall());
    expect(before.status).toBe(200);
    const sealedBefore = await sealedEvidence(outage, before.json.event_id);

    const downAt = Date.now();
    await killJava(outage);
    await expectFailingClosed(outage, before.json.event_id);

    outage.dynamo = await startDynamoDbLocal({ port: outage.port, dataDir: outage.dir });
    const sealedAfter = await expectServingAgain(outage);
    // The chain went on where it stopped: the data survived, and the poller resumed at its cursor.
    const lastBefore = Math.max(...sealedBefore.map((f) => f.seq ?? 0));
    expect(sealedAfter.map((f) => f.seq)).toEqual(sealedAfter.map((_, i) => lastBefore + 1 + i));
    expect((await outage.request('GET', `/v1/toolcalls/${before.json.event_id}`)).status).toBe(200);
    expectBoundedLog(outage.lines, Date.now() - downAt);
  }, 240_000);

  it('re-creates the table, re-seeds and reads the new stream from its start when DynamoDB Local comes back empty', async () => {
    const outage = await setup(false);
    const before = await outage.request('POST', '/v1/toolcalls', toolCall());
    expect(before.status).toBe(200);
    await sealedEvidence(outage, before.json.event_id);

    const downAt = Date.now();
    await killJava(outage);
    await expectFailingClosed(outage, before.json.event_id);

    outage.dynamo = await startDynamoDbLocal({ port: outage.port });
    // The seeded key works again, and the new chain starts at 1: nothing of the lost one lingers.
    const sealedAfter = await expectServingAgain(outage);
    expect(sealedAfter.map((f) => f.seq)).toEqual(sealedAfter.map((_, i) => 1 + i));
    expect((await outage.request('GET', `/v1/toolcalls/${before.json.event_id}`)).status).toBe(404);
    expect(outage.lines).toContainEqual(expect.stringMatching(/table .* is gone .*creating it again/));
    expect(outage.lines).toContainEqual(
      '[oc] stream poller: the table has a new stream (it was re-created); reading it from its start',
    );
    expectBoundedLog(outage.lines, Date.now() - downAt);
  }, 240_000);
});

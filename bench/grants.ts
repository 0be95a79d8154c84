/**
 * Standing grants and reminders (issue 21 deliverables 5 and 6), counted:
 *
 *  - the DynamoDB requests of a call that uses a standing grant (policy decides `approve`, a grant
 *    covers it: the lookup, the claim with the grant's conditional decrement, the result), beside
 *    a plain `approve` call of the same tenant, each alone after 1.1 s idle (its own rate-limit
 *    permit) with the API-key lookup warm, as the request-path figures of `npm run bench`;
 *  - the requests of an idle expiry sweep (what the reminders add to every minute of an idle
 *    stack: one Query of the sparse reminder partition, whatever the number of tenants).
 *
 * Part of `npm run bench`; alone: `npx tsx bench/grants.ts`.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  countingDocumentClient,
  describeRequests,
  since,
  snapshot,
  totalRequests,
  type Counters,
} from './instrument.js';

export interface GrantFigures {
  grantCall: Counters;
  approveCall: Counters;
  sweepIdle: Counters;
}

/** The shipped policy, with tenant1 open to reminders and standing grants for jira.issue.delete. */
function policyDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oc-bench-grants-'));
  cpSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'policy'), dir, { recursive: true });
  const file = path.join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
  Object.assign(tenants.tenant1!, {
    notify: [],
    reminder_before_sec: 3600,
    standing_grants: {
      actions: ['jira.issue.delete'],
      max_uses: 1000,
      max_ttl_sec: 86_400,
      allow_destructive: true,
    },
  });
  writeFileSync(file, JSON.stringify(tenants));
  return dir;
}

export async function measureGrants(options: { dynamoEndpoint: string }): Promise<GrantFigures> {
  const { startLocalHost } = await import('../bin/local/host.js');
  const { loadConfig } = await import('../functions/shared/config.js');
  const { signDevToken } = await import('../functions/store/approver-tokens.js');
  const { sweep } = await import('../functions/handlers/expire-approvals.js');
  const counting = countingDocumentClient(options.dynamoEndpoint);
  const host = await startLocalHost({
    config: loadConfig({
      OC_TABLE_NAME: `oc-bench-grants-${Date.now()}`,
      OC_DYNAMODB_ENDPOINT: options.dynamoEndpoint,
      OC_POLICY_DIR: policyDir(),
      OC_CONNECTORS_MODE: 'mock',
      OC_JWT_MODE: 'dev',
    }),
    port: 0,
    consumers: false,
    overrides: { doc: counting.doc },
  });
  const counters = counting.counters;
  const key = 'sk-bench-grants';
  await host.state.apiKeys.put(key, { tenantId: 'tenant1' });
  const token = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example' });
  let seq = 0;
  const submit = async (resource: string) => {
    const r = await fetch(`${host.url}/v1/toolcalls`, {
      method: 'POST',
      headers: { 'X-API-Key': key, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        agent_id: 'bench-agent',
        tool: 'jira',
        action: 'issue.delete',
        resource,
        params: {},
        idempotency_key: `grants-${Date.now()}-${++seq}`,
      }),
    });
    return (await r.json()) as { approval?: { id: string }; standing_grant?: { id: string } };
  };
  const measure = async (run: () => Promise<unknown>): Promise<Counters> => {
    await new Promise((resolve) => setTimeout(resolve, 1100));
    host.state.apiKeys.forgetCached();
    await (await fetch(`${host.url}/v1/toolcalls/not-an-id`, { headers: { 'X-API-Key': key } })).text();
    const before = snapshot(counters);
    await run();
    return since(counters, before);
  };
  try {
    const parked = await submit('OPS-1');
    const created = await fetch(`${host.url}/v1/approvals/${parked.approval!.id}/standing-grant`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ target_pattern: 'OPS-*', max_uses: 1000, expires_in_sec: 3600 }),
    });
    if (created.status !== 201) throw new Error(`standing grant answered ${created.status}`);
    let used: Awaited<ReturnType<typeof submit>> | undefined;
    const grantCall = await measure(async () => (used = await submit('OPS-2')));
    if (!used?.standing_grant) throw new Error('the call did not use the standing grant');
    let plain: Awaited<ReturnType<typeof submit>> | undefined;
    const approveCall = await measure(async () => (plain = await submit('DEV-1')));
    if (!plain?.approval) throw new Error('the plain call was not parked');
    // An idle sweep: nothing due (the reminders above are due in 23 h), nothing overdue.
    const before = snapshot(counters);
    await sweep(() => host.state)();
    const sweepIdle = since(counters, before);
    return { grantCall, approveCall, sweepIdle };
  } finally {
    await host.stop();
  }
}

export const describeGrantFigures = (f: GrantFigures) => ({
  grantCall: `${totalRequests(f.grantCall)} requests (${describeRequests(f.grantCall)}; ${f.grantCall.writeUnits} WRU + ${f.grantCall.readUnits} RRU)`,
  approveCall: `${totalRequests(f.approveCall)} requests (${describeRequests(f.approveCall)}; ${f.approveCall.writeUnits} WRU + ${f.approveCall.readUnits} RRU)`,
  sweepIdle: `${totalRequests(f.sweepIdle)} requests (${describeRequests(f.sweepIdle)}; ${f.sweepIdle.readUnits} RRU)`,
});

/** Standalone: its own DynamoDB Local. */
async function main(): Promise<void> {
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const { freePort, startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  try {
    const d = describeGrantFigures(await measureGrants({ dynamoEndpoint: dynamo.endpoint }));
    console.log(`call using a standing grant (approve by policy, run at once): ${d.grantCall}`);
    console.log(`the same tenant's approve call, parked (with its reminder item): ${d.approveCall}`);
    console.log(`idle expiry sweep with reminders (2 configured tenants): ${d.sweepIdle}`);
  } finally {
    await dynamo.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

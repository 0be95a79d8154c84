/**
 * Issue 21's approval workflows, by what they cost in DynamoDB requests on the local stack (counted
 * by an SDK middleware, the sequencer stopped: the request path only): a batch decision of 50
 * approvals (`POST /v1/approvals/batch`: each item its own read and transaction), an edit that
 * parks the call again and one that policy allows at once (`POST /v1/approvals/{id}/edit`), and the
 * batch's latency. Its own DynamoDB Local and host, with a policy folder that lets tenant1's
 * approvers edit a Slack post (test/support/edit-policy.ts).
 *
 * Part of `npm run bench`; alone: `npx tsx bench/approval-workflows.ts`.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { editPolicyDir } from '../test/support/edit-policy.js';
import {
  countingDocumentClient,
  describeRequests,
  since,
  snapshot,
  totalRequests,
  type Counters,
} from './instrument.js';

export interface WorkflowFigure {
  name: string;
  requests: number;
  detail: string;
  writeUnits: number;
  readUnits: number;
  ms: number;
  /** Items or calls that did not answer as expected (should be 0). */
  failures: number;
}

const KEY = 'sk-bench-workflows';

export async function measureApprovalWorkflows(batchSize = 50): Promise<WorkflowFigure[]> {
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const { freePort, startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const { startLocalHost } = await import('../bin/local/host.js');
  const { loadConfig } = await import('../functions/shared/config.js');
  const { signDevToken } = await import('../functions/store/approver-tokens.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  const { doc, counters } = countingDocumentClient(dynamo.endpoint);
  const host = await startLocalHost({
    config: loadConfig({
      OC_TABLE_NAME: 'oc-bench-workflows',
      OC_DYNAMODB_ENDPOINT: dynamo.endpoint,
      OC_CONNECTORS_MODE: 'mock',
      OC_JWT_MODE: 'dev',
      OC_RATE_LIMIT_PER_SEC: '1000000',
      OC_RATE_LIMIT_BURST: '2000000',
      OC_POLICY_DIR: editPolicyDir(mkdtempSync(path.join(os.tmpdir(), 'oc-bench-'))),
    }),
    port: 0,
    overrides: { doc },
  });
  const figures: WorkflowFigure[] = [];
  try {
    await host.state.apiKeys.put(KEY, { tenantId: 'tenant1' });
    const alice = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example' });
    let n = 0;
    const park = async (body: Record<string, unknown>) => {
      n += 1;
      const r = await fetch(`${host.url}/v1/toolcalls`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': KEY },
        body: JSON.stringify({ agent_id: 'bench', risk_score: 3, idempotency_key: `wf-${n}`, ...body }),
      });
      const j = (await r.json()) as { approval: { id: string; view: { hash: string } } };
      if (!j.approval) throw new Error(`not parked: ${JSON.stringify(j)}`);
      return { id: j.approval.id, hash: j.approval.view.hash };
    };
    const approver = async (route: string, body: unknown) => {
      const r = await fetch(`${host.url}${route}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${alice}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    const parked: { id: string; hash: string }[] = [];
    for (let i = 0; i < batchSize; i++)
      parked.push(await park({ tool: 'jira', action: 'issue.delete', resource: `WF-${i + 1}`, params: {} }));
    const allHands = await park({
      tool: 'slack',
      action: 'msg.post',
      params: { channel: '#all-hands', text: 'a' },
    });
    const toAllow = await park({
      tool: 'slack',
      action: 'msg.post',
      params: { channel: '#all-hands', text: 'b' },
    });
    // The request path only: the sequencer's own reads and writes are not the decision's.
    await host.poller?.drained(60_000);
    await host.poller?.stop();

    const measure = async (name: string, run: () => Promise<number>) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before: Counters = snapshot(counters);
      const t = performance.now();
      const failures = await run();
      const ms = performance.now() - t;
      const c = since(counters, before);
      figures.push({
        name,
        requests: totalRequests(c),
        detail: describeRequests(c),
        writeUnits: c.writeUnits,
        readUnits: c.readUnits,
        ms,
        failures,
      });
    };
    await measure(`batch of ${batchSize} approvals`, async () => {
      const r = await approver('/v1/approvals/batch', {
        decision: 'approve',
        items: parked.map((p) => ({ approval_id: p.id, view_hash: p.hash })),
      });
      return r.status === 200 ? batchSize - Number(r.json.decided) : batchSize;
    });
    await measure('edit (parked again)', async () => {
      const r = await approver(`/v1/approvals/${allHands.id}/edit`, {
        params: { text: 'edited' },
        view_hash: allHands.hash,
      });
      return r.status === 200 && r.json.status === 'pending' ? 0 : 1;
    });
    await measure('edit (allowed: approved by the edit)', async () => {
      const r = await approver(`/v1/approvals/${toAllow.id}/edit`, {
        params: { channel: '#general' },
        view_hash: toAllow.hash,
      });
      return r.status === 200 && r.json.status === 'approved' ? 0 : 1;
    });
  } finally {
    await host.stop();
    await dynamo.stop();
  }
  return figures;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const f of await measureApprovalWorkflows())
    console.log(
      `${f.name}: ${f.requests} DynamoDB requests (${f.detail}; ${f.writeUnits} WRU + ${f.readUnits} RRU), ${f.ms.toFixed(0)} ms, ${f.failures} failures`,
    );
}

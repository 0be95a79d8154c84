/**
 * Quorum votes (issue 21): the DynamoDB requests and capacity units of one vote that leaves a 2-of-2
 * approval pending and of the vote that completes it (grant and decision in the same transaction),
 * counted by an SDK middleware on the local stack, against a policy folder whose tenant1 has an
 * approver directory and `jira.issue.delete` needs 2 of anyone.
 *
 * Part of `npm run bench` (the 2-of-2 cost figure there adds the notifications measured beside it);
 * alone: `npx tsx bench/quorum.ts [approvals]` (its own DynamoDB Local and host on free ports).
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { signDevToken } from '../functions/store/approver-tokens.js';
import { defaultPolicyDir } from '../functions/store/policy-files.js';
import {
  countingDocumentClient,
  describeRequests,
  percentile,
  since,
  snapshot,
  totalRequests,
  type Counters,
} from './instrument.js';

export interface QuorumFigures {
  approvals: number;
  /** One vote that leaves the approval pending (averaged per vote). */
  vote: Counters;
  /** The vote that completes it: the grant and the decision too (averaged per vote). */
  finalVote: Counters;
  /** Wall time of a vote answer (the approve-approval route), ms. */
  voteP50Ms: number;
  finalVoteP50Ms: number;
}

/** The shipped policy folder with a directory and `jira.issue.delete` needing 2 of anyone, in a temp dir. */
export function quorumPolicyDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'oc-bench-quorum-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  const file = path.join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(file, 'utf8'));
  tenants.tenant1.approvers = { emails: [], slack_user_ids: [] };
  tenants.tenant1.directory = {
    alice: { email: 'alice@acme.example', slack: { user_id: 'U123', team_id: 'T0001' } },
    carol: { email: 'carol@acme.example' },
  };
  tenants.tenant1.quorum = { actions: { 'jira.issue.delete': { n: 2 } } };
  writeFileSync(file, JSON.stringify(tenants));
  return dir;
}

const average = (c: Counters, n: number): Counters => ({
  requests: Object.fromEntries(Object.entries(c.requests).map(([k, v]) => [k, v / n])),
  ms: Object.fromEntries(Object.entries(c.ms).map(([k, v]) => [k, v / n])),
  readUnits: c.readUnits / n,
  writeUnits: c.writeUnits / n,
});

export async function measureQuorumVotes(options: {
  dynamoEndpoint: string;
  approvals: number;
}): Promise<QuorumFigures> {
  const { startLocalHost } = await import('../bin/local/host.js');
  const { loadConfig } = await import('../functions/shared/config.js');
  const { createDocumentClient } = await import('../functions/store/dynamo.js');
  const { doc, counters } = countingDocumentClient(options.dynamoEndpoint);
  const host = await startLocalHost({
    config: loadConfig({
      OC_TABLE_NAME: 'oc-bench-quorum',
      OC_DYNAMODB_ENDPOINT: options.dynamoEndpoint,
      OC_CONNECTORS_MODE: 'mock',
      OC_JWT_MODE: 'dev',
      OC_POLICY_DIR: quorumPolicyDir(),
      OC_POLICY_SHADOW: 'off',
      OC_RATE_LIMIT_PER_SEC: '1000000',
      OC_RATE_LIMIT_BURST: '2000000',
    }),
    port: 0,
    overrides: { doc },
    pollerDoc: createDocumentClient({ endpoint: options.dynamoEndpoint }),
  });
  try {
    await host.poller?.stop(); // the request path only: sealing is counted by the main bench
    await host.state.apiKeys.put('sk-bench-quorum', { tenantId: 'tenant1' });
    const alice = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example' });
    const carol = await signDevToken({ tenantId: 'tenant1', email: 'carol@acme.example' });
    const vote = async (token: string, approvalId: string, hash: string) => {
      const t = performance.now();
      const r = await fetch(`${host.url}/v1/approvals/${approvalId}/approve`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ view_hash: hash }),
      });
      const body = (await r.json()) as { status?: string };
      return { ms: performance.now() - t, status: body.status };
    };
    let first: Counters = { requests: {}, ms: {}, readUnits: 0, writeUnits: 0 };
    let last: Counters = { requests: {}, ms: {}, readUnits: 0, writeUnits: 0 };
    const firstMs: number[] = [];
    const lastMs: number[] = [];
    const add = (a: Counters, b: Counters): Counters => ({
      requests: Object.fromEntries(
        [...new Set([...Object.keys(a.requests), ...Object.keys(b.requests)])].map((k) => [
          k,
          (a.requests[k] ?? 0) + (b.requests[k] ?? 0),
        ]),
      ),
      ms: {},
      readUnits: a.readUnits + b.readUnits,
      writeUnits: a.writeUnits + b.writeUnits,
    });
    for (let i = 0; i < options.approvals; i++) {
      const r = await fetch(`${host.url}/v1/toolcalls`, {
        method: 'POST',
        headers: { 'X-API-Key': 'sk-bench-quorum', 'Content-Type': 'application/json' },
        body: JSON.stringify({
          agent_id: 'agent-bench',
          tool: 'jira',
          action: 'issue.delete',
          resource: `OPS-${i + 1}`,
          params: {},
          risk_score: 3,
          idempotency_key: `bench-quorum-${Date.now()}-${i}`,
        }),
      });
      const parked = (await r.json()) as { approval?: { id: string; view?: { hash: string } } };
      if (!parked.approval?.view) throw new Error(`submit did not park: ${r.status}`);
      const { id, view } = parked.approval;
      let before = snapshot(counters);
      const one = await vote(alice, id, view.hash);
      first = add(first, since(counters, before));
      before = snapshot(counters);
      const two = await vote(carol, id, view.hash);
      last = add(last, since(counters, before));
      if (one.status !== 'pending' || two.status !== 'approved')
        throw new Error(`votes answered ${one.status}, ${two.status}`);
      firstMs.push(one.ms);
      lastMs.push(two.ms);
    }
    return {
      approvals: options.approvals,
      vote: average(first, options.approvals),
      finalVote: average(last, options.approvals),
      voteP50Ms: percentile(firstMs, 50),
      finalVoteP50Ms: percentile(lastMs, 50),
    };
  } finally {
    await host.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const { freePort, startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  try {
    const f = await measureQuorumVotes({
      dynamoEndpoint: dynamo.endpoint,
      approvals: Number(process.argv[2] ?? 20),
    });
    for (const [name, c, ms] of [
      ['vote (stays pending)', f.vote, f.voteP50Ms],
      ['final vote (grant + decision)', f.finalVote, f.finalVoteP50Ms],
    ] as const)
      console.log(
        `${name}: ${totalRequests(c)} DynamoDB requests (${describeRequests(c)}), ${c.writeUnits.toFixed(1)} WRU + ${c.readUnits.toFixed(1)} RRU, answer p50 ${ms.toFixed(1)} ms`,
      );
  } finally {
    await dynamo.stop();
  }
}

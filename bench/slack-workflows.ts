/**
 * Issue 21's workflows from Slack, by what a click costs in DynamoDB requests on the local stack
 * (counted by an SDK middleware, the sequencer stopped: the request path only): a signed click on
 * **Extend** and one on **Approve + calls like it** to `POST /slack/interactions`, each on its own
 * pending `slack.msg.post` approval of tenant1 (the shipped policy: extensions and standing grants
 * on, U123 in workspace T0001), with a loopback server standing in for `response_url`. A click's
 * requests are the replay claim, the approval's read and the use case's one conditional write.
 *
 * Part of `npm run bench`; alone: `npx tsx bench/slack-workflows.ts [clicks]`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeButtonValue } from '../functions/core/slack-message.js';
import { slackSignature } from '../functions/core/slack-signature.js';
import { SLACK } from '../functions/shared/constants.js';
import {
  countingDocumentClient,
  describeRequests,
  percentile,
  since,
  snapshot,
  totalRequests,
} from './instrument.js';

export interface SlackWorkflowFigure {
  name: string;
  clicks: number;
  /** DynamoDB requests per click (mean). */
  requests: number;
  detail: string;
  p50: number;
  /** Clicks not answered as expected (should be 0). */
  failures: number;
}

const KEY = 'sk-bench-slack-workflows';

export async function measureSlackWorkflows(clicks = 20): Promise<SlackWorkflowFigure[]> {
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const { freePort, startDynamoDbLocal } = await import('../bin/local/emulators.js');
  const { startLocalHost } = await import('../bin/local/host.js');
  const { loadConfig } = await import('../functions/shared/config.js');
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  const { doc, counters } = countingDocumentClient(dynamo.endpoint);
  const host = await startLocalHost({
    config: loadConfig({
      OC_TABLE_NAME: 'oc-bench-slack-workflows',
      OC_DYNAMODB_ENDPOINT: dynamo.endpoint,
      OC_CONNECTORS_MODE: 'mock',
      OC_JWT_MODE: 'dev',
      OC_RATE_LIMIT_PER_SEC: '1000000',
      OC_RATE_LIMIT_BURST: '2000000',
    }),
    port: 0,
    overrides: { doc },
  });
  const hook = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end('ok'));
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const responseUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  const figures: SlackWorkflowFigure[] = [];
  try {
    await host.state.apiKeys.put(KEY, { tenantId: 'tenant1' });
    let n = 0;
    const park = async () => {
      n += 1;
      const r = await fetch(`${host.url}/v1/toolcalls`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': KEY },
        body: JSON.stringify({
          agent_id: 'bench',
          tool: 'slack',
          action: 'msg.post',
          resource: `#deploys-${n}`,
          params: { channel: `#deploys-${n}`, text: 'Deploy finished' },
          risk_score: 9,
          idempotency_key: `slack-wf-${n}`,
        }),
      });
      const j = (await r.json()) as { event_id: string; approval?: { id: string; view: { hash: string } } };
      if (!j.approval) throw new Error(`not parked: ${JSON.stringify(j)}`);
      return { approvalId: j.approval.id, eventId: j.event_id, viewHash: j.approval.view.hash };
    };
    const click = async (d: 'extend' | 'grant', a: Awaited<ReturnType<typeof park>>, i: number) => {
      const payload = {
        type: 'block_actions',
        team: { id: 'T0001', domain: 'acme' },
        user: { id: 'U123', username: 'alice', team_id: 'T0001' },
        trigger_id: `bench.${d}.${i}.${Date.now()}`,
        response_url: responseUrl,
        actions: [
          {
            action_id: d === 'extend' ? SLACK.extendActionId : SLACK.grantActionId,
            value: encodeButtonValue({ d, r: a.approvalId, e: a.eventId, t: 'tenant1', h: a.viewHash }),
          },
        ],
      };
      const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
      const timestamp = String(Math.floor(Date.now() / 1000));
      const r = await fetch(`${host.url}/slack/interactions`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          'X-Slack-Request-Timestamp': timestamp,
          'X-Slack-Signature': slackSignature(SLACK.defaultSigningSecret, timestamp, body),
        },
        body,
      });
      return { status: r.status, outcome: ((await r.json()) as { outcome?: string }).outcome };
    };
    const toExtend = [];
    const toGrant = [];
    for (let i = 0; i < clicks; i++) toExtend.push(await park());
    for (let i = 0; i < clicks; i++) toGrant.push(await park());
    // The request path only: the sequencer's own reads and writes are not the click's.
    await host.poller?.drained(60_000);
    await host.poller?.stop();

    for (const [name, d, approvals, expected] of [
      ['Slack Extend click', 'extend', toExtend, 'extended'],
      ['Slack Approve + calls like it click', 'grant', toGrant, 'granted'],
    ] as const) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = snapshot(counters);
      const ms: number[] = [];
      let failures = 0;
      for (const [i, a] of approvals.entries()) {
        const t = performance.now();
        const r = await click(d, a, i);
        ms.push(performance.now() - t);
        if (r.status !== 200 || r.outcome !== expected) failures += 1;
      }
      const c = since(counters, before);
      figures.push({
        name,
        clicks: approvals.length,
        requests: totalRequests(c) / approvals.length,
        detail: `${describeRequests(c)} over ${approvals.length} clicks`,
        p50: percentile(ms, 50),
        failures,
      });
    }
  } finally {
    await new Promise((resolve) => hook.close(resolve));
    await host.stop();
    await dynamo.stop();
  }
  return figures;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const f of await measureSlackWorkflows(Number(process.argv[2] ?? 20)))
    console.log(
      `${f.name}: ${f.requests} DynamoDB requests per click (${f.detail}), p50 ${f.p50.toFixed(1)} ms, ${f.failures} failures`,
    );
}

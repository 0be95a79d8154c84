/**
 * The Slack interaction handler's latency on the local stack (SPEC §9: answer within 3 s): signed
 * `block_actions` clicks on Approve, each on its own pending approval, sent sequentially to
 * `POST /slack/interactions`, with a loopback server standing in for `response_url`. Measured as
 * Slack sees it (request sent to answer received), which includes the signature check, the replay
 * claim, the decision transaction and the `response_url` call the handler waits for.
 *
 * Part of `npm run bench`; alone: `npx tsx bench/slack-interactions.ts [count]` (its own
 * DynamoDB Local and host on free ports).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeButtonValue } from '../functions/core/slack-message.js';
import { slackSignature } from '../functions/core/slack-signature.js';
import { SLACK } from '../functions/shared/constants.js';
import { percentile } from './instrument.js';
import { withStandaloneStack } from './standalone.js';

export interface SlackBenchResult {
  count: number;
  p50: number;
  p95: number;
  max: number;
  /** Answers that were not 200 `approved` (should be 0). */
  failures: number;
}

async function responseUrlServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end('ok'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * `park()` must create a pending tool-call approval of tenant1 (whose `slack_user_ids` has U123)
 * and return its ids.
 */
export async function measureSlackInteractions(options: {
  baseUrl: string;
  count: number;
  park: () => Promise<{ approvalId: string; eventId: string; viewHash: string }>;
  signingSecret?: string;
}): Promise<SlackBenchResult> {
  const hook = await responseUrlServer();
  const ms: number[] = [];
  let failures = 0;
  try {
    for (let i = 0; i < options.count; i++) {
      const { approvalId, eventId, viewHash } = await options.park();
      const payload = {
        type: 'block_actions',
        // The demo policy's workspace for tenant1: a click from another is refused.
        team: { id: 'T0001', domain: 'acme' },
        user: { id: 'U123', username: 'alice', team_id: 'T0001' },
        trigger_id: `bench.${i}.${Date.now()}`,
        response_url: hook.url,
        actions: [
          {
            action_id: SLACK.approveActionId,
            // The view's hash, as the message's Approve button carries it (a click without it approves nothing).
            value: encodeButtonValue({ d: 'approve', r: approvalId, e: eventId, t: 'tenant1', h: viewHash }),
          },
        ],
      };
      const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
      const timestamp = String(Math.floor(Date.now() / 1000));
      const t = performance.now();
      const r = await fetch(`${options.baseUrl}/slack/interactions`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          'X-Slack-Request-Timestamp': timestamp,
          'X-Slack-Signature': slackSignature(
            options.signingSecret ?? SLACK.defaultSigningSecret,
            timestamp,
            body,
          ),
        },
        body,
      });
      const answer = (await r.json()) as { outcome?: string };
      ms.push(performance.now() - t);
      if (r.status !== 200 || answer.outcome !== 'approved') failures += 1;
    }
  } finally {
    await hook.close();
  }
  return {
    count: ms.length,
    p50: percentile(ms, 50),
    p95: percentile(ms, 95),
    max: Math.max(...ms),
    failures,
  };
}

/** Standalone: its own DynamoDB Local and local host. */
async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 200);
  await withStandaloneStack('oc-bench-slack', 'sk-bench-slack', async (host) => {
    let n = 0;
    const park = async () => {
      n += 1;
      const r = await fetch(`${host.url}/v1/toolcalls`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': 'sk-bench-slack' },
        body: JSON.stringify({
          agent_id: 'bench',
          tool: 'jira',
          action: 'issue.delete',
          resource: 'OPS-1',
          params: {},
          risk_score: 3,
          idempotency_key: `slack-bench-${Date.now()}-${n}`,
        }),
      });
      const j = (await r.json()) as { event_id: string; approval: { id: string; view: { hash: string } } };
      return { approvalId: j.approval.id, eventId: j.event_id, viewHash: j.approval.view.hash };
    };
    await measureSlackInteractions({ baseUrl: host.url, count: 10, park }); // warm-up
    const r = await measureSlackInteractions({ baseUrl: host.url, count, park });
    console.log(
      `slack interaction handler: ${r.count} sequential clicks: p50 ${r.p50.toFixed(1)} ms, p95 ${r.p95.toFixed(1)} ms, max ${r.max.toFixed(1)} ms, ${r.failures} failures`,
    );
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

/**
 * What the local stack logs about a webhook receiver nobody listens on (the demo tenant's
 * http://localhost:8090 while `oc webhooks listen` is not running): one line when it starts
 * failing, a summary at most every few minutes, one when it recovers; not a WARN line per attempt.
 * A delivery that fails for good still logs its ERROR.
 */
import { freePort } from '../../bin/local/emulators.js';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { logger } from '../../functions/shared/powertools.js';
import { KEYS, policyDirWithRoutes, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';
import { tokenFor } from '../support/approvers.js';
import { waitFor } from '../support/processes.js';

type Sink = { console: Pick<Console, 'warn' | 'info' | 'error' | 'debug' | 'log'> };
const sink = logger as unknown as Sink;
const original = sink.console;
/** Powertools' lines (JSON), as the local stack prints them at its default level, WARN. */
const powertools: { level: string; message: string }[] = [];
/** The host's own lines ("[oc] ..."). */
const host: string[] = [];
let stack: TestStack;
let receiver: Receiver | undefined;
let gone: Receiver;
let port: number;

beforeAll(async () => {
  const collect = (line: unknown) => void powertools.push(JSON.parse(String(line)) as never);
  sink.console = { warn: collect, info: collect, error: collect, debug: collect, log: collect };
  logger.setLogLevel('WARN');
  port = await freePort();
  gone = await startReceiver('/hooks/gone');
  gone.answer = () => ({ status: 410 });
  stack = await startTestStack({
    env: {
      OC_POLICY_DIR: policyDirWithRoutes({
        tenant2: [{ kind: 'webhook', url: gone.url, secret_ref: 'tenant1_webhook' }],
        tenant1: [
          { kind: 'webhook', url: `http://127.0.0.1:${port}/hooks/approvals`, secret_ref: 'tenant1_webhook' },
        ],
      }),
    },
    log: (line) => host.push(line),
    notifications: {
      env: {
        OC_WEBHOOK_SECRETS: `tenant1_webhook=${DEV_WEBHOOK.secret}`,
        OC_WEBHOOK_RETRY_BASE_SEC: '1',
        OC_WEBHOOK_RETRY_CAP_SEC: '1',
        OC_WEBHOOK_TIMEOUT_MS: '2000',
      },
      overrides: { random: () => 1 },
    },
  });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
  await gone?.close();
  sink.console = original;
  logger.setLogLevel('SILENT');
});

const about = (line: string) =>
  line.startsWith(`[oc] notifications to http://127.0.0.1:${port}/hooks/approvals`);

async function attempts(approvalIds: string[]): Promise<number> {
  let total = 0;
  for (const id of approvalIds) {
    const r = await stack.request('GET', `/v1/approvals/${id}/deliveries`, {
      token: await tokenFor('alice'),
    });
    for (const item of r.json.items as { attempts: number }[]) total += item.attempts;
  }
  return total;
}

it('an unreachable receiver is logged once, not per attempt, and its recovery once', async () => {
  const approvals: string[] = [];
  for (const resource of ['PROJ-1', 'PROJ-2', 'PROJ-3']) {
    const r = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource, params: { issue: resource } }),
    );
    expect(r.json.decision).toBe('approve');
    approvals.push(r.json.approval.id as string);
  }
  // Three deliveries, each retried every second: a dozen failed attempts.
  await waitFor('a dozen failed attempts', async () =>
    (await attempts(approvals)) >= 12 ? true : undefined,
  );
  expect(powertools.filter((l) => l.level === 'WARN')).toEqual([]);
  expect(host.filter(about)).toEqual([
    expect.stringMatching(/failing: .*ECONNREFUSED.*\(retried with backoff\)$/),
  ]);

  receiver = await startReceiver('/hooks/approvals', port);
  await waitFor('every delivery delivered', () => (receiver!.received.length >= 3 ? true : undefined));
  await waitFor('the recovery line', () => (host.filter(about).length >= 2 ? true : undefined));
  expect(host.filter(about)).toEqual([
    expect.stringMatching(/failing: /),
    expect.stringMatching(/recovered after \d+ errors in [\d.]+ s$/),
  ]);
  expect(powertools.filter((l) => l.level === 'WARN')).toEqual([]);
}, 90_000);

it('a delivery that fails for good still logs its ERROR', async () => {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-1', params: { issue: 'OPS-1' } }),
    KEYS.tenant2,
  );
  expect(r.json.decision).toBe('approve');
  await waitFor('the ERROR line', () =>
    powertools.some((l) => l.level === 'ERROR' && l.message === 'notification failed for good')
      ? true
      : undefined,
  );
}, 60_000);

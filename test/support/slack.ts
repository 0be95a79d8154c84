/**
 * Slack stand-ins for tests: signed interaction requests built from the fixture payload, and a
 * loopback server standing in for `response_url` (and for the Slack Web API) that records what
 * it receives.
 */
import { createConnectorRegistry } from '../../functions/connectors/registry.js';
import type { ConnectorInvoker } from '../../functions/connectors/types.js';
import { createLocalInvoker } from '../../functions/store/connector-invoker.js';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { slackSignature } from '../../functions/core/slack-signature.js';
import { encodeButtonValue } from '../../functions/core/slack-message.js';
import { SLACK } from '../../functions/shared/constants.js';

export const SIGNING_SECRET = SLACK.defaultSigningSecret;

const FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/slack/block-actions.json', import.meta.url), 'utf8'),
) as Record<string, any>;

export interface Click {
  /** Approve, Deny, or issue 21's Extend and Approve + calls like it (`grant`). */
  decision: 'approve' | 'deny' | 'extend' | 'grant';
  approvalId: string;
  eventId: string;
  tenantId?: string;
  userId?: string;
  responseUrl: string;
  /** The view hash an Approve button carries (a message that showed the whole view). */
  viewHash?: string;
  /** A distinct trigger per click (Slack's are unique), so each request has its own signature. */
  trigger?: string;
}

/** A block_actions payload as Slack sends it for a click on one of the approval message's buttons. */
export function clickPayload(c: Click): Record<string, unknown> {
  const p = structuredClone(FIXTURE);
  p.user.id = c.userId ?? 'U123';
  p.user.username = (c.userId ?? 'U123').toLowerCase();
  p.response_url = c.responseUrl;
  p.trigger_id = c.trigger ?? `${Date.now()}.${Math.random().toString(36).slice(2)}`;
  p.actions[0].action_id = {
    approve: SLACK.approveActionId,
    deny: SLACK.denyActionId,
    extend: SLACK.extendActionId,
    grant: SLACK.grantActionId,
  }[c.decision];
  p.actions[0].value = encodeButtonValue({
    d: c.decision,
    r: c.approvalId,
    e: c.eventId,
    t: c.tenantId ?? 'tenant1',
    ...(c.viewHash ? { h: c.viewHash } : {}),
  });
  return p;
}

export const formBody = (payload: unknown): string =>
  `payload=${encodeURIComponent(typeof payload === 'string' ? payload : JSON.stringify(payload))}`;

/** The headers Slack signs a request with. */
export function signedHeaders(
  body: string,
  options: { timestamp?: number; secret?: string; contentType?: string } = {},
): Record<string, string> {
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  return {
    'Content-Type': options.contentType ?? 'application/x-www-form-urlencoded',
    'X-Slack-Request-Timestamp': timestamp,
    'X-Slack-Signature': slackSignature(options.secret ?? SIGNING_SECRET, timestamp, body),
  };
}

export interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
}

export interface LoopbackServer {
  url: string;
  received: Recorded[];
  /** Received on one path. */
  on(path: string): Recorded[];
  /** What to answer next (default 200 `{"ok": true}`); each reply is used once, then the default. */
  reply(...replies: { status: number; body?: unknown; headers?: Record<string, string> }[]): void;
  close(): Promise<void>;
}

export async function loopbackServer(
  answer: (r: Recorded) => { status: number; body?: unknown; headers?: Record<string, string> } = () => ({
    status: 200,
    body: { ok: true },
  }),
): Promise<LoopbackServer> {
  const received: Recorded[] = [];
  const queued: { status: number; body?: unknown; headers?: Record<string, string> }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = Object.fromEntries(new URLSearchParams(body));
      }
      const r: Recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json };
      received.push(r);
      const a = queued.shift() ?? answer(r);
      res.writeHead(a.status, { 'Content-Type': 'application/json', ...a.headers });
      res.end(a.body === undefined ? '' : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    on: (path) => received.filter((r) => r.path === path),
    reply: (...replies) => queued.push(...replies),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * The connectors with the real Slack connector in live mode (`@slack/web-api`), its Web API at
 * `slackApiUrl` (a loopback server); Jira live too but never reached.
 */
export function liveSlackConnectors(slackApiUrl: string, token: string): ConnectorInvoker {
  return createLocalInvoker(
    createConnectorRegistry({
      env: {
        OC_CONNECTORS_MODE: 'live',
        SLACK_BOT_TOKEN: token,
        JIRA_BASE_URL: 'https://jira.invalid',
        JIRA_EMAIL: 'ops@acme.example',
        JIRA_API_TOKEN: 'unused',
      },
      slackApiBaseUrl: slackApiUrl,
    }),
  );
}

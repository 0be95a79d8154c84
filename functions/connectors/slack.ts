/**
 * Slack connector: `slack.msg.post`, `slack.channel.list`, and the approval message actions
 * `slack.approval.request` / `slack.approval.update` (slack-approvals.ts).
 *
 * Mock mode reproduces the original's outputs byte for byte (keys in alphabetical order, as Go
 * maps serialize). Live mode calls the Slack Web API with the bot token and, unlike the
 * original, treats `ok: false` as a failure for every method (W26).
 */
import * as z from 'zod';
import type { SlackConfig } from './config.js';
import {
  callUpstream,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  type HttpReply,
} from './http.js';
import { defineConnector, UpstreamError, type ConnectorOutput, type DefinedConnector } from './sdk.js';
import { SLACK_APPROVAL_ACTIONS, slackApprovalActions } from './slack-approvals.js';

export const SLACK_TOOL = 'slack';
export const SLACK_ACTIONS = ['msg.post', 'channel.list', ...SLACK_APPROVAL_ACTIONS] as const;
export const SLACK_API_BASE_URL = 'https://slack.com/api';

export interface SlackConnectorOptions {
  config: SlackConfig;
  /** Clock for the mock `ts`. */
  now?: () => Date;
  fetch?: typeof fetch;
  /** Web API base, without trailing slash; tests point it at a local server. */
  apiBaseUrl?: string;
  timeoutMs?: number;
  maxResponseBytes?: number;
}

export const MsgPostParams = z.object({
  channel: z.string().min(1).max(255),
  text: z.string().min(1).max(40_000),
});
export type MsgPostParams = z.infer<typeof MsgPostParams>;

/** Params are ignored, as in the original. */
export const ChannelListParams = z.object({});

/** The two things the actions need from Slack; mock and live implement it. */
interface SlackBackend {
  postMessage(params: MsgPostParams): Promise<ConnectorOutput>;
  listChannels(): Promise<ConnectorOutput>;
}

const MOCK_CHANNELS = [
  { id: 'C01GENERAL', name: 'general' },
  { id: 'C02SECURITY', name: 'security-approvals' },
];

function mockSlack(now: () => Date): SlackBackend {
  return {
    postMessage: async ({ channel }) => ({
      channel,
      mock: true,
      ok: true,
      ts: `${Math.floor(now().getTime() / 1000)}.000000`,
    }),
    listChannels: async () => ({
      channels: MOCK_CHANNELS.map((channel) => ({ ...channel })),
      mock: true,
      ok: true,
    }),
  };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Slack error codes are short snake_case words; anything else is not echoed. */
const safeSlackError = (value: unknown) =>
  typeof value === 'string' && /^[a-z0-9_]{1,64}$/.test(value) ? value : 'unknown_error';

/** A Web API reply is a success only when HTTP 200, a JSON object and `ok: true`. */
function slackBody(reply: HttpReply): Record<string, unknown> {
  if (reply.status !== 200) {
    throw new UpstreamError(`slack: HTTP ${reply.status}`, { http_status: reply.status });
  }
  if (!isObject(reply.json)) {
    throw new UpstreamError('slack: invalid response body', { http_status: reply.status });
  }
  if (reply.json.ok !== true) {
    const code = safeSlackError(reply.json.error);
    throw new UpstreamError(`slack: ${code}`, { slack_error: code });
  }
  return reply.json;
}

function liveSlack(botToken: string, options: SlackConnectorOptions): SlackBackend {
  const base = (options.apiBaseUrl ?? SLACK_API_BASE_URL).replace(/\/+$/, '');
  const call = (method: 'GET' | 'POST', path: string, body?: unknown) =>
    callUpstream({
      service: SLACK_TOOL,
      method,
      url: `${base}/${path}`,
      headers: { authorization: `Bearer ${botToken}` },
      body,
      timeoutMs: options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      fetch: options.fetch ?? globalThis.fetch,
    });

  return {
    postMessage: async ({ channel, text }) =>
      slackBody(await call('POST', 'chat.postMessage', { channel, text })),
    listChannels: async () => {
      const body = slackBody(await call('GET', 'conversations.list?limit=200&exclude_archived=true'));
      // Same shape as the mock, and bounded: the full channel objects would bloat the evidence record.
      const channels = (Array.isArray(body.channels) ? body.channels : [])
        .filter(isObject)
        .map((channel) => ({ id: String(channel.id ?? ''), name: String(channel.name ?? '') }));
      return { channels, ok: true };
    },
  };
}

export function createSlackConnector(options: SlackConnectorOptions): DefinedConnector {
  const backend =
    options.config.mode === 'live'
      ? liveSlack(options.config.botToken, options)
      : mockSlack(options.now ?? (() => new Date()));

  return defineConnector({
    tool: SLACK_TOOL,
    actions: {
      'msg.post': { params: MsgPostParams, run: (params) => backend.postMessage(params) },
      'channel.list': { params: ChannelListParams, run: () => backend.listChannels() },
      ...slackApprovalActions(options),
    },
  });
}

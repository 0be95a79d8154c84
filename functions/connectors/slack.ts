/**
 * Slack connector: `slack.msg.post`, `slack.channel.list`, and the approval message actions
 * `slack.approval.request` / `slack.approval.update` (slack-approvals.ts).
 *
 * Mock mode reproduces the original's outputs byte for byte (keys in alphabetical order, as Go
 * maps serialize). Live mode calls the Slack Web API through `@slack/web-api`'s `WebClient`
 * (its serialization, its `ok: false` -> platform error, its 429 handling) with two changes of
 * policy: no retries (a retried `chat.postMessage` posts twice; the agent decides) and a 429 is
 * refused at once with Slack's `Retry-After`. Its HTTP goes through `callUpstream` (an axios
 * adapter), so the timeout, the refused redirects and the response cap are the same as Jira's.
 */
import type { WebAPICallResult, WebClient, WebClientOptions } from '@slack/web-api';
import * as z from 'zod';
import type { SlackConfig } from './config.js';
import { callUpstream, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_UPSTREAM_TIMEOUT_MS } from './http.js';
import {
  defineConnector,
  UpstreamError,
  type ConnectorOutput,
  type DefinedConnector,
  type TargetCheck,
} from './sdk.js';
import { approvalSender, slackApprovalActions, type ApprovalSender } from './slack-approvals.js';

export const SLACK_TOOL = 'slack';
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

export const MsgPostParams = z.strictObject({
  channel: z.string().min(1).max(255),
  text: z.string().min(1).max(40_000),
});
export type MsgPostParams = z.infer<typeof MsgPostParams>;

/** A conversation ID: a channel (`C…`), private group (`G…`), DM (`D…`) or a user's DM (`U…`, `W…`). */
const CHANNEL_ID = /^[CDGUW][A-Z0-9]{1,31}$/;
/** A channel name: Slack's are lower case letters (any script), digits, `-` and `_`, at most 80. */
const CHANNEL_NAME = /^#?([\p{Ll}\p{Lo}\p{Nd}_-]{1,80})$/u;

/**
 * Slack targets are canonical by form: an ID as given, a name as `#name` (a bare `ops` is
 * `#ops`). A name and its channel's ID are aliases the gateway cannot resolve before policy
 * without calling Slack, so neither is rewritten into the other: a policy rule on a Slack
 * channel names both forms (docs/agents.md "Targets and params"). Anything else (`<!channel>`, spaces, upper case,
 * invisible characters) is refused. No Slack action is destructive; one that is would accept
 * IDs only.
 */
export function canonicalChannel(value: string): TargetCheck {
  if (CHANNEL_ID.test(value)) return { ok: true, value };
  const name = CHANNEL_NAME.exec(value);
  if (name) return { ok: true, value: `#${name[1]}` };
  return { ok: false, message: 'must be a channel ID (C…) or a #channel-name (lower case)' };
}

/** At most this many channels per call (5 pages). */
const CHANNEL_LIST_MAX = 1000;

/** Original: params ignored. Now optional paging: start at `cursor`, read up to `limit` channels. */
export const ChannelListParams = z.strictObject({
  cursor: z.string().min(1).max(512).optional(),
  limit: z.number().int().min(1).max(CHANNEL_LIST_MAX).optional(),
});
export type ChannelListParams = z.infer<typeof ChannelListParams>;

/** Slack's own maximum per page. */
const SLACK_PAGE_SIZE = 200;

const Channel = z.object({ id: z.string(), name: z.string() });
export const ChannelListOutput = z.object({
  channels: z.array(Channel),
  mock: z.literal(true).optional(),
  ok: z.literal(true),
  /** Present when more channels remain: pass it back as `cursor`. */
  next_cursor: z.string().optional(),
});
/** Slack's `chat.postMessage` body (mock: the original's four keys). */
export const MsgPostOutput = z.looseObject({ ok: z.literal(true), channel: z.string(), ts: z.string() });

/** The two things the actions need from Slack; mock and live implement it. */
interface SlackApi {
  postMessage(params: MsgPostParams, signal: AbortSignal): Promise<ConnectorOutput>;
  listChannels(params: ChannelListParams, signal: AbortSignal): Promise<ConnectorOutput>;
}

interface SlackBackend extends SlackApi {
  /** The approval message actions' transport (slack-approvals.ts). */
  sendApproval: ApprovalSender;
}

const MOCK_CHANNELS = [
  { id: 'C01GENERAL', name: 'general' },
  { id: 'C02SECURITY', name: 'security-approvals' },
];

function mockSlack(now: () => Date): SlackApi {
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

/** Runs WebClient's HTTP through `callUpstream` (timeout, deadline, no redirects, capped body). */
type Adapter = NonNullable<WebClientOptions['adapter']>;

function fetchAdapter(options: SlackConnectorOptions, signal: AbortSignal): Adapter {
  return async (config) => {
    const url = new URL(config.url ?? '', config.baseURL);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(config.headers.toJSON())) {
      if (typeof value === 'string' && name.toLowerCase() !== 'user-agent')
        headers[name.toLowerCase()] = value;
    }
    const reply = await callUpstream({
      service: SLACK_TOOL,
      method: 'POST',
      url: url.toString(),
      headers,
      rawBody: typeof config.data === 'string' ? config.data : undefined,
      signal,
      timeoutMs: options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      fetch: options.fetch ?? globalThis.fetch,
    });
    return {
      status: reply.status,
      statusText: '',
      headers: reply.headers,
      config,
      // WebClient parses strings itself; a body that is not JSON must not become a success.
      data: reply.json === undefined ? { ok: false, error: 'invalid_response_body' } : reply.json,
      request: { path: url.pathname },
    };
  };
}

/** WebClient's errors, as short public messages; the rest goes to the log. */
function slackFailure(error: unknown): never {
  if (error instanceof UpstreamError) throw error;
  const coded = error as {
    code?: string;
    data?: { error?: unknown };
    retryAfter?: number;
    statusCode?: number;
  };
  // `ErrorCode` of @slack/web-api, as strings: the package is loaded only when live.
  switch (coded.code) {
    case 'slack_webapi_platform_error': {
      if (coded.data?.error === 'invalid_response_body') {
        throw new UpstreamError('slack: invalid response body');
      }
      const code = safeSlackError(coded.data?.error);
      throw new UpstreamError(`slack: ${code}`, { slack_error: code });
    }
    case 'slack_webapi_rate_limited_error':
      throw new UpstreamError(`slack: rate limited, retry after ${coded.retryAfter ?? 0} s`, {
        retry_after_sec: coded.retryAfter,
      });
    case 'slack_webapi_http_error':
      throw new UpstreamError(`slack: HTTP ${coded.statusCode ?? 0}`, { http_status: coded.statusCode });
    default: {
      // A RequestError wraps what the adapter threw (an UpstreamError from callUpstream).
      const original = (error as { original?: unknown }).original;
      if (original instanceof UpstreamError) throw original;
      throw new UpstreamError('slack: request failed', { error_name: (error as Error)?.name });
    }
  }
}

function liveSlack(botToken: string, options: SlackConnectorOptions): SlackApi {
  const base = `${(options.apiBaseUrl ?? SLACK_API_BASE_URL).replace(/\/+$/, '')}/`;
  // Loaded on first live use: mock mode and the gateway's bundles never carry the Slack SDK.
  let sdk: Promise<typeof import('@slack/web-api')> | undefined;
  // One client per call: its adapter carries that call's deadline.
  const client = async (signal: AbortSignal): Promise<WebClient> =>
    new (await (sdk ??= import('@slack/web-api'))).WebClient(botToken, {
      slackApiUrl: base,
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      allowAbsoluteUrls: false,
      adapter: fetchAdapter(options, signal),
      logger: silentLogger,
    });
  const call = async <T extends WebAPICallResult>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      return slackFailure(error);
    }
  };

  return {
    postMessage: async ({ channel, text }, signal) => {
      // WebClient adds `response_metadata` (warnings, scopes): Slack's bookkeeping, not the result.
      const slack = await client(signal);
      const { response_metadata: _metadata, ...body } = await call(() =>
        slack.chat.postMessage({ channel, text }),
      );
      return body as ConnectorOutput;
    },
    listChannels: async ({ cursor, limit = CHANNEL_LIST_MAX }, signal) => {
      const slack = await client(signal);
      const channels: { id: string; name: string }[] = [];
      let next = cursor;
      // Cursor paging, bounded by `limit`: the full list would bloat the evidence record.
      do {
        const page = await call(() =>
          slack.conversations.list({
            limit: Math.min(SLACK_PAGE_SIZE, limit - channels.length),
            exclude_archived: true,
            ...(next ? { cursor: next } : {}),
          }),
        );
        for (const channel of page.channels ?? []) {
          if (isObject(channel))
            channels.push({ id: String(channel.id ?? ''), name: String(channel.name ?? '') });
        }
        next = page.response_metadata?.next_cursor || undefined;
      } while (next && channels.length < limit);
      return { channels: channels.slice(0, limit), ok: true, ...(next ? { next_cursor: next } : {}) };
    },
  };
}

/** WebClient logs request failures with their URL; ours logs once per call with the ids. */
const silentLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  setLevel: () => undefined,
  getLevel: () => 'error' as never,
  setName: () => undefined,
};

/** The Slack connector's definition: its actions, floors and timeouts (also read by the gateway). */
export const slackConnector = defineConnector({
  tool: SLACK_TOOL,
  client: (options: SlackConnectorOptions): SlackBackend => ({
    ...(options.config.mode === 'live'
      ? liveSlack(options.config.botToken, options)
      : mockSlack(options.now ?? (() => new Date()))),
    sendApproval: approvalSender(options),
  }),
  actions: {
    ...slackApprovalActions<SlackBackend>(),
    'msg.post': {
      input: MsgPostParams,
      target: 'channel',
      canonicalTarget: canonicalChannel,
      output: MsgPostOutput,
      timeoutMs: 8_000,
      risk: 0,
      run: (params, { client, signal }) => client.postMessage(params, signal),
    },
    'channel.list': {
      input: ChannelListParams,
      target: null,
      output: ChannelListOutput,
      timeoutMs: 8_000,
      risk: 0,
      run: (params, { client, signal }) => client.listChannels(params, signal),
    },
  },
});

export const SLACK_ACTIONS = slackConnector.specs.map((spec) => spec.action);

export function createSlackConnector(options: SlackConnectorOptions): DefinedConnector {
  return slackConnector.create(options);
}

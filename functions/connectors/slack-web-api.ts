/**
 * The Slack Web API calls of the approval flow, through `@slack/web-api`: `chat.postMessage` and
 * `chat.update` (the clicker's `users.info` is `store/slack-users.ts`, without the package).
 * `ok: false` is a failure for every method (W26). A 429 (`ratelimited`) honours `Retry-After`:
 * a short wait is waited here once; a longer one fails with `retry_after_sec` so that the caller
 * (the delivery queue) retries no earlier than Slack asked.
 *
 * The package is loaded on first use, never at module load: this module is reached from the
 * in-process connectors that every gateway bundle carries, and those bundles leave
 * `@slack/web-api` out (lib/function.ts), so a static import would fail their cold start.
 */
import type { Logger, LogLevel, WebClient } from '@slack/web-api';
import { UpstreamError } from './sdk.js';

export const SLACK_WEB_API_URL = 'https://slack.com/api/';

export interface SlackWebApiOptions {
  botToken: string;
  /** Base URL of the Web API (tests: a loopback server). @default https://slack.com/api/ */
  apiUrl?: string;
  /** Per call. @default 5000 */
  timeoutMs?: number;
  /** The longest `Retry-After` waited in process (once); longer ones fail with it. @default 2 */
  maxRateLimitWaitSec?: number;
}

export interface PostedMessage {
  channel: string;
  ts: string;
}

export interface SlackMessageBody {
  text: string;
  blocks: readonly Record<string, unknown>[];
}

/** Slack error codes are short snake_case words; anything else is not echoed. */
const safeCode = (value: unknown) =>
  typeof value === 'string' && /^[a-z0-9_]{1,64}$/.test(value) ? value : 'unknown_error';

const silent: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  setLevel: () => undefined,
  getLevel: () => 'error' as LogLevel,
  setName: () => undefined,
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const SLACK_ERROR = {
  platform: 'slack_webapi_platform_error',
  rateLimited: 'slack_webapi_rate_limited_error',
  http: 'slack_webapi_http_error',
} as const;

function toUpstreamError(error: unknown): UpstreamError {
  const e = error as { code?: string; data?: { error?: unknown }; retryAfter?: number; statusCode?: number };
  // `ErrorCode` of @slack/web-api, as strings (the package is loaded lazily).
  switch (e.code) {
    case SLACK_ERROR.platform: {
      const code = safeCode(e.data?.error);
      return new UpstreamError(`slack: ${code}`, { slack_error: code });
    }
    case SLACK_ERROR.rateLimited:
      // The wait Slack asked for is part of the (short, safe) message: the caller retries no earlier.
      return new UpstreamError(`slack: ratelimited (retry after ${Number(e.retryAfter) || 0} s)`, {
        slack_error: 'ratelimited',
        retry_after_sec: e.retryAfter,
      });
    case SLACK_ERROR.http:
      return new UpstreamError(`slack: HTTP ${e.statusCode ?? 0}`, { http_status: e.statusCode });
    default:
      return new UpstreamError('slack: request failed', { error: (error as Error)?.name });
  }
}

export class SlackWebApi {
  private client?: Promise<WebClient>;
  private readonly maxWaitSec: number;

  constructor(private readonly options: SlackWebApiOptions) {
    this.maxWaitSec = options.maxRateLimitWaitSec ?? 2;
  }

  private webClient(): Promise<WebClient> {
    return (this.client ??= import('@slack/web-api').then(
      ({ WebClient }) =>
        new WebClient(this.options.botToken, {
          slackApiUrl: this.options.apiUrl ?? SLACK_WEB_API_URL,
          timeout: this.options.timeoutMs ?? 5_000,
          // Rate limits are ours to honour (below); other failures are the caller's to retry.
          rejectRateLimitedCalls: true,
          retryConfig: { retries: 0 },
          logger: silent,
          logLevel: 'error' as LogLevel,
        }),
    ));
  }

  private async call<T>(request: (client: WebClient) => Promise<T>): Promise<T> {
    const client = await this.webClient();
    const run = () => request(client);
    try {
      return await run();
    } catch (error) {
      const e = error as { code?: string; retryAfter?: number };
      if (e.code !== SLACK_ERROR.rateLimited || !((e.retryAfter ?? Infinity) <= this.maxWaitSec))
        throw toUpstreamError(error);
      await sleep((e.retryAfter ?? 0) * 1000);
      try {
        return await run();
      } catch (again) {
        throw toUpstreamError(again);
      }
    }
  }

  async postMessage(channel: string, message: SlackMessageBody): Promise<PostedMessage> {
    const r = await this.call((client) =>
      client.chat.postMessage({ channel, text: message.text, blocks: [...message.blocks] as never }),
    );
    if (typeof r.channel !== 'string' || typeof r.ts !== 'string')
      throw new UpstreamError('slack: invalid response body', { method: 'chat.postMessage' });
    return { channel: r.channel, ts: r.ts };
  }

  async update(channel: string, ts: string, message: SlackMessageBody): Promise<PostedMessage> {
    const r = await this.call((client) =>
      client.chat.update({ channel, ts, text: message.text, blocks: [...message.blocks] as never }),
    );
    return {
      channel: typeof r.channel === 'string' ? r.channel : channel,
      ts: typeof r.ts === 'string' ? r.ts : ts,
    };
  }
}

/**
 * The Slack Web API calls of the approval flow, through `@slack/web-api`: `chat.postMessage`,
 * `chat.update` and `users.info` (the clicker's email, for separation of duties in live mode).
 * `ok: false` is a failure for every method (W26). A 429 (`ratelimited`) honours `Retry-After`:
 * a short wait is waited here once; a longer one fails with `retry_after_sec` so that the caller
 * (the delivery queue) retries no earlier than Slack asked.
 */
import { ErrorCode, LogLevel, WebClient, type Logger } from '@slack/web-api';
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
  getLevel: () => LogLevel.ERROR,
  setName: () => undefined,
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function toUpstreamError(error: unknown): UpstreamError {
  const e = error as { code?: string; data?: { error?: unknown }; retryAfter?: number; statusCode?: number };
  switch (e.code) {
    case ErrorCode.PlatformError: {
      const code = safeCode(e.data?.error);
      return new UpstreamError(`slack: ${code}`, { slack_error: code });
    }
    case ErrorCode.RateLimitedError:
      // The wait Slack asked for is part of the (short, safe) message: the caller retries no earlier.
      return new UpstreamError(`slack: ratelimited (retry after ${Number(e.retryAfter) || 0} s)`, {
        slack_error: 'ratelimited',
        retry_after_sec: e.retryAfter,
      });
    case ErrorCode.HTTPError:
      return new UpstreamError(`slack: HTTP ${e.statusCode ?? 0}`, { http_status: e.statusCode });
    default:
      return new UpstreamError('slack: request failed', { error: (error as Error)?.name });
  }
}

export class SlackWebApi {
  private readonly client: WebClient;
  private readonly maxWaitSec: number;

  constructor(options: SlackWebApiOptions) {
    this.client = new WebClient(options.botToken, {
      slackApiUrl: options.apiUrl ?? SLACK_WEB_API_URL,
      timeout: options.timeoutMs ?? 5_000,
      // Rate limits are ours to honour (below); other failures are the caller's to retry.
      rejectRateLimitedCalls: true,
      retryConfig: { retries: 0 },
      logger: silent,
      logLevel: LogLevel.ERROR,
    });
    this.maxWaitSec = options.maxRateLimitWaitSec ?? 2;
  }

  private async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      const e = error as { code?: string; retryAfter?: number };
      if (e.code !== ErrorCode.RateLimitedError || !((e.retryAfter ?? Infinity) <= this.maxWaitSec))
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
    const r = await this.call(() =>
      this.client.chat.postMessage({ channel, text: message.text, blocks: [...message.blocks] as never }),
    );
    if (typeof r.channel !== 'string' || typeof r.ts !== 'string')
      throw new UpstreamError('slack: invalid response body', { method: 'chat.postMessage' });
    return { channel: r.channel, ts: r.ts };
  }

  async update(channel: string, ts: string, message: SlackMessageBody): Promise<PostedMessage> {
    const r = await this.call(() =>
      this.client.chat.update({ channel, ts, text: message.text, blocks: [...message.blocks] as never }),
    );
    return {
      channel: typeof r.channel === 'string' ? r.channel : channel,
      ts: typeof r.ts === 'string' ? r.ts : ts,
    };
  }

  /** The user's email as Slack knows it (needs `users:read.email`); undefined when Slack shows none. */
  async userEmail(userId: string): Promise<string | undefined> {
    const r = await this.call(() => this.client.users.info({ user: userId }));
    const email = r.user?.profile?.email;
    return typeof email === 'string' && email ? email : undefined;
  }
}

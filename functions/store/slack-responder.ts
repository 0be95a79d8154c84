/**
 * Answers a click through the payload's `response_url` (Slack ignores the HTTP response body of
 * a `block_actions` request, W26): replace the clicked message, or tell the clicker ephemerally.
 * Only Slack's own hooks host is called in AWS; the local stack may also call a loopback server.
 */
import { logger } from '../shared/powertools.js';

const SLACK_HOOKS_HOST = 'hooks.slack.com';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** Slack wants its answer within 3 s; the response_url call gets what is left of that, at most. */
const RESPONSE_URL_TIMEOUT_MS = 2_000;

export function responseUrlAllowed(value: string, allowLoopback: boolean): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username || url.password) return false;
  if (url.protocol === 'https:' && url.hostname === SLACK_HOOKS_HOST && !url.port) return true;
  return allowLoopback && url.protocol === 'http:' && LOOPBACK.has(url.hostname);
}

export interface SlackResponder {
  /** Posts the message; failures are logged (the decision, if any, stands). True on a 2xx. */
  respond(responseUrl: string, message: Record<string, unknown>): Promise<boolean>;
}

export function createSlackResponder(fetchImpl: typeof fetch = globalThis.fetch): SlackResponder {
  return {
    async respond(responseUrl, message) {
      try {
        const res = await fetchImpl(responseUrl, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(message),
          redirect: 'manual',
          signal: AbortSignal.timeout(RESPONSE_URL_TIMEOUT_MS),
        });
        await res.body?.cancel();
        if (res.ok) return true;
        logger.warn('slack response_url refused the answer', { status: res.status });
      } catch (error) {
        logger.warn('slack response_url call failed', { error: (error as Error).name });
      }
      return false;
    },
  };
}

/**
 * `users.info` for the Slack interactions function: the clicker's email, for separation of duties
 * in live mode (tenants without an approver directory). One form-encoded POST, as the Web API
 * package sends it, because that package (with axios) would take the function's bundle past its
 * 1 MB budget; the function only ever makes this one read. `ok: false`, a non-2xx answer or a
 * timeout throws: the caller fails closed.
 */
import { SLACK_WEB_API_URL } from '../connectors/slack-web-api.js';

export async function slackUserEmail(
  botToken: string,
  userId: string,
  options: { apiUrl?: string; timeoutMs?: number; fetch?: typeof fetch } = {},
): Promise<string | undefined> {
  const url = new URL('users.info', options.apiUrl ?? SLACK_WEB_API_URL);
  const r = await (options.fetch ?? fetch)(url, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${botToken}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ user: userId }),
    redirect: 'error',
    signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
  });
  if (!r.ok) throw new Error(`slack users.info: HTTP ${r.status}`);
  const body = (await r.json()) as {
    ok?: unknown;
    error?: unknown;
    user?: { profile?: { email?: unknown } };
  };
  if (body.ok !== true)
    throw new Error(
      `slack users.info: ${typeof body.error === 'string' && /^[a-z0-9_]{1,64}$/.test(body.error) ? body.error : 'not ok'}`,
    );
  const email = body.user?.profile?.email;
  return typeof email === 'string' && email ? email : undefined;
}

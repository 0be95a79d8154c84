/**
 * POST /slack/interactions (SPEC §9): Slack's interactivity requests, on a Lambda Function URL
 * (auth NONE: the Slack signature is the credential) and on the local host. Thin: verify the
 * v0 signature over the raw body, parse the click, refuse a replayed signature, decide through
 * the approvals core (or, issue 21, extend or grant through their use cases), answer the clicker through `response_url`, and tell Slack 200 at once.
 * Anything unsigned, stale, replayed or malformed is a 4xx with the SPEC error body and changes
 * nothing.
 */
import { parseInteraction, formPayload } from '../core/slack-interaction.js';
import { decideFromSlack } from '../core/slack-decision.js';
import { extendFromSlack, grantFromSlack } from '../core/slack-workflows.js';
import { verifySlackSignature } from '../core/slack-signature.js';
import { LIMITS } from '../shared/constants.js';
import {
  AppError,
  badRequest,
  payloadTooLarge,
  toErrorResponse,
  unauthorized,
  unsupportedMediaType,
} from '../shared/errors.js';
import { jsonResponse, type HttpEvent, type HttpResponse } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { logger } from '../shared/powertools.js';
import { responseUrlAllowed } from '../store/slack-responder.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { slackState } from './slack-state.js';

const header = (event: HttpEvent, name: string): string | undefined =>
  Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];

function rawBody(event: HttpEvent): Buffer {
  const raw = event.body ?? '';
  const body = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (body.length > LIMITS.maxBodyBytes) throw payloadTooLarge(LIMITS.maxBodyBytes);
  return body;
}

/** Slack sends interactivity as a form; a JSON body is the Events API's, which this URL does not serve. */
function refuseJson(body: Buffer): never {
  let type: unknown;
  try {
    type = (JSON.parse(body.toString('utf8')) as { type?: unknown }).type;
  } catch {
    throw badRequest('invalid JSON body');
  }
  if (type === 'url_verification')
    throw badRequest(
      'url_verification is an Events API handshake: this URL is the app’s interactivity request URL only',
      [
        {
          path: 'type',
          message: 'configure this URL under Interactivity & Shortcuts, not Event Subscriptions',
        },
      ],
    );
  throw badRequest('unsupported interaction type', [
    { path: 'type', message: 'only block_actions (form-encoded payload) are handled' },
  ]);
}

export const slackInteractionsRoute =
  (getState: () => AppState) =>
  async (event: HttpEvent): Promise<HttpResponse> => {
    const requestId = event.requestContext?.requestId ?? 'unknown';
    try {
      const state = getState();
      const slack = slackState(state);
      const body = rawBody(event);
      const signature = header(event, 'x-slack-signature');
      const check = verifySlackSignature({
        secret: await slack.signingSecret(),
        timestamp: header(event, 'x-slack-request-timestamp'),
        signature,
        body,
        now: state.clock.now(),
      });
      if (!check.ok) {
        logger.info('slack request refused', { reason: check.reason });
        throw unauthorized(`invalid slack signature (${check.reason})`);
      }
      const contentType = (header(event, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase();
      if (contentType === 'application/json') refuseJson(body);
      if (contentType !== 'application/x-www-form-urlencoded')
        throw unsupportedMediaType('application/x-www-form-urlencoded');

      const interaction = parseInteraction(formPayload(body));
      if (interaction.kind === 'ignored')
        return jsonResponse({ status: 200, body: JSON.stringify({ outcome: 'ignored' }) }, requestId);
      const { click } = interaction;
      if (!responseUrlAllowed(click.responseUrl, slack.allowLoopbackResponseUrl))
        throw badRequest('invalid response_url', [
          { path: 'response_url', message: 'not a Slack hooks URL' },
        ]);
      const now = state.clock.now();
      const request = {
        claim: () => slack.replays.claim(signature ?? '', now),
        email: () => slack.userEmail(click.user.id),
      };
      const result =
        interaction.kind === 'click'
          ? await decideFromSlack(slack.deps, interaction.click, request)
          : interaction.click.workflow === 'extend'
            ? await extendFromSlack(slack.deps, interaction.click, request)
            : await grantFromSlack(slack.deps, interaction.click, request);
      await slack.responder.respond(click.responseUrl, result.response);
      logger.info('slack click handled', { outcome: result.outcome, approvalId: click.approvalId });
      return jsonResponse({ status: 200, body: JSON.stringify({ outcome: result.outcome }) }, requestId);
    } catch (error) {
      const mapped = toErrorResponse(error, requestId);
      if (mapped.status >= 500 || !(error instanceof AppError))
        logger.error('slack interaction failed', { error: error as Error, requestId });
      return jsonResponse(
        { status: mapped.status, body: JSON.stringify(mapped.body), headers: mapped.headers },
        requestId,
      );
    }
  };

warmInLambda((state) => slackState(state).signingSecret());
export const handler = lambda(slackInteractionsRoute(appState));

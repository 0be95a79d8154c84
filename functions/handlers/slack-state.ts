/**
 * What the Slack interactions handler uses besides the app state: the signing secret (Secrets
 * Manager in AWS, `SLACK_SIGNING_SECRET` locally), the replay store, the `response_url`
 * responder, and, in live mode, the Web API for the clicker's email (separation of duties).
 */
import { slackConfigSource } from '../connectors/config.js';
import { approvalUrl } from '../core/submit.js';
import type { SlackWorkflowDeps } from '../core/slack-workflows.js';
import { ENV } from '../shared/constants.js';
import { AppError } from '../shared/errors.js';
import { logger } from '../shared/powertools.js';
import { readSecretString } from '../store/secrets.js';
import { SlackReplayStore } from '../store/slack-replays.js';
import { slackUserEmail } from '../store/slack-users.js';
import { createSlackResponder, type SlackResponder } from '../store/slack-responder.js';
import type { AppState } from './app-state.js';
import { deadlineDeps, grantDeps } from './grants-state.js';

export interface SlackState {
  signingSecret(): Promise<string>;
  replays: SlackReplayStore;
  responder: SlackResponder;
  /** Approve/Deny and issue 21's Extend and Approve + calls like it: the API's use cases' deps. */
  deps: SlackWorkflowDeps;
  /** The clicker's Slack email in live mode (undefined in mock mode); fails closed when Slack cannot say. */
  userEmail(userId: string): Promise<string | undefined>;
  /** The local stack (and its tests) may answer a loopback `response_url`; AWS only Slack's hooks host. */
  allowLoopbackResponseUrl: boolean;
}

const inLambda = () => Boolean(process.env.AWS_LAMBDA_FUNCTION_NAME);

/** `{"signing_secret": "..."}`: what the operator puts into the signing-secret secret. */
export async function signingSecretFrom(secretId: string): Promise<string> {
  const raw = await readSecretString(secretId);
  let value: unknown;
  try {
    value = (JSON.parse(raw) as { signing_secret?: unknown }).signing_secret;
  } catch {
    throw new Error(`secret ${secretId} is not JSON; expected {"signing_secret": "..."}`);
  }
  if (typeof value !== 'string' || !/^\S{8,256}$/.test(value))
    throw new Error(`secret ${secretId} has no usable signing_secret; expected {"signing_secret": "..."}`);
  return value;
}

const built = new WeakMap<AppState, SlackState>();

export function slackState(state: AppState): SlackState {
  let s = built.get(state);
  if (s) return s;
  const { config } = state;
  const arn = config.slackSigningSecretArn;
  if (inLambda() && !arn)
    throw new Error(
      `${ENV.slackSigningSecretArn} is not set: the Slack signing secret must come from its SSM parameter or Secrets Manager secret`,
    );
  let web: Promise<string | undefined> | undefined;
  const botToken = () =>
    (web ??= slackConfigSource({ readSecret: readSecretString })
      .load()
      .then((c) => (c.mode === 'live' ? c.botToken : undefined)));
  s = {
    signingSecret: () => (arn ? signingSecretFrom(arn) : Promise.resolve(config.slackSigningSecret)),
    replays: new SlackReplayStore(state.doc, config.tableName),
    responder: createSlackResponder(),
    deps: {
      ...deadlineDeps(state),
      ...grantDeps(state),
      consoleUrl: (id) => approvalUrl(config.publicBaseUrl, id),
    },
    async userEmail(userId) {
      if (config.connectorsMode !== 'live') return undefined;
      try {
        const token = await botToken();
        if (!token) return '';
        return (await slackUserEmail(token, userId, { apiUrl: config.slackApiUrl })) ?? '';
      } catch (error) {
        // Separation of duties needs the email: without it, no decision (fail closed, retryable).
        logger.warn('slack users.info failed', { error: (error as Error).message });
        web = undefined;
        throw new AppError(503, 'UNAVAILABLE', 'could not verify the Slack user; try again', {
          retryable: true,
        });
      }
    },
    allowLoopbackResponseUrl: !inLambda(),
  };
  built.set(state, s);
  return s;
}

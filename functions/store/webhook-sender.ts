/**
 * The webhook route's sender: the CloudEvent body built once from the message (so `id`, `time`
 * and every byte are the same on each attempt), both signatures over those bytes with a fresh
 * `webhook-timestamp`, and the POST through the SSRF-guarded client. A secret that cannot be
 * resolved, or a URL that may never be reached, fails for good: nothing is ever sent unsigned.
 */
import {
  CLOUDEVENTS_CONTENT_TYPE,
  cloudEventBody,
  httpOutcome,
  parseRetryAfter,
  signatureHeaders,
  type DeliveryMessage,
  type RouteSender,
  type SendContext,
  type SendOutcome,
} from '../core/notifications.js';
import { SecretUnavailableError } from './secrets.js';
import { postWebhook, WebhookRefused, type PostOptions } from './webhook-http.js';
import type { WebhookSecrets } from './webhook-secrets.js';

export interface WebhookSenderOptions extends PostOptions {
  secrets: WebhookSecrets;
  eventSource: string;
  /** Told when a secret cannot be resolved (metric, log). */
  onSecretUnavailable?: (ref: string, error: SecretUnavailableError) => void;
}

export class WebhookSender implements RouteSender {
  readonly kind = 'webhook' as const;

  constructor(private readonly options: WebhookSenderOptions) {}

  async send(delivery: DeliveryMessage, ctx: SendContext): Promise<SendOutcome> {
    const route = delivery.route;
    if (route.kind !== 'webhook') return { kind: 'failed', error: 'not a webhook route' };
    let secret: string;
    try {
      secret = await this.options.secrets.resolve(route.secret_ref);
    } catch (error) {
      if (error instanceof SecretUnavailableError) {
        this.options.onSecretUnavailable?.(route.secret_ref, error);
        return { kind: 'failed', error: `signing secret unavailable (secret_ref ${route.secret_ref})` };
      }
      // Secrets Manager itself failing is an outage, not a verdict on the route: retry.
      return { kind: 'retry', error: 'signing secret could not be read' };
    }
    const body = cloudEventBody({
      id: delivery.delivery_id,
      type: delivery.event_type,
      source: this.options.eventSource,
      subject: delivery.approval_id,
      time: delivery.time,
      data: delivery.data,
    });
    const headers = {
      'Content-Type': CLOUDEVENTS_CONTENT_TYPE,
      ...signatureHeaders(secret, delivery.delivery_id, body, ctx.now),
    };
    try {
      const answer = await postWebhook(route.url, body, headers, this.options);
      return httpOutcome(answer.statusCode, parseRetryAfter(answer.retryAfter, ctx.now));
    } catch (error) {
      if (error instanceof WebhookRefused) return { kind: 'failed', error: error.message };
      return { kind: 'retry', error: (error as Error).message.slice(0, 200) };
    }
  }
}

/**
 * The template connector: copy this file to add a tool (docs/connectors.md "Add a connector in four steps").
 * It shows every part a connector has: a strict input and an output schema per action, the
 * target (the param naming the object acted on), a timeout, a
 * risk floor, a mock mode with deterministic answers, and a live mode that reads its credentials
 * by name (`ctx.secret`) and calls its upstream through `callUpstream` with the action's signal.
 *
 * `template.item.get` reads `GET <base_url>/items/<id>` with `Authorization: Bearer <api_token>`.
 * Credentials: in AWS the connector's secret (`OC_TEMPLATE_SECRET_ARN`), JSON
 * `{"base_url": "...", "api_token": "..."}`; locally `TEMPLATE_BASE_URL` and `TEMPLATE_API_TOKEN`.
 */
import * as z from 'zod';
import { loadConnectorsMode, type ConnectorsMode } from './config.js';
import { callUpstream, DEFAULT_MAX_RESPONSE_BYTES } from './http.js';
import { defineConnector, UpstreamError } from './sdk.js';

export const TEMPLATE_TOOL = 'template';

export interface TemplateOptions {
  /** Defaults to `OC_CONNECTORS_MODE` (live unless set to mock). */
  mode?: ConnectorsMode;
  fetch?: typeof fetch;
}

// Strict: a param the action does not declare is refused at submit, never silently ignored.
const ItemGetParams = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an item id'),
});
const Item = z.object({ id: z.string(), name: z.string(), mock: z.literal(true).optional() });

export const templateConnector = defineConnector({
  tool: TEMPLATE_TOOL,
  client: (options: TemplateOptions = {}) => ({
    mode: options.mode ?? loadConnectorsMode(),
    fetch: options.fetch ?? globalThis.fetch,
  }),
  actions: {
    'item.get': {
      input: ItemGetParams,
      // The param naming the object the action acts on (`null` for an action on none, such as a
      // list): the gateway derives the request's `resource` from it before policy runs. Add
      // `canonicalTarget` when one object has several names (an id and a key).
      target: 'id',
      output: Item,
      timeoutMs: 5_000,
      risk: 0,
      run: async ({ id }, { client, secret, signal }) => {
        if (client.mode === 'mock') return { id, name: `Item ${id}`, mock: true };
        const baseUrl = (await secret('base_url')).replace(/\/+$/, '');
        const reply = await callUpstream({
          service: TEMPLATE_TOOL,
          method: 'GET',
          url: `${baseUrl}/items/${encodeURIComponent(id)}`,
          headers: { authorization: `Bearer ${await secret('api_token')}` },
          signal,
          timeoutMs: 5_000,
          maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
          fetch: client.fetch,
        });
        if (reply.status !== 200)
          throw new UpstreamError(`template: HTTP ${reply.status}`, { http_status: reply.status });
        const body = reply.json as { id?: unknown; name?: unknown } | undefined;
        // Only what the output schema allows reaches the agent (and the evidence record).
        return { id: String(body?.id ?? ''), name: String(body?.name ?? '') };
      },
    },
  },
});

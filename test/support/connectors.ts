/** A connector invoker for tests: the real mock connectors, counted, optionally slowed down or failing. */
import type { ConnectorInvoker, ConnectorRequest } from '../../functions/connectors/types.js';
import { connectorRegistry } from '../../functions/connectors/registry.js';
import { createLocalInvoker } from '../../functions/store/connector-invoker.js';

export interface CountingInvoker extends ConnectorInvoker {
  calls: ConnectorRequest[];
}

export function countingInvoker(options: { delayMs?: number } = {}): CountingInvoker {
  const real = createLocalInvoker(connectorRegistry({ env: { OC_CONNECTORS_MODE: 'mock' } }));
  const calls: ConnectorRequest[] = [];
  return {
    calls,
    async invoke(req, opts) {
      calls.push(req);
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      return real.invoke(req, opts);
    },
  };
}

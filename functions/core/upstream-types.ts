/**
 * The seam between the upstream catalog (registration, discovery, drift: it implements
 * `UpstreamResolver` from the store) and the generic MCP-client connector (`mcp-upstream`, which
 * executes one allowed or approved call). The gateway routes an upstream call to the connector
 * named `UPSTREAM_CONNECTOR` with `ConnectorRequest.tool` = the upstream server's name and
 * `ConnectorRequest.action` = the MCP tool's own name (not the mapped `<server>.<tool>` action).
 *
 * Pure types: the connector never reads the catalog's keys, and the catalog never speaks MCP
 * to run a call.
 */

/** The connector the gateway invokes for every upstream call (a Lambda in AWS, in process locally). */
export const UPSTREAM_CONNECTOR = 'mcp-upstream';

/**
 * Where an upstream's credentials live in AWS (the catalog's resolver reads them, the connector
 * Lambda may read only these): Secrets Manager names and SSM parameter names under these
 * prefixes. The resolver keys them by tenant below the prefix, so one tenant's registration
 * cannot name another's credential.
 */
export const UPSTREAM_SECRET_PREFIX = 'openclause-upstream/';
export const UPSTREAM_PARAMETER_PREFIX = '/openclause-upstream/';

/** One upstream tool as the connector needs it to run a call, resolved for one tenant. */
export interface UpstreamTarget {
  tenantId: string;
  /** The upstream server's name in the tenant's catalog (`ConnectorRequest.tool`). */
  server: string;
  /** Its Streamable HTTP endpoint (checked by the outbound address rule at every call). */
  url: string;
  /**
   * Resolved credentials, sent as HTTP headers to this upstream only (e.g. `authorization`).
   * Never logged, never recorded.
   */
  headers: Record<string, string>;
  tool: {
    /** The MCP tool's own name (`ConnectorRequest.action`). */
    name: string;
    /** The pinned listing's schemas (JSON Schema objects, as the upstream declared them). */
    inputSchema: object;
    outputSchema?: object;
    /** The pinned listing's hash: what the operator accepted. */
    hash: string;
  };
}

/**
 * Finds a tenant's upstream tool. `null` when the server or tool is not in that tenant's catalog,
 * or is disabled (drift not yet accepted): the connector then refuses the call without
 * connecting. Never returns another tenant's target; throws only on a storage or secret failure
 * (the call then fails closed as a connector error).
 */
export type UpstreamResolver = (
  tenantId: string,
  server: string,
  tool: string,
) => Promise<UpstreamTarget | null>;

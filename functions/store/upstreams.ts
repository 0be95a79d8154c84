/**
 * A tenant's upstream MCP servers and their tools' pinned listings (issue 25), in the main table:
 *
 *   pk `T#<tenant>#UPSTREAM`   sk `<server>`                  the registration (URL, auth reference, ttlMs)
 *   pk `T#<tenant>#UPSTREAM`   sk `<server>#TOOL#<tool>`      one tool: pinned listing, hash, status
 *   pk `T#<tenant>#UPSTREAM`   sk `<server>#DRIFT#<at>#<tool>` a drift seen (what changed, when)
 *
 * A drift, and each `oc upstream accept` of one, is also a fact of its own event
 * (`T#<tenant>#EVT#<derived id>`, core/upstream-facts.ts), written in the same transaction, that
 * the sequencer seals into the tenant's chain; the drift record's INSERT is what the outbox
 * announces (`oc.upstream.drift`) to the tenant's routes.
 *
 * Every read names the tenant's partition (a Query on its pk, a GetItem with its pk): the tenant
 * comes from the caller's API key (or the operator's `--tenant`), never from the request body, and
 * no access path (no index entry: these items carry no gsi1 keys) spans two partitions, so one
 * tenant's catalog, credentials reference and drift record never serve another. Server names have
 * no `#`, so a server's items are exactly `begins_with(sk, '<server>#')`.
 *
 * Credentials are never stored: `auth` names where they live (a Secrets Manager secret or an SSM
 * SecureString in AWS; a variable or a file locally); `upstreamHeaders` reads them when a call or a
 * discovery needs them. Nothing here logs a value.
 */
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  credentialRefProblem,
  DEFAULT_UPSTREAM_TTL_MS,
  type UpstreamAuth,
  type UpstreamServer,
  type UpstreamTool,
} from '../core/upstream.js';
import { queryAll, readOrFail } from './dynamo.js';
import { acceptedFact, driftFact, type AcceptedChange } from '../core/upstream-facts.js';
import { UPSTREAM_DRIFT_ITEM_TYPE } from '../shared/constants.js';
import { StorageError } from '../shared/errors.js';
import { putFact } from './toolcalls.js';
import { transact } from './transact.js';

export const upstreamKeys = {
  partition: (tenantId: string) => `T#${tenantId}#UPSTREAM`,
  server: (tenantId: string, server: string) => ({ pk: upstreamKeys.partition(tenantId), sk: server }),
  tool: (tenantId: string, server: string, tool: string) => ({
    pk: upstreamKeys.partition(tenantId),
    sk: `${server}#TOOL#${tool}`,
  }),
  drift: (tenantId: string, server: string, at: string, tool: string) => ({
    pk: upstreamKeys.partition(tenantId),
    sk: `${server}#DRIFT#${at}#${tool}`,
  }),
};

/** A drift as recorded: the pinned and the seen hash, and which fields changed. */
export interface UpstreamDrift {
  server: string;
  tool: string;
  at: string;
  pinnedHash: string;
  seenHash: string;
  fields: string[];
  /** `sync` (an operator's discovery) or `call` (the pre-call check of a stale listing). */
  detectedBy: 'sync' | 'call';
}

export class UpstreamStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Registers a server (or replaces its URL, auth, ttl and keywords; its tools stay pinned). */
  async putServer(server: UpstreamServer): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...upstreamKeys.server(server.tenantId, server.server), type: 'upstream-server', ...server },
      }),
    );
  }

  async getServer(tenantId: string, server: string): Promise<UpstreamServer | undefined> {
    const out = await readOrFail(
      () =>
        this.doc.send(
          new GetCommand({
            TableName: this.tableName,
            Key: upstreamKeys.server(tenantId, server),
            ConsistentRead: true,
          }),
        ),
      'upstream server read',
    );
    return out.Item ? serverOf(out.Item) : undefined;
  }

  /** The tenant's servers and tools (one partition). */
  async catalog(
    tenantId: string,
  ): Promise<{ servers: UpstreamServer[]; tools: (UpstreamTool & { tenantId: string })[] }> {
    const servers: UpstreamServer[] = [];
    const tools: (UpstreamTool & { tenantId: string })[] = [];
    for await (const item of queryAll(
      this.doc,
      {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': upstreamKeys.partition(tenantId) },
        ConsistentRead: true,
      },
      'upstream catalog read',
    )) {
      if (item.type === 'upstream-server') servers.push(serverOf(item));
      else if (item.type === 'upstream-tool') tools.push({ ...toolOf(item), tenantId });
    }
    return { servers, tools };
  }

  async getTool(tenantId: string, server: string, tool: string): Promise<UpstreamTool | undefined> {
    const out = await readOrFail(
      () =>
        this.doc.send(
          new GetCommand({
            TableName: this.tableName,
            Key: upstreamKeys.tool(tenantId, server, tool),
            ConsistentRead: true,
          }),
        ),
      'upstream tool read',
    );
    return out.Item ? toolOf(out.Item) : undefined;
  }

  /** The tool listed under an MCP name (`<server>_<tool>`), from that server's items only. */
  async findByMcpName(tenantId: string, mcpName: string): Promise<UpstreamTool | undefined> {
    const server = mcpName.slice(0, mcpName.indexOf('_'));
    if (!server) return undefined;
    for await (const item of queryAll(
      this.doc,
      {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        FilterExpression: 'mcpName = :name',
        ExpressionAttributeValues: {
          ':pk': upstreamKeys.partition(tenantId),
          ':prefix': `${server}#TOOL#`,
          ':name': mcpName,
        },
        ConsistentRead: true,
      },
      'upstream tool read',
    ))
      return toolOf(item);
    return undefined;
  }

  async putTool(tenantId: string, tool: UpstreamTool): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...upstreamKeys.tool(tenantId, tool.server, tool.tool), type: 'upstream-tool', ...tool },
      }),
    );
  }

  /**
   * The drift record and its sealed `upstream.drift` fact, both or neither. A replay of the same
   * drift (same tool, hash and time) finds its fact written and changes nothing.
   */
  async recordDrift(tenantId: string, drift: UpstreamDrift): Promise<void> {
    const outcome = await transact(this.doc, [
      {
        Put: {
          TableName: this.tableName,
          Item: {
            ...upstreamKeys.drift(tenantId, drift.server, drift.at, drift.tool),
            type: UPSTREAM_DRIFT_ITEM_TYPE,
            ...drift,
          },
        },
      },
      putFact(this.tableName, driftFact(tenantId, drift)),
    ]);
    if (!outcome.ok && outcome.index !== 1) throw new StorageError('drift record refused');
  }

  /** The sealed `upstream.accepted` fact of an operator's acceptance of a drifted tool. */
  async recordAccepted(tenantId: string, accepted: AcceptedChange): Promise<void> {
    const outcome = await transact(this.doc, [putFact(this.tableName, acceptedFact(tenantId, accepted))]);
    if (!outcome.ok) return; // the same acceptance, written before
  }

  async drifts(tenantId: string, server: string): Promise<UpstreamDrift[]> {
    const found: UpstreamDrift[] = [];
    for await (const item of queryAll(
      this.doc,
      {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': upstreamKeys.partition(tenantId), ':prefix': `${server}#DRIFT#` },
        ConsistentRead: true,
      },
      'upstream drift read',
    )) {
      const { pk: _pk, sk: _sk, type: _type, ...drift } = item;
      found.push(drift as unknown as UpstreamDrift);
    }
    return found;
  }
}

function serverOf(item: Record<string, unknown>): UpstreamServer {
  const { pk: _pk, sk: _sk, type: _type, ...server } = item;
  const s = server as unknown as UpstreamServer;
  return { ...s, ttlMs: s.ttlMs ?? DEFAULT_UPSTREAM_TTL_MS, allowKeywords: s.allowKeywords ?? [] };
}

function toolOf(item: Record<string, unknown>): UpstreamTool {
  const { pk: _pk, sk: _sk, type: _type, tenantId: _tenant, ...tool } = item;
  return tool as unknown as UpstreamTool;
}

/** Reads a credential from where `auth` names it. Messages name the reference, never a value. */
export interface CredentialReaders {
  secret?: (ref: string) => Promise<string>;
  parameter?: (ref: string) => Promise<string>;
  /**
   * Local credentials (`env`, `file` kinds) only where a reader is given: the CLI and the local
   * stack. Never in AWS, where the function's environment holds its own AWS credentials and its
   * file system `/proc/self/environ`: a registration must not be able to send those upstream.
   */
  env?: Readonly<Record<string, string | undefined>>;
  file?: (path: string) => string;
}

export class UpstreamCredentialError extends Error {
  override readonly name = 'UpstreamCredentialError';
}

/** The HTTP headers carrying an upstream's credential (none for `kind: none`). */
export async function upstreamHeaders(
  auth: UpstreamAuth,
  readers: CredentialReaders,
  tenantId: string,
): Promise<Record<string, string>> {
  if (auth.kind === 'none') return {};
  // Checked at every read too, not only at `oc upstream add`: a registration written another way
  // still cannot make this tenant's calls carry another tenant's credential.
  const problem = credentialRefProblem(auth, tenantId);
  if (problem) throw new UpstreamCredentialError(`upstream credential ${auth.ref}: ${problem}`);
  let value: string | undefined;
  switch (auth.kind) {
    case 'env':
      if (!readers.env) throw new UpstreamCredentialError(`no local credentials here for ${auth.ref}`);
      value = readers.env[auth.ref];
      break;
    case 'file':
      if (!readers.file) throw new UpstreamCredentialError(`no local credentials here for ${auth.ref}`);
      try {
        value = readers.file(auth.ref);
      } catch (error) {
        throw new UpstreamCredentialError(
          `upstream credential file ${auth.ref} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
      break;
    case 'secret':
      if (!readers.secret) throw new UpstreamCredentialError(`no Secrets Manager reader for ${auth.ref}`);
      value = await readers.secret(auth.ref);
      break;
    case 'parameter':
      if (!readers.parameter) throw new UpstreamCredentialError(`no SSM reader for ${auth.ref}`);
      value = await readers.parameter(auth.ref);
      break;
  }
  const credential = value?.trim();
  if (!credential)
    throw new UpstreamCredentialError(`upstream credential ${auth.kind} ${auth.ref} is empty or not set`);
  if (/[\r\n]/.test(credential))
    throw new UpstreamCredentialError(`upstream credential ${auth.kind} ${auth.ref} spans lines`);
  const header = (auth.header ?? 'authorization').toLowerCase();
  return {
    [header]: header === 'authorization' && !/^\S+ /.test(credential) ? `Bearer ${credential}` : credential,
  };
}

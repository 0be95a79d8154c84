/**
 * Writes a tenant's evidence chain straight into the table, in the chain's own page format with
 * the real hash formula (`sealFacts`, `encodeEntries`, `keys.chainPage`: the store's own
 * functions), for the archive tests and benchmark: 100,000 entries through the API would take
 * hours on this machine. Only the chain pages are written (no fact or seal items): what the
 * archiver reads, and the tenant's registration the sealer writes with a chain's first page.
 */
import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { sealFacts, type ChainHead, type ChainEntry, type FactRecord } from '../functions/core/evidence.js';
import { ITEM_TYPE } from '../functions/shared/constants.js';
import { encodeEntries, registerChainTenant } from '../functions/store/chain.js';
import { keys } from '../functions/store/keys.js';

/** A decided call's fact, about the size of a real one. */
export function fixtureFact(tenantId: string, n: number): FactRecord {
  const id = (prefix: string) => `${prefix}${String(n).padStart(12, '0')}`;
  return {
    v: 1,
    tenant_id: tenantId,
    kind: 'toolcall.decided',
    event_id: `00000000-0000-4000-8000-${id('').slice(-12)}`,
    fact_id: `10000000-0000-4000-8000-${id('').slice(-12)}`,
    at: new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString(),
    agent_id: 'agent-1',
    tool: 'slack',
    action: 'msg.post',
    resource: '#general',
    params: { channel: '#general', text: `fixture message ${n}` },
    risk_score: 3,
    decision: 'allow',
    reason: 'write action on allowlist within tenant threshold',
    policy_version: 'sha256:4f1c0bd1e1b5c2f1d2a9c7a3b7e0a1f2c3d4e5f60718293a4b5c6d7e8f901234',
  };
}

async function batchPut(doc: DynamoDBDocumentClient, table: string, items: Record<string, unknown>[]) {
  let request: Record<string, unknown[]> | undefined = {
    [table]: items.map((Item) => ({ PutRequest: { Item } })),
  };
  while (request && Object.keys(request).length > 0) {
    const out = await doc.send(new BatchWriteCommand({ RequestItems: request as never }));
    request = out.UnprocessedItems as typeof request;
  }
}

/**
 * Appends `count` entries to `tenantId`'s chain after `head`, `pageSize` entries per page (the
 * sequencer's batch size). Returns the new head. `edit` may change an entry before it is stored
 * (a test's broken chain).
 */
export async function writeChainFixture(
  doc: DynamoDBDocumentClient,
  table: string,
  tenantId: string,
  count: number,
  options: {
    head?: ChainHead;
    pageSize?: number;
    edit?: (entry: ChainEntry) => ChainEntry;
    /** The fact at each seq (default `fixtureFact`), sealed as the sequencer would. */
    fact?: (tenantId: string, seq: number) => FactRecord;
  } = {},
): Promise<ChainHead> {
  const pageSize = options.pageSize ?? 100;
  // As the sealer does with a chain's first page: the archiver's list of tenants.
  if ((options.head?.seq ?? 0) === 0) await registerChainTenant(doc, table, tenantId);
  let head = options.head ?? { seq: 0, hash: '' };
  let items: Record<string, unknown>[] = [];
  for (let done = 0; done < count;) {
    const n = Math.min(pageSize, count - done);
    const facts = Array.from({ length: n }, (_, i) =>
      (options.fact ?? fixtureFact)(tenantId, head.seq + i + 1),
    );
    const sealed = sealFacts(head, facts);
    const entries = options.edit ? sealed.map(options.edit) : sealed;
    const first = entries[0]!;
    const last = entries[entries.length - 1]!;
    items.push({
      ...keys.chainPage(tenantId, first.seq),
      type: ITEM_TYPE.chainPage,
      tenant_id: tenantId,
      from_seq: first.seq,
      to_seq: last.seq,
      prev_hash: first.prev_hash,
      entries: encodeEntries(entries.map((e) => ({ seq: e.seq, hash: e.hash, record: e.record }))),
    });
    if (items.length === 25) {
      await batchPut(doc, table, items);
      items = [];
    }
    const sealedLast = sealed[sealed.length - 1]!;
    head = { seq: sealedLast.seq, hash: sealedLast.hash };
    done += n;
  }
  if (items.length > 0) await batchPut(doc, table, items);
  return head;
}

/** The tenant thresholds of the repository's policy/tenants.json (7 for a tenant not in it). */
const FIXTURE_THRESHOLDS: Record<string, number> = { tenant1: 5, tenant2: 3 };

/**
 * A `toolcall.decided` fact as submit records it (the request as stored, `risk`, the decision):
 * a deterministic mix of actions and risk claims, its decision the repository policy's (by its
 * rules, not the engine, so that a million are cheap to make), one call a minute. About one in
 * a hundred is a record from before target derivation: a destructive call whose `resource` was
 * asserted (`ops-<n>`) with no target param, which derivation now turns into `OPS-<n>`.
 * For the replay tests and benchmark (bench/replay.ts).
 */
export function decidedFixtureFact(tenantId: string, n: number): FactRecord {
  const id = String(n).padStart(12, '0');
  const at = new Date(Date.UTC(2026, 0, 1) + n * 60_000).toISOString();
  const kinds = [
    ['slack', 'msg.post', { channel: '#general', text: `fixture message ${n}` }, '#general', 0],
    ['slack', 'msg.post', { channel: '#ops', text: `fixture message ${n}` }, '#ops', 0],
    ['jira', 'issue.list', {}, '', 0],
    ['jira', 'issue.create', { project: 'OPS', summary: `fixture issue ${n}` }, 'OPS', 0],
    ['jira', 'issue.delete', { issue: `OPS-${n}` }, `OPS-${n}`, 6],
    ['template', 'item.get', { id: `item-${n}` }, `item-${n}`, 0],
    ['unknown', 'do.something', {}, '', 0],
  ] as const;
  const legacy = n % 101 === 0;
  const [tool, action, params, resource, floor] = legacy
    ? (['jira', 'issue.delete', {}, `ops-${n}`, 6] as const)
    : kinds[n % kinds.length]!;
  const claimed = (n * 7) % 11;
  const effective = Math.max(claimed, floor);
  const threshold = FIXTURE_THRESHOLDS[tenantId] ?? 7;
  const [decision, reason] =
    tool === 'unknown'
      ? ['deny', 'action not in allowlist']
      : effective >= 7
        ? ['approve', 'high risk score requires approval']
        : action === 'issue.delete'
          ? ['approve', 'destructive action requires approval']
          : effective < threshold
            ? [
                'allow',
                `${tool === 'slack' || action === 'issue.create' ? 'write' : 'read'} action on allowlist within tenant threshold`,
              ]
            : ['deny', 'risk score exceeds tenant auto-approve threshold'];
  return {
    v: 1,
    tenant_id: tenantId,
    kind: 'toolcall.decided',
    event_id: `00000000-0000-4000-8000-${id}`,
    fact_id: `10000000-0000-4000-8000-${id}`,
    at,
    request: {
      agent_id: `agent-${n % 3}`,
      tool,
      action,
      params,
      resource,
      risk_score: effective,
      risk_factors: [],
      user_id: `user-${n % 5}`,
      session_id: '',
      labels: {},
      trace_id: '',
      idempotency_key: `fixture-${n}`,
      schema_version: '1.0',
      tenant_id: tenantId,
      requested_at: at,
    },
    risk: { claimed, floor, effective },
    decision,
    reason,
    policy_version: 'sha256:4f1c0bd1e1b5c2f1d2a9c7a3b7e0a1f2c3d4e5f60718293a4b5c6d7e8f901234',
  };
}

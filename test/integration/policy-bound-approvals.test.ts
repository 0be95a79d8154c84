/**
 * Approvals bound to the policy that granted them (issue 24, deliverable 4), through the
 * emulators: a call parked and approved under policy A is executed by a gateway whose live policy
 * is another folder (a stack on the same table, as a deploy leaves one container on each). A
 * changed policy that now denies the call revokes it (409 POLICY_CHANGED, `revoked_by_policy`,
 * an `approval.revoked_by_policy` fact that `oc verify` seals and checks) and the connector never
 * runs; the unchanged version evaluates nothing; a changed policy that still approves runs it,
 * unless the tenant's policy data asks for re-approval. Every answer is checked against the
 * contract by the stacks' clients.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { runCli } from '../../bin/cli/program.js';
import { policyDeps } from '../../functions/handlers/governance.js';
import { ChainStore, verifyTenantChain } from '../../functions/store/chain.js';
import { defaultPolicyDir, loadPolicyBundle } from '../../functions/store/policy-files.js';
import { ApprovalRevokedByPolicyError, createClient } from '../../sdk/src/index.js';
import { tokenFor } from '../support/approvers.js';
import { countingInvoker } from '../support/connectors.js';
import { faultyDocumentClient } from '../support/faults.js';
import { contractFetch } from '../support/sdk-fetch.js';
import { dynamoEndpoint, KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';

type Json = Record<string, any>;
const connector = countingInvoker();
/** onDeny's DynamoDB client: a test fails its next transaction. */
const faulty = faultyDocumentClient();
const OTHER_AGENT_KEY = 'sk-test-bound-other-agent';
const dirs: string[] = [];
/** The stack whose live policy is A (the repository's folder, copied): it parks and approves. */
let onA: TestStack;
/** Same table, live policy: A plus a forbid on jira.issue.delete. */
let onDeny: TestStack;
/** Same table, live policy: A with another README (another version; decides the same). */
let onReadme: TestStack;
/** Same table, live policy: A with tenant1 `reapprove_on_policy_change: true`. */
let onReapprove: TestStack;
/** Same table, live policy: risk 8 writes now allowed for tenant1 (threshold 10, approval from 9). */
let onAllow: TestStack;

function policyDir(change: (dir: string) => void = () => undefined): string {
  const dir = mkdtempSync(join(process.env.OC_TEST_TMP ?? tmpdir(), 'oc-bound-policy-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  change(dir);
  dirs.push(dir);
  return dir;
}

const FREEZE = `
@id("freeze-deletes")
@reason("deletes are frozen for the audit")
forbid (principal, action == Action::"jira.issue.delete", resource);
`;

beforeAll(async () => {
  onA = await startTestStack({ env: { OC_POLICY_DIR: policyDir() }, overrides: { connectors: connector } });
  const sameTable = (dir: string, doc?: typeof faulty.doc) =>
    startTestStack({
      env: { OC_POLICY_DIR: dir },
      overrides: { connectors: connector, ...(doc ? { doc } : {}) },
      tableName: onA.config.tableName,
      consumers: false, // onA's sequencer seals every fact of the table
    });
  [onDeny, onReadme, onReapprove, onAllow] = await Promise.all([
    sameTable(
      policyDir((d) =>
        writeFileSync(join(d, 'policies.cedar'), readFileSync(join(d, 'policies.cedar'), 'utf8') + FREEZE),
      ),
      faulty.doc,
    ),
    sameTable(policyDir((d) => writeFileSync(join(d, 'README.md'), '# Policy\n\nReviewed by carol.\n'))),
    sameTable(
      policyDir((d) => {
        const file = join(d, 'tenants.json');
        const tenants = JSON.parse(readFileSync(file, 'utf8')) as Json;
        tenants.tenant1.reapprove_on_policy_change = true;
        writeFileSync(file, JSON.stringify(tenants, null, 2));
      }),
    ),
    sameTable(
      policyDir((d) => {
        const policies = join(d, 'policies.cedar');
        writeFileSync(
          policies,
          readFileSync(policies, 'utf8').replace(
            'when { context.risk_score >= 7 };',
            'when { context.risk_score >= 9 };',
          ),
        );
        const file = join(d, 'tenants.json');
        const tenants = JSON.parse(readFileSync(file, 'utf8')) as Json;
        tenants.tenant1.max_risk_auto_approve = 10;
        writeFileSync(file, JSON.stringify(tenants, null, 2));
      }),
    ),
  ]);
});
afterAll(async () => {
  await Promise.all([onDeny, onReadme, onReapprove, onAllow].map((s) => s?.stop()));
  await onA?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const versionOf = (s: TestStack) => policyDeps(s.state).policy.version;

/** A jira.issue.delete parked and approved on policy A: its event and approval ids. */
async function approvedOnA(issue = `OPS-${Math.floor(Math.random() * 1e6)}`) {
  const r = await onA.post(
    '/v1/toolcalls',
    toolCall({ tool: 'jira', action: 'issue.delete', params: { issue } }),
  );
  expect(r.json).toMatchObject({ decision: 'approve', policy_version: versionOf(onA) });
  const approved = await onA.request('POST', `/v1/approvals/${r.json.approval.id}/approve`, {
    token: await tokenFor('alice'),
  });
  expect(approved.status).toBe(200);
  return { eventId: r.json.event_id as string, approvalId: r.json.approval.id as string, issue };
}

const ranFor = (issue: string) => connector.calls.filter((c) => c.params.issue === issue).length;
const approval = async (s: TestStack, id: string) =>
  (await s.request('GET', `/v1/approvals/${id}`, { token: await tokenFor('alice') })).json;
const execute = (s: TestStack, eventId: string) => s.post(`/v1/toolcalls/${eventId}/execute`, '');
const evidence = async (eventId: string) =>
  (await onA.get(`/v1/toolcalls/${eventId}`)).json.evidence as { kind: string; record: Json }[];

describe('an approval bound to the policy that granted it', () => {
  it('the policy versions differ: each folder is its own version', () => {
    const versions = [onA, onDeny, onReadme, onReapprove, onAllow].map(versionOf);
    expect(new Set(versions).size).toBe(5);
    expect(versionOf(onA)).toBe(loadPolicyBundle(defaultPolicyDir()).version);
  });

  it('records the parking version in the grant and in the approval decision fact', async () => {
    const { eventId, approvalId } = await approvedOnA();

    const shown = await approval(onA, approvalId);
    expect(shown.policy_version).toBe(versionOf(onA));
    const decided = (await evidence(eventId)).find((f) => f.kind === 'approval.decided')!;
    expect(decided.record.grant.policy_version).toBe(versionOf(onA));
  });

  it('a live policy that now denies it: 409 POLICY_CHANGED, revoked_by_policy, recorded, the connector never runs, on every retry', async () => {
    const { eventId, approvalId, issue } = await approvedOnA();

    const refused = await execute(onDeny, eventId);

    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({ code: 'POLICY_CHANGED', retryable: false });
    expect(refused.json.details).toEqual([
      { path: 'approved_under', message: versionOf(onA) },
      { path: 'policy_version', message: versionOf(onDeny) },
      { path: 'decision', message: 'deny' },
      { path: 'reason', message: 'deletes are frozen for the audit' },
    ]);
    expect(ranFor(issue)).toBe(0);
    // Retried on the new policy, or on a container still on the old one: the grant is spent.
    for (const s of [onDeny, onA, onReadme]) {
      const again = await execute(s, eventId);
      expect([again.status, again.json.code]).toEqual([409, 'POLICY_CHANGED']);
      expect(again.json.details).toEqual(refused.json.details);
    }
    expect(ranFor(issue)).toBe(0);

    const revoked = await approval(onA, approvalId);
    expect(revoked).toMatchObject({
      status: 'revoked_by_policy',
      decided_by: 'alice@acme.example',
      grant: { uses_left: 0 },
      revocation: {
        approved_under: versionOf(onA),
        policy_version: versionOf(onDeny),
        decision: 'deny',
        reason: 'deletes are frozen for the audit',
      },
    });
    expect(revoked.facts.map((f: Json) => f.kind)).toEqual([
      'toolcall.decided',
      'approval.decided',
      'approval.revoked_by_policy',
    ]);
    const listed = await onA.request('GET', '/v1/approvals?status=revoked_by_policy&limit=50', {
      token: await tokenFor('alice'),
    });
    expect(listed.json.items.map((a: Json) => a.id)).toContain(approvalId);
    // Nothing can decide it again.
    const late = await onA.request('POST', `/v1/approvals/${approvalId}/approve`, {
      token: await tokenFor('carol'),
    });
    expect([late.status, late.json.code]).toEqual([409, 'APPROVAL_ALREADY_DECIDED']);

    const fact = (await evidence(eventId)).find((f) => f.kind === 'approval.revoked_by_policy')!;
    expect(fact.record).toMatchObject({
      approval_id: approvalId,
      approved_under: versionOf(onA),
      policy_version: versionOf(onDeny),
      decision: 'deny',
      determining_policies: ['freeze-deletes'],
      risk: { claimed: 3, floor: 6, effective: 6 },
      key_id: expect.any(String),
    });
    expect((await evidence(eventId)).map((f) => f.kind)).not.toContain('execution.started');
  });

  it('the revocation is sealed in the chain and `oc verify` checks it', async () => {
    await approvedOnA().then(({ eventId }) => execute(onDeny, eventId));
    await onA.poller?.drained();

    const report = await verifyTenantChain(new ChainStore(onA.state.doc, onA.config.tableName), 'tenant1', {
      now: new Date(),
      unsealedGraceMs: 60_000,
    });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    const kinds: string[] = [];
    for await (const entry of new ChainStore(onA.state.doc, onA.config.tableName).entries('tenant1'))
      kinds.push(entry.record.kind);
    expect(kinds).toContain('approval.revoked_by_policy');
    const written: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
      written.push(String(chunk));
      return true;
    });
    let code: number;
    try {
      code = await runCli(['node', 'oc', 'verify', '--tenant', 'tenant1'], {
        ...process.env,
        OC_DATA_DIR: mkdtempSync(join(process.env.OC_TEST_TMP ?? tmpdir(), 'oc-cli-')),
        OC_DYNAMODB_PORT: new URL(dynamoEndpoint()).port,
        OC_TABLE_NAME: onA.config.tableName,
      });
    } finally {
      spy.mockRestore();
    }
    expect([code, written.join('')]).toEqual([0, expect.stringMatching(/^ok: tenant tenant1, \d+ entries/)]);
  });

  it('the same version evaluates nothing at execute', async () => {
    const { eventId, issue } = await approvedOnA();
    const evaluate = jest.spyOn(policyDeps(onA.state).policy, 'evaluate');
    try {
      const ran = await execute(onA, eventId);

      expect(ran.status).toBe(200);
      expect(evaluate).not.toHaveBeenCalled();
    } finally {
      evaluate.mockRestore();
    }
    expect(ranFor(issue)).toBe(1);
    const started = (await evidence(eventId)).find((f) => f.kind === 'execution.started')!;
    expect(started.record.policy_check).toBeUndefined();
  });

  it('a changed policy that still approves runs it (the default), and records the check', async () => {
    const { eventId, issue } = await approvedOnA();
    const evaluate = jest.spyOn(policyDeps(onReadme.state).policy, 'evaluate');
    try {
      const ran = await execute(onReadme, eventId);

      expect(ran.status).toBe(200);
      expect(ran.json.result).toMatchObject({ status: 'success' });
      expect(evaluate).toHaveBeenCalledTimes(1);
      // At the execute time, on the stored request with the agent's own claim raised to the floor.
      expect(evaluate.mock.calls[0]![0]).toMatchObject({
        action: 'issue.delete',
        resource: issue,
        riskScore: 6,
      });
    } finally {
      evaluate.mockRestore();
    }
    expect(ranFor(issue)).toBe(1);
    const started = (await evidence(eventId)).find((f) => f.kind === 'execution.started')!;
    expect(started.record.policy_check).toEqual({
      approved_under: versionOf(onA),
      policy_version: versionOf(onReadme),
      decision: 'approve',
      reason: 'destructive action requires approval',
    });
  });

  it('a changed policy that now allows it runs it (the default), and records the check', async () => {
    const parked = await onA.post(
      '/v1/toolcalls',
      toolCall({ risk_score: 8, params: { channel: '#ops', text: 'allow-path' } }),
    );
    expect(parked.json.decision).toBe('approve');
    const approved = await onA.request('POST', `/v1/approvals/${parked.json.approval.id}/approve`, {
      token: await tokenFor('alice'),
    });
    expect(approved.status).toBe(200);
    const before = connector.calls.filter((c) => c.params.text === 'allow-path').length;

    const ran = await execute(onAllow, parked.json.event_id);

    expect(ran.status).toBe(200);
    expect(connector.calls.filter((c) => c.params.text === 'allow-path').length - before).toBe(1);
    const started = (await evidence(parked.json.event_id)).find((f) => f.kind === 'execution.started')!;
    expect(started.record.policy_check).toEqual({
      approved_under: versionOf(onA),
      policy_version: versionOf(onAllow),
      decision: 'allow',
      reason: 'write action on allowlist within tenant threshold',
    });
  });

  it('a changed policy that still approves, for a tenant that asks for re-approval: revoked, never run', async () => {
    const { eventId, approvalId, issue } = await approvedOnA();

    const refused = await execute(onReapprove, eventId);

    expect([refused.status, refused.json.code]).toEqual([409, 'POLICY_CHANGED']);
    expect(refused.json.message).toMatch(/requires a new approval/);
    expect(refused.json.details).toContainEqual({ path: 'decision', message: 'approve' });
    expect(ranFor(issue)).toBe(0);
    expect((await approval(onA, approvalId)).revocation).toMatchObject({
      decision: 'approve',
      reapproval_required: true,
    });
    const fact = (await evidence(eventId)).find((f) => f.kind === 'approval.revoked_by_policy')!;
    expect(fact.record.reapproval_required).toBe(true);
  });

  it('concurrent executes across the old and the new policy run the connector at most once, and agree', async () => {
    for (let round = 0; round < 3; round++) {
      const { eventId, issue } = await approvedOnA();
      const answers = await Promise.all(
        [onDeny, onA, onDeny, onA, onDeny, onA].map((s) => execute(s, eventId)),
      );
      const settled = [await execute(onA, eventId), await execute(onDeny, eventId)];

      expect(ranFor(issue)).toBeLessThanOrEqual(1);
      const kinds = (await evidence(eventId)).map((f) => f.kind);
      const revocations = kinds.filter((k) => k === 'approval.revoked_by_policy').length;
      const starts = kinds.filter((k) => k === 'execution.started').length;
      expect(revocations + starts).toBe(1);
      if (revocations === 1) {
        expect(ranFor(issue)).toBe(0);
        for (const a of [...answers, ...settled]) expect(a.json.code).toBe('POLICY_CHANGED');
      } else {
        expect(ranFor(issue)).toBe(1);
        for (const a of answers) expect([200, 409]).toContain(a.status);
        for (const a of answers.filter((x) => x.status === 409))
          expect(a.json.code).toBe('EXECUTION_IN_PROGRESS');
        for (const a of settled) expect(a.status).toBe(200);
      }
    }
  });

  it('concurrent executes on the new policy: one revocation, every answer POLICY_CHANGED', async () => {
    const { eventId, issue } = await approvedOnA();

    const answers = await Promise.all(Array.from({ length: 5 }, () => execute(onDeny, eventId)));

    for (const a of answers) expect([a.status, a.json.code]).toEqual([409, 'POLICY_CHANGED']);
    expect((await evidence(eventId)).filter((f) => f.kind === 'approval.revoked_by_policy')).toHaveLength(1);
    expect(ranFor(issue)).toBe(0);
  });

  it('walls: another tenant or another agent cannot revoke (or learn of) the approval', async () => {
    await onA.state.apiKeys.put(OTHER_AGENT_KEY, { tenantId: 'tenant1', agentId: 'agent-other' });
    const { eventId, approvalId } = await approvedOnA();

    const otherTenant = await onDeny.post(`/v1/toolcalls/${eventId}/execute`, '', KEYS.tenant2);
    const otherAgent = await onDeny.post(`/v1/toolcalls/${eventId}/execute`, '', OTHER_AGENT_KEY);

    expect([otherTenant.status, otherTenant.json.code]).toEqual([404, 'NOT_FOUND']);
    expect([otherAgent.status, otherAgent.json.code]).toEqual([404, 'NOT_FOUND']);
    expect((await approval(onA, approvalId)).status).toBe('approved');
    expect((await evidence(eventId)).map((f) => f.kind)).not.toContain('approval.revoked_by_policy');
    expect((await execute(onDeny, eventId)).json.code).toBe('POLICY_CHANGED');
  });

  it('a storage failure during the revocation fails closed: nothing runs, nothing is half written', async () => {
    const { eventId, approvalId, issue } = await approvedOnA();
    faulty.plan.fail = { command: 'TransactWriteCommand', nth: 1 };

    const failed = await execute(onDeny, eventId);

    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(ranFor(issue)).toBe(0);
    expect((await approval(onA, approvalId)).status).toBe('approved');
    expect((await evidence(eventId)).map((f) => f.kind)).not.toContain('approval.revoked_by_policy');
    // The retry revokes it, with one transaction.
    const before = faulty.plan.counts.TransactWriteCommand ?? 0;
    expect((await execute(onDeny, eventId)).json.code).toBe('POLICY_CHANGED');
    expect((faulty.plan.counts.TransactWriteCommand ?? 0) - before).toBe(1);
    expect((await approval(onA, approvalId)).status).toBe('revoked_by_policy');
    expect(ranFor(issue)).toBe(0);
  });

  it('the SDK’s wait throws ApprovalRevokedByPolicyError', async () => {
    const { eventId, issue } = await approvedOnA();
    const sdk = createClient({ baseUrl: onDeny.url, apiKey: KEYS.tenant1, fetch: contractFetch(onDeny) });

    const error = await sdk.waitForApprovalThenExecute(eventId, { timeout: 5_000 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ApprovalRevokedByPolicyError);
    expect((error as ApprovalRevokedByPolicyError).revocation).toEqual({
      approvedUnder: versionOf(onA),
      policyVersion: versionOf(onDeny),
      decision: 'deny',
      reason: 'deletes are frozen for the audit',
    });
    expect(ranFor(issue)).toBe(0);
  });

  it('MCP: oc_execute_approved answers revoked_by_policy (an error result), and so does oc_approval_status', async () => {
    const { eventId, issue } = await approvedOnA();
    const fetcher = contractFetch(onDeny);
    const client = new Client({ name: 'bound-agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${onDeny.url}/mcp`), {
        requestInit: { headers: { 'X-API-Key': KEYS.tenant1 } },
        fetch: (url: string | URL, init?: RequestInit) => fetcher(new Request(url, init)),
      }),
    );
    try {
      const executed = (await client.callTool({
        name: 'oc_execute_approved',
        arguments: { event_id: eventId },
      })) as Json;
      const status = (await client.callTool({
        name: 'oc_approval_status',
        arguments: { event_id: eventId },
      })) as Json;

      expect(executed.isError).toBe(true);
      expect(executed.structuredContent).toEqual({
        status: 'revoked_by_policy',
        event_id: eventId,
        reason: 'deletes are frozen for the audit',
        decision: 'deny',
        approved_under: versionOf(onA),
        policy_version: versionOf(onDeny),
      });
      expect(executed.content[0].text).toMatch(/policy changed.*Nothing ran/);
      expect(status.structuredContent).toMatchObject({ status: 'revoked_by_policy', event_id: eventId });
    } finally {
      await client.close();
    }
    expect(ranFor(issue)).toBe(0);
  });
});

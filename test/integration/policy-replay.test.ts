/**
 * `oc policy replay` (issue 24), the real CLI against a real archive: two tenants' chains written
 * in the chain's own format (bench/chain-fixture.ts), archived by the archiver to s3rver with a
 * signed checkpoint per bundle, then replayed under a candidate folder. The diff must equal a
 * brute-force re-evaluation of the same requests with the engine alone (none of replay's code),
 * whichever source it reads (the bucket, a downloaded copy, the live chain); `--fail-on` gates;
 * bad input is one line and exit 2; an archive that does not verify replays nothing.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { decidedFixtureFact, writeChainFixture } from '../../bench/chain-fixture.js';
import { localS3Client } from '../../bin/local/archive.js';
import { ACTION_SPECS } from '../../functions/connectors/registry.js';
import type { FactRecord } from '../../functions/core/evidence.js';
import { createPolicyEngine } from '../../functions/core/policy.js';
import type { ReplayReport } from '../../functions/core/replay.js';
import type { ToolCallRequest } from '../../functions/core/toolcall.js';
import { ArchiveCheckpointStore } from '../../functions/store/archive-checkpoints.js';
import { Archiver, s3ArchiveObjects } from '../../functions/store/archiver.js';
import { FileCheckpointSigner } from '../../functions/store/checkpoint-signer.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { defaultPolicyDir, loadPolicyBundle } from '../../functions/store/policy-files.js';
import { ensureTable } from '../../functions/store/table.js';
import { inBatches, runOc } from '../support/cli.js';
import { dynamoEndpoint } from '../support/stack.js';

const tmp = (name: string) => mkdtempSync(path.join(process.env.OC_TEST_TMP!, `${name}-`));
const s3Endpoint = () => process.env.OC_TEST_S3_ENDPOINT!;

const TENANTS = { tenant1: 700, tenant2: 450 } as const;
const table = `oc-replay-${process.pid}`;
const bucket = `oc-replay-${process.pid}`;
let env: Record<string, string>;
let candidate: string;

/** Every third entry of the chain is an execution, not a decision: replay reads past it. */
function chainFact(tenantId: string, seq: number): FactRecord {
  if (seq % 3 === 0)
    return {
      v: 1,
      tenant_id: tenantId,
      kind: 'toolcall.executed',
      event_id: `00000000-0000-4000-8000-${String(seq - 1).padStart(12, '0')}`,
      fact_id: `20000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
      at: new Date(Date.UTC(2026, 0, 1) + seq * 60_000).toISOString(),
      result: { status: 'ok' },
    };
  return decidedFixtureFact(tenantId, seq);
}

/** The candidate: tenant1's threshold 5 -> 3, posts to #ops need approval, issue.create floored to 8. */
function writeCandidate(): string {
  const dir = tmp('candidate');
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  const tenants = JSON.parse(readFileSync(path.join(dir, 'tenants.json'), 'utf8'));
  tenants.tenant1.max_risk_auto_approve = 3;
  writeFileSync(path.join(dir, 'tenants.json'), JSON.stringify(tenants));
  const actions = JSON.parse(readFileSync(path.join(dir, 'actions.json'), 'utf8'));
  writeFileSync(
    path.join(dir, 'actions.json'),
    JSON.stringify({ ...actions, risk_floors: { 'jira.issue.create': 8 } }),
  );
  writeFileSync(
    path.join(dir, 'policies.cedar'),
    `${readFileSync(path.join(dir, 'policies.cedar'), 'utf8')}
@id("approve-ops-posts")
@outcome("approve")
@reason("posts to #ops need approval")
permit (principal, action == Action::"slack.msg.post", resource)
when { context.resource_name == "#ops" };
`,
  );
  return dir;
}

/**
 * The expected diff, by brute force: each recorded request evaluated directly by the candidate's
 * engine (risk claim raised to the candidate's floor, `now` the time of the call); a record whose
 * recorded target differs from its canonical form is a target-derivation change.
 */
function bruteForce(dir: string, tenants: readonly string[]) {
  const bundle = loadPolicyBundle(dir);
  const engine = createPolicyEngine(bundle);
  const floors = new Map<string, number>(ACTION_SPECS.map((s) => [s.name, s.risk]));
  for (const [name, floor] of Object.entries(bundle.actions.risk_floors ?? {})) floors.set(name, floor);
  const counts = new Map<string, Map<string, number>>();
  const perDay = new Map<string, { before: number; after: number }>();
  const group = (tenant: string) => engine.tenant(tenant)?.approver_group ?? '';
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  let decisions = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const tenant of tenants)
    for (let seq = 1; seq <= TENANTS[tenant as keyof typeof TENANTS]; seq++) {
      const fact = chainFact(tenant, seq);
      if (fact.kind !== 'toolcall.decided') continue;
      decisions += 1;
      const at = Date.parse(fact.at);
      first = Math.min(first, at);
      last = Math.max(last, at);
      const r = fact.request as ToolCallRequest;
      const claimed = (fact.risk as { claimed: number }).claimed;
      const toolAction = `${r.tool}.${r.action}`;
      const legacy = toolAction === 'jira.issue.delete' && r.resource !== r.params.issue;
      const after = engine.evaluate({
        tenantId: tenant,
        agentId: r.agent_id,
        tool: r.tool,
        action: r.action,
        resource: legacy ? r.resource.toUpperCase() : r.resource,
        riskScore: Math.max(claimed, floors.get(toolAction) ?? 0),
        riskFactors: [],
        labels: {},
        userId: r.user_id,
        sessionId: '',
        now: new Date(at),
      });
      const g = perDay.get(group(tenant)) ?? { before: 0, after: 0 };
      if (fact.decision === 'approve') g.before += 1;
      if (after.decision === 'approve') g.after += 1;
      perDay.set(group(tenant), g);
      const transition = legacy
        ? 'target-derivation'
        : fact.decision !== after.decision
          ? `${String(fact.decision)}->${after.decision}`
          : undefined;
      if (!transition) continue;
      if (!counts.has(transition)) counts.set(transition, new Map());
      bump(counts.get(transition)!, `${tenant} ${toolAction}`);
    }
  const days = Math.max(1, (last - first) / 86_400_000);
  return {
    decisions,
    transitions: Object.fromEntries([...counts].map(([t, by]) => [t, Object.fromEntries(by)])),
    approvalsPerDay: Object.fromEntries(
      [...perDay]
        .filter(([, g]) => g.before + g.after > 0)
        .map(([name, g]) => [
          name,
          {
            before: Math.round((g.before / days) * 100) / 100,
            after: Math.round((g.after / days) * 100) / 100,
          },
        ]),
    ),
  };
}

/** What the replay reported, in the brute force's shape. */
function observed(report: ReplayReport) {
  return {
    decisions: report.decisions,
    transitions: Object.fromEntries(
      report.transitions.map((t) => [
        t.transition,
        Object.fromEntries(t.by.map((b) => [`${b.tenant_id} ${b.action}`, b.count])),
      ]),
    ),
    approvalsPerDay: Object.fromEntries(
      report.approvals_per_day.map((a) => [a.approver_group, { before: a.before, after: a.after }]),
    ),
  };
}

beforeAll(async () => {
  const client = new DynamoDBClient({ endpoint: dynamoEndpoint() });
  await ensureTable(client, table);
  client.destroy();
  const doc = createDocumentClient({ endpoint: dynamoEndpoint() });
  const s3 = localS3Client(s3Endpoint());
  try {
    for (const [tenant, count] of Object.entries(TENANTS))
      await writeChainFixture(doc, table, tenant, count, { fact: chainFact });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const report = await new Archiver({
      store: new ArchiveCheckpointStore(doc, table),
      objects: s3ArchiveObjects(s3, bucket),
      signer: FileCheckpointSigner.open(path.join(tmp('key'), 'evidence-signing-key.pem')),
      maxEntriesPerBundle: 250,
      events: {
        chainBroken: () => undefined,
        tenantFailed: () => undefined,
        archived: () => undefined,
        lag: () => undefined,
      },
    }).run();
    expect(report.ok).toBe(true);
  } finally {
    doc.destroy();
    s3.destroy();
  }
  env = {
    OC_S3_PORT: new URL(s3Endpoint()).port,
    OC_DYNAMODB_PORT: new URL(dynamoEndpoint()).port,
    OC_TABLE_NAME: table,
    OC_DATA_DIR: tmp('oc-data'),
  };
  candidate = writeCandidate();
});

describe('oc policy replay', () => {
  it('reports the diff a brute-force re-evaluation finds, from the bucket, a copy and the live chain alike', async () => {
    const copy = tmp('copy');
    const saved = await runOc(['verify', '--bucket', bucket, '--tenant', 'tenant1', '--save', copy], env);
    expect(saved.code).toBe(0);
    const [bucketRun, dirRun, tableRun] = await inBatches(
      [
        ['--bucket', bucket],
        ['--dir', copy, '--tenant', 'tenant1'],
        ['--table', table],
      ],
      3,
      (source) => runOc(['policy', 'replay', '--candidate', candidate, ...source, '--json'], env),
    );
    for (const run of [bucketRun!, dirRun!, tableRun!]) {
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
    }
    const fromBucket = JSON.parse(bucketRun!.stdout) as ReplayReport;
    const expected = bruteForce(candidate, ['tenant1', 'tenant2']);
    expect(observed(fromBucket)).toEqual(expected);
    // The candidate moves something on every axis it changed, and records from before derivation.
    expect(Object.keys(expected.transitions).sort()).toEqual(
      ['allow->approve', 'allow->deny', 'deny->approve', 'target-derivation'].sort(),
    );
    expect(fromBucket.tenants).toEqual([
      { tenant_id: 'tenant1', entries: 700, decisions: 467 },
      { tenant_id: 'tenant2', entries: 450, decisions: 300 },
    ]);
    expect(fromBucket.source).toBe(`s3://${bucket}`);
    const derivation = fromBucket.transitions.find((t) => t.transition === 'target-derivation')!;
    expect(derivation.to).toEqual({ approve: derivation.count });
    expect(derivation.examples[0]).toBe('00000000-0000-4000-8000-000000000101');
    expect(observed(JSON.parse(tableRun!.stdout))).toEqual(expected);
    expect(observed(JSON.parse(dirRun!.stdout))).toEqual(bruteForce(candidate, ['tenant1']));
  });

  it('finds no change but target derivation when the candidate is the live policy', async () => {
    const run = await runOc(
      ['policy', 'replay', '--candidate', defaultPolicyDir(), '--bucket', bucket, '--tenant', 'tenant2'],
      env,
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('replayed 300 decisions of tenant2 from s3://');
    expect(run.stdout).toMatch(/unchanged 297, changed 3\n/);
    expect(run.stdout).toMatch(/target-derivation\s+3\s+tenant2\s+jira\.issue\.delete\s+3\n/);
    expect(run.stdout).toMatch(/ops\s+\d+(\.\d+)?\s+\d+(\.\d+)?\n/);
  });

  it('--fail-on exits 1 naming the forbidden transitions that occurred, and 0 when none did', async () => {
    const [failing, passing] = await inBatches(
      ['allow->approve,deny->allow,target-derivation', 'approve->allow,deny->allow'],
      2,
      (failOn) =>
        runOc(['policy', 'replay', '--candidate', candidate, '--bucket', bucket, '--fail-on', failOn], env),
    );
    const expected = bruteForce(candidate, ['tenant1', 'tenant2']).transitions;
    const count = (t: string) => Object.values(expected[t] ?? {}).reduce((a, b) => a + b, 0);
    expect(failing!.code).toBe(1);
    expect(failing!.stderr).toBe(
      `oc: forbidden transitions occurred (--fail-on): allow->approve ${count('allow->approve')}, target-derivation ${count('target-derivation')}.\n`,
    );
    expect(failing!.stdout).toContain('allow->approve');
    expect(passing!.stderr).toBe('');
    expect(passing!.code).toBe(0);
  });

  it('refuses bad input with one line and exit 2, replaying nothing', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['--candidate', '/nonexistent/policy', '--bucket', 'b'],
        /^oc: --candidate \/nonexistent\/policy: no such policy folder\. See `oc policy replay --help`\.\n$/,
      ],
      [
        ['--bucket', 'b'],
        /^oc: required option '--candidate <dir>' not specified\. See `oc policy replay --help`\.\n$/,
      ],
      [
        ['--candidate', '.', '--bucket', 'b', '--fail-on', 'allow->maybe'],
        /^oc: option '--fail-on <transitions>' argument 'allow->maybe' is invalid\. "allow->maybe" is not a transition; use allow->approve, .*target-derivation\. See `oc policy replay --help`\.\n$/,
      ],
      [['--candidate', '.', '--bucket', 'b', '--fail-on', 'allow-approve'], /is not a transition/],
      [
        ['--candidate', 'CANDIDATE', '--bucket', 'BUCKET', '--tenant', 'nobody'],
        /^oc: tenant nobody has no evidence in s3:\/\/oc-replay-\d+; tenants there: tenant1, tenant2\. See `oc policy replay --help`\.\n$/,
      ],
      [
        ['--candidate', 'CANDIDATE', '--table', 'TABLE', '--tenant', 'nobody'],
        /^oc: tenant nobody has no evidence in table oc-replay-\d+ \(.*\); tenants there: tenant1, tenant2\. See/,
      ],
    ];
    const runs = await inBatches(cases, 3, ([args]) =>
      runOc(
        [
          'policy',
          'replay',
          ...args.map((a) =>
            a === 'CANDIDATE' ? candidate : a === 'BUCKET' ? bucket : a === 'TABLE' ? table : a,
          ),
        ],
        env,
      ),
    );
    runs.forEach((run, i) => {
      expect({ args: cases[i]![0], code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
        args: cases[i]![0],
        code: 2,
        stdout: '',
        stderr: expect.stringMatching(cases[i]![1]),
      });
    });
  });

  it('refuses a candidate the gateway would not load: one line, exit 1', async () => {
    const bad = tmp('bad-candidate');
    cpSync(defaultPolicyDir(), bad, { recursive: true });
    writeFileSync(path.join(bad, 'policies.cedar'), 'permit (principal, action, resource);\n');
    const run = await runOc(['policy', 'replay', '--candidate', bad, '--bucket', bucket], env);
    expect(run.stderr).toMatch(
      /^oc: the policy folder .* does not load: policies: policy `permit .*` has no @id\("\.\.\."\)\n$/,
    );
    expect(run.code).toBe(1);
  });

  it('replays nothing from an archive that does not verify', async () => {
    const s3 = localS3Client(s3Endpoint());
    const other = `${bucket}-tampered`;
    try {
      await s3.send(new CreateBucketCommand({ Bucket: other }));
      for (const key of ['evidence/public-key.pem', 'evidence/tenant2/checkpoints/000000000250.json']) {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        await s3.send(
          new PutObjectCommand({ Bucket: other, Key: key, Body: await out.Body!.transformToByteArray() }),
        );
      }
      const out = await s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: 'evidence/tenant2/000000000001-000000000250.json' }),
      );
      // A recorded decision rewritten after the fact.
      const text = (await out.Body!.transformToString()).replace('"decision":"deny"', '"decision":"allow"');
      await s3.send(
        new PutObjectCommand({
          Bucket: other,
          Key: 'evidence/tenant2/000000000001-000000000250.json',
          Body: text,
        }),
      );
    } finally {
      s3.destroy();
    }
    const run = await runOc(['policy', 'replay', '--candidate', candidate, '--bucket', other, '--json'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(
      /^oc: tenant tenant2's archive does not verify: evidence\/tenant2\/000000000001-000000000250\.json seq \d+: hash does not match the record .*; nothing is replayed from an archive that does not verify/,
    );
  });
});

/**
 * A proof per decision on the emulators (issue 23): `GET /v1/toolcalls/{event_id}/proof` answers
 * 409 with Retry-After before the archiver ran, and after it one tlog-proof per fact that verifies
 * offline with only the file and the public key (and the witness quorum of the local tlog-policy);
 * tenants, agents and approvers are walls; `oc proof` (from the table, and from the bucket alone)
 * and `oc verify --proof / --tlog-policy` end to end; a truncated or forked bucket cannot get the
 * witness's cosignature, so what it proves fails the policy.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { localArchiver, localS3Client } from '../../bin/local/archive.js';
import { startLocalWitness, type LocalWitness } from '../../bin/local/witness.js';
import { verifyFactProof } from '../../functions/core/decision-proof.js';
import { canon } from '../../functions/core/evidence.js';
import {
  checkpointBody,
  formatNote,
  parseCheckpointBody,
  parseNote,
  rawEd25519,
  signNote,
  verifierKey,
} from '../../functions/core/signed-note.js';
import { leafHash, rootFromLeaves } from '../../functions/core/tlog.js';
import { parseTlogPolicy } from '../../functions/core/tlog-policy.js';
import { s3ArchiveObjects } from '../../functions/store/archiver.js';
import { FileCheckpointSigner } from '../../functions/store/checkpoint-signer.js';
import { LogProofs } from '../../functions/store/log-proofs.js';
import { addCheckpointBody, HttpWitnesses, witnessStep } from '../../functions/store/witness-client.js';
import { tokenFor } from '../support/approvers.js';
import { runOc } from '../support/cli.js';
import { runGoVerifier } from '../support/go-verify.js';
import { witnessRequest } from '../support/witness-http.js';
import { dynamoEndpoint, KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';

const tmp = (name: string) => mkdtempSync(path.join(process.env.OC_TEST_TMP!, `${name}-`));
const AGENT_KEY = 'sk-test-proofs-agent-a';

let stack: TestStack;
let s3: S3Client;
let witness: LocalWitness;
let dynamo: DynamoDBClient;
let bucket: string;
let keyFile: string;
let publicKeyFile: string;
let policyFile: string;
let eventId: string;
let pubRaw: Buffer;

const archive = () =>
  localArchiver({
    doc: stack.state.doc,
    table: stack.config.tableName,
    s3,
    bucket,
    keyFile,
    witness: witnessStep(new HttpWitnesses([witness.config]), s3ArchiveObjects(s3, bucket)),
  }).archiver.run({ tenantId: 'tenant1' });

beforeAll(async () => {
  s3 = localS3Client(process.env.OC_TEST_S3_ENDPOINT!);
  bucket = `oc-proofs-${process.pid}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const dir = tmp('proof-keys');
  keyFile = path.join(dir, 'evidence-signing-key.pem');
  const pem = await FileCheckpointSigner.open(keyFile).publicKeyPem();
  pubRaw = rawEd25519(pem);
  publicKeyFile = path.join(dir, 'evidence-public-key.pem');
  writeFileSync(publicKeyFile, pem);
  dynamo = new DynamoDBClient({ endpoint: dynamoEndpoint() });
  stack = await startTestStack({
    consumers: true,
    overrides: { proofs: { proofs: new LogProofs(s3ArchiveObjects(s3, bucket)), retryAfterSec: 60 } },
  });
  witness = await startLocalWitness({
    port: 0,
    doc: stack.state.doc,
    client: dynamo,
    table: `witness-proofs-${process.pid}`,
    keyFile: path.join(dir, 'witness-key.pem'),
    logs: [{ name: 'local', key: pubRaw }],
  });
  policyFile = path.join(dir, 'tlog-policy.txt');
  writeFileSync(policyFile, `log ${verifierKey('local', pubRaw)}\nwitness w ${witness.vkey}\nquorum w\n`);
  await stack.state.apiKeys.put(AGENT_KEY, { tenantId: 'tenant1', agentId: 'agent-a' });
  const submitted = await stack.post('/v1/toolcalls', toolCall({ agent_id: 'agent-a' }), AGENT_KEY);
  expect(submitted.status).toBe(200);
  eventId = String(submitted.json?.event_id);
  // Another call after it, so that the tree has more than the event's own leaves.
  expect((await stack.post('/v1/toolcalls', toolCall({ agent_id: 'agent-b' }))).status).toBe(200);
  await stack.poller?.drained();
});
afterAll(async () => {
  await witness?.close();
  await stack?.stop();
  s3?.destroy();
  dynamo?.destroy();
});

const proofPath = () => `/v1/toolcalls/${eventId}/proof`;

describe('GET /v1/toolcalls/{event_id}/proof', () => {
  it('answers 409 with Retry-After (the archiver interval) before the facts are archived', async () => {
    const r = await stack.get(proofPath());
    expect(r.status).toBe(409);
    expect(r.headers['retry-after']).toBe('60');
    expect(r.json).toMatchObject({ code: 'CONFLICT', retryable: true });
    expect(String(r.json?.message)).toMatch(/not archived yet.*retry after the archiver's next run/);
  });

  it('after the archiver ran, gives one proof per fact that verifies with the file and the public key alone', async () => {
    const report = await archive();
    expect(report.ok).toBe(true);
    const r = await stack.get(proofPath());
    expect(r.status).toBe(200);
    const body = r.json as {
      facts: { seq: number; record: string; proof: string; kind: string }[];
      checkpoint: { note: string };
    };
    expect(body.facts.length).toBeGreaterThanOrEqual(1);
    expect(body.facts.map((f) => f.kind)).toContain('toolcall.decided');
    for (const fact of body.facts) {
      const verdict = verifyFactProof(fact.proof, { logKeys: [{ key: pubRaw }] });
      expect(verdict.problems).toEqual([]);
      expect(canon(verdict.record)).toBe(fact.record);
      expect(verdict.record?.event_id).toBe(eventId);
      // The witness cosigned the checkpoint the proof carries: the policy's quorum holds.
      const policy = parseTlogPolicy(readFileSync(policyFile, 'utf8'));
      expect(verifyFactProof(fact.proof, { logKeys: [], policy })).toMatchObject({
        ok: true,
        cosigners: ['w'],
      });
    }
  });

  it("an independent verifier (Go's sumdb/tlog and sumdb/note) accepts the bucket's log and the route's proofs", async () => {
    // The archive ran in the test before. What the archiver put under log/tenant1/, as a folder.
    const dir = tmp('go-log');
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'log/tenant1/' }));
    expect(listed.IsTruncated).toBeFalsy();
    for (const { Key } of listed.Contents ?? []) {
      const file = path.join(dir, Key!.slice('log/tenant1/'.length));
      mkdirSync(path.dirname(file), { recursive: true });
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
      writeFileSync(file, Buffer.from(await got.Body!.transformToByteArray()));
    }
    const r = await stack.get(proofPath());
    const facts = (r.json as { facts: { seq: number; record: string; proof: string }[] }).facts;
    const proofs = facts.map((f) => {
      const proof = path.join(dir, `${f.seq}.tlog-proof`);
      const record = path.join(dir, `${f.seq}.record`);
      writeFileSync(proof, f.proof);
      writeFileSync(record, f.record);
      return { proof, record };
    });
    const origin = 'local/t/tenant1';
    const go = runGoVerifier({
      dir,
      origin,
      vkey: verifierKey(origin, pubRaw),
      witnesses: [witness.vkey],
      proofs,
    });
    expect(go.lines.filter((l) => !l.startsWith('ok'))).toEqual([]);
    expect(go.code).toBe(0);
    expect(go.lines.filter((l) => l.startsWith('ok proof'))).toHaveLength(facts.length);
    // And it can fail: a record that is not the proven one.
    writeFileSync(proofs[0]!.record, facts[0]!.record.replace('"seq":', '"seq": '));
    expect(runGoVerifier({ dir, origin, vkey: verifierKey(origin, pubRaw), proofs }).code).not.toBe(0);
  });

  it('is a wall: another tenant, another agent, another tenant approver get 404; the tenant approver and a tenant-wide key get the proof', async () => {
    expect((await stack.get(proofPath(), KEYS.tenant2)).status).toBe(404);
    await stack.state.apiKeys.put('sk-test-proofs-agent-b', { tenantId: 'tenant1', agentId: 'agent-b' });
    expect((await stack.get(proofPath(), 'sk-test-proofs-agent-b')).status).toBe(404);
    expect((await stack.get(proofPath(), AGENT_KEY)).status).toBe(200);
    expect((await stack.get(proofPath(), KEYS.tenant1)).status).toBe(200);
    expect((await stack.request('GET', proofPath(), { token: await tokenFor('alice') })).status).toBe(200);
    expect((await stack.request('GET', proofPath(), { token: await tokenFor('bob') })).status).toBe(404);
    expect((await stack.request('GET', proofPath(), { key: null })).status).toBe(401);
    expect((await stack.request('GET', proofPath(), { token: 'a.b.c' })).status).toBe(401);
    expect((await stack.get('/v1/toolcalls/not-a-uuid/proof')).status).toBe(400);
    expect((await stack.get('/v1/toolcalls/00000000-0000-4000-8000-000000000000/proof')).status).toBe(404);
  });

  it('oc proof (from the table, and from the bucket alone) writes the files oc verify --proof checks offline, with the tlog-policy too', async () => {
    const env = {
      OC_S3_PORT: new URL(process.env.OC_TEST_S3_ENDPOINT!).port,
      OC_DYNAMODB_PORT: new URL(dynamoEndpoint()).port,
      OC_TABLE_NAME: stack.config.tableName,
      OC_EVIDENCE_BUCKET: bucket,
      OC_DATA_DIR: tmp('oc-data'),
    };
    const fromTable = tmp('proofs-table');
    const fromBucket = tmp('proofs-bucket');
    const [a, b] = await Promise.all([
      runOc(['proof', eventId, '--tenant', 'tenant1', '--out', fromTable], env),
      runOc(['proof', eventId, '--bucket', bucket, '--tenant', 'tenant1', '--out', fromBucket], env),
    ]);
    expect({ code: a.code, stderr: a.stderr }).toEqual({ code: 0, stderr: '' });
    expect({ code: b.code, stderr: b.stderr }).toEqual({ code: 0, stderr: '' });
    expect(a.stdout).toMatch(new RegExp(`wrote .*${eventId}\\.\\d+\\.tlog-proof`));
    const files = readdirSync(fromTable).sort();
    expect(readdirSync(fromBucket).sort()).toEqual(files);
    for (const f of files)
      expect(readFileSync(path.join(fromBucket, f), 'utf8')).toBe(
        readFileSync(path.join(fromTable, f), 'utf8'),
      );

    const file = path.join(fromTable, files[0]!);
    // Offline: nothing but the file and the key (no stack variables at all).
    const [ok, withPolicy, wrongKey, vkey] = await Promise.all([
      runOc(['verify', '--proof', file, '--public-key', publicKeyFile]),
      runOc(['verify', '--proof', file, '--tlog-policy', policyFile]),
      runOc(['verify', '--proof', file, '--vkey', verifierKey('local', Buffer.alloc(32, 7))]),
      runOc(['vkey', '--name', 'local', '--public-key', publicKeyFile]),
    ]);
    // The log's vkey, as a policy's log line names it.
    expect(vkey).toEqual({ code: 0, stdout: `${verifierKey('local', pubRaw)}\n`, stderr: '' });
    expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
    expect(ok.stdout).toMatch(
      /^ok: .*seq \d+ \(toolcall\.decided, event .*tenant tenant1\) is leaf \d+ of local\/t\/tenant1/,
    );
    expect({ code: withPolicy.code, stdout: withPolicy.stdout }).toEqual({
      code: 0,
      stdout: expect.stringMatching(/cosigned by w \(quorum w met\)/),
    });
    expect({ code: wrongKey.code, stdout: wrongKey.stdout }).toEqual({
      code: 1,
      stdout: expect.stringMatching(
        /FAILED: .*\n {2}- the checkpoint \(local\/t\/tenant1\) is not signed by the trusted log key/,
      ),
    });
    // The archive's published checkpoint carries the witness's cosignature: the policy holds on it too.
    const archived = await runOc(
      [
        'verify',
        '--bucket',
        bucket,
        '--tenant',
        'tenant1',
        '--public-key',
        publicKeyFile,
        '--tlog-policy',
        policyFile,
      ],
      env,
    );
    expect({ code: archived.code, stdout: archived.stdout }).toEqual({
      code: 0,
      stdout: expect.stringMatching(/log checkpoint size \d+: cosigned by w \(quorum w met\)/),
    });
  });

  it('a truncated or forked bucket gets no cosignature from the witness, so its proofs fail the policy', async () => {
    const objects = s3ArchiveObjects(s3, bucket);
    const published = (await objects.get('log/tenant1/checkpoint'))!.toString('utf8');
    const cp = parseCheckpointBody(parseNote(published).body);
    const goodProof = (await new LogProofs(objects).forFacts('tenant1', [])) as { status: string };
    expect(goodProof.status).toBe('proved');
    // The operator (who holds the log key) re-signs a shorter log, and a forked one of the same size.
    const signer = FileCheckpointSigner.open(keyFile);
    const sign = async (size: number, root: Buffer) => {
      const body = checkpointBody({ origin: cp.origin, size, root, extensions: [] });
      return formatNote(body, [await signNote(body, cp.origin, pubRaw, (m) => signer.sign(m))]);
    };
    const forgedLeaves = Array.from({ length: cp.size }, (_, i) => leafHash(Buffer.from(`forged ${i}`)));
    const truncated = await sign(cp.size - 1, rootFromLeaves(forgedLeaves.slice(0, cp.size - 1)));
    const forked = await sign(cp.size, rootFromLeaves(forgedLeaves));
    for (const note of [truncated, forked]) {
      const res = await witnessRequest(witness.url, '/add-checkpoint', {
        body: addCheckpointBody(cp.size, [], note),
      });
      // Truncated: old size above the new is a 400; asked from 0 it is a 409 with the witness size.
      expect([400, 409]).toContain(res.status);
      const from0 = await witnessRequest(witness.url, '/add-checkpoint', {
        body: addCheckpointBody(0, [], note),
      });
      expect({ status: from0.status, size: from0.text }).toEqual({
        status: 409,
        size: `${cp.size}\n`,
      });
    }
    // The forged checkpoint published in place of the real one: the bucket's proofs fail the policy.
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'log/tenant1/checkpoint', Body: forked }));
    try {
      const policy = parseTlogPolicy(readFileSync(policyFile, 'utf8'));
      const forgedProof = `c2sp.org/tlog-proof@v1\nextra ${Buffer.from('{"seq":1}').toString('base64')}\nindex 0\n\n${forked}`;
      const verdict = verifyFactProof(forgedProof, { logKeys: [], policy });
      expect(verdict.problems.join('; ')).toMatch(/do not meet the policy's quorum w \(verified: none\)/);
      const env = { OC_S3_PORT: new URL(process.env.OC_TEST_S3_ENDPOINT!).port, OC_DATA_DIR: tmp('oc-data') };
      const run = await runOc(
        [
          'verify',
          '--bucket',
          bucket,
          '--tenant',
          'tenant1',
          '--public-key',
          publicKeyFile,
          '--tlog-policy',
          policyFile,
        ],
        env,
      );
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/FAILED/);
    } finally {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'log/tenant1/checkpoint', Body: published }));
    }
  });
});

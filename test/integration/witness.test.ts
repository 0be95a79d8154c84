/**
 * The witness (C2SP tlog-witness) on DynamoDB Local behind a real loopback server, as `npm start`
 * runs it (bin/local/witness.ts), and the archiver's client of it (store/witness-client.ts):
 * cosignatures that verify; rollback and fork refused with 409 and the latest size; a bad proof
 * 422; unknown log 404; a checkpoint not signed by the log 403; malformed 400; the state persisted
 * before the answer; two concurrent add-checkpoints from the same size: exactly one wins; a
 * witness that is down never throws into the archiver; hostile bodies never a 5xx.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { startLocalWitness, type LocalWitness } from '../../bin/local/witness.js';
import {
  b64,
  checkpointBody,
  formatNote,
  parseNote,
  rawEd25519,
  signNote,
  verifyCosignature,
  verifierKey,
  parseVerifierKey,
  type Checkpoint,
} from '../../functions/core/signed-note.js';
import { consistencyProofFromLeaves, leafHash, rootFromLeaves } from '../../functions/core/tlog.js';
import { createDocumentClient } from '../../functions/store/dynamo.js';
import { Witness, WitnessStateStore } from '../../functions/store/witness.js';
import { witnessRoute } from '../../functions/handlers/witness.js';
import type { HttpEvent } from '../../functions/shared/http.js';
import {
  addCheckpointBody,
  HttpWitnesses,
  type WitnessEvents,
} from '../../functions/store/witness-client.js';
import { dynamoEndpoint } from '../support/stack.js';
import { witnessRequest } from '../support/witness-http.js';

const logKey = generateKeyPairSync('ed25519').privateKey;
const logRaw = rawEd25519(logKey);
const signWith = (k: KeyObject) => (m: Buffer) => Promise.resolve(sign(null, m, k));

const leaves = Array.from({ length: 40 }, (_, i) => leafHash(Buffer.from(`record ${i + 1}`)));
const forked = leaves.map((l, i) => (i === 20 ? leafHash(Buffer.from('forged')) : l));

let counter = 0;
/** A fresh tenant's origin per test: each test is its own log. */
const newOrigin = () => `local/t/tenant-${process.pid}-${++counter}`;

async function note(
  origin: string,
  size: number,
  from = leaves,
  key = logKey,
  name = origin, // the log's key name is its origin (C2SP)
): Promise<string> {
  const cp: Checkpoint = { origin, size, root: rootFromLeaves(from.slice(0, size)), extensions: [] };
  const body = checkpointBody(cp);
  return formatNote(body, [await signNote(body, name, rawEd25519(key), signWith(key))]);
}

let witness: LocalWitness;
let doc: ReturnType<typeof createDocumentClient>;
let client: DynamoDBClient;
const table = `witness-${process.pid}-${Date.now()}`;

beforeAll(async () => {
  client = new DynamoDBClient({ endpoint: dynamoEndpoint() });
  doc = createDocumentClient({ endpoint: dynamoEndpoint() });
  witness = await startLocalWitness({
    port: 0,
    doc,
    client,
    table,
    keyFile: path.join(mkdtempSync(path.join(process.env.OC_TEST_TMP!, 'witness-')), 'witness-key.pem'),
    logs: [{ name: 'local', key: logRaw }],
  });
});
afterAll(async () => {
  await witness.close();
  doc.destroy();
  client.destroy();
});

const post = (body: string) => witnessRequest(witness.url, '/add-checkpoint', { body });

const add = async (origin: string, oldSize: number, size: number, from = leaves) =>
  post(
    addCheckpointBody(
      oldSize,
      oldSize === 0 || oldSize === size ? [] : consistencyProofFromLeaves(oldSize, size, from),
      await note(origin, size, from),
    ),
  );

describe('the witness (add-checkpoint)', () => {
  it('cosigns a first checkpoint and each consistent one after it, with a type 0x04 cosignature that verifies', async () => {
    const origin = newOrigin();
    const key = parseVerifierKey(witness.vkey);
    for (const [oldSize, size] of [
      [0, 5],
      [5, 17],
      [17, 17],
      [17, 40],
    ] as const) {
      const r = await add(origin, oldSize, size);
      expect({ oldSize, size, status: r.status }).toEqual({ oldSize, size, status: 200 });
      const body = parseNote(await note(origin, size)).body;
      const sig = parseNote(`${body}\n${r.text}`).signatures[0]!;
      expect(sig.name).toBe('localhost/oc-witness');
      expect(verifyCosignature(body, sig, key.name, key.publicKey).ok).toBe(true);
    }
    // Persisted: the table holds the last size and root.
    expect(await new WitnessStateStore(doc, table).latest(origin)).toEqual({
      size: 40,
      root: rootFromLeaves(leaves),
    });
  });

  it('refuses a rollback with 409 and its latest size as text/x.tlog.size, and stores nothing', async () => {
    const origin = newOrigin();
    expect((await add(origin, 0, 30)).status).toBe(200);
    // The bucket was cut back to 20 entries: the log asks from size 0 or from 20; both are 409.
    for (const oldSize of [0, 20]) {
      const r = await post(addCheckpointBody(oldSize, [], await note(origin, 20)));
      expect(r).toEqual({ status: 409, text: '30\n', type: 'text/x.tlog.size' });
    }
    expect((await new WitnessStateStore(doc, table).latest(origin))?.size).toBe(30);
  });

  it('refuses a fork: another root at the cosigned size (409), or a proof from it that does not hold (422)', async () => {
    const origin = newOrigin();
    expect((await add(origin, 0, 30)).status).toBe(200);
    const sameSize = await post(addCheckpointBody(30, [], await note(origin, 30, forked)));
    expect(sameSize).toMatchObject({ status: 409, text: '30\n' });
    // A longer forked log: its consistency proof (from its own 30) does not lead from the witness's root.
    const longer = await post(
      addCheckpointBody(30, consistencyProofFromLeaves(30, 40, forked), await note(origin, 40, forked)),
    );
    expect(longer.status).toBe(422);
    expect(JSON.parse(longer.text)).toMatchObject({ code: 'VALIDATION_ERROR', retryable: false });
    expect((await new WitnessStateStore(doc, table).latest(origin))?.root).toEqual(
      rootFromLeaves(leaves.slice(0, 30)),
    );
  });

  it('answers 404 for an unknown log, 403 for a checkpoint the log did not sign, 400 for malformed or old > size', async () => {
    const origin = newOrigin();
    expect((await post(addCheckpointBody(0, [], await note('elsewhere/t/x', 3)))).status).toBe(404);
    const stranger = generateKeyPairSync('ed25519').privateKey;
    expect((await post(addCheckpointBody(0, [], await note(origin, 3, leaves, stranger)))).status).toBe(403);
    expect((await post(addCheckpointBody(9, [], await note(origin, 3)))).status).toBe(400);
    for (const body of [
      '',
      'old 0\n',
      `old 01\n\n${await note(origin, 3)}`,
      `old 0\nnot-base64\n\n${await note(origin, 3)}`,
    ])
      expect((await post(body)).status).toBe(400);
    const r = await witnessRequest(witness.url, '/add-checkpoint', { method: 'GET' });
    expect(r.status).toBe(405);
    expect((await witnessRequest(witness.url, '/elsewhere', { body: 'x' })).status).toBe(404);
    const huge = await post(`old 0\n\n${'x'.repeat(70 * 1024)}`);
    expect({ status: huge.status, code: (JSON.parse(huge.text) as { code: string }).code }).toEqual({
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    });
    expect(await new WitnessStateStore(doc, table).latest(origin)).toBeUndefined();
  });

  it('of two add-checkpoints from the same size, exactly one is cosigned; the other gets 409 with the winner size', async () => {
    const origin = newOrigin();
    expect((await add(origin, 0, 10)).status).toBe(200);
    const [a, b] = await Promise.all([add(origin, 10, 25), add(origin, 10, 33)]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([200, 409]);
    const winner = a.status === 200 ? 25 : 33;
    expect([a, b].find((r) => r.status === 409)?.text).toBe(`${winner}\n`);
    expect((await new WitnessStateStore(doc, table).latest(origin))?.size).toBe(winner);
  });

  it('persists before it answers: a state write that fails gives no cosignature (fail closed), and the conditional write lets one of two writers from the same state win', async () => {
    const origin = newOrigin();
    const store = new WitnessStateStore(doc, table);
    const failing = Object.assign(Object.create(store) as WitnessStateStore, {
      advance: () => Promise.reject(new Error('injected: DynamoDB unavailable')),
    });
    const faulty = new Witness({
      name: 'localhost/oc-witness',
      logs: [{ name: 'local', key: logRaw }],
      store: failing,
      signer: {
        publicKeyPem: () => Promise.resolve(''),
        sign: () => Promise.reject(new Error('must not sign')),
      },
    });
    const response = await witnessRoute(() => faulty)({
      rawPath: '/add-checkpoint',
      requestContext: { requestId: 'r', http: { method: 'POST' } },
      body: addCheckpointBody(0, [], await note(origin, 5)),
      isBase64Encoded: false,
    } as unknown as HttpEvent);
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toMatch(/—/);
    expect(await store.latest(origin)).toBeUndefined();
    // Two writers that both read "nothing yet": one put wins, the other is told it lost.
    const a = { size: 3, root: rootFromLeaves(leaves.slice(0, 3)) };
    const b = { size: 4, root: rootFromLeaves(leaves.slice(0, 4)) };
    const won = await Promise.all([
      store.advance(origin, undefined, a, new Date()),
      store.advance(origin, undefined, b, new Date()),
    ]);
    expect(won.filter(Boolean)).toHaveLength(1);
    const now = (await store.latest(origin))!;
    const next = { size: 9, root: rootFromLeaves(leaves.slice(0, 9)) };
    const both = await Promise.all([
      store.advance(origin, now, next, new Date()),
      store.advance(origin, now, { ...next, size: 10 }, new Date()),
    ]);
    expect(both.filter(Boolean)).toHaveLength(1);
  });

  it('never answers a 5xx to hostile bodies, and stores nothing for them', async () => {
    const origin = newOrigin();
    const good = await note(origin, 4);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.string({ maxLength: 40 }).map((s) => `old ${s}\n\n${good}`),
          fc.string({ maxLength: 80 }).map((s) => `old 0\n${s}\n\n${good}`),
          fc.string({ maxLength: 80 }).map((s) => `old 0\n\n${good}${s}`),
          fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u).toString('latin1')),
        ),
        async (body) => {
          const r = await post(body);
          expect(r.status).toBeLessThan(500);
        },
      ),
      { numRuns: 60 },
    );
    // Only a well-formed first checkpoint could have been stored.
    const state = await new WitnessStateStore(doc, table).latest(origin);
    expect(state === undefined || state.size === 4).toBe(true);
  });
});

describe("the archiver's witness client", () => {
  const recorder = () => {
    const seen = { failed: [] as string[], ahead: [] as number[] };
    const events: WitnessEvents = {
      failed: (_w, _o, reason) => void seen.failed.push(reason),
      ahead: (_w, _o, theirs) => void seen.ahead.push(theirs),
    };
    return { seen, events };
  };
  const input = async (origin: string, oldSize: number, size: number, from = leaves) => {
    const text = await note(origin, size, from);
    const body = parseNote(text).body;
    return {
      note: text,
      checkpoint: { origin, size, root: rootFromLeaves(from.slice(0, size)), extensions: [] },
      oldSize,
      consistency: (old: number) => Promise.resolve(consistencyProofFromLeaves(old, size, from)),
      body,
    };
  };

  it('gets verified cosignature lines, and proves from the witness size when the witness missed a checkpoint', async () => {
    const origin = newOrigin();
    const { seen, events } = recorder();
    const witnesses = new HttpWitnesses([witness.config], { events });
    const first = await input(origin, 0, 8);
    const lines = await witnesses.cosign(first);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^— localhost\/oc-witness [A-Za-z0-9+/]+=*\n$/);
    // The log published 20 without this witness (it was down); now it publishes 35 from 20.
    const later = await input(origin, 20, 35);
    expect(await witnesses.cosign(later)).toHaveLength(1);
    expect(seen.failed).toEqual([]);
    expect((await new WitnessStateStore(doc, table).latest(origin))?.size).toBe(35);
  });

  it('reports, never throws, when a witness is down or holds a longer log than the one published', async () => {
    const origin = newOrigin();
    const { seen, events } = recorder();
    const down = { name: 'down', url: 'http://127.0.0.1:9', vkey: witness.vkey };
    const witnesses = new HttpWitnesses([down, witness.config], { events, timeoutMs: 2000 });
    expect(await witnesses.cosign(await input(origin, 0, 30))).toHaveLength(1);
    expect(seen.failed).toHaveLength(1);
    // A truncated bucket: the log now publishes 12; the witness holds 30.
    expect(await new HttpWitnesses([witness.config], { events }).cosign(await input(origin, 0, 12))).toEqual(
      [],
    );
    expect(seen.ahead).toEqual([30]);
  });

  it('ignores an answer that is not a valid cosignature by the configured key', async () => {
    const origin = newOrigin();
    const { seen, events } = recorder();
    // A vkey whose id does not match its key is refused outright.
    expect(() =>
      parseVerifierKey(`localhost/oc-witness+00000000+${b64(Buffer.concat([Buffer.from([4]), logRaw]))}`),
    ).toThrow();
    // The witness answers, but with another key than the one configured: nothing is kept.
    const wrong = generateKeyPairSync('ed25519').privateKey;
    const misconfigured = {
      ...witness.config,
      vkey: verifierKey('localhost/oc-witness', rawEd25519(wrong), 0x04),
    };
    expect(await new HttpWitnesses([misconfigured], { events }).cosign(await input(origin, 0, 3))).toEqual(
      [],
    );
    expect(seen.failed.join()).toMatch(/no cosignature in the answer verifies/);
  });
});

/**
 * A bounded fault run against the real `npm start` process (what an operator runs): for a fixed
 * time, 16 workers send a mix of valid calls (allow, deny, approve then decide and execute),
 * racing duplicates (one idempotency key sent twice at once) and hostile requests (the kinds the
 * hardening issue found), and once, mid-run, DynamoDB Local's Java process is killed with SIGKILL.
 * Afterwards: every call that was answered 200 must exist with its facts sealed (none lost), each
 * racing pair must be one event run once (none duplicated), hostile requests must all be 4xx, no
 * 5xx may fall outside the outage (from the kill until /readyz answers 200 again), and
 * `oc verify` must pass for every tenant.
 *
 * `npx tsx bench/fault-run.ts [--seconds 40]` prints the figures; `npm run bench` runs it too.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../bin/local/emulators.js';
import { signDevToken } from '../functions/store/approver-tokens.js';

export interface FaultRunResult {
  seconds: number;
  requests: number;
  byKind: Record<string, number>;
  accepted: number;
  hostile: number;
  hostileNot4xx: number;
  fiveXxInOutage: number;
  fiveXxOutsideOutage: number;
  /** Answered 200, gone afterwards, outside the emulator's kill window. */
  lost: number;
  /** Answered 200 within KILL_WINDOW_MS of DynamoDB Local's SIGKILL, gone afterwards (the emulator's durability). */
  lostAtKill: number;
  duplicated: number;
  unsealed: number;
  outageMs: number;
  readyz503AfterMs: number | undefined;
  verified: Record<string, boolean>;
}

/** What the run reads from an answer. */
interface Answer {
  event_id?: string;
  approval?: { id: string };
}

/** How close to the SIGKILL an acknowledged write may be lost by DynamoDB Local itself. */
export const KILL_WINDOW_MS = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function javaPid(dynamoPort: number): number | undefined {
  // The Java process itself, not the shell guardian whose command line names it too.
  const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  const row = ps.stdout
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(.*)$/.exec(l))
    .find((m) => m?.[2]?.startsWith('java ') && m[2].includes(`DynamoDBLocal.jar -port ${dynamoPort} `));
  return row ? Number(row[1]) : undefined;
}

export async function faultRun(options: {
  seconds: number;
  log?: (line: string) => void;
}): Promise<FaultRunResult> {
  const log = options.log ?? ((line: string) => console.error(`[fault-run] ${line}`));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'oc-fault-run-'));
  // Four different ports: the OS may hand the same free port out twice in a row.
  const distinct = new Set<number>();
  while (distinct.size < 4) distinct.add(await freePort());
  const [api, dynamodb, sqs, s3] = [...distinct] as [number, number, number, number];
  const ports = { PORT: api, OC_DYNAMODB_PORT: dynamodb, OC_AWS_PORT: sqs, OC_S3_PORT: s3 };
  const base = `http://127.0.0.1:${ports.PORT}`;
  const env = {
    ...process.env,
    ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    OC_DATA_DIR: dataDir,
    OC_RATE_LIMIT_PER_SEC: '100000',
    OC_RATE_LIMIT_BURST: '200000',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  };
  const stack = spawn('node', ['bin/oc.js', 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  stack.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  stack.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const readyz = async () => {
    try {
      const r = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(3000) });
      await r.text();
      return r.status;
    } catch {
      return 0;
    }
  };
  try {
    for (let i = 0; (await readyz()) !== 200; i++) {
      if (stack.exitCode !== null || i > 600) throw new Error(`npm start did not come up:\n${output}`);
      await sleep(100);
    }
    const alice = await signDevToken({ tenantId: 'tenant1', email: 'alice@acme.example' });
    const keys = { tenant1: 'sk-test-key-1', tenant2: 'sk-test-key-2' } as const;

    let requests = 0;
    const byKind: Record<string, number> = {};
    const answers: { at: number; status: number; kind: string }[] = [];
    const accepted = new Map<string, string>(); // event id -> tenant key
    const acceptedAt = new Map<string, { at: number; kind: string }>();
    const accept = (eventId: string | undefined, key: string, kind: string) => {
      if (eventId === undefined) throw new Error(`a 200 answer without an event_id (${kind})`);
      accepted.set(eventId, key);
      acceptedAt.set(eventId, { at: Date.now(), kind });
    };
    const races: { key: string; events: (string | undefined)[]; tenantKey: string }[] = [];
    let hostile = 0;
    let hostileNot4xx = 0;
    const send = async (
      kind: string,
      url: string,
      init: RequestInit,
    ): Promise<{ status: number; json: Answer }> => {
      requests += 1;
      byKind[kind] = (byKind[kind] ?? 0) + 1;
      try {
        const r = await fetch(base + url, { ...init, signal: AbortSignal.timeout(40_000) });
        const text = await r.text();
        answers.push({ at: Date.now(), status: r.status, kind });
        let json: Answer = {};
        try {
          json = JSON.parse(text) as Answer;
        } catch {
          // not JSON (a probe's text): nothing to read from it
        }
        return { status: r.status, json };
      } catch {
        answers.push({ at: Date.now(), status: 0, kind });
        return { status: 0, json: {} };
      }
    };
    const agent = (key: string) => ({ 'X-API-Key': key, 'Content-Type': 'application/json' });
    const approver = { Authorization: `Bearer ${alice}`, 'Content-Type': 'application/json' };
    const call = (n: number, over: Record<string, unknown>) =>
      JSON.stringify({ agent_id: 'agent-1', idempotency_key: `fault-${n}`, ...over });
    const hostileRequests: [string, RequestInit][] = [
      [
        '/v1/toolcalls',
        {
          method: 'POST',
          headers: agent(keys.tenant1),
          body: '{"agent_id":"a","tool":"slack","action":"msg.post","idempotency_key":"h","params":{"n":12345678901234567890}}',
        },
      ],
      [
        '/v1/toolcalls',
        { method: 'POST', headers: { ...agent(keys.tenant1), 'Content-Type': 'text/plain' }, body: '{}' },
      ],
      [
        '/v1/toolcalls',
        {
          method: 'POST',
          headers: agent(keys.tenant1),
          body: '{"agent_id":"a","tool":"jira","action":"issue.delete","idempotency_key":"h2","user_id":"alice@acme.example\\u200b"}',
        },
      ],
      ['/v1/toolcalls/%ZZ', { headers: agent(keys.tenant1) }],
      ['/v1/toolcalls/%C0%AF/execute', { method: 'POST', headers: agent(keys.tenant1) }],
      ['/v1/approvals/%E0%A4%A', { headers: approver }],
      [
        '/v1/approvals?cursor=eyJnc2kxcGsiOiJUI3RlbmFudDEjQVBSI3BlbmRpbmciLCJnc2kxc2siOiIiLCJwayI6IlQjdGVuYW50MSNBUFIjeCIsInNrIjoiQVBQUk9WQUwifQ',
        { headers: approver },
      ],
      [
        '/v1/toolcalls',
        { method: 'POST', headers: agent('sk-wrong'), body: call(-1, { tool: 'slack', action: 'msg.post' }) },
      ],
      [
        '/v1/toolcalls',
        {
          method: 'POST',
          headers: agent(keys.tenant1),
          body: '{"tenant_id":"tenant2","agent_id":"a","tool":"slack","action":"msg.post","idempotency_key":"x"}',
        },
      ],
    ];
    const pendingApprovals: { approvalId: string; eventId: string }[] = [];
    // An approval comment or reason that could not be sealed: refused, the approval untouched.
    const poisonDecision = (approvalId: string): [string, RequestInit] => [
      `/v1/approvals/${approvalId}/approve`,
      { method: 'POST', headers: approver, body: '{"comment":"\\ud800"}' },
    ];

    let n = 0;
    let killedAt: number | undefined;
    let backAt: number | undefined;
    let readyz503At: number | undefined;
    const until = Date.now() + options.seconds * 1000;
    const killAfter = Date.now() + (options.seconds * 1000) / 3;
    const fault = (async () => {
      await sleep(Math.max(0, killAfter - Date.now()));
      const pid = javaPid(ports.OC_DYNAMODB_PORT);
      if (!pid) throw new Error('no DynamoDB Local java process to kill');
      process.kill(pid, 'SIGKILL');
      killedAt = Date.now();
      log(`SIGKILL to DynamoDB Local (java pid ${pid})`);
      while ((await readyz()) !== 503 && Date.now() - killedAt < 30_000) await sleep(20);
      readyz503At = Date.now();
      while ((await readyz()) !== 200) await sleep(50);
      backAt = Date.now();
      log(`ready again after ${backAt - killedAt} ms`);
    })();
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        while (Date.now() < until) {
          const i = n++;
          const slot = i % 10;
          const tenantKey = i % 3 === 0 ? keys.tenant2 : keys.tenant1;
          if (slot < 4) {
            const over = [
              {
                tool: 'slack',
                action: 'msg.post',
                params: { channel: '#general', text: `hi ${i}` },
                risk_score: 2,
              },
              { tool: 'unknown', action: 'do.something', risk_score: 2 },
              { tool: 'jira', action: 'issue.delete', resource: `OPS-${i + 1}`, risk_score: 3 },
              {
                tool: 'slack',
                action: 'msg.post',
                params: { channel: '#general', text: `big ${i}` },
                risk_score: 9,
              },
            ][i % 4]!;
            const r = await send('valid', '/v1/toolcalls', {
              method: 'POST',
              headers: agent(tenantKey),
              body: call(i, over),
            });
            if (r.status === 200) {
              accept(r.json.event_id, tenantKey, `valid ${(over as { tool: string }).tool}`);
              if (r.json.approval && tenantKey === keys.tenant1)
                pendingApprovals.push({ approvalId: r.json.approval.id, eventId: r.json.event_id! });
            }
          } else if (slot === 4) {
            // Racing duplicates: one key, twice at once.
            const body = call(i, {
              tool: 'slack',
              action: 'msg.post',
              params: { channel: '#x', text: `race ${i}` },
              risk_score: 2,
            });
            const pair = await Promise.all(
              [1, 2].map(() =>
                send('race', '/v1/toolcalls', { method: 'POST', headers: agent(tenantKey), body }),
              ),
            );
            races.push({
              key: `fault-${i}`,
              events: pair.map((r) => (r.status === 200 ? r.json.event_id : undefined)),
              tenantKey,
            });
            for (const r of pair) if (r.status === 200) accept(r.json.event_id, tenantKey, 'race');
          } else if (slot < 8) {
            const [url, init] =
              slot === 7 && pendingApprovals.length > 0
                ? poisonDecision(pendingApprovals[i % pendingApprovals.length]!.approvalId)
                : hostileRequests[i % hostileRequests.length]!;
            const r = await send('hostile', url, init);
            // 0 (no answer) and 5xx are judged with the outage below.
            if (r.status >= 200 && r.status < 500) {
              hostile += 1;
              if (r.status < 400) hostileNot4xx += 1;
            }
          } else {
            const p = pendingApprovals.shift();
            if (!p) continue;
            const d = await send('decide', `/v1/approvals/${p.approvalId}/${i % 2 ? 'approve' : 'deny'}`, {
              method: 'POST',
              headers: approver,
              body: JSON.stringify(i % 2 ? { comment: 'ok' } : { reason: 'no' }),
            });
            if (d.status === 200 || d.status === 409) {
              const e = await send('execute', `/v1/toolcalls/${p.eventId}/execute`, {
                method: 'POST',
                headers: agent(keys.tenant1),
              });
              if (e.status === 200) accept(e.json.event_id, keys.tenant1, 'execute');
            } else pendingApprovals.push(p);
          }
          void w;
        }
      }),
    );
    await fault;
    const outageEnd = (backAt ?? Date.now()) + 2000; // answers in flight when it came back
    const inOutage = (at: number) => killedAt !== undefined && at >= killedAt && at <= outageEnd;
    const fiveXx = answers.filter((a) => a.status >= 500 || a.status === 0);
    const fiveXxInOutage = fiveXx.filter((a) => inOutage(a.at)).length;
    const fiveXxOutsideOutage = fiveXx.length - fiveXxInOutage;

    // Every accepted call exists, with every fact sealed (allow the sequencer to catch up).
    let lost = 0;
    let lostAtKill = 0;
    let unsealed = 0;
    const deadline = Date.now() + 120_000;
    for (const [eventId, key] of accepted) {
      for (;;) {
        const r = await fetch(`${base}/v1/toolcalls/${eventId}`, { headers: { 'X-API-Key': key } });
        const json = (await r.json()) as { evidence?: { status: string }[] };
        if (r.status === 404) {
          const a = acceptedAt.get(eventId);
          // DynamoDB Local acknowledges a write before it is durable against its own death: what
          // it acknowledged in the last moments before its SIGKILL can be gone after the restart
          // (reproduced with DynamoDB Local alone). DynamoDB acknowledges only durable writes.
          if (a && killedAt !== undefined && Math.abs(a.at - killedAt) <= KILL_WINDOW_MS) lostAtKill += 1;
          else lost += 1;
          log(
            `lost: ${eventId} (${a?.kind}, answered 200 at kill ${a && killedAt ? a.at - killedAt : '?'} ms)`,
          );
          break;
        }
        if (json.evidence?.every((f) => f.status === 'sealed')) break;
        if (Date.now() > deadline) {
          unsealed += 1;
          break;
        }
        await sleep(100);
      }
    }
    // A racing pair is one event: whatever answered 200 names the same event, whose tool ran once.
    let duplicated = 0;
    for (const race of races) {
      const ids = new Set(race.events.filter((e): e is string => e !== undefined));
      if (ids.size > 1) duplicated += 1;
      for (const id of ids) {
        const r = await fetch(`${base}/v1/toolcalls/${id}`, { headers: { 'X-API-Key': race.tenantKey } });
        const json = (await r.json()) as { evidence: { kind: string }[] };
        if (json.evidence.filter((f) => f.kind === 'toolcall.executed').length > 1) duplicated += 1;
      }
    }
    const verified: Record<string, boolean> = {};
    for (const tenant of ['tenant1', 'tenant2']) {
      // Calls cut off by the outage after their tool ran are reported (never hidden) and listed, not failed on.
      const v = spawnSync('node', ['bin/oc.js', 'verify', '--tenant', tenant, '--allow-unresolved'], {
        env,
        encoding: 'utf8',
      });
      verified[tenant] = v.status === 0;
      log(`oc verify --tenant ${tenant}: exit ${v.status} ${v.stdout.trim().split('\n').slice(-1)[0] ?? ''}`);
    }
    return {
      seconds: options.seconds,
      requests,
      byKind,
      accepted: accepted.size,
      hostile,
      hostileNot4xx,
      fiveXxInOutage,
      fiveXxOutsideOutage,
      lost,
      lostAtKill,
      duplicated,
      unsealed,
      outageMs: killedAt !== undefined && backAt !== undefined ? backAt - killedAt : -1,
      readyz503AfterMs:
        killedAt !== undefined && readyz503At !== undefined ? readyz503At - killedAt : undefined,
      verified,
    };
  } finally {
    stack.kill('SIGTERM');
    await new Promise((resolve) =>
      stack.exitCode !== null ? resolve(undefined) : stack.once('exit', resolve),
    );
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '40' } } });
  const result = await faultRun({ seconds: Number(values.seconds) });
  console.log(JSON.stringify(result, null, 2));
  const ok =
    result.fiveXxOutsideOutage === 0 &&
    result.lost === 0 &&
    result.duplicated === 0 &&
    result.unsealed === 0 &&
    result.hostileNot4xx === 0 &&
    Object.values(result.verified).every(Boolean);
  process.exit(ok ? 0 : 1);
}

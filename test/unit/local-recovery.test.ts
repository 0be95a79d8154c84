/**
 * The local stack's behaviour around a dead dependency, with an injected clock: backoff, the
 * rate-limited failure log, the restart policy, readiness caching and the `/readyz` body; and the
 * port checks `npm start` makes before it starts anything.
 */
import net from 'node:net';
import { Backoff, FailureLog, RestartPolicy, describeError } from '../../bin/local/backoff.js';
import { freePort } from '../../bin/local/emulators.js';
import { Readiness, readyzResponse, type ReadinessPart } from '../../bin/local/readiness.js';
import { StartError, checkPortsFree, readPorts, webhookBanner } from '../../bin/local/stack.js';
import { assertMatchesContract } from '../support/contract.js';

function fakeClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('Backoff', () => {
  it('doubles from the initial wait up to the cap, and starts over after a success', () => {
    const backoff = new Backoff({ initialMs: 200, maxMs: 5000 });
    expect(Array.from({ length: 8 }, () => backoff.fail())).toEqual([
      200, 400, 800, 1600, 3200, 5000, 5000, 5000,
    ]);
    expect(backoff.consecutiveFailures).toBe(8);
    backoff.succeed();
    expect(backoff.fail()).toBe(200);
  });

  it('takes another factor', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000, factor: 3 });
    expect([backoff.fail(), backoff.fail(), backoff.fail()]).toEqual([100, 300, 900]);
  });
});

describe('FailureLog', () => {
  const setup = () => {
    const clock = fakeClock();
    const lines: string[] = [];
    const failures = new FailureLog({
      what: 'poller',
      log: (l) => lines.push(l),
      clock,
      summaryEveryMs: 5000,
    });
    return { clock, lines, failures };
  };

  it('logs the first failure at once, then at most one summary per interval, then the recovery', () => {
    const { clock, lines, failures } = setup();
    failures.failure(new Error('connect ECONNREFUSED 127.0.0.1:8400'));
    expect(lines).toEqual(['poller failing: connect ECONNREFUSED 127.0.0.1:8400']);
    // 1,000 errors in the next 20 s, one every 20 ms.
    for (let i = 0; i < 1000; i++) {
      clock.advance(20);
      failures.failure(new Error(i < 999 ? 'connect ECONNREFUSED 127.0.0.1:8400' : 'socket hang up'));
    }
    expect(lines).toHaveLength(1 + 4);
    expect(lines[1]).toBe(
      'poller still failing: 250 errors in the last 5 s: connect ECONNREFUSED 127.0.0.1:8400',
    );
    expect(lines[4]).toBe('poller still failing: 250 errors in the last 5 s: socket hang up');
    clock.advance(1500);
    failures.success();
    expect(lines[5]).toBe('poller recovered after 1001 errors in 21.5 s');
    expect(lines).toHaveLength(6);
  });

  it('says nothing while all is well, and reports its status', () => {
    const { clock, lines, failures } = setup();
    failures.success();
    expect(lines).toEqual([]);
    expect(failures.status()).toEqual({ ok: true });
    const since = clock.now();
    failures.failure(new Error('boom'));
    clock.advance(100);
    failures.failure(new Error('bang'));
    expect(failures.status()).toEqual({ ok: false, sinceMs: since, errors: 2, message: 'bang' });
    failures.success();
    expect(failures.status()).toEqual({ ok: true });
    expect(lines).toEqual(['poller failing: boom', 'poller recovered after 2 errors in 0.1 s']);
  });

  it('counts in the singular too', () => {
    const { clock, lines, failures } = setup();
    failures.failure(new Error('a'));
    clock.advance(6000);
    failures.failure(new Error('a'));
    expect(lines).toEqual(['poller failing: a', 'poller still failing: 1 error in the last 6 s: a']);
  });

  it('a second outage is logged as new', () => {
    const { clock, lines, failures } = setup();
    failures.failure(new Error('a'));
    failures.success();
    clock.advance(10);
    failures.failure(new Error('b'));
    expect(lines).toEqual([
      'poller failing: a',
      'poller recovered after 1 error in 0 s',
      'poller failing: b',
    ]);
  });
});

describe('describeError', () => {
  it('falls back to the code, then the name, for errors without a message', () => {
    expect(describeError(new Error('x'))).toBe('x');
    expect(describeError(Object.assign(new Error(''), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(describeError(new AggregateError([new Error('connect ECONNREFUSED ::1:8000')], ''))).toBe(
      'connect ECONNREFUSED ::1:8000',
    );
    expect(describeError('text')).toBe('text');
  });
});

describe('RestartPolicy', () => {
  const policy = (maxRestarts: number, clock = fakeClock()) => ({
    clock,
    policy: new RestartPolicy({
      maxRestarts,
      windowMs: 60_000,
      backoff: { initialMs: 1000, maxMs: 15_000 },
      clock,
    }),
  });

  it('restarts with growing delays up to the bound, then gives up', () => {
    const { clock, policy: p } = policy(3);
    const decisions = [];
    for (let i = 0; i < 4; i++) {
      decisions.push(p.died());
      clock.advance(2000);
    }
    expect(decisions).toEqual([
      { action: 'restart', attempt: 1, of: 3, delayMs: 1000 },
      { action: 'restart', attempt: 2, of: 3, delayMs: 2000 },
      { action: 'restart', attempt: 3, of: 3, delayMs: 4000 },
      { action: 'give-up', deaths: 4, withinMs: 6000 },
    ]);
  });

  it('forgets deaths older than the window: a process that stayed up starts over', () => {
    const { clock, policy: p } = policy(2);
    expect(p.died()).toMatchObject({ action: 'restart', attempt: 1, delayMs: 1000 });
    clock.advance(1000);
    expect(p.died()).toMatchObject({ action: 'restart', attempt: 2, delayMs: 2000 });
    clock.advance(61_000);
    expect(p.died()).toEqual({ action: 'restart', attempt: 1, of: 2, delayMs: 1000 });
  });

  it('with 0 restarts gives up at the first death', () => {
    expect(policy(0).policy.died()).toEqual({ action: 'give-up', deaths: 1, withinMs: 0 });
  });
});

describe('Readiness', () => {
  const part = (name: ReadinessPart['name'], outcome: () => Promise<void>) => {
    const calls = { n: 0 };
    return { calls, part: { name, check: () => (calls.n++, outcome()) } satisfies ReadinessPart };
  };

  it('probes every part, reuses the answer for a second, and probes once for concurrent askers', async () => {
    const clock = fakeClock();
    let down = true;
    const dynamo = part('dynamodb', async () => {
      if (down) throw new Error('connect ECONNREFUSED 127.0.0.1:8400');
    });
    const sqs = part('sqs', async () => undefined);
    const readiness = new Readiness([dynamo.part, sqs.part], { clock });
    const [a, b] = await Promise.all([readiness.check(), readiness.check()]);
    expect(a).toBe(b);
    expect(a).toEqual({
      ready: false,
      parts: [
        { name: 'dynamodb', ok: false, detail: 'connect ECONNREFUSED 127.0.0.1:8400' },
        { name: 'sqs', ok: true },
      ],
    });
    down = false;
    clock.advance(999);
    expect((await readiness.check()).ready).toBe(false);
    expect(dynamo.calls.n).toBe(1);
    clock.advance(1);
    expect(await readiness.check()).toEqual({
      ready: true,
      parts: [
        { name: 'dynamodb', ok: true },
        { name: 'sqs', ok: true },
      ],
    });
    expect([dynamo.calls.n, sqs.calls.n]).toEqual([2, 2]);
  });

  it('logs when it stops being ready and when it is again, not at every probe', async () => {
    const clock = fakeClock();
    const lines: string[] = [];
    let down = false;
    const dynamo = part('dynamodb', async () => {
      if (down) throw new Error('connect ECONNREFUSED 127.0.0.1:8400');
    });
    const readiness = new Readiness([dynamo.part], { clock, log: (l) => lines.push(l) });
    const probe = async () => (clock.advance(1000), readiness.check());
    await probe();
    down = true;
    for (let i = 0; i < 10; i++) await probe();
    down = false;
    await probe();
    expect(lines).toEqual([
      '[oc] /readyz failing: dynamodb: connect ECONNREFUSED 127.0.0.1:8400',
      '[oc] /readyz recovered after 10 errors in 10 s',
    ]);
  });

  it('counts a part that does not answer in time as down', async () => {
    const hung = part('s3', () => new Promise<void>(() => undefined));
    const report = await new Readiness([hung.part], { timeoutMs: 20 }).check();
    expect(report).toEqual({
      ready: false,
      parts: [{ name: 's3', ok: false, detail: 'no answer within 20 ms' }],
    });
  });
});

describe('/readyz answers', () => {
  it('200 OK as text when ready', () => {
    const response = readyzResponse({ ready: true, parts: [{ name: 'dynamodb', ok: true }] });
    expect(response).toEqual({
      statusCode: 200,
      headers: {
        'Content-Type': 'text/plain',
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
      },
      body: 'OK',
    });
  });

  it('503 with a JSON body naming each part, as the contract documents', () => {
    const response = readyzResponse({
      ready: false,
      parts: [
        { name: 'dynamodb', ok: false, detail: 'connect ECONNREFUSED 127.0.0.1:8400' },
        { name: 'stream-poller', ok: true },
      ],
    });
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body ?? '')).toEqual({
      status: 'unavailable',
      parts: [
        { name: 'dynamodb', ok: false, detail: 'connect ECONNREFUSED 127.0.0.1:8400' },
        { name: 'stream-poller', ok: true },
      ],
    });
    expect(() =>
      assertMatchesContract({
        method: 'GET',
        path: '/readyz',
        status: 503,
        headers: response.headers as Record<string, string>,
        body: response.body ?? '',
      }),
    ).not.toThrow();
  });
});

describe('npm start ports', () => {
  it('reads each port, with the defaults', () => {
    expect(readPorts({})).toEqual({
      PORT: 3000,
      OC_DYNAMODB_PORT: 8000,
      OC_AWS_PORT: 4566,
      OC_S3_PORT: 4569,
    });
    expect(readPorts({ PORT: '3400', OC_S3_PORT: ' 4969 ' })).toMatchObject({ PORT: 3400, OC_S3_PORT: 4969 });
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT must be a port number from 1 to 65535, not "abc"'],
    [{ OC_AWS_PORT: '70000' }, 'OC_AWS_PORT must be a port number from 1 to 65535, not "70000"'],
    [{ OC_DYNAMODB_PORT: '80.5' }, 'OC_DYNAMODB_PORT must be a port number from 1 to 65535, not "80.5"'],
    [{ PORT: '3400', OC_S3_PORT: '3400' }, 'PORT and OC_S3_PORT are both 3400: give each part its own port'],
  ])('refuses %j in one line', (env, message) => {
    expect(() => readPorts(env)).toThrow(new StartError(message));
  });

  it('names the port in use and the variable that moves it', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    const [a, b, c] = [await freePort(), await freePort(), await freePort()];
    try {
      await expect(
        checkPortsFree({ PORT: a, OC_DYNAMODB_PORT: b, OC_AWS_PORT: port, OC_S3_PORT: c }),
      ).rejects.toThrow(
        new StartError(
          `port ${port} (OC_AWS_PORT) is already in use: stop what listens there, or set OC_AWS_PORT to a free port`,
        ),
      );
    } finally {
      taken.close();
    }
  });
});

describe('npm start banner', () => {
  const webhook = (url: string) => ({ kind: 'webhook' as const, url, secret_ref: 's', events: undefined });
  const tenant = (notify: unknown[]) =>
    ({
      name: 't',
      max_risk_auto_approve: 5,
      approver_group: '',
      notify,
      approvers: { emails: [], slack_user_ids: [] },
      approval_ttl_sec: 3600,
    }) as never;

  it('names the webhook routes the policy names, not a fixed demo port', () => {
    expect(
      webhookBanner({
        tenant1: tenant([webhook('http://localhost:9099/in'), { kind: 'slack', channel: '#x' }]),
        tenant2: tenant([webhook('https://hooks.example.com/oc')]),
        tenant3: tenant([webhook('http://127.0.0.1:8090/hooks/approvals')]),
      })
        .split('\n')
        .map((l) => l.trim()),
    ).toEqual([
      'tenant1 notifies http://localhost:9099/in: watch with npx oc webhooks listen --port 9099',
      'tenant2 notifies https://hooks.example.com/oc',
      'tenant3 notifies http://127.0.0.1:8090/hooks/approvals: watch with npx oc webhooks listen',
    ]);
  });

  it('says so when no tenant names a webhook', () => {
    expect(webhookBanner({ tenant1: tenant([{ kind: 'slack', channel: '#x' }]) })).toBe(
      'none (no tenant in the policy names a webhook route)',
    );
    expect(webhookBanner({})).toMatch(/^none/);
  });
});

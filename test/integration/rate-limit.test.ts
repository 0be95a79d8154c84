/** The per-tenant rate limit is shared by every instance (it lives in DynamoDB, not in a process). */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { startLocalHost, type LocalHost } from '../../bin/local/host.js';
import { DynamoRateLimiter } from '../../functions/store/rate-limiter.js';
import { keys } from '../../functions/store/keys.js';
import { tokenFor } from '../support/approvers.js';
import { faultyDocumentClient } from '../support/faults.js';
import { gatewayClient, KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';

let a: TestStack;
let b: LocalHost;
/** Both instances read one clock that only the test moves, so windows never slide under a slow run. */
const clock = { at: Date.parse('2030-01-01T00:00:00.200Z'), now: () => new Date(clock.at) };

beforeAll(async () => {
  a = await startTestStack({
    env: { OC_RATE_LIMIT_PER_SEC: '5', OC_RATE_LIMIT_BURST: '10' },
    overrides: { clock },
    consumers: false,
  });
  // A second "instance": another host process-state on the same table.
  b = await startLocalHost({ config: a.config, port: 0, overrides: { clock }, consumers: false });
});
afterAll(async () => {
  await b.stop();
  await a.stop();
});

const deny = () => toolCall({ tool: 'unknown', action: 'x' });

describe('rate limit', () => {
  it('answers 429 with Retry-After once the burst is spent across two instances, per tenant', async () => {
    const viaB = gatewayClient(b.url);
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        i % 2 === 0 ? a.post('/v1/toolcalls', deny()) : viaB.post('/v1/toolcalls', deny(), KEYS.tenant1),
      ),
    );
    const limited = answers.filter((r) => r.status === 429);
    const accepted = answers.filter((r) => r.status === 200);
    expect(accepted.length).toBe(10);
    expect(limited.length).toBe(24 - accepted.length);
    for (const r of limited) {
      expect(r.json).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // another tenant has its own budget
    expect((await a.post('/v1/toolcalls', deny(), KEYS.tenant2)).status).toBe(200);
  });

  it('refills at the configured rate, and replays are answered even while limited', async () => {
    clock.at += 3000;
    const body = deny();
    const first = await a.post('/v1/toolcalls', body);
    expect(first.status).toBe(200);
    // spend the burst again, then replay the accepted call
    await Promise.all(Array.from({ length: 15 }, () => a.post('/v1/toolcalls', deny())));
    expect((await a.post('/v1/toolcalls', deny())).status).toBe(429);
    const replay = await a.post('/v1/toolcalls', body);
    expect(replay.status).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.text).toBe(first.text);
  });

  describe('every agent-key request takes its token: REST reads and /execute, each MCP message', () => {
    const MCP_HEADERS = { Accept: 'application/json, text/event-stream' };
    const mcp = (body: unknown, headers: Record<string, string> = {}) =>
      a.request('POST', '/mcp', { body, headers: { ...MCP_HEADERS, ...headers } });
    const ping = (id: number) => ({ jsonrpc: '2.0', id, method: 'ping' });
    const limited = (r: { status: number; json: any }) => {
      expect(r.status).toBe(429);
      expect(r.json).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    };

    it('spends a token on each REST read and /execute; an approver’s reads spend none', async () => {
      clock.at += 3000;
      const first = await a.post('/v1/toolcalls', deny()); // 1
      expect(first.status).toBe(200);
      const id = first.json.event_id as string;
      for (let i = 0; i < 4; i++) expect((await a.get(`/v1/toolcalls/${id}`)).status).toBe(200); // 2-5
      for (let i = 0; i < 5; i++) {
        // A denied call cannot run: refused, but the attempt is a request like any other (6-10).
        const r = await a.post(`/v1/toolcalls/${id}/execute`, undefined);
        expect([403, 409]).toContain(r.status);
      }
      limited(await a.get(`/v1/toolcalls/${id}`));
      limited(await a.post(`/v1/toolcalls/${id}/execute`, undefined));
      limited(await a.get(`/v1/toolcalls/00000000-0000-4000-8000-000000000000`));
      // The human side is not the agents' bucket: approvers still read while the tenant's agents wait.
      const approvals = await a.request('GET', '/v1/approvals', { token: await tokenFor('alice') });
      expect(approvals.status).toBe(200);
    });

    it('spends one token per message of an MCP batch, all or none', async () => {
      clock.at += 3000;
      const tooMany = await mcp(Array.from({ length: 11 }, (_, i) => ping(i)));
      limited(tooMany);
      expect(tooMany.headers['retry-after']).toMatch(/^[0-9]+$/);
      // The refused batch took nothing: ten messages still fit, and then the bucket is empty.
      const fits = await mcp(Array.from({ length: 10 }, (_, i) => ping(i)));
      expect(fits.status).toBe(200);
      limited(await mcp(ping(11)));
    });

    it('spends a token on every governed MCP call, valid or not, and on every 2026 requestState retry', async () => {
      clock.at += 3000;
      for (let i = 0; i < 5; i++) {
        const r = await mcp({
          jsonrpc: '2.0',
          id: i,
          method: 'tools/call',
          params: { name: 'slack_msg_post', arguments: { channel: 5, text: 'x' } },
        });
        expect(r.status).toBe(200);
        expect(r.text).toMatch(/"isError":true/);
        expect(r.text).not.toMatch(/RATE_LIMITED/);
      }
      for (let i = 0; i < 5; i++) {
        const r = await mcp(
          {
            jsonrpc: '2.0',
            id: `retry-${i}`,
            method: 'tools/call',
            params: {
              name: 'jira_issue_delete',
              arguments: { issue: 'OPS-1' },
              requestState: 'not-a-state-this-server-signed',
              inputResponses: { approval: { action: 'accept' } },
              _meta: {
                'io.modelcontextprotocol/protocolVersion': '2026-07-28',
                'io.modelcontextprotocol/clientInfo': { name: 'rl-agent', version: '1' },
                'io.modelcontextprotocol/clientCapabilities': { elicitation: { url: {} } },
              },
            },
          },
          {
            'MCP-Protocol-Version': '2026-07-28',
            'Mcp-Method': 'tools/call',
            'Mcp-Name': 'jira_issue_delete',
            // A conforming 2026-07-28 client mirrors the target (the tool's x-mcp-header, SEP-2243).
            'Mcp-Param-issue': 'OPS-1',
          },
        );
        expect(r.status).toBe(200);
        expect(r.json.result).toMatchObject({ isError: true });
        expect(JSON.stringify(r.json.result)).toMatch(/requestState refused/);
      }
      limited(await mcp(ping(1)));
    });
  });

  describe('leases: a busy instance takes several permits per write', () => {
    const S = Math.floor(Date.parse('2031-01-01T00:00:00Z') / 1000);
    const at = (second: number, fraction: number) => ({ now: () => new Date((second + fraction) * 1000) });

    it('spends one write per quarter of its previous second, not one per request', async () => {
      const { doc, plan } = faultyDocumentClient();
      const time = { second: S, fraction: 0.5 };
      const limiter = new DynamoRateLimiter(
        doc,
        a.config.tableName,
        { perSecond: 1000, burst: 2000 },
        { now: () => at(time.second, time.fraction).now() },
      );
      for (let i = 0; i < 100; i++) expect(await limiter.take('lease-a')).toEqual({ allowed: true });
      expect(plan.counts.UpdateCommand).toBe(100); // no history yet: one permit per write
      time.second = S + 1;
      for (let i = 0; i < 200; i++) expect(await limiter.take('lease-a')).toEqual({ allowed: true });
      // 100 requests in the previous second: leases of 25, so 200 requests take 8 writes
      expect(plan.counts.UpdateCommand).toBe(108);
      const item = await a.state.doc.send(
        new GetCommand({
          TableName: a.config.tableName,
          Key: keys.rateLimit('lease-a'),
          ConsistentRead: true,
        }),
      );
      expect(item.Item?.[`c${S + 1}`]).toBe(200);
    });

    it('never grants more than the burst across instances, leased or not', async () => {
      const time = { second: S + 10, fraction: 0.5 };
      const clockOf = { now: () => at(time.second, time.fraction).now() };
      const config = { perSecond: 100, burst: 100 }; // leases of at most 10
      const [x, y] = [0, 1].map(
        () => new DynamoRateLimiter(faultyDocumentClient().doc, a.config.tableName, config, clockOf),
      );
      for (let i = 0; i < 40; i++) {
        await x!.take('lease-b');
        await y!.take('lease-b');
      }
      time.second += 1;
      time.fraction = 0.999; // the previous second's 80 now count for 0.08
      const answers = await Promise.all(
        Array.from({ length: 150 }, (_, i) => (i % 2 ? x! : y!).take('lease-b')),
      );
      const granted = answers.filter((r) => r.allowed).length;
      expect(granted).toBeLessThanOrEqual(99);
      // what the two leases can strand, at most 9 each, is all the limit may lose
      expect(granted).toBeGreaterThanOrEqual(99 - 18);
      const item = await a.state.doc.send(
        new GetCommand({
          TableName: a.config.tableName,
          Key: keys.rateLimit('lease-b'),
          ConsistentRead: true,
        }),
      );
      expect(item.Item?.[`c${time.second}`]).toBeLessThanOrEqual(100);
    });
  });
});

/**
 * The MCP state key ring's AWS home (functions/store/mcp-state-keys.ts, `ssmKeyRing`) against a
 * loopback stand-in for SSM Parameter Store's JSON protocol (it checks each call's SigV4 shape): the
 * first instances to start create the SecureString once between them, a rotation reaches an
 * instance when its cache ages out, and a read that fails is not cached (fail closed, then retry).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  rotatedKeyRingText,
  ssmKeyRing,
  KEY_RING_MAX_AGE_SEC,
  type SsmAccess,
} from '../../functions/store/mcp-state-keys.js';

interface Parameter {
  value: string;
  type: string;
}

/** SSM's awsJson1_1 protocol for GetParameter and PutParameter, one parameter store in memory. */
function fakeSsm() {
  const parameters = new Map<string, Parameter>();
  const calls: string[] = [];
  let failNext = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const action = String(req.headers['x-amz-target']).replace('AmazonSSM.', '');
      calls.push(action);
      // What SSM reads of a signed call: the SigV4 scope of this service and the session token.
      const auth = String(req.headers.authorization);
      if (
        !/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/ssm\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*x-amz-target[a-z0-9;-]*, Signature=[0-9a-f]{64}$/.test(
          auth,
        ) ||
        req.headers['x-amz-security-token'] !== 'tok' ||
        req.headers['content-type'] !== 'application/x-amz-json-1.1'
      ) {
        res.writeHead(403, { 'Content-Type': 'application/x-amz-json-1.1' });
        return res.end(JSON.stringify({ __type: 'InvalidSignatureException', message: auth }));
      }
      const input = JSON.parse(body) as { Name: string; Value?: string; Type?: string; Overwrite?: boolean };
      const answer = (status: number, json: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(json));
      };
      if (failNext > 0) {
        failNext--;
        return answer(400, { __type: 'AccessDeniedException', message: 'denied' });
      }
      if (action === 'GetParameter') {
        const p = parameters.get(input.Name);
        if (!p) return answer(400, { __type: 'ParameterNotFound', message: 'not found' });
        return answer(200, { Parameter: { Name: input.Name, Type: p.type, Value: p.value, Version: 1 } });
      }
      if (action === 'PutParameter') {
        if (parameters.has(input.Name) && !input.Overwrite)
          return answer(400, { __type: 'ParameterAlreadyExists', message: 'exists' });
        parameters.set(input.Name, { value: input.Value!, type: input.Type! });
        return answer(200, { Version: 1, Tier: 'Standard' });
      }
      return answer(400, { __type: 'InvalidAction' });
    });
  });
  return {
    parameters,
    calls,
    failOnce: () => (failNext = 1),
    start: () =>
      new Promise<string>((resolve) =>
        server.listen(0, '127.0.0.1', () =>
          resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
        ),
      ),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const NAME = '/openclause/test/mcp-state-keys';
let ssm: ReturnType<typeof fakeSsm>;
let client: SsmAccess;

beforeEach(async () => {
  ssm = fakeSsm();
  const endpoint = await ssm.start();
  client = {
    endpoint,
    region: () => Promise.resolve('us-east-1'),
    credentials: () =>
      Promise.resolve({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'test', sessionToken: 'tok' }),
  };
});
afterEach(() => ssm.stop());

describe('the MCP state key ring in SSM', () => {
  it('is created once, as a SecureString, by the first instances that find it missing', async () => {
    const rings = await Promise.all([
      ssmKeyRing(client, NAME)(),
      ssmKeyRing(client, NAME)(),
      ssmKeyRing(client, NAME)(),
    ]);

    expect(ssm.parameters.get(NAME)?.type).toBe('SecureString');
    expect(new Set(rings.map((r) => r.current.kid)).size).toBe(1);
    expect(Buffer.from(rings[0]!.current.secret).equals(Buffer.from(rings[2]!.current.secret))).toBe(true);
  });

  it('is read once per instance until its cache ages out; then a rotation reaches the instance', async () => {
    let now = 0;
    const source = ssmKeyRing(client, NAME, () => now);
    const first = await source();
    ssm.parameters.set(NAME, {
      value: rotatedKeyRingText(ssm.parameters.get(NAME)!.value),
      type: 'SecureString',
    });
    const reads = ssm.calls.length;

    expect((await source()).current.kid).toBe(first.current.kid);
    expect(ssm.calls.length).toBe(reads);
    now += KEY_RING_MAX_AGE_SEC * 1000 + 1;
    const rotated = await source();
    expect(rotated.current.kid).not.toBe(first.current.kid);
    expect(rotated.previous.map((k) => k.kid)).toEqual([first.current.kid]);
  });

  it('fails closed when SSM refuses, and does not keep the failure', async () => {
    const source = ssmKeyRing(client, NAME);
    ssm.failOnce();

    await expect(source()).rejects.toThrow(/denied/);
    await expect(source()).resolves.toMatchObject({ current: { kid: expect.any(String) } });
  });
});

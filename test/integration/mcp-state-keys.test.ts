/**
 * The MCP state key ring's AWS home (functions/store/mcp-state-keys.ts, `ssmKeyRing`) against a
 * loopback stand-in for SSM Parameter Store's JSON protocol (it checks each call's SigV4 shape): the
 * first instances to start create the SecureString once between them, a rotation reaches an
 * instance when its cache ages out, and a read that fails is not cached (fail closed, then retry).
 */
import {
  rotatedKeyRingText,
  ssmKeyRing,
  KEY_RING_MAX_AGE_SEC,
  type SsmAccess,
} from '../../functions/store/mcp-state-keys.js';
import { fakeSsm } from '../support/fake-ssm.js';

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

/**
 * Signed MCP state (functions/adapters/mcp-signing.ts over the SDK's request-state codec) and its
 * key ring (functions/store/mcp-state-keys.ts): key ids, rotation, bindings, and what refuses.
 */
import { jest } from '@jest/globals';
import { createRequestStateCodec } from '@modelcontextprotocol/server';
import { SignatureV4 } from '@smithy/signature-v4';
import { mcpSigner } from '../../functions/adapters/mcp-signing.js';
import {
  MAX_SESSION_ID_CHARS,
  requestStateBinding,
  sessionBinding,
  sessionClaims,
  sessionOf,
  type McpKeyRing,
} from '../../functions/core/mcp-protocol.js';
import {
  newKeyRingText,
  NodeSha256,
  parseKeyRing,
  rotatedKeyRingText,
} from '../../functions/store/mcp-state-keys.js';

const key = (kid: string, fill: number) => ({ kid, secret: new Uint8Array(32).fill(fill) });
const k1 = key('k1', 1);
const k2 = key('k2', 2);
const ring = (current: McpKeyRing['current'], ...previous: McpKeyRing['current'][]): McpKeyRing => ({
  current,
  previous,
});

describe('MCP state signing', () => {
  it('is the SDK codec’s wire with the key id in front', async () => {
    const state = await mcpSigner(ring(k1)).mint({ e: 'x' }, 'b', 60);
    const [kid, ...wire] = state.split('.');

    expect(kid).toBe('k1');
    // The rest verifies with the SDK's own codec, same key, same binding.
    const codec = createRequestStateCodec({ key: k1.secret, bind: () => 'b' });
    await expect(codec.verify(wire.join('.'), {} as never)).resolves.toEqual({ e: 'x' });
  });

  it('accepts state of the previous key during a rotation, and refuses it once the key is dropped', async () => {
    const old = await mcpSigner(ring(k1)).mint({ e: 'x' }, 'b', 60);
    const fresh = await mcpSigner(ring(k2, k1)).mint({ e: 'y' }, 'b', 60);

    expect(fresh.startsWith('k2.')).toBe(true);
    await expect(mcpSigner(ring(k2, k1)).verify(old, 'b')).resolves.toEqual({
      ok: true,
      payload: { e: 'x' },
    });
    await expect(mcpSigner(ring(k2)).verify(old, 'b')).resolves.toEqual({ ok: false, reason: 'unknown_key' });
    await expect(mcpSigner(ring(k2)).verify(fresh, 'b')).resolves.toEqual({ ok: true, payload: { e: 'y' } });
  });

  it('refuses another binding, a changed byte, another key under the same id, an expired state and garbage', async () => {
    const signer = mcpSigner(ring(k1));
    const state = await signer.mint({ e: 'x' }, 'b', 60);
    const [kid, v1, body, mac] = state.split('.');
    const other = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), p: { e: 'z' } }),
    );

    await expect(signer.verify(state, 'c')).resolves.toEqual({ ok: false, reason: 'bind' });
    await expect(signer.verify([kid, v1, other.toString('base64url'), mac].join('.'), 'b')).resolves.toEqual({
      ok: false,
      reason: 'mac',
    });
    await expect(mcpSigner(ring(key('k1', 9))).verify(state, 'b')).resolves.toEqual({
      ok: false,
      reason: 'mac',
    });
    const expired = await signer.mint({ e: 'x' }, 'b', -5);
    await expect(signer.verify(expired, 'b')).resolves.toEqual({ ok: false, reason: 'expired' });
    for (const garbage of [
      '',
      'k1',
      'k1.',
      'k1.v1.%%.%%',
      '00000000-0000-4000-8000-000000000000',
      'k 1.v1.a.b',
    ])
      await expect(signer.verify(garbage, 'b')).resolves.toMatchObject({ ok: false });
  });

  it('binds a requestState to tenant, key, agent, tool and arguments, and a session to tenant and key', () => {
    const caller = { tenantId: 't1', keyId: 'key_1' };
    const base = requestStateBinding(caller, 'agent-a', 'jira_issue_delete', { issue: 'OPS-1' });

    expect(requestStateBinding(caller, 'agent-a', 'jira_issue_delete', { issue: 'OPS-1' })).toBe(base);
    for (const other of [
      requestStateBinding({ ...caller, tenantId: 't2' }, 'agent-a', 'jira_issue_delete', { issue: 'OPS-1' }),
      requestStateBinding({ ...caller, keyId: 'key_2' }, 'agent-a', 'jira_issue_delete', { issue: 'OPS-1' }),
      requestStateBinding(caller, 'agent-b', 'jira_issue_delete', { issue: 'OPS-1' }),
      requestStateBinding(caller, 'agent-a', 'slack_msg_post', { issue: 'OPS-1' }),
      requestStateBinding(caller, 'agent-a', 'jira_issue_delete', { issue: 'PROD-42' }),
    ])
      expect(other).not.toBe(base);
    expect(sessionBinding(caller)).not.toBe(sessionBinding({ ...caller, keyId: 'key_2' }));
  });

  it('verifies a state once per signer and binding: a repeat is answered from memory until it expires (issue 26)', async () => {
    const signer = mcpSigner(ring(k1));
    const state = await signer.mint({ r: 'session' }, 'tenant-a', 60);
    const macs = jest.spyOn(globalThis.crypto.subtle, 'verify');
    try {
      for (let i = 0; i < 3; i++)
        await expect(signer.verify(state, 'tenant-a')).resolves.toEqual({
          ok: true,
          payload: { r: 'session' },
        });
      expect(macs).toHaveBeenCalledTimes(1);
      // The memory is per binding: another caller's binding is checked, and refused.
      await expect(signer.verify(state, 'tenant-b')).resolves.toEqual({ ok: false, reason: 'bind' });
      // A remembered state expires when its envelope says, as a fresh one does.
      const later = Date.now() + 61_000;
      const clock = jest.spyOn(Date, 'now').mockReturnValue(later);
      try {
        await expect(signer.verify(state, 'tenant-a')).resolves.toEqual({ ok: false, reason: 'expired' });
      } finally {
        clock.mockRestore();
      }
      // What the caller does with a payload never changes what the next verification answers.
      const first = await signer.verify<{ r: string }>(state, 'tenant-a');
      if (first.ok) first.payload.r = 'changed';
      await expect(signer.verify(state, 'tenant-a')).resolves.toEqual({
        ok: true,
        payload: { r: 'session' },
      });
    } finally {
      macs.mockRestore();
    }
  });

  it('bounds a session before it is signed: the widest client still fits and round-trips', async () => {
    const wide = {
      clientInfo: { name: '中'.repeat(128), version: '"'.repeat(128) },
      capabilities: { elicitation: { url: {} } },
    };
    const claims = sessionClaims(wide, 'AAAAAAAAAAAAAAAA');
    const id = await mcpSigner(ring(key('k-20261207-abcdef', 1))).mint(claims, 'b', 3600);

    expect(id.length).toBeLessThan(MAX_SESSION_ID_CHARS);
    expect(id).toMatch(/^[\x21-\x7e]+$/); // visible ASCII, as the transport asks of a session id
    const verified = await mcpSigner(ring(key('k-20261207-abcdef', 1))).verify(id, 'b');
    expect(verified.ok && sessionOf(verified.payload)).toEqual({
      id: 'AAAAAAAAAAAAAAAA',
      name: '中'.repeat(128),
      version: '"'.repeat(128),
      urlElicitation: true,
    });
    // Longer than the bound: not carried (the record says unknown), never an unreadable id.
    expect(sessionClaims({ clientInfo: { name: 'x'.repeat(129) } }, 'AAAAAAAAAAAAAAAA').n).toBe('unknown');
    expect(sessionOf({ n: 'a', v: 'b', u: 0, r: 'short' })).toBeUndefined();
  });
});

describe('MCP state key ring', () => {
  it('generates a ring, rotates it (the old current first among the previous) and parses both', () => {
    const first = parseKeyRing(newKeyRingText(), 'test');
    const rotatedText = rotatedKeyRingText(newKeyRingText());
    const rotated = parseKeyRing(rotatedText, 'test');

    expect(first.current.secret.length).toBe(32);
    expect(first.previous).toEqual([]);
    expect(rotated.previous).toHaveLength(1);
    expect(rotated.previous[0]!.kid).not.toBe(rotated.current.kid);
  });

  it('refuses a bad ring, naming the problem and never a secret', () => {
    const secret = Buffer.alloc(16, 7).toString('base64url');
    const bad = [
      ['not json', /not JSON/],
      [
        JSON.stringify({ current: { kid: 'k 1', secret: Buffer.alloc(32).toString('base64url') } }),
        /current\.kid/,
      ],
      [JSON.stringify({ current: { kid: 'k1', secret } }), /at least 32 bytes/],
      [
        JSON.stringify({
          current: { kid: 'k1', secret: Buffer.alloc(32).toString('base64url') },
          previous: [{ kid: 'k1', secret: Buffer.alloc(32).toString('base64url') }],
        }),
        /reuses the current kid/,
      ],
    ] as const;
    for (const [text, message] of bad) {
      let error: Error | undefined;
      try {
        parseKeyRing(text, 'file x');
      } catch (e) {
        error = e as Error;
      }
      expect(error?.message).toMatch(message);
      expect(error?.message).not.toContain(secret);
    }
  });
});

describe('the SSM calls’ signer', () => {
  it('signs with node:crypto as SigV4 specifies (AWS test suite, get-vanilla)', async () => {
    const signer = new SignatureV4({
      credentials: {
        accessKeyId: 'AKIDEXAMPLE',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      },
      region: 'us-east-1',
      service: 'service',
      sha256: NodeSha256,
      applyChecksum: false, // the suite's requests carry no payload-hash header
    });
    const signed = await signer.sign(
      {
        method: 'GET',
        protocol: 'https:',
        hostname: 'example.amazonaws.com',
        path: '/',
        query: {},
        headers: { host: 'example.amazonaws.com' },
      },
      { signingDate: new Date('2015-08-30T12:36:00Z') },
    );

    expect(signed.headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ' +
        'SignedHeaders=host;x-amz-date, ' +
        'Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });
});

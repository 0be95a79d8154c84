/**
 * Where the MCP state key ring lives (`adapters/mcp-signing.ts` signs session ids and
 * requestStates with it). Its text is JSON:
 *
 *     {"current": {"kid": "k1", "secret": "<base64url, at least 32 bytes>"},
 *      "previous": [{"kid": "k0", "secret": "..."}]}
 *
 * - In AWS: an SSM Parameter Store SecureString (standard tier: no monthly charge), named by the
 *   stack (`OC_MCP_STATE_KEY_PARAMETER`). The first instance that finds it missing creates it
 *   (`PutParameter` without overwrite is create-if-absent, so two racing instances end with one
 *   ring); each instance re-reads it every `KEY_RING_MAX_AGE_SEC`.
 * - Locally: a generated file (`OC_MCP_STATE_KEY_FILE`, `npm start` puts it in the data folder),
 *   created with mode 0600 if missing.
 *
 * Rotation: write a new `current` and move the old one into `previous`; state signed with a
 * previous key keeps verifying until it is removed from the list (then those sessions get 404 and
 * start anew, those requestStates a tool error).
 */
import { createHash, createHmac, randomBytes, type Hash, type Hmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { SignatureV4 } from '@smithy/signature-v4';
import type { McpKeyRing, McpStateKey } from '../core/mcp-protocol.js';

/** How long an instance keeps a read ring (a rotation reaches every instance within this). */
export const KEY_RING_MAX_AGE_SEC = 300;

const KID = /^[A-Za-z0-9_-]{1,32}$/;
const MIN_SECRET_BYTES = 32;

/** The ring in a key file or parameter; the error names the problem, never a secret. */
export function parseKeyRing(text: string, source: string): McpKeyRing {
  const fail = (why: string): never => {
    throw new Error(`MCP state key ring ${source}: ${why}`);
  };
  let json: { current?: unknown; previous?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    return fail('not JSON');
  }
  const key = (value: unknown, where: string): McpStateKey => {
    const k = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    if (typeof k.kid !== 'string' || !KID.test(k.kid)) fail(`${where}.kid must match ${KID.source}`);
    const secret =
      typeof k.secret === 'string' && /^[A-Za-z0-9_-]+$/.test(k.secret)
        ? Buffer.from(k.secret, 'base64url')
        : Buffer.alloc(0);
    if (secret.length < MIN_SECRET_BYTES)
      fail(`${where}.secret must be base64url of at least ${MIN_SECRET_BYTES} bytes`);
    return { kid: k.kid as string, secret: new Uint8Array(secret) };
  };
  const current = key(json?.current, 'current');
  const previous = Array.isArray(json?.previous)
    ? json.previous.map((p, i) => key(p, `previous[${i}]`))
    : json?.previous === undefined
      ? []
      : fail('previous must be a list');
  if (previous.some((p) => p.kid === current.kid)) fail('a previous key reuses the current kid');
  return { current, previous };
}

const newKey = (): { kid: string; secret: string } => ({
  kid: `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(3).toString('hex')}`,
  secret: randomBytes(32).toString('base64url'),
});

/** A new ring's text: one fresh key. */
export const newKeyRingText = (): string => JSON.stringify({ current: newKey(), previous: [] });

/** A rotated ring's text: a fresh current key, the old current first among the previous ones. */
export function rotatedKeyRingText(text: string): string {
  const old = JSON.parse(text) as { current: unknown; previous?: unknown[] };
  return JSON.stringify({ current: newKey(), previous: [old.current, ...(old.previous ?? [])] });
}

export type KeyRingSource = () => Promise<McpKeyRing>;

/** Cache a source's ring for `maxAgeSec` per instance (a failed read is not cached). */
function cached(read: () => Promise<McpKeyRing>, now: () => number, maxAgeSec: number): KeyRingSource {
  let held: { ring: Promise<McpKeyRing>; at: number } | undefined;
  return () => {
    if (!held || now() - held.at > maxAgeSec * 1000) {
      const ring = read();
      held = { ring, at: now() };
      ring.catch(() => (held = undefined));
    }
    return held.ring;
  };
}

/** The local key file, generated (0600) when missing. */
export function fileKeyRing(file: string, now: () => number = Date.now): KeyRingSource {
  const read = async () => {
    try {
      writeFileSync(file, newKeyRingText(), { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    return parseKeyRing(readFileSync(file, 'utf8'), file);
  };
  return cached(read, now, KEY_RING_MAX_AGE_SEC);
}

// ---------------------------------------------------------------------------------------------
// SSM, two calls of its JSON protocol signed with SigV4. Not `@aws-sdk/client-ssm`: it would put
// the MCP bundle over its 1 MB bound (+80 KB), while the signer, the credentials and `fetch` are
// already in it (the DynamoDB client brings them).

/** The SSM error a call answered (`__type`, e.g. `ParameterNotFound`). */
export class SsmError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(`SSM ${type}: ${message}`);
    this.name = 'SsmError';
  }
}

export interface SsmAccess {
  region: () => Promise<string>;
  credentials: () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }>;
  /** Default `https://ssm.<region>.amazonaws.com` (a loopback stand-in in tests). */
  endpoint?: string;
}

type Bytes = string | ArrayBuffer | ArrayBufferView;
const buffer = (data: Bytes): Buffer =>
  typeof data === 'string'
    ? Buffer.from(data, 'utf8')
    : ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data);

/** SHA-256 / HMAC-SHA256 for the signer, from node:crypto. */
export class NodeSha256 {
  private hash: Hash | Hmac;
  constructor(secret?: Bytes) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', buffer(secret));
  }
  update(data: Bytes): void {
    this.hash.update(buffer(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

export async function ssmCall(
  access: SsmAccess,
  action: string,
  input: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const region = await access.region();
  const url = new URL(access.endpoint ?? `https://ssm.${region}.amazonaws.com/`);
  const body = JSON.stringify(input);
  const signer = new SignatureV4({
    credentials: access.credentials,
    region,
    service: 'ssm',
    sha256: NodeSha256,
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: '/',
    query: {},
    headers: {
      host: url.host,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `AmazonSSM.${action}`,
    },
    body,
  });
  // `fetch` sets Host itself (from the URL, the value that was signed).
  const { host: _host, ...headers } = signed.headers;
  const response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(5_000) });
  const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const type = String(json.__type ?? `HTTP ${response.status}`)
      .split('#')
      .pop()!;
    throw new SsmError(type, String(json.message ?? json.Message ?? 'request failed'));
  }
  return json;
}

/** The SSM SecureString parameter, created on first use when missing. */
export function ssmKeyRing(access: SsmAccess, name: string, now: () => number = Date.now): KeyRingSource {
  const get = async () => {
    const out = (await ssmCall(access, 'GetParameter', { Name: name, WithDecryption: true })) as {
      Parameter?: { Value?: string };
    };
    return parseKeyRing(out.Parameter?.Value ?? '', `parameter ${name}`);
  };
  const read = async () => {
    try {
      return await get();
    } catch (error) {
      if (!(error instanceof SsmError && error.type === 'ParameterNotFound')) throw error;
    }
    try {
      await ssmCall(access, 'PutParameter', {
        Name: name,
        Type: 'SecureString',
        Value: newKeyRingText(),
        Overwrite: false,
        Description: 'OpenClause MCP state keys (session ids, requestState)',
      });
    } catch (error) {
      if (!(error instanceof SsmError && error.type === 'ParameterAlreadyExists')) throw error;
    }
    return get();
  };
  return cached(read, now, KEY_RING_MAX_AGE_SEC);
}

/**
 * A key ring of this process only, for a local host given no key file (tests): sessions and
 * requestStates do not survive a restart. Never used in Lambda (the config refuses it).
 */
export function ephemeralKeyRing(): KeyRingSource {
  const ring = Promise.resolve(parseKeyRing(newKeyRingText(), 'ephemeral'));
  return () => ring;
}

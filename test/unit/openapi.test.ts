import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { ROUTES } from '../../functions/shared/constants.js';
import {
  OPENAPI_PATH,
  assertMatchesContract,
  contractOperations,
  openApiDocument,
  requestSchema,
  type ObservedResponse,
} from '../support/contract.js';

type Json = Record<string, unknown>;

const REPO_ROOT = dirname(dirname(OPENAPI_PATH));
const PROBES = ['GET /healthz', 'GET /readyz'];
const EVENT_ID = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
const POLICY_VERSION = 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

function json(
  method: string,
  path: string,
  status: number,
  body: unknown,
  headers: Json = {},
): ObservedResponse {
  return {
    method,
    path,
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...(headers as Record<string, string>) },
    body: JSON.stringify(body),
  };
}

function error(code: string, retryable = false, extra: Json = {}): Json {
  return { code, message: 'something went wrong', retryable, request_id: 'req-1', ...extra };
}

function asObject(v: unknown): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expected an object');
  return v as Json;
}

/** Follows `#/...` references through the document. */
function resolve(v: unknown): Json {
  let current = asObject(v);
  while (typeof current.$ref === 'string') {
    let target: unknown = openApiDocument();
    for (const token of current.$ref.slice(2).split('/'))
      target = asObject(target)[token.replace(/~1/g, '/')];
    current = asObject(target);
  }
  return current;
}

/** True if the schema is the Error component or narrows it through `allOf`. */
function isErrorSchema(schema: unknown): boolean {
  const s = asObject(schema);
  if (s.$ref === '#/components/schemas/Error') return true;
  if (typeof s.$ref === 'string') return isErrorSchema(resolve(s));
  return Array.isArray(s.allOf) && s.allOf.some((branch) => isErrorSchema(branch));
}

function responsesOf(method: string, path: string): Json {
  const op = contractOperations().find((o) => o.method === method && o.path === path);
  if (!op) throw new Error(`no operation ${method} ${path}`);
  return asObject(op.operation.responses);
}

const apiOperations = () => contractOperations().filter((op) => !PROBES.includes(`${op.method} ${op.path}`));

const allowResponse = {
  event_id: EVENT_ID,
  decision: 'allow',
  reason: 'write action on allowlist within tenant threshold',
  policy_version: POLICY_VERSION,
  result: { status: 'success', output: { ok: true }, duration_ms: 42 },
};

describe('openapi document', () => {
  it('documents every route in ROUTES with the same method, path and handler', () => {
    const documented = contractOperations();
    for (const route of ROUTES) {
      const op = documented.find((o) => o.method === route.method && o.path === route.path);
      expect({ route: `${route.method} ${route.path}`, found: op !== undefined }).toEqual({
        route: `${route.method} ${route.path}`,
        found: true,
      });
      expect(op?.operation['x-oc-handler']).toBe(route.handler);
    }
  });

  it('documents no route that ROUTES lacks, besides the health probes', () => {
    const routes = ROUTES.map((r) => `${r.method} ${r.path}`).sort();
    expect(
      apiOperations()
        .map((o) => `${o.method} ${o.path}`)
        .sort(),
    ).toEqual(routes);
    expect(contractOperations().filter((o) => PROBES.includes(`${o.method} ${o.path}`))).toHaveLength(2);
  });

  it('accepts an API key or a bearer token wherever ROUTES authenticates, and nothing on the probes', () => {
    for (const route of ROUTES) {
      const op = contractOperations().find((o) => o.method === route.method && o.path === route.path);
      expect(op?.security.sort()).toEqual(route.auth === 'api_key' ? ['apiKey', 'bearerKey'] : []);
    }
    for (const op of contractOperations().filter((o) => PROBES.includes(`${o.method} ${o.path}`))) {
      expect(op.security).toEqual([]);
    }
  });

  it('declares 401 and 500 with the Error schema on every authenticated operation', () => {
    for (const op of apiOperations()) {
      for (const status of ['401', '500']) {
        const response = resolve(asObject(op.operation.responses)[status]);
        const schema = asObject(asObject(response.content)['application/json']).schema;
        expect({ op: `${op.method} ${op.path} ${status}`, error: isErrorSchema(schema) }).toEqual({
          op: `${op.method} ${op.path} ${status}`,
          error: true,
        });
      }
    }
  });

  it('uses the Error schema for every 4xx and 5xx response of the API', () => {
    for (const op of apiOperations()) {
      for (const [status, ref] of Object.entries(asObject(op.operation.responses))) {
        if (!/^[45]/.test(status)) continue;
        const schema = asObject(asObject(resolve(ref).content)['application/json']).schema;
        expect(`${op.method} ${op.path} ${status}: ${String(isErrorSchema(schema))}`).toMatch(/: true$/);
      }
    }
  });

  it('requires Retry-After on the 409 and 429 answers of POST /v1/toolcalls', () => {
    const responses = responsesOf('POST', '/v1/toolcalls');
    for (const status of ['409', '429']) {
      const header = resolve(asObject(resolve(responses[status]).headers)['Retry-After']);
      expect(header.required).toBe(true);
    }
  });

  it('gives every component schema an example that validates against it', () => {
    const schemas = asObject(asObject(openApiDocument().components).schemas);
    for (const [name, schema] of Object.entries(schemas)) {
      const examples = asObject(schema).examples;
      expect({ name, hasExamples: Array.isArray(examples) && examples.length > 0 }).toEqual({
        name,
        hasExamples: true,
      });
      const validate = requestSchema(name);
      for (const example of examples as unknown[]) {
        expect({ name, valid: validate(example), errors: validate.errors ?? null }).toEqual({
          name,
          valid: true,
          errors: null,
        });
      }
    }
  });

  it('passes redocly lint', () => {
    const lint = spawnSync('npx', ['redocly', 'lint', 'api/openapi.yaml', '--format=stylish'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
      env: {
        ...process.env,
        REDOCLY_TELEMETRY: 'off',
        REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
        NODE_OPTIONS: '',
      },
    });
    expect({
      status: lint.status,
      output: lint.status === 0 ? '' : `${lint.stdout}\n${lint.stderr}`,
    }).toEqual({
      status: 0,
      output: '',
    });
  }, 150_000);
});

describe('assertMatchesContract', () => {
  describe('accepts', () => {
    it.each(['allow', 'deny', 'approve'])('the documented %s response of POST /v1/toolcalls', (name) => {
      const media = asObject(
        asObject(resolve(responsesOf('POST', '/v1/toolcalls')['200']).content)['application/json'],
      );
      const example = asObject(asObject(media.examples)[name]).value;
      expect(() => assertMatchesContract(json('POST', '/v1/toolcalls', 200, example))).not.toThrow();
    });

    it('a replay marked Idempotent-Replayed: true', () => {
      const r = json('POST', '/v1/toolcalls', 200, allowResponse, { 'Idempotent-Replayed': 'true' });
      expect(() => assertMatchesContract(r)).not.toThrow();
    });

    it('a recorded tool call with sealed and pending evidence', () => {
      const record = asObject(
        asObject(asObject(openApiDocument().components).schemas).ToolCallRecord,
      ).examples;
      const r = json('GET', `/v1/toolcalls/${EVENT_ID}`, 200, (record as unknown[])[0]);
      expect(() => assertMatchesContract(r)).not.toThrow();
    });

    it('error bodies with details, and 429 with Retry-After', () => {
      const details = { details: [{ path: '/risk_score', message: 'must be at most 10' }] };
      expect(() =>
        assertMatchesContract(json('POST', '/v1/toolcalls', 422, error('VALIDATION_ERROR', false, details))),
      ).not.toThrow();
      expect(() =>
        assertMatchesContract(json('POST', '/v1/toolcalls', 403, error('TENANT_MISMATCH'))),
      ).not.toThrow();
      expect(() =>
        assertMatchesContract(
          json('POST', '/v1/toolcalls', 429, error('RATE_LIMITED', true), { 'retry-after': '1' }),
        ),
      ).not.toThrow();
      expect(() =>
        assertMatchesContract(json('GET', `/v1/toolcalls/${EVENT_ID}`, 404, error('NOT_FOUND'))),
      ).not.toThrow();
      expect(() =>
        assertMatchesContract(json('GET', '/v1/toolcalls/NOT-A-UUID', 400, error('BAD_REQUEST'))),
      ).not.toThrow();
    });

    it('the plain-text probes', () => {
      const text = (path: string, status: number, body: string): ObservedResponse => ({
        method: 'GET',
        path,
        status,
        headers: { 'Content-Type': 'text/plain; charset=utf-8' },
        body,
      });
      expect(() => assertMatchesContract(text('/healthz', 200, 'OK'))).not.toThrow();
      expect(() => assertMatchesContract(text('/readyz', 503, 'NOT READY'))).not.toThrow();
      expect(() => assertMatchesContract(text('/readyz', 200, 'READY'))).toThrow(/body does not match/);
    });
  });

  describe('rejects', () => {
    it('a response missing a required field', () => {
      const { policy_version: _omitted, ...body } = allowResponse;
      expect(() => assertMatchesContract(json('POST', '/v1/toolcalls', 200, body))).toThrow(
        /ToolCallResponse.*must have required property 'policy_version'/,
      );
    });

    it('a value outside an enum', () => {
      expect(() =>
        assertMatchesContract(json('POST', '/v1/toolcalls', 200, { ...allowResponse, decision: 'maybe' })),
      ).toThrow(/body\/decision must be equal to one of the allowed values/);
      const result = { ...allowResponse.result, status: 'ok' };
      expect(() =>
        assertMatchesContract(json('POST', '/v1/toolcalls', 200, { ...allowResponse, result })),
      ).toThrow(/body\/result\/status/);
    });

    it('an extra property in an Error body', () => {
      const body = error('UNAUTHORIZED', false, { stack: 'Error: at handler.ts:12' });
      expect(() => assertMatchesContract(json('POST', '/v1/toolcalls', 401, body))).toThrow(
        /must NOT have additional properties \(stack\)/,
      );
    });

    it('an error code that does not belong to the status', () => {
      expect(() => assertMatchesContract(json('POST', '/v1/toolcalls', 401, error('NOT_FOUND')))).toThrow(
        /body\/code/,
      );
    });

    it('an undocumented status', () => {
      expect(() => assertMatchesContract(json('POST', '/v1/toolcalls', 418, error('TEAPOT')))).toThrow(
        /status 418 is not documented/,
      );
      expect(() =>
        assertMatchesContract(json('GET', `/v1/toolcalls/${EVENT_ID}`, 429, error('RATE_LIMITED', true))),
      ).toThrow(/status 429 is not documented/);
    });

    it('a missing or malformed documented header', () => {
      expect(() =>
        assertMatchesContract(json('POST', '/v1/toolcalls', 429, error('RATE_LIMITED', true))),
      ).toThrow(/required header Retry-After is missing/);
      expect(() =>
        assertMatchesContract(
          json('POST', '/v1/toolcalls', 409, error('CONFLICT', true), { 'Retry-After': 'soon' }),
        ),
      ).toThrow(/header Retry-After/);
      expect(() =>
        assertMatchesContract(
          json('POST', '/v1/toolcalls', 200, allowResponse, { 'idempotent-replayed': 'false' }),
        ),
      ).toThrow(/header Idempotent-Replayed/);
    });

    it('a wrong content type, a non-JSON body and an unknown route', () => {
      const r = json('POST', '/v1/toolcalls', 200, allowResponse);
      expect(() => assertMatchesContract({ ...r, headers: { 'content-type': 'text/html' } })).toThrow(
        /Content-Type text\/html is not documented/,
      );
      expect(() => assertMatchesContract({ ...r, body: '{"event_id":' })).toThrow(/body is not JSON/);
      expect(() => assertMatchesContract({ ...r, path: '/v2/toolcalls' })).toThrow(
        /no operation for POST \/v2\/toolcalls/,
      );
    });

    it('an event id that is not a lowercase UUIDv4', () => {
      const body = { ...allowResponse, event_id: EVENT_ID.toUpperCase() };
      expect(() => assertMatchesContract(json('POST', '/v1/toolcalls', 200, body))).toThrow(/body\/event_id/);
    });

    it('a sealed evidence entry without its hash', () => {
      const record = asObject(
        (
          asObject(asObject(asObject(openApiDocument().components).schemas).ToolCallRecord)
            .examples as unknown[]
        )[0],
      );
      const [sealed, pending] = record.evidence as Json[];
      const { hash: _hash, ...unhashed } = sealed ?? {};
      const r = json('GET', `/v1/toolcalls/${EVENT_ID}`, 200, { ...record, evidence: [unhashed, pending] });
      expect(() => assertMatchesContract(r)).toThrow(/body\/evidence\/0/);
    });
  });
});

describe('requestSchema', () => {
  const validate = requestSchema('ToolCallRequest');
  const minimal = { agent_id: 'agent-1', tool: 'slack', action: 'msg.post', idempotency_key: 'k1' };

  it('accepts a minimal and a full request', () => {
    expect(validate(minimal)).toBe(true);
    const full = {
      ...minimal,
      tenant_id: 'tenant1',
      params: { channel: '#general' },
      resource: 'slack:#general',
      risk_score: 10,
      risk_factors: ['pii'],
      user_id: 'alice@example.com',
      session_id: 's-1',
      labels: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v'])),
      trace_id: 't-1',
      requested_at: '2025-06-01T14:34:56.123456789+02:00',
      schema_version: '1.0',
    };
    expect({ valid: validate(full), errors: validate.errors ?? null }).toEqual({ valid: true, errors: null });
  });

  it.each([
    ['an unknown field', { source_ip: '10.0.0.1' }],
    ['a blank agent_id', { agent_id: '   ' }],
    ['an agent_id over 128 characters', { agent_id: 'a'.repeat(129) }],
    ['a tenant_id over 128 characters', { tenant_id: 't'.repeat(129) }],
    ['an empty idempotency_key', { idempotency_key: '' }],
    ['a blank idempotency_key', { idempotency_key: ' \t' }],
    ['a blank tenant_id', { tenant_id: ' ' }],
    ['an idempotency_key over 256 characters', { idempotency_key: 'k'.repeat(257) }],
    ['a raw tool over 256 characters', { tool: 's'.repeat(257) }],
    ['a risk_score of 11', { risk_score: 11 }],
    ['a fractional risk_score', { risk_score: 2.5 }],
    ['a string risk_score', { risk_score: '3' }],
    ['33 risk_factors', { risk_factors: Array.from({ length: 33 }, () => 'f') }],
    ['51 labels', { labels: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])) }],
    ['a non-string label value', { labels: { a: 1 } }],
    ['a resource over 2048 characters', { resource: 'r'.repeat(2049) }],
    ['params that are not an object', { params: [1, 2] }],
    ['a requested_at without a zone', { requested_at: '2025-06-01T12:34:56' }],
    ['an unsupported schema_version', { schema_version: '99.0' }],
  ])('rejects %s', (_name, patch) => {
    expect(validate({ ...minimal, ...patch })).toBe(false);
  });

  it('throws for an unknown component name', () => {
    expect(() => requestSchema('NoSuchSchema')).toThrow(/no component schema named NoSuchSchema/);
  });
});

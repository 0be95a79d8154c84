import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { FUNCTION_URLS, ROUTES } from '../../functions/shared/constants.js';
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
/** Documented operations that are not HTTP API routes: Function URLs and the local host's dev sign-in. */
const OUTSIDE_ROUTES = [...FUNCTION_URLS.map((f) => `${f.method} ${f.path}`), 'POST /console/dev-sign-in'];
/** API Gateway's greedy `{path+}` is written `{path}` in OpenAPI (which has no greedy parameters). */
const documentedPath = (path: string) => path.replace(/\{([^}+]+)\+\}/g, '{$1}');
const EVENT_ID = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
const APPROVAL_ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
const EXECUTE_PATH = `/v1/toolcalls/${EVENT_ID}/execute`;
const APPROVAL_PATH = `/v1/approvals/${APPROVAL_ID}`;
const APPROVAL_OPS = [
  'GET /v1/approvals',
  'POST /v1/approvals/batch',
  'GET /v1/approvals/{approval_id}',
  'POST /v1/approvals/{approval_id}/approve',
  'POST /v1/approvals/{approval_id}/deny',
  'POST /v1/approvals/{approval_id}/edit',
  'POST /v1/approvals/{approval_id}/withdraw-vote',
  'GET /v1/approvals/{approval_id}/deliveries',
  'POST /v1/approvals/{approval_id}/extend',
  'POST /v1/approvals/{approval_id}/standing-grant',
  'GET /v1/grants',
  'GET /v1/grants/{grant_id}',
  'POST /v1/grants/{grant_id}/revoke',
];

/**
 * Every error status each API operation declares, and the error codes its schema allows there.
 * An operation may declare no other 4xx/5xx status.
 */
const ERROR_CODES: Record<string, Record<string, string[]>> = {
  // MCP: its edge answers with SPEC §1 bodies (400 only for a body that is not UTF-8); other 400s,
  // 404 (a session id it did not issue) and 406 come from the MCP transport, whose spec makes them
  // JSON-RPC errors (JSON_RPC_ERRORS below).
  'POST /mcp': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '403': ['FORBIDDEN'],
    '404': [],
    '406': [],
    '413': ['PAYLOAD_TOO_LARGE'],
    '415': ['UNSUPPORTED_MEDIA_TYPE'],
    '429': ['RATE_LIMITED'],
    '500': ['INTERNAL_ERROR'],
  },
  'GET /mcp': {
    '401': ['UNAUTHORIZED'],
    '403': ['FORBIDDEN'],
    '405': ['METHOD_NOT_ALLOWED'],
    '500': ['INTERNAL_ERROR'],
  },
  'DELETE /mcp': {
    '401': ['UNAUTHORIZED'],
    '403': ['FORBIDDEN'],
    '405': ['METHOD_NOT_ALLOWED'],
    '500': ['INTERNAL_ERROR'],
  },
  'GET /.well-known/oauth-protected-resource/mcp': { '404': ['NOT_FOUND'], '500': ['INTERNAL_ERROR'] },
  'POST /v1/toolcalls': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '403': ['FORBIDDEN', 'TENANT_MISMATCH'],
    '409': ['CONFLICT'],
    '413': ['PAYLOAD_TOO_LARGE'],
    '415': ['UNSUPPORTED_MEDIA_TYPE'],
    '422': ['IDEMPOTENCY_KEY_REUSED', 'UPSTREAM_TOOL_DISABLED', 'VALIDATION_ERROR'],
    '429': ['RATE_LIMITED'],
    '500': ['INTERNAL_ERROR'],
  },
  'GET /v1/toolcalls/{event_id}': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '404': ['NOT_FOUND'],
    '429': ['RATE_LIMITED'],
    '500': ['INTERNAL_ERROR'],
  },
  'GET /v1/toolcalls/{event_id}/proof': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '404': ['NOT_FOUND'],
    '409': ['CONFLICT'],
    '429': ['RATE_LIMITED'],
    '500': ['INTERNAL_ERROR'],
  },
  'POST /v1/toolcalls/{event_id}/execute': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '403': ['APPROVAL_DENIED'],
    '404': ['NOT_FOUND'],
    '409': [
      'APPROVAL_WITHDRAWN',
      'AWAITING_APPROVAL',
      'EXECUTION_IN_PROGRESS',
      'EXECUTION_OUTCOME_UNKNOWN',
      'NOT_APPROVAL_GATED',
      'POLICY_CHANGED',
    ],
    '410': ['APPROVAL_EXPIRED'],
    '429': ['RATE_LIMITED'],
    '500': ['INTERNAL_ERROR'],
  },
  'POST /v1/toolcalls/{event_id}/withdraw': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '404': ['NOT_FOUND'],
    '409': ['APPROVAL_ALREADY_DECIDED', 'NOT_APPROVAL_GATED'],
    '410': ['APPROVAL_EXPIRED'],
    '413': ['PAYLOAD_TOO_LARGE'],
    '415': ['UNSUPPORTED_MEDIA_TYPE'],
    '422': ['VALIDATION_ERROR'],
    '429': ['RATE_LIMITED'],
    '500': ['INTERNAL_ERROR'],
  },
  'GET /v1/approvals': {
    '400': ['BAD_REQUEST', 'VALIDATION_ERROR'],
    '401': ['UNAUTHORIZED'],
    '403': ['APPROVER_NOT_ALLOWED'],
    '500': ['INTERNAL_ERROR'],
  },
  'GET /v1/approvals/{approval_id}': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '404': ['NOT_FOUND'],
    '500': ['INTERNAL_ERROR'],
  },
  'GET /v1/approvals/{approval_id}/deliveries': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '404': ['NOT_FOUND'],
    '500': ['INTERNAL_ERROR'],
  },
  ...Object.fromEntries(
    ['approve', 'deny'].map((verb) => [
      `POST /v1/approvals/{approval_id}/${verb}`,
      {
        '400': ['BAD_REQUEST'],
        '401': ['UNAUTHORIZED'],
        '403': ['APPROVER_NOT_ALLOWED', 'SELF_APPROVAL'],
        '404': ['NOT_FOUND'],
        // CONFLICT: the decision's view_hash names another view (issue 19); a quorum vote
        // (approve only, issue 21): ALREADY_VOTED, VOTE_CONTENDED.
        '409': [
          'APPROVAL_ALREADY_DECIDED',
          'CONFLICT',
          ...(verb === 'approve' ? ['ALREADY_VOTED', 'VOTE_CONTENDED'] : []),
        ],
        '410': ['APPROVAL_EXPIRED'],
        '413': ['PAYLOAD_TOO_LARGE'],
        '415': ['UNSUPPORTED_MEDIA_TYPE'],
        '422': ['VALIDATION_ERROR'],
        '500': ['INTERNAL_ERROR'],
      },
    ]),
  ),
  'POST /v1/approvals/batch': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '403': ['APPROVER_NOT_ALLOWED'],
    '413': ['PAYLOAD_TOO_LARGE'],
    '415': ['UNSUPPORTED_MEDIA_TYPE'],
    '422': ['VALIDATION_ERROR'],
    '500': ['INTERNAL_ERROR'],
  },
  // Issue 21: an edit on a quorum approval resets its votes; too many racing it is VOTE_CONTENDED.
  'POST /v1/approvals/{approval_id}/edit': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '403': ['APPROVER_NOT_ALLOWED', 'SELF_APPROVAL', 'EDIT_NOT_ALLOWED', 'EDIT_DENIED'],
    '404': ['NOT_FOUND'],
    '409': ['APPROVAL_ALREADY_DECIDED', 'CONFLICT', 'VOTE_CONTENDED'],
    '410': ['APPROVAL_EXPIRED'],
    '413': ['PAYLOAD_TOO_LARGE'],
    '415': ['UNSUPPORTED_MEDIA_TYPE'],
    '422': ['VALIDATION_ERROR'],
    '500': ['INTERNAL_ERROR'],
  },
  // Issue 21: an approver takes back their quorum vote (CONFLICT: its stage is complete).
  'POST /v1/approvals/{approval_id}/withdraw-vote': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '403': ['APPROVER_NOT_ALLOWED'],
    '404': ['NOT_FOUND'],
    '409': ['APPROVAL_ALREADY_DECIDED', 'CONFLICT', 'VOTE_CONTENDED'],
    '410': ['APPROVAL_EXPIRED'],
    '413': ['PAYLOAD_TOO_LARGE'],
    '415': ['UNSUPPORTED_MEDIA_TYPE'],
    '422': ['VALIDATION_ERROR'],
    '500': ['INTERNAL_ERROR'],
  },
  // Issue 21 (5, 6): extensions and standing grants.
  ...Object.fromEntries(
    [
      ['extend', 'EXTENSION_NOT_ALLOWED'],
      ['standing-grant', 'STANDING_GRANT_NOT_ALLOWED'],
    ].map(([verb, notAllowed]) => [
      `POST /v1/approvals/{approval_id}/${verb}`,
      {
        '400': ['BAD_REQUEST'],
        '401': ['UNAUTHORIZED'],
        '403': ['APPROVER_NOT_ALLOWED', 'SELF_APPROVAL', notAllowed!],
        '404': ['NOT_FOUND'],
        // A standing grant on a quorum approval is a vote asking for it: a vote's conflicts too.
        '409': [
          'APPROVAL_ALREADY_DECIDED',
          'CONFLICT',
          ...(verb === 'standing-grant' ? ['ALREADY_VOTED', 'VOTE_CONTENDED'] : []),
        ],
        '410': ['APPROVAL_EXPIRED'],
        '413': ['PAYLOAD_TOO_LARGE'],
        '415': ['UNSUPPORTED_MEDIA_TYPE'],
        '422': ['VALIDATION_ERROR'],
        '500': ['INTERNAL_ERROR'],
      },
    ]),
  ),
  'GET /v1/grants': {
    '400': ['BAD_REQUEST', 'VALIDATION_ERROR'],
    '401': ['UNAUTHORIZED'],
    '403': ['APPROVER_NOT_ALLOWED'],
    '500': ['INTERNAL_ERROR'],
  },
  'GET /v1/grants/{grant_id}': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '404': ['NOT_FOUND'],
    '500': ['INTERNAL_ERROR'],
  },
  'POST /v1/grants/{grant_id}/revoke': {
    '400': ['BAD_REQUEST'],
    '401': ['UNAUTHORIZED'],
    '403': ['APPROVER_NOT_ALLOWED'],
    '404': ['NOT_FOUND'],
    '413': ['PAYLOAD_TOO_LARGE'],
    '415': ['UNSUPPORTED_MEDIA_TYPE'],
    '422': ['VALIDATION_ERROR'],
    '500': ['INTERNAL_ERROR'],
  },
  'GET /console': { '500': ['INTERNAL_ERROR'] },
  'GET /console/{path}': { '400': ['BAD_REQUEST'], '404': ['NOT_FOUND'], '500': ['INTERNAL_ERROR'] },
};
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

function tryMatch(r: ObservedResponse): string | null {
  try {
    assertMatchesContract(r);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
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

/** The error codes a schema narrows `Error` to (the `code` const/enum in its allOf/oneOf/anyOf branches). */
function codesOf(schema: unknown): string[] {
  const found = new Set<string>();
  const walk = (v: unknown): void => {
    const s = asObject(v);
    if (s.$ref === '#/components/schemas/Error') return;
    if (typeof s.$ref === 'string') return walk(resolve(s));
    const code = s.properties === undefined ? undefined : asObject(s.properties).code;
    if (code !== undefined) {
      const c = asObject(code);
      if (typeof c.const === 'string') found.add(c.const);
      if (Array.isArray(c.enum)) for (const e of c.enum) found.add(String(e));
    }
    for (const k of ['allOf', 'oneOf', 'anyOf']) if (Array.isArray(s[k])) (s[k] as unknown[]).forEach(walk);
  };
  walk(schema);
  return [...found].sort();
}

/** The media-type examples (`example` or `examples.*.value`) of a content map, by name. */
function mediaExamples(content: unknown): [string, unknown][] {
  const json = asObject(content)['application/json'];
  if (json === undefined) return []; // an HTML page, a script: no JSON examples to check
  const media = asObject(json);
  const out: [string, unknown][] = [];
  if (media.example !== undefined) out.push(['example', media.example]);
  if (media.examples !== undefined)
    for (const [name, ex] of Object.entries(asObject(media.examples))) out.push([name, resolve(ex).value]);
  return out;
}

/** A concrete path for a documented template. */
function concrete(path: string): string {
  return path.replace('{event_id}', EVENT_ID).replace('{approval_id}', APPROVAL_ID);
}

function componentExamples(name: string): Json[] {
  return asObject(asObject(asObject(openApiDocument().components).schemas)[name]).examples as Json[];
}

function responsesOf(method: string, path: string): Json {
  const op = contractOperations().find((o) => o.method === method && o.path === path);
  if (!op) throw new Error(`no operation ${method} ${path}`);
  return asObject(op.operation.responses);
}

/** The MCP transport's own 4xx: JSON-RPC error bodies, as the MCP spec requires (not SPEC §1). */
const JSON_RPC_ERRORS = ['POST /mcp 400', 'POST /mcp 404', 'POST /mcp 406'];

const apiOperations = () =>
  contractOperations().filter(
    (op) =>
      !PROBES.includes(`${op.method} ${op.path}`) && !OUTSIDE_ROUTES.includes(`${op.method} ${op.path}`),
  );

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
      const op = documented.find((o) => o.method === route.method && o.path === documentedPath(route.path));
      expect({ route: `${route.method} ${route.path}`, found: op !== undefined }).toEqual({
        route: `${route.method} ${route.path}`,
        found: true,
      });
      expect(op?.operation['x-oc-handler']).toBe(route.handler);
    }
  });

  it('documents no route that ROUTES lacks, besides the health probes', () => {
    const routes = ROUTES.map((r) => `${r.method} ${documentedPath(r.path)}`).sort();
    expect(
      apiOperations()
        .map((o) => `${o.method} ${o.path}`)
        .sort(),
    ).toEqual(routes);
    expect(contractOperations().filter((o) => PROBES.includes(`${o.method} ${o.path}`))).toHaveLength(2);
  });

  it('accepts an API key or a bearer token on agent routes, only an approver JWT on approver routes, nothing on the probes', () => {
    const expected = {
      api_key: ['apiKey', 'bearerKey'],
      jwt: ['approverJwt'],
      api_key_or_jwt: ['apiKey', 'approverJwt', 'bearerKey'],
      api_key_or_oauth: ['agentAccessToken', 'apiKey', 'bearerKey'],
      none: [],
    };
    for (const route of ROUTES) {
      const op = contractOperations().find(
        (o) => o.method === route.method && o.path === documentedPath(route.path),
      );
      expect({ route: `${route.method} ${route.path}`, security: op?.security.sort() }).toEqual({
        route: `${route.method} ${route.path}`,
        security: expected[route.auth],
      });
    }
    expect(ROUTES.filter((r) => r.auth === 'jwt').map((r) => `${r.method} ${r.path}`)).toEqual(APPROVAL_OPS);
    const scheme = asObject(asObject(asObject(openApiDocument().components).securitySchemes).approverJwt);
    expect({ type: scheme.type, scheme: scheme.scheme, bearerFormat: scheme.bearerFormat }).toEqual({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
    for (const op of contractOperations().filter((o) => PROBES.includes(`${o.method} ${o.path}`))) {
      expect(op.security).toEqual([]);
    }
  });

  it('declares 401 and 500 with the Error schema on every authenticated operation', () => {
    for (const op of apiOperations().filter((o) => o.security.length > 0)) {
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
        if (JSON_RPC_ERRORS.includes(`${op.method} ${op.path} ${status}`)) continue;
        const schema = asObject(asObject(resolve(ref).content)['application/json']).schema;
        expect(`${op.method} ${op.path} ${status}: ${String(isErrorSchema(schema))}`).toMatch(/: true$/);
      }
    }
  });

  it('requires Retry-After on the 429 of POST /v1/toolcalls, and on its 409 exactly when retryable', () => {
    const responses = responsesOf('POST', '/v1/toolcalls');
    const retryAfter = (status: string) =>
      resolve(asObject(resolve(responses[status]).headers)['Retry-After']);
    expect(retryAfter('429').required).toBe(true);
    expect(retryAfter('409').required).toBe(false);
    expect(retryAfter('409')['x-oc-required-when-retryable']).toBe(true);
  });

  it('requires Retry-After on the execute 409 exactly with AWAITING_APPROVAL and EXECUTION_IN_PROGRESS', () => {
    const responses = responsesOf('POST', '/v1/toolcalls/{event_id}/execute');
    const header = resolve(asObject(resolve(responses['409']).headers)['Retry-After']);
    expect(header.required).toBe(false);
    expect([...(header['x-oc-required-with-codes'] as string[])].sort()).toEqual([
      'AWAITING_APPROVAL',
      'EXECUTION_IN_PROGRESS',
    ]);
  });

  it.each(Object.keys(ERROR_CODES))(
    'declares exactly the specified error statuses and codes on %s',
    (key) => {
      const [method = '', path = ''] = key.split(' ');
      const declared: Record<string, string[]> = {};
      for (const [status, ref] of Object.entries(responsesOf(method, path))) {
        if (!/^[45]/.test(status)) continue;
        declared[status] = codesOf(asObject(asObject(resolve(ref).content)['application/json']).schema);
      }
      const expected = Object.fromEntries(
        Object.entries(ERROR_CODES[key] ?? {}).map(([status, codes]) => [status, [...codes].sort()]),
      );
      expect(declared).toEqual(expected);
    },
  );

  it('covers every API operation in the error-code table', () => {
    expect(Object.keys(ERROR_CODES).sort()).toEqual(
      apiOperations()
        .map((o) => `${o.method} ${o.path}`)
        .sort(),
    );
  });

  it('takes an optional, closed body on approve and deny, and no body on execute', () => {
    for (const [verb, schema] of [
      ['approve', 'ApproveRequest'],
      ['deny', 'DenyRequest'],
    ] as const) {
      const op = contractOperations().find((o) => o.path === `/v1/approvals/{approval_id}/${verb}`);
      const body = asObject(op?.operation.requestBody);
      expect(body.required).toBe(false);
      expect(asObject(asObject(body.content)['application/json']).schema).toEqual({
        $ref: `#/components/schemas/${schema}`,
      });
      const validate = requestSchema(schema);
      expect(validate({})).toBe(true);
      expect(validate({ extra: 1 })).toBe(false);
    }
    const execute = contractOperations().find((o) => o.path === '/v1/toolcalls/{event_id}/execute');
    expect(execute?.operation.requestBody).toBeUndefined();
  });

  it('gives responses whose media-type examples all satisfy the contract', () => {
    let checked = 0;
    for (const op of apiOperations()) {
      for (const [status, ref] of Object.entries(asObject(op.operation.responses))) {
        const response = resolve(ref);
        if (response.content === undefined) continue;
        const headers: Json =
          response.headers !== undefined && 'Retry-After' in asObject(response.headers)
            ? { 'Retry-After': '5' }
            : {};
        for (const [name, example] of mediaExamples(response.content)) {
          const r = json(op.method, concrete(op.path), Number(status), example, headers);
          expect({ at: `${op.method} ${op.path} ${status} ${name}`, error: tryMatch(r) }).toEqual({
            at: `${op.method} ${op.path} ${status} ${name}`,
            error: null,
          });
          checked += 1;
        }
      }
      const body = op.operation.requestBody;
      if (body === undefined) continue;
      const media = asObject(asObject(asObject(body).content)['application/json']);
      const ref = String(asObject(media.schema).$ref);
      const validate = requestSchema(ref.slice(ref.lastIndexOf('/') + 1));
      for (const [name, example] of mediaExamples(asObject(body).content)) {
        expect({ at: `${op.method} ${op.path} request ${name}`, valid: validate(example) }).toEqual({
          at: `${op.method} ${op.path} request ${name}`,
          valid: true,
        });
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(15);
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
        assertMatchesContract(
          json('POST', '/v1/toolcalls', 409, error('CONFLICT', true), { 'retry-after': '1' }),
        ),
      ).not.toThrow();
      expect(() =>
        assertMatchesContract(json('GET', '/v1/toolcalls/NOT-A-UUID', 400, error('BAD_REQUEST'))),
      ).not.toThrow();
    });

    it('a submit 409 with an unknown outcome: final, without Retry-After, naming its event', () => {
      const unknown = error('CONFLICT', false, { details: [{ path: 'event_id', message: EVENT_ID }] });
      expect(tryMatch(json('POST', '/v1/toolcalls', 409, unknown))).toBeNull();
      // without the event it names, it is neither documented case
      expect(tryMatch(json('POST', '/v1/toolcalls', 409, error('CONFLICT', false)))).toMatch(
        /body does not match/,
      );
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
      expect(() => assertMatchesContract(text('/readyz', 200, 'OK'))).not.toThrow();
      expect(() => assertMatchesContract(text('/readyz', 200, 'READY'))).toThrow(/body does not match/);
    });

    it('a 503 from /readyz naming the parts that are down, as JSON', () => {
      const down = {
        status: 'unavailable',
        parts: [
          { name: 'dynamodb', ok: false, detail: 'connect ECONNREFUSED 127.0.0.1:8000' },
          { name: 'stream-poller', ok: true },
        ],
      };
      expect(() => assertMatchesContract(json('GET', '/readyz', 503, down))).not.toThrow();
      expect(() =>
        assertMatchesContract({
          method: 'GET',
          path: '/readyz',
          status: 503,
          headers: { 'Content-Type': 'text/plain' },
          body: 'NOT READY',
        }),
      ).toThrow(/Content-Type text\/plain is not documented/);
      expect(() =>
        assertMatchesContract(json('GET', '/readyz', 503, { ...down, parts: [{ name: 'java', ok: false }] })),
      ).toThrow(/body\/parts\/0\/name/);
      expect(() =>
        assertMatchesContract(json('GET', '/readyz', 503, { status: 'unavailable', parts: [] })),
      ).toThrow(/body\/parts/);
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
        // Approvers' reads take no rate-limit token: no 429 there.
        assertMatchesContract(json('GET', APPROVAL_PATH, 429, error('RATE_LIMITED', true))),
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
        assertMatchesContract(json('POST', '/v1/toolcalls', 409, error('CONFLICT', true))),
      ).toThrow(/required header Retry-After is missing \(required when retryable\)/);
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

    it('an event id that is not a lowercase UUID', () => {
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

describe('assertMatchesContract on approvals and execute', () => {
  const [pendingApproval, approvedApproval] = componentExamples('Approval') as [Json, Json];
  const executed = componentExamples('ExecutionResponse')[0] as Json;
  const gatedRecord = componentExamples('ToolCallRecord')[1] as Json;
  const decided = { path: 'decided_by', message: 'bob@example.com' };

  describe('accepts', () => {
    it('a page of approvals, a single approval, and the approve and deny answers', () => {
      expect(
        tryMatch(json('GET', '/v1/approvals?status=pending&limit=50', 200, { items: [pendingApproval] })),
      ).toBeNull();
      expect(
        tryMatch(
          json('GET', '/v1/approvals', 200, {
            items: [approvedApproval, pendingApproval],
            next_cursor: 'c1',
          }),
        ),
      ).toBeNull();
      expect(tryMatch(json('GET', APPROVAL_PATH, 200, approvedApproval))).toBeNull();
      expect(tryMatch(json('POST', `${APPROVAL_PATH}/approve`, 200, approvedApproval))).toBeNull();
      const denied = {
        ...pendingApproval,
        status: 'denied',
        decided_by: 'slack:U024BE7LH',
        decided_at: '2025-06-01T13:00:00Z',
        deny_reason: 'x'.repeat(1000),
      };
      expect(tryMatch(json('POST', `${APPROVAL_PATH}/deny`, 200, denied))).toBeNull();
      expect(tryMatch(json('GET', APPROVAL_PATH, 200, { ...pendingApproval, status: 'expired' }))).toBeNull();
    });

    it('the approval errors', () => {
      const cases: [string, string, number, Json, Json?][] = [
        ['GET', '/v1/approvals?limit=0', 400, error('VALIDATION_ERROR')],
        ['GET', '/v1/approvals?cursor=zzz', 400, error('BAD_REQUEST')],
        ['GET', '/v1/approvals', 401, error('UNAUTHORIZED')],
        ['GET', '/v1/approvals', 403, error('APPROVER_NOT_ALLOWED')],
        ['GET', APPROVAL_PATH, 404, error('NOT_FOUND')],
        ['POST', `${APPROVAL_PATH}/approve`, 403, error('SELF_APPROVAL')],
        ['POST', `${APPROVAL_PATH}/deny`, 403, error('APPROVER_NOT_ALLOWED')],
        [
          'POST',
          `${APPROVAL_PATH}/approve`,
          409,
          error('APPROVAL_ALREADY_DECIDED', false, {
            details: [{ path: 'status', message: 'denied' }, decided],
          }),
        ],
        ['POST', `${APPROVAL_PATH}/deny`, 410, error('APPROVAL_EXPIRED')],
        ['POST', `${APPROVAL_PATH}/deny`, 413, error('PAYLOAD_TOO_LARGE')],
        ['POST', `${APPROVAL_PATH}/approve`, 422, error('VALIDATION_ERROR')],
      ];
      for (const [method, path, status, body] of cases) {
        expect({
          at: `${method} ${path} ${status}`,
          error: tryMatch(json(method, path, status, body)),
        }).toEqual({
          at: `${method} ${path} ${status}`,
          error: null,
        });
      }
    });

    it('an execution, its replay, and a recorded approval-gated call with its execution', () => {
      expect(tryMatch(json('POST', EXECUTE_PATH, 200, executed))).toBeNull();
      expect(
        tryMatch(json('POST', EXECUTE_PATH, 200, executed, { 'Idempotent-Replayed': 'true' })),
      ).toBeNull();
      expect(tryMatch(json('GET', `/v1/toolcalls/${EVENT_ID}`, 200, gatedRecord))).toBeNull();
      const unknown = { ...gatedRecord, execution: { event_id: EVENT_ID, status: 'unknown' } };
      expect(tryMatch(json('GET', `/v1/toolcalls/${EVENT_ID}`, 200, unknown))).toBeNull();
      const resolved = {
        ...gatedRecord,
        execution: { ...(gatedRecord.execution as Json), resolved_by: 'ops@example.com' },
      };
      expect(tryMatch(json('GET', `/v1/toolcalls/${EVENT_ID}`, 200, resolved))).toBeNull();
    });

    it('the execute errors, with Retry-After where retryable', () => {
      const retry = { 'Retry-After': '5' };
      const cases: [number, Json, Json][] = [
        [409, error('AWAITING_APPROVAL', true), retry],
        [409, error('EXECUTION_IN_PROGRESS', true), retry],
        [409, error('NOT_APPROVAL_GATED'), {}],
        [
          409,
          error('EXECUTION_OUTCOME_UNKNOWN', false, {
            details: [{ path: 'execution_event_id', message: EVENT_ID }],
          }),
          {},
        ],
        [
          409,
          error('POLICY_CHANGED', false, {
            details: [
              { path: 'approved_under', message: `sha256:${'a'.repeat(64)}` },
              { path: 'policy_version', message: `sha256:${'b'.repeat(64)}` },
              { path: 'decision', message: 'deny' },
              { path: 'reason', message: 'action not in allowlist' },
            ],
          }),
          {},
        ],
        [
          403,
          error('APPROVAL_DENIED', false, { details: [{ path: 'deny_reason', message: '' }, decided] }),
          {},
        ],
        [410, error('APPROVAL_EXPIRED'), {}],
        [404, error('NOT_FOUND'), {}],
        [400, error('BAD_REQUEST'), {}],
      ];
      for (const [status, body, headers] of cases) {
        expect({
          at: `${status} ${String(body.code)}`,
          error: tryMatch(json('POST', EXECUTE_PATH, status, body, headers)),
        }).toEqual({
          at: `${status} ${String(body.code)}`,
          error: null,
        });
      }
    });
  });

  describe('rejects', () => {
    it('a decided approval without who decided and when', () => {
      const { decided_by: _by, ...noDecider } = approvedApproval;
      expect(tryMatch(json('GET', APPROVAL_PATH, 200, noDecider))).toMatch(/body does not match/);
      const { decided_at: _at, ...noTime } = {
        ...pendingApproval,
        status: 'denied',
        decided_by: 'bob@example.com',
        decided_at: '2025-06-01T13:00:00Z',
      };
      expect(tryMatch(json('POST', `${APPROVAL_PATH}/deny`, 200, noTime))).toMatch(/body does not match/);
    });

    it('an approval with an unknown field, a bad status, a long comment or a bad grant', () => {
      expect(
        tryMatch(json('GET', APPROVAL_PATH, 200, { ...pendingApproval, request_hash: 'a'.repeat(64) })),
      ).toMatch(/additional properties \(request_hash\)/);
      expect(tryMatch(json('GET', APPROVAL_PATH, 200, { ...pendingApproval, status: 'cancelled' }))).toMatch(
        /body\/status/,
      );
      expect(
        tryMatch(json('GET', APPROVAL_PATH, 200, { ...approvedApproval, comment: 'c'.repeat(1001) })),
      ).toMatch(/body\/comment/);
      const grant = approvedApproval.grant as Json;
      for (const bad of [{ uses_left: 2 }, { request_hash: 'ABC' }, { event_id: 'not-a-uuid' }]) {
        expect(
          tryMatch(
            json('POST', `${APPROVAL_PATH}/approve`, 200, {
              ...approvedApproval,
              grant: { ...grant, ...bad },
            }),
          ),
        ).toMatch(/body\/grant/);
      }
      expect(tryMatch(json('GET', APPROVAL_PATH, 200, { ...pendingApproval, risk_score: 11 }))).toMatch(
        /body\/risk_score/,
      );
    });

    it('a page without items or with an oversized cursor', () => {
      expect(tryMatch(json('GET', '/v1/approvals', 200, { next_cursor: 'c1' }))).toMatch(
        /required property 'items'/,
      );
      expect(
        tryMatch(json('GET', '/v1/approvals', 200, { items: [], next_cursor: 'c'.repeat(2049) })),
      ).toMatch(/body\/next_cursor/);
    });

    it('approve and deny bodies beyond the contract', () => {
      expect(requestSchema('ApproveRequest')({ comment: 'c'.repeat(1001) })).toBe(false);
      expect(requestSchema('ApproveRequest')({ reason: 'wrong field' })).toBe(false);
      expect(requestSchema('DenyRequest')({ reason: 7 })).toBe(false);
      expect(requestSchema('DenyRequest')({ reason: 'r'.repeat(1000) })).toBe(true);
    });

    it('approval errors with a code of another status, or without their details', () => {
      expect(tryMatch(json('POST', `${APPROVAL_PATH}/approve`, 403, error('TENANT_MISMATCH')))).toMatch(
        /body\/code/,
      );
      expect(tryMatch(json('POST', `${APPROVAL_PATH}/approve`, 409, error('CONFLICT')))).toMatch(
        /body does not match/,
      );
      expect(
        tryMatch(json('POST', `${APPROVAL_PATH}/approve`, 409, error('APPROVAL_ALREADY_DECIDED'))),
      ).toMatch(/required property 'details'/);
      expect(
        tryMatch(
          json(
            'POST',
            `${APPROVAL_PATH}/deny`,
            409,
            error('APPROVAL_ALREADY_DECIDED', false, { details: [decided] }),
          ),
        ),
      ).toMatch(/body\/details/);
      expect(tryMatch(json('GET', APPROVAL_PATH, 409, error('APPROVAL_ALREADY_DECIDED')))).toMatch(
        /status 409 is not documented/,
      );
      expect(tryMatch(json('GET', '/v1/approvals', 404, error('NOT_FOUND')))).toMatch(
        /status 404 is not documented/,
      );
    });

    it('an execution that is not an approved allow of the stored request', () => {
      expect(tryMatch(json('POST', EXECUTE_PATH, 200, { ...executed, decision: 'deny' }))).toMatch(
        /body\/decision/,
      );
      expect(tryMatch(json('POST', EXECUTE_PATH, 200, { ...executed, reason: 'allowed' }))).toMatch(
        /body\/reason/,
      );
      const { parent_event_id: _p, ...orphan } = executed;
      expect(tryMatch(json('POST', EXECUTE_PATH, 200, orphan))).toMatch(
        /required property 'parent_event_id'/,
      );
      expect(tryMatch(json('POST', EXECUTE_PATH, 200, { ...executed, policy_version: 'v1' }))).toMatch(
        /additional properties \(policy_version\)/,
      );
      expect(tryMatch(json('POST', EXECUTE_PATH, 200, executed, { 'Idempotent-Replayed': 'yes' }))).toMatch(
        /header Idempotent-Replayed/,
      );
    });

    it('execute errors with the wrong code, retryability or missing Retry-After', () => {
      expect(tryMatch(json('POST', EXECUTE_PATH, 409, error('AWAITING_APPROVAL', true)))).toMatch(
        /required header Retry-After is missing \(required with code AWAITING_APPROVAL\)/,
      );
      expect(tryMatch(json('POST', EXECUTE_PATH, 409, error('EXECUTION_IN_PROGRESS', true)))).toMatch(
        /required header Retry-After is missing/,
      );
      expect(tryMatch(json('POST', EXECUTE_PATH, 409, error('NOT_APPROVAL_GATED', true)))).toMatch(
        /body does not match/,
      );
      expect(
        tryMatch(json('POST', EXECUTE_PATH, 409, error('AWAITING_APPROVAL', false), { 'Retry-After': '5' })),
      ).toMatch(/body does not match/);
      expect(
        tryMatch(json('POST', EXECUTE_PATH, 409, error('CONFLICT', true), { 'Retry-After': '1' })),
      ).toMatch(/body does not match/);
      expect(tryMatch(json('POST', EXECUTE_PATH, 403, error('APPROVAL_DENIED')))).toMatch(
        /required property 'details'/,
      );
      expect(
        tryMatch(json('POST', EXECUTE_PATH, 403, error('APPROVAL_DENIED', false, { details: [decided] }))),
      ).toMatch(/body\/details/);
      expect(tryMatch(json('POST', EXECUTE_PATH, 410, error('NOT_FOUND')))).toMatch(/body\/code/);
      // Any body is ignored, so no size limit applies: no 413.
      expect(tryMatch(json('POST', EXECUTE_PATH, 413, error('PAYLOAD_TOO_LARGE')))).toMatch(
        /status 413 is not documented/,
      );
    });

    it('a recorded execution with an old status, a completed one without its result, or an approval with a long deny reason', () => {
      const execution = gatedRecord.execution as Json;
      const path = `/v1/toolcalls/${EVENT_ID}`;
      expect(
        tryMatch(
          json('GET', path, 200, { ...gatedRecord, execution: { ...execution, status: 'executing' } }),
        ),
      ).toMatch(/body\/execution/);
      const { result: _r, ...noResult } = execution;
      expect(tryMatch(json('GET', path, 200, { ...gatedRecord, execution: noResult }))).toMatch(
        /body\/execution/,
      );
      const approval = { ...(gatedRecord.approval as Json), status: 'denied', deny_reason: 'd'.repeat(1001) };
      expect(tryMatch(json('GET', path, 200, { ...gatedRecord, approval }))).toMatch(
        /body\/approval\/deny_reason/,
      );
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

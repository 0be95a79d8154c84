import { createHash } from 'node:crypto';
import { UUID_PATTERN } from '../../functions/shared/input-rules.js';
import { bindRequest, eventIdFor, parseToolCallBody, toolAction } from '../../functions/core/toolcall.js';

const valid = {
  agent_id: 'agent-1',
  tool: 'slack',
  action: 'msg.post',
  params: { channel: '#general', text: 'Hello' },
  idempotency_key: 'demo-001',
};

function problems(body: unknown): { path: string; message: string }[] {
  const r = parseToolCallBody(body);
  if (r.ok) throw new Error('expected a validation failure');
  return r.details;
}

describe('ToolCallRequest validation', () => {
  it('accepts a full valid request and applies defaults', () => {
    const r = parseToolCallBody({
      ...valid,
      tenant_id: 'tenant1',
      resource: 'C01',
      risk_score: 10,
      labels: { env: 'prod' },
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.body.schema_version).toBe('1.0');
    expect(r.body.risk_score).toBe(10);
    expect(r.body.risk_factors).toEqual([]);
  });

  it.each(['agent_id', 'tool', 'action', 'idempotency_key'])('requires %s', (field) => {
    const body: Record<string, unknown> = { ...valid };
    delete body[field];
    expect(problems(body).map((p) => p.path)).toContain(`/${field}`);
  });

  it.each([
    ['risk_score', 11],
    ['risk_score', -1],
    ['risk_score', 3.5],
    ['risk_score', '3'],
  ])('rejects %s = %p', (field, value) => {
    expect(problems({ ...valid, [field]: value }).map((p) => p.path)).toContain(`/${field}`);
  });

  it('rejects params over 65,536 bytes and accepts exactly that size', () => {
    const pad = (n: number) => ({ x: 'a'.repeat(n - '{"x":""}'.length) });
    expect(parseToolCallBody({ ...valid, params: pad(65_536) }).ok).toBe(true);
    expect(problems({ ...valid, params: pad(65_537) })[0]?.path).toBe('/params');
  });

  it('rejects params that are not an object', () => {
    for (const params of [[], 'x', 1, null]) expect(problems({ ...valid, params })[0]?.path).toBe('/params');
  });

  it('rejects 51 labels and accepts 50', () => {
    const labels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    expect(parseToolCallBody({ ...valid, labels: labels(50) }).ok).toBe(true);
    expect(problems({ ...valid, labels: labels(51) })[0]?.path).toBe('/labels');
  });

  it('rejects non-string label values', () => {
    expect(problems({ ...valid, labels: { a: 1 } })[0]?.path).toBe('/labels/a');
  });

  it('counts resource and idempotency_key limits in UTF-8 bytes', () => {
    expect(parseToolCallBody({ ...valid, resource: 'a'.repeat(2048) }).ok).toBe(true);
    expect(problems({ ...valid, resource: 'a'.repeat(2049) })[0]?.path).toBe('/resource');
    expect(problems({ ...valid, resource: 'é'.repeat(1025) })[0]?.path).toBe('/resource');
    expect(parseToolCallBody({ ...valid, idempotency_key: 'k'.repeat(256) }).ok).toBe(true);
    expect(problems({ ...valid, idempotency_key: 'k'.repeat(257) })[0]?.path).toBe('/idempotency_key');
    expect(problems({ ...valid, idempotency_key: 'é'.repeat(129) })[0]?.path).toBe('/idempotency_key');
  });

  it('rejects an unknown schema_version', () => {
    expect(problems({ ...valid, schema_version: '99.0' })[0]?.path).toBe('/schema_version');
  });

  it('normalizes tool and action (trim, lowercase) before checking them', () => {
    const r = parseToolCallBody({ ...valid, tool: '  SLACK  ', action: ' MSG.POST ' });
    expect(r.ok && toolAction(r.body)).toBe('slack.msg.post');
  });

  it.each(['sl ack', '-slack', 'slack!', 'a'.repeat(65), ''])('rejects tool %p', (tool) => {
    expect(problems({ ...valid, tool })[0]?.path).toBe('/tool');
  });

  it('rejects unknown fields, naming them', () => {
    expect(problems({ ...valid, TENANT_ID: 'x' })[0]?.message).toContain('TENANT_ID');
  });

  it('rejects blank ids', () => {
    expect(problems({ ...valid, agent_id: '   ' })[0]?.path).toBe('/agent_id');
    expect(problems({ ...valid, idempotency_key: ' ' })[0]?.path).toBe('/idempotency_key');
  });

  it('rejects lone surrogates anywhere, including inside params', () => {
    expect(problems({ ...valid, resource: '\ud800' })[0]?.path).toBe('/resource');
    expect(problems({ ...valid, params: { a: ['\udfff'] } })[0]?.path).toBe('/params/a/0');
  });

  it('requires requested_at to carry a zone', () => {
    expect(parseToolCallBody({ ...valid, requested_at: '2025-01-01T00:00:00Z' }).ok).toBe(true);
    expect(parseToolCallBody({ ...valid, requested_at: '2025-01-01T00:00:00+02:00' }).ok).toBe(true);
    expect(problems({ ...valid, requested_at: '2025-01-01T00:00:00' })[0]?.path).toBe('/requested_at');
    expect(problems({ ...valid, requested_at: '' })[0]?.path).toBe('/requested_at');
  });

  it('rejects bodies that are not objects', () => {
    for (const body of [null, [], 'x', 42, true])
      expect(problems(body)[0]?.message).toBe('body must be a JSON object');
  });

  it('binds the request to the key tenant and fills requested_at from the server clock', () => {
    const r = parseToolCallBody(valid);
    if (!r.ok) throw new Error('valid');
    const now = new Date('2025-01-01T00:00:00.000Z');
    const bound = bindRequest(r.body, 'tenant1', now);
    expect(bound.tenant_id).toBe('tenant1');
    expect(bound.requested_at).toBe('2025-01-01T00:00:00.000Z');
  });
});

describe('eventIdFor: the event id an idempotency key names', () => {
  it('is a lowercase RFC 9562 UUIDv8 that the API accepts as a path id', () => {
    const id = eventIdFor('tenant1', 'key-1');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(UUID_PATTERN.test(id)).toBe(true);
  });

  it('is the first 128 bits of SHA-256 of ["oc-event/v1", tenant, key] as JSON, version and variant set', () => {
    const digest = createHash('sha256').update('["oc-event/v1","tenant1","key-1"]').digest('hex');
    const id = eventIdFor('tenant1', 'key-1').replace(/-/g, '');
    // all but the version nibble (12) and the two variant bits (16) come from the digest
    expect(id.slice(0, 12)).toBe(digest.slice(0, 12));
    expect(id.slice(13, 16)).toBe(digest.slice(13, 16));
    expect(id.slice(17, 32)).toBe(digest.slice(17, 32));
  });

  it('is the same for the same tenant and key, different across tenants and keys', () => {
    expect(eventIdFor('tenant1', 'k')).toBe(eventIdFor('tenant1', 'k'));
    expect(eventIdFor('tenant2', 'k')).not.toBe(eventIdFor('tenant1', 'k'));
    expect(eventIdFor('tenant1', 'k2')).not.toBe(eventIdFor('tenant1', 'k'));
    // the framing keeps ("a", "b\nc") and ("a\nb", "c") apart
    expect(eventIdFor('a', 'b\nc')).not.toBe(eventIdFor('a\nb', 'c'));
  });
});

/**
 * The contract's promises, taken from the contract and asked of the running stack (issue 19,
 * deliverable 7): every id its path patterns accept is answered 404 when it names nothing (the nil
 * UUID and a v1 UUID too), never 400; its own cursor example is a cursor the server takes; a
 * JSON-RPC id of any number is echoed within the contract. Every answer is checked against
 * api/openapi.yaml by the stack's client.
 */
import { tokenFor } from '../support/approvers.js';
import { openApiDocument } from '../support/contract.js';
import { startTestStack, type TestStack } from '../support/stack.js';

type Json = Record<string, any>;
const doc = openApiDocument() as Json;
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack.stop();
});

/** Well-formed ids the gateway never issues, and one it could have: all must match the contract. */
const ABSENT_IDS = [
  '00000000-0000-0000-0000-000000000000',
  'c232ab00-9414-11ec-b3c8-9f6bdeced846',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b',
];

describe('ids, as the contract states them', () => {
  it('every absent id the EventId pattern accepts is 404 on the agent routes; others are 400', async () => {
    const pattern = new RegExp(doc.components.parameters.EventId.schema.pattern);
    for (const id of ABSENT_IDS) {
      expect(pattern.test(id)).toBe(true);
      expect([id, (await stack.get(`/v1/toolcalls/${id}`)).status]).toEqual([id, 404]);
      expect([id, (await stack.post(`/v1/toolcalls/${id}/execute`, '')).status]).toEqual([id, 404]);
    }
    const upper = ABSENT_IDS[3]!.toUpperCase();
    expect(pattern.test(upper)).toBe(false);
    expect((await stack.get(`/v1/toolcalls/${upper}`)).status).toBe(400);
  });

  it('every absent id the ApprovalId pattern accepts is 404 on the approver routes', async () => {
    const pattern = new RegExp(doc.components.parameters.ApprovalId.schema.pattern);
    const token = await tokenFor('alice');
    for (const id of ABSENT_IDS) {
      expect(pattern.test(id)).toBe(true);
      for (const [method, path] of [
        ['GET', `/v1/approvals/${id}`],
        ['GET', `/v1/approvals/${id}/deliveries`],
        ['POST', `/v1/approvals/${id}/approve`],
        ['POST', `/v1/approvals/${id}/deny`],
      ] as const) {
        expect([method, path, (await stack.request(method, path, { token })).status]).toEqual([
          method,
          path,
          404,
        ]);
      }
    }
  });
});

it('the contract’s cursor example is a cursor the server takes (for tenant1’s pending listing)', async () => {
  const example = doc.components.parameters.Cursor.example as string;
  const page = await stack.request('GET', `/v1/approvals?status=pending&cursor=${example}`, {
    token: await tokenFor('alice'),
  });
  expect(page.status).toBe(200);
  expect(doc.components.schemas.ApprovalList.examples[0].next_cursor).toBe(example);
});

it('a JSON-RPC id that is not an integer is echoed in the answer, within the contract', async () => {
  // The SDK refuses the message (-32600) and echoes its id: the stack's client checks that answer.
  const r = await stack.request('POST', '/mcp', {
    body: { jsonrpc: '2.0', id: 1.5, method: 'ping' },
    headers: { Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2025-11-25' },
  });
  expect(r.status).toBe(400);
  expect(r.json).toMatchObject({ jsonrpc: '2.0', id: 1.5, error: { code: -32600 } });
});

/**
 * Long JSON kept packed in items (`store/packed-text.ts`) and stream images as Lambda delivers them
 * (`shared/stream-image.ts`): what is stored reads back the same, strings written before packing
 * still read, and a packed attribute arriving as base64 text (Lambda's event JSON) is decoded.
 */
import { marshall } from '@aws-sdk/util-dynamodb';
import { PACK_OVER, packText, unpackText } from '../../functions/store/packed-text.js';
import { lambdaImage, streamImage } from '../../functions/shared/stream-image.js';
import { approvalItem } from '../../functions/store/toolcalls.js';
import { toStoredApproval } from '../../functions/store/approvals.js';
import type { ApprovalRecord } from '../../functions/core/ports.js';

const approval: ApprovalRecord = {
  id: '54d7e609-e22e-4328-8aad-c308c606ba51',
  event_id: 'e4fa3591-5625-8e45-9527-e119e784f832',
  tenant_id: 'tenant1',
  agent_id: 'agent-1',
  user_id: '',
  tool: 'jira',
  action: 'issue.delete',
  resource: 'OPS-1',
  params: { issue: 'OPS-1', note: 'ünïcødé \u{1f600}' },
  risk_score: 6,
  risk_factors: [],
  trace_id: '',
  reason: 'destructive action requires approval',
  approver_group: 'security',
  status: 'pending',
  created_at: '2026-12-08T00:03:18.848Z',
  expires_at: '2026-12-09T00:03:18.848Z',
  request_hash: 'e428194b284178899cf21de24de9ce798540ca7b217161e69e55acbf615859d0',
  policy_version: 'sha256:2c06c39390f125a0b897afd29918cd1b0112105b69e4296b0d8cee9e1a36d8fa',
  requirements: { approval_scope: 'single_use' },
  notify: [
    { kind: 'webhook', url: 'http://localhost:8090/hooks/approvals', secret_ref: 'tenant1_webhook' },
    { kind: 'slack', channel: '#security-approvals' },
  ],
  risk: { claimed: 3, floor: 6, effective: 6 },
  view: {
    version: 'oc-approval-view/v1',
    hash: '50a207b4e8bb5db7eb62564ddf45a4a9fb5af4df4b738dccd37de95a97f8342b',
  },
};

describe('packed text', () => {
  it('keeps short text a string and packs long text smaller, reading both back the same', () => {
    const short = JSON.stringify({ decision: 'deny', reason: 'no' });
    expect(packText(short)).toBe(short);
    const long = JSON.stringify({ lines: Array.from({ length: 40 }, (_, i) => `Line ${i}: ünïcødé`) });
    expect(Buffer.byteLength(long)).toBeGreaterThan(PACK_OVER);
    const packed = packText(long);
    expect(packed).toBeInstanceOf(Uint8Array);
    expect((packed as Uint8Array).length).toBeLessThan(Buffer.byteLength(long));
    expect(unpackText(packed)).toBe(long);
    expect(unpackText(long)).toBe(long);
    expect(unpackText(undefined)).toBeUndefined();
    expect(unpackText(42)).toBeUndefined();
  });

  it('stores an approval item in under 1 KB that its JSON as a string put over it, and reads it back whole', () => {
    const item = approvalItem(approval);
    expect(item.approval).toBeInstanceOf(Uint8Array);
    const size = (v: unknown) => (v instanceof Uint8Array ? v.length : Buffer.byteLength(String(v)));
    const itemBytes = Object.entries(item).reduce((n, [k, v]) => n + Buffer.byteLength(k) + size(v), 0);
    expect(itemBytes).toBeLessThan(1024);
    const asString = itemBytes - size(item.approval) + Buffer.byteLength(unpackText(item.approval)!);
    expect(asString).toBeGreaterThan(1024);
    const { record } = toStoredApproval(item);
    expect(record).toEqual(approval);
    // An item written before packing: its JSON as a string.
    const { record: older } = toStoredApproval({ ...item, approval: unpackText(item.approval) });
    expect(older).toEqual(approval);
  });
});

describe('stream images', () => {
  it('decodes a packed attribute that arrives as base64 text, as Lambda delivers it', () => {
    const item = approvalItem(approval);
    const wire = lambdaImage(marshall(item) as Record<string, unknown>);
    expect(typeof (wire.approval as { B: unknown }).B).toBe('string');
    const image = streamImage(wire);
    expect(image.approval).toBeInstanceOf(Uint8Array);
    expect(toStoredApproval(image).record).toEqual(approval);
  });

  it('reads an image holding bytes (the SDK stream client) and nested binary as the same item', () => {
    const item = {
      pk: 'p',
      sk: 's',
      blob: new Uint8Array([1, 2, 3]),
      nested: { list: [new Uint8Array([9])] },
    };
    const raw = marshall(item) as Record<string, unknown>;
    expect(streamImage(raw)).toEqual(item);
    expect(streamImage(lambdaImage(raw))).toEqual(item);
  });
});

/**
 * What is recorded of an upstream MCP tool's result (issue 25): a bounded copy that fits a
 * DynamoDB item (400 KB, with the request, the decision and the chain's fields beside it) and
 * the size and SHA-256 of the whole result, so an auditor holding the upstream's full answer can
 * prove it is the one the gateway received.
 *
 * - The hash is over the whole result's canonical JSON (RFC 8785, after `toSealableJson`).
 * - Binary data is never copied: an image or audio block keeps its type and MIME type and gets
 *   `data_bytes` and `data_sha256` (of the decoded bytes) instead of `data`; an embedded
 *   resource's `blob` likewise becomes `blob_bytes` and `blob_sha256`. Text (a text block, an
 *   embedded resource's `text`) and resource links are copied.
 * - Over the bound, `structuredContent` is kept whole when it fits (it is what an output schema
 *   describes) and dropped otherwise; then the content blocks are copied in order, the text that
 *   overflows is cut, and the blocks after the bound are left out. `truncated: true` says so.
 *
 * Pure: no I/O, deterministic for a given result.
 */
import { createHash } from 'node:crypto';
import { canon, toSealableJson } from './evidence.js';

/** The bounded copy's size (JSON bytes): a quarter of a DynamoDB item, leaving room for the rest. */
export const UPSTREAM_OUTPUT_MAX_BYTES = 96 * 1024;

export interface BoundedUpstreamOutput extends Record<string, unknown> {
  content: Record<string, unknown>[];
  structuredContent?: Record<string, unknown>;
  /** The upstream's own `isError` (the tool ran and reported a failure). */
  isError?: true;
  /** The whole result, as received: its canonical JSON's UTF-8 length and SHA-256 (hex). */
  result_bytes: number;
  result_sha256: string;
  /** Text was cut, or blocks or `structuredContent` left out, to stay under the bound. */
  truncated?: true;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');

function digestBase64(value: unknown): { bytes: number; sha256: string } {
  const decoded = Buffer.from(typeof value === 'string' ? value : '', 'base64');
  return { bytes: decoded.length, sha256: sha256(decoded) };
}

/** A content block with its binary data replaced by its size and hash. */
function withoutBinary(block: Record<string, unknown>): Record<string, unknown> {
  if ((block.type === 'image' || block.type === 'audio') && 'data' in block) {
    const { data, ...rest } = block;
    const digest = digestBase64(data);
    return { ...rest, data_bytes: digest.bytes, data_sha256: digest.sha256 };
  }
  const resource = block.resource as Record<string, unknown> | undefined;
  if (block.type === 'resource' && resource && typeof resource === 'object' && 'blob' in resource) {
    const { blob, ...rest } = resource;
    const digest = digestBase64(blob);
    return { ...block, resource: { ...rest, blob_bytes: digest.bytes, blob_sha256: digest.sha256 } };
  }
  return block;
}

/** The longest prefix of `text` whose JSON string takes at most `maxBytes`. */
function cutText(text: string, maxBytes: number): string {
  if (jsonBytes(text) <= maxBytes) return text;
  let low = 0;
  let high = text.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (jsonBytes(text.slice(0, mid)) <= maxBytes) low = mid;
    else high = mid - 1;
  }
  // Never end on half a surrogate pair.
  const cut = text.slice(0, low);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

/** The text-bearing field of a block, if any, as [get, set]. */
function textOf(
  block: Record<string, unknown>,
): [string, (text: string) => Record<string, unknown>] | undefined {
  if (block.type === 'text' && typeof block.text === 'string')
    return [block.text, (text) => ({ ...block, text })];
  const resource = block.resource as Record<string, unknown> | undefined;
  if (block.type === 'resource' && resource && typeof resource.text === 'string')
    return [resource.text, (text) => ({ ...block, resource: { ...resource, text } })];
  return undefined;
}

export interface UpstreamResultShape {
  content?: unknown;
  structuredContent?: unknown;
  isError?: unknown;
}

export function boundUpstreamResult(
  result: UpstreamResultShape,
  maxBytes: number = UPSTREAM_OUTPUT_MAX_BYTES,
): BoundedUpstreamOutput {
  const sealable = toSealableJson(result) as UpstreamResultShape;
  const whole = canon(sealable);
  const head = {
    result_bytes: Buffer.byteLength(whole, 'utf8'),
    result_sha256: sha256(whole),
    ...(sealable.isError === true ? { isError: true as const } : {}),
  };
  const blocks = (Array.isArray(sealable.content) ? sealable.content : [])
    .filter((b): b is Record<string, unknown> => b !== null && typeof b === 'object' && !Array.isArray(b))
    .map(withoutBinary);
  const structured =
    sealable.structuredContent !== null &&
    typeof sealable.structuredContent === 'object' &&
    !Array.isArray(sealable.structuredContent)
      ? (sealable.structuredContent as Record<string, unknown>)
      : undefined;

  const full: BoundedUpstreamOutput = {
    content: blocks,
    ...(structured ? { structuredContent: structured } : {}),
    ...head,
  };
  if (jsonBytes(full) <= maxBytes) return full;

  // Over the bound: room is measured on the record as it grows, so the result is always under it.
  const bounded: BoundedUpstreamOutput = { content: [], ...head, truncated: true };
  if (structured && jsonBytes({ ...bounded, structuredContent: structured }) <= maxBytes)
    bounded.structuredContent = structured;
  for (const block of blocks) {
    const room = maxBytes - jsonBytes(bounded) - 1; // the comma between blocks
    if (jsonBytes(block) <= room) {
      bounded.content.push(block);
      continue;
    }
    const text = textOf(block);
    if (text) {
      const [value, set] = text;
      const overhead = jsonBytes(set(''));
      if (overhead < room) {
        const cut = set(cutText(value, room - overhead));
        if (jsonBytes(cut) <= room) bounded.content.push(cut);
      }
    }
    break;
  }
  return bounded;
}

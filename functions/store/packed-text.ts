/**
 * Long JSON text kept in an item as raw DEFLATE (a binary attribute) instead of a string: an
 * approval's request fields and a call's replayable response. DynamoDB bills writes per started KB
 * (twice inside a transaction, once more for each index the attribute is projected into), and
 * these are written where that counts: a parked call's event and approval items go in one
 * transaction, and the approval is copied into the listing index. Measured on the bench's parked
 * call: the approval's JSON 746 → 456 bytes, the response 823 → 483 bytes (the view's lines, the
 * console URL and the ids repeat), the call's write units 13 → 9 (DynamoDB Local's count). Text under `PACK_OVER` bytes
 * stays a string (a denial's short answer: nothing to gain for the CPU). Items written before
 * packing hold strings, which `unpackText` reads as they are.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';

/** Text longer than this (UTF-8 bytes) is stored deflated, if that is smaller. */
export const PACK_OVER = 512;

/** The value to store: the text itself, or its raw DEFLATE bytes when long enough to gain. */
export function packText(text: string): string | Uint8Array {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= PACK_OVER) return text;
  const packed = deflateRawSync(bytes);
  return packed.length < bytes.length
    ? new Uint8Array(packed.buffer, packed.byteOffset, packed.length)
    : text;
}

/** The text a stored value holds (a string as written, or packed bytes); undefined for anything else. */
export function unpackText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return inflateRawSync(value).toString('utf8');
  return undefined;
}

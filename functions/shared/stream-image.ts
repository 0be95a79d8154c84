/**
 * A DynamoDB stream record's image, unmarshalled as Lambda delivers it: in the event's JSON a
 * binary attribute (a packed approval or response, `store/packed-text.ts`) is base64 text, which
 * `unmarshall` would hand back as that text. Decoded here to its bytes first; an image holding
 * bytes already (as the SDK's own stream client returns them) is read as it is.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';

type Wire = Record<string, unknown>;

function decoded(value: Wire): Wire {
  if (typeof value.B === 'string') return { B: Buffer.from(value.B, 'base64') };
  if (Array.isArray(value.BS))
    return { BS: value.BS.map((b: unknown) => (typeof b === 'string' ? Buffer.from(b, 'base64') : b)) };
  if (value.M && typeof value.M === 'object') return { M: decodedImage(value.M as Record<string, Wire>) };
  if (Array.isArray(value.L)) return { L: value.L.map((v: Wire) => decoded(v)) };
  return value;
}

function decodedImage(image: Record<string, Wire>): Record<string, Wire> {
  return Object.fromEntries(Object.entries(image).map(([k, v]) => [k, decoded(v)]));
}

/** The image's item, binary attributes as bytes whether they came as base64 (Lambda) or bytes. */
export function streamImage(image: Record<string, unknown>): Record<string, unknown> {
  return unmarshall(decodedImage(image as Record<string, Wire>) as unknown as Record<string, AttributeValue>);
}

/** The other way, for the local stream poller: bytes as base64 text, as Lambda's event carries them. */
export function lambdaImage(image: Record<string, unknown>): Record<string, unknown> {
  const encode = (value: Wire): Wire => {
    if (value.B instanceof Uint8Array) return { B: Buffer.from(value.B).toString('base64') };
    if (Array.isArray(value.BS))
      return {
        BS: value.BS.map((b: unknown) => (b instanceof Uint8Array ? Buffer.from(b).toString('base64') : b)),
      };
    if (value.M && typeof value.M === 'object') return { M: lambdaImage(value.M as Wire) };
    if (Array.isArray(value.L)) return { L: value.L.map((v: Wire) => encode(v)) };
    return value;
  };
  return Object.fromEntries(Object.entries(image).map(([k, v]) => [k, encode(v as Wire)]));
}

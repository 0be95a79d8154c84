/**
 * The witness (C2SP tlog-witness) behind its own Lambda Function URL, in its own stack
 * (lib/witness-stack.ts; in production another account): `POST /add-checkpoint` only. No
 * credential: the protocol authenticates the checkpoint's signature, not the caller.
 * 200 = the cosignature line(s); 409 = the latest cosigned size as `text/x.tlog.size` (the spec's
 * body); 400 / 403 / 404 / 422 (and 405, 413) = the SPEC error body.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { WitnessRefusal, MAX_ADD_CHECKPOINT_BYTES } from '../core/witness.js';
import { AppError, badRequest, notFound, payloadTooLarge } from '../shared/errors.js';
import { bodyBytes, httpRoute, type HttpEvent, type HttpResponse, type HttpResult } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { WITNESS_ENV } from '../shared/constants.js';
import { KmsCheckpointSigner } from '../store/checkpoint-signer.js';
import { createDocumentClient } from '../store/dynamo.js';
import { parseFollowedLogs, Witness, WitnessStateStore } from '../store/witness.js';

const REFUSAL_CODES = {
  400: 'BAD_REQUEST',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  422: 'VALIDATION_ERROR',
} as const;

export const witnessRoute =
  (getWitness: () => Witness) =>
  (event: HttpEvent): Promise<HttpResponse> =>
    httpRoute(async (): Promise<HttpResult> => {
      const path = event.rawPath ?? '';
      if (!path.endsWith('/add-checkpoint')) throw notFound('a witness answers POST /add-checkpoint only');
      if (event.requestContext?.http?.method !== 'POST')
        throw new AppError(405, 'METHOD_NOT_ALLOWED', 'add-checkpoint takes POST', {
          headers: { Allow: 'POST' },
        });
      const bytes = bodyBytes(event);
      if (bytes.length > MAX_ADD_CHECKPOINT_BYTES) throw payloadTooLarge(MAX_ADD_CHECKPOINT_BYTES);
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        throw badRequest('request body is not valid UTF-8');
      }
      try {
        const lines = await getWitness().addCheckpoint(text);
        return { status: 200, body: lines, contentType: 'text/plain; charset=utf-8' };
      } catch (error) {
        if (!(error instanceof WitnessRefusal)) throw error;
        if (error.status === 409)
          return { status: 409, body: `${error.latestSize ?? 0}\n`, contentType: 'text/x.tlog.size' };
        throw new AppError(error.status, REFUSAL_CODES[error.status], error.message);
      }
    })(event);

let deployed: Witness | undefined;

/** The deployed witness: its table, KMS key, name and followed logs from the environment (CDK). */
function deployedWitness(): Witness {
  if (deployed) return deployed;
  const table = process.env[WITNESS_ENV.table];
  const keyId = process.env[WITNESS_ENV.kmsKeyId];
  const name = process.env[WITNESS_ENV.name];
  if (!table || !keyId || !name)
    throw new Error(`${WITNESS_ENV.table}, ${WITNESS_ENV.kmsKeyId} and ${WITNESS_ENV.name} must be set`);
  deployed = new Witness({
    name,
    logs: parseFollowedLogs(process.env[WITNESS_ENV.logs] ?? ''),
    store: new WitnessStateStore(createDocumentClient(), table),
    signer: new KmsCheckpointSigner(new KMSClient({}), keyId),
  });
  return deployed;
}

if (process.env.AWS_LAMBDA_FUNCTION_NAME) deployedWitness();
export const handler = lambda(witnessRoute(deployedWitness));

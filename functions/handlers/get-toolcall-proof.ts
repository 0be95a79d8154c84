/**
 * GET /v1/toolcalls/{event_id}/proof: once the event's facts are archived, one proof per fact
 * (core/decision-proof.ts: the record's canonical bytes and a C2SP tlog-proof@v1 with the signed,
 * cosigned checkpoint), read from the archive bucket (store/log-proofs.ts). Before that, 409
 * with Retry-After: the archiver's schedule. An agent key sees its tenant's events (only its
 * agent's when bound), an approver token its tenant's; anything else is 404, as GET does.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { readEvent } from '../core/scope.js';
import type { SealedRecord } from '../core/evidence.js';
import { ENV } from '../shared/constants.js';
import { conflict, notFound } from '../shared/errors.js';
import { httpRoute, parseRequest, requireReader, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { s3ArchiveObjects } from '../store/archiver.js';
import { LogProofs, type ProvableFact } from '../store/log-proofs.js';
import { authenticated } from './authentication.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { ROUTE_INPUTS } from './inputs.js';
import { spendRateLimit } from './rate-limit.js';

/** Where proofs are read from, and how long until the archiver's next run. */
export interface ProofSource {
  proofs: LogProofs;
  retryAfterSec: number;
}

let deployed: ProofSource | null | undefined;

/** The deployed source: the evidence bucket CDK names (none: this deployment archives nothing). */
export function deployedProofSource(state: AppState): ProofSource | null {
  if (state.overrides.proofs !== undefined) return state.overrides.proofs;
  if (deployed !== undefined) return deployed;
  const bucket = process.env[ENV.evidenceBucket];
  deployed = bucket
    ? {
        proofs: new LogProofs(s3ArchiveObjects(new S3Client({}), bucket)),
        retryAfterSec: Number(process.env[ENV.archiveIntervalSec] ?? 300),
      }
    : null;
  return deployed;
}

export const getToolCallProofRoute = (
  getState: () => AppState,
  getSource: (state: AppState) => ProofSource | null = deployedProofSource,
) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const caller = requireReader(event);
      const state = getState();
      await spendRateLimit(state, caller.tenantId);
      const { event_id: eventId } = parseRequest(event, ROUTE_INPUTS['get-toolcall-proof']).path;
      const stored = await readEvent(state.toolcalls, caller, eventId);
      if (!stored) throw notFound('event not found');
      const source = getSource(state);
      if (!source) throw conflict('this deployment has no evidence archive: no proof can be made');
      const facts: ProvableFact[] = [];
      for (const f of stored.facts) {
        // A fact the sequencer has not sealed yet has no place in the log.
        if (f.seq === undefined)
          throw conflict(
            `fact ${f.fact_id} (${f.kind}) is not sealed yet; retry after the archiver's next run`,
            source.retryAfterSec,
          );
        facts.push({
          seq: f.seq,
          fact_id: f.fact_id,
          kind: f.kind,
          record: { ...(f.record as Omit<SealedRecord, 'seq'>), seq: f.seq } as SealedRecord,
        });
      }
      facts.sort((a, b) => a.seq - b.seq);
      const result = await source.proofs.forFacts(caller.tenantId, facts);
      if (result.status === 'not-archived')
        throw conflict(
          `seq ${result.waitingSeq} of this event is not archived yet (the log of tenant ${caller.tenantId} holds ${result.archivedSize} entries); retry after the archiver's next run, at most ${source.retryAfterSec} s`,
          source.retryAfterSec,
        );
      return {
        status: 200,
        body: JSON.stringify({
          event_id: eventId,
          tenant_id: caller.tenantId,
          checkpoint: {
            origin: result.checkpoint.origin,
            size: result.checkpoint.size,
            note: result.checkpointNote,
          },
          facts: result.facts,
        }),
      };
    }),
  );

warmInLambda();
export const handler = lambda(getToolCallProofRoute(appState));

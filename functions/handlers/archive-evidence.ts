/**
 * Scheduled (EventBridge, rate from CDK context; a timer locally; `oc archive` one-shot): archives
 * every tenant's sealed evidence to S3 in signed bundles (functions/store/archiver.ts).
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { ENV, STACKS, WITNESS_ENV } from '../shared/constants.js';
import { lambda } from '../shared/middleware.js';
import { ArchiveCheckpointStore } from '../store/archive-checkpoints.js';
import { Archiver, s3ArchiveObjects, type ArchiveRunReport } from '../store/archiver.js';
import { KmsCheckpointSigner } from '../store/checkpoint-signer.js';
import { HttpWitnesses, parseWitnessConfig, witnessStep } from '../store/witness-client.js';
import type { ParkedRecord } from '../store/parked-records.js';
import { appState, warmInLambda, type AppState } from './app-state.js';

/** How long a run may start bundles: CDK sets it from the function's timeout; the next run continues. */
const runBudgetMs = () => Number(process.env[ENV.archiveRunBudgetSec] ?? 200) * 1000;

/**
 * One run: every tenant's chain past its checkpoint. A tenant whose chain does not verify or whose
 * archiving fails is parked (an item of its own tenant, the `RecordsParked` alarm) and retried on its
 * own backoff by later runs; the other tenants are archived all the same, and the run succeeds.
 */
export const archiveEvidence =
  (archiver: (state: AppState) => Archiver, getState: () => AppState) =>
  async (): Promise<ArchiveRunReport> => {
    const state = getState();
    const now = state.clock.now();
    const parked = new Map<string, ParkedRecord>();
    for await (const record of state.parked.list())
      if (record.consumer === 'archive-evidence') parked.set(record.tenantId, record);
    const waiting = new Set(
      [...parked.values()].filter((r) => Date.parse(r.nextRetryAt) > now.getTime()).map((r) => r.tenantId),
    );
    const report = await archiver(state).run({ deadline: Date.now() + runBudgetMs(), skip: waiting });
    for (const tenant of report.tenants) {
      const was = parked.get(tenant.tenantId);
      if (tenant.status === 'broken' || tenant.status === 'failed') {
        const reason = tenant.break
          ? `chain does not verify at seq ${tenant.break.seq}: ${tenant.break.problem}`
          : `archiving failed: ${tenant.error ?? 'unknown error'}`;
        if (was) await state.parked.retryLater(was, reason, now);
        else
          await state.parked.park(
            {
              tenantId: tenant.tenantId,
              consumer: 'archive-evidence',
              recordId: 'chain',
              payload: '{}',
              reason,
            },
            now,
          );
      } else if (was) await state.parked.remove(tenant.tenantId, 'archive-evidence', 'chain');
    }
    return report;
  };

let deployed: Archiver | undefined;

/** The deployed archiver: the bucket and KMS signing key CDK names in the environment. */
function deployedArchiver(state: AppState): Archiver {
  if (deployed) return deployed;
  const bucket = process.env[ENV.evidenceBucket];
  const keyId = process.env[ENV.evidenceKmsKeyId];
  if (!bucket || !keyId) throw new Error(`${ENV.evidenceBucket} and ${ENV.evidenceKmsKeyId} must be set`);
  const objects = s3ArchiveObjects(new S3Client({}), bucket);
  // The witnesses (CDK context `witnesses`): each new checkpoint is cosigned before it is published.
  const witnesses = parseWitnessConfig(process.env[WITNESS_ENV.witnesses]);
  deployed = new Archiver({
    store: new ArchiveCheckpointStore(state.doc, state.config.tableName),
    objects,
    signer: new KmsCheckpointSigner(new KMSClient({}), keyId),
    // The log's origin is `<deployment>/t/<tenant>` and its key is named so (`oc archive --aws` alike).
    deployment: STACKS.data,
    ...(witnesses.length ? { witness: witnessStep(new HttpWitnesses(witnesses), objects) } : {}),
  });
  return deployed;
}

warmInLambda();
export const handler = lambda(archiveEvidence(deployedArchiver, appState));

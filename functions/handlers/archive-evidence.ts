/**
 * Scheduled (EventBridge, rate from CDK context; a timer locally; `oc archive` one-shot): archives
 * every tenant's sealed evidence to S3 in signed bundles (functions/store/archiver.ts). A run
 * fails (and its alarm fires) if any tenant's chain did not verify or its archiving failed; the
 * other tenants were archived all the same, and the next run retries.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { ENV } from '../shared/constants.js';
import { lambda } from '../shared/middleware.js';
import { ArchiveCheckpointStore } from '../store/archive-checkpoints.js';
import { Archiver, s3ArchiveObjects, type ArchiveRunReport } from '../store/archiver.js';
import { KmsCheckpointSigner } from '../store/checkpoint-signer.js';
import { appState, warmInLambda, type AppState } from './app-state.js';

/** How long a run may start bundles: CDK sets it from the function's timeout; the next run continues. */
const runBudgetMs = () => Number(process.env[ENV.archiveRunBudgetSec] ?? 200) * 1000;

export const archiveEvidence =
  (archiver: (state: AppState) => Archiver, getState: () => AppState) =>
  async (): Promise<ArchiveRunReport> => {
    const report = await archiver(getState()).run({ deadline: Date.now() + runBudgetMs() });
    const bad = report.tenants.filter((t) => t.status === 'broken' || t.status === 'failed');
    if (bad.length > 0)
      throw new Error(
        `archive: ${bad.map((t) => (t.break ? `${t.tenantId} broken at seq ${t.break.seq}` : `${t.tenantId} failed`)).join(', ')}`,
      );
    return report;
  };

let deployed: Archiver | undefined;

/** The deployed archiver: the bucket and KMS signing key CDK names in the environment. */
function deployedArchiver(state: AppState): Archiver {
  if (deployed) return deployed;
  const bucket = process.env[ENV.evidenceBucket];
  const keyId = process.env[ENV.evidenceKmsKeyId];
  if (!bucket || !keyId) throw new Error(`${ENV.evidenceBucket} and ${ENV.evidenceKmsKeyId} must be set`);
  deployed = new Archiver({
    store: new ArchiveCheckpointStore(state.doc, state.config.tableName),
    objects: s3ArchiveObjects(new S3Client({}), bucket),
    signer: new KmsCheckpointSigner(new KMSClient({}), keyId),
  });
  return deployed;
}

warmInLambda();
export const handler = lambda(archiveEvidence(deployedArchiver, appState));

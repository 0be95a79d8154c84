/**
 * `oc archive [--tenant T]`: one run of the evidence archiver (what the schedule runs), against
 * the local stack (s3rver, the key file in the data folder) or, with `--aws`, the deployed bucket
 * and KMS key. Exit 1 names every tenant whose chain did not verify (and the seq) or that failed.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import type { Command } from 'commander';
import { ArchiveCheckpointStore } from '../../../functions/store/archive-checkpoints.js';
import {
  Archiver,
  s3ArchiveObjects,
  type ArchiveEvents,
  type TenantArchiveReport,
} from '../../../functions/store/archiver.js';
import { KmsCheckpointSigner } from '../../../functions/store/checkpoint-signer.js';
import { localArchiver, signingKeyFile } from '../../local/archive.js';
import { STACKS } from '../../../functions/shared/constants.js';
import { tenantId } from '../args.js';
import { archiveS3 } from '../archive-target.js';
import { examples, type Act } from '../context.js';
import { EXIT, UsageError } from '../errors.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface ArchiveOptions extends TargetOptions {
  tenant?: string;
  bucket?: string;
  kmsKey?: string;
  json?: boolean;
  discover?: boolean;
}

/** The CLI has no CloudWatch: what the Lambda would count, it prints (in the report). */
const quietEvents: ArchiveEvents = {
  chainBroken: () => undefined,
  tenantFailed: () => undefined,
  archived: () => undefined,
  lag: () => undefined,
  logMissing: () => undefined,
  logRefused: () => undefined,
};

export function registerArchive(program: Command, act: Act): void {
  const archive = program
    .command('archive')
    .description("archive tenants' sealed evidence to S3 now: verified bundles and signed checkpoints")
    .option('--tenant <tenant>', 'only this tenant (default: every tenant with a chain)', tenantId)
    .option('--bucket <bucket>', "the evidence bucket (default: the local stack's; required with --aws)")
    .option(
      '--kms-key <key>',
      'with --aws: the KMS signing key (id, ARN or alias; the EvidenceSigningKey output)',
    )
    .option(
      '--discover',
      "find tenants by scanning the chains' first pages (once, for chains begun before the sealer registered tenants)",
    )
    .option('--json', 'print the run report as JSON');
  addTargetOptions(archive);
  archive.addHelpText(
    'after',
    "\nExit codes: 0 archived (or nothing to archive); 1 a tenant's chain does not verify (nothing of it\n" +
      'archived from that seq) or its archiving failed (retried on the next run); 2 usage.',
  );
  examples(archive, [
    'npx oc archive                     # every tenant, local stack',
    'npx oc archive --tenant tenant1 --json',
    'npx oc archive --discover          # once after upgrading: registers chains begun before',
    'npx oc archive --aws --bucket <EvidenceBucket> --kms-key <EvidenceSigningKey>',
  ]);
  act(
    archive,
    (opts: ArchiveOptions) =>
      `archive ${opts.tenant ? `tenant ${opts.tenant}'s` : "every tenant's"} evidence`,
    async (opts: ArchiveOptions, ctx) => {
      if (opts.aws && (!opts.bucket || !opts.kmsKey))
        throw new UsageError(
          '--aws needs --bucket and --kms-key (the EvidenceBucket and EvidenceSigningKey outputs).',
        );
      const { doc, table } = await ctx.table(opts);
      const s3 = archiveS3(opts, ctx.env);
      try {
        const bucket = opts.bucket ?? s3.local!.bucket;
        let archiver: Archiver;
        if (s3.local) {
          const local = localArchiver({
            doc,
            table,
            s3: s3.s3,
            bucket,
            keyFile: signingKeyFile(s3.local.dataDir),
            events: quietEvents,
          });
          archiver = local.archiver;
          if (local.signer.created && !opts.json)
            ctx.out(
              `new signing key ${signingKeyFile(s3.local.dataDir)}; its public key is s3://${bucket}/evidence/public-key.pem`,
            );
        } else {
          archiver = new Archiver({
            store: new ArchiveCheckpointStore(doc, table),
            objects: s3ArchiveObjects(s3.s3, bucket),
            signer: new KmsCheckpointSigner(new KMSClient({}), opts.kmsKey!),
            events: quietEvents,
            // The deployed archiver's log name (functions/handlers/archive-evidence.ts).
            deployment: STACKS.data,
          });
        }
        const report = await archiver.run({
          ...(opts.tenant ? { tenantId: opts.tenant } : {}),
          ...(opts.discover ? { discover: true } : {}),
        });
        if (opts.json) ctx.json(report);
        else {
          if (report.tenants.length === 0) ctx.out('nothing to archive: no tenant has a chain yet');
          for (const t of report.tenants) {
            ctx.out(line(t, bucket));
            for (const m of t.missing ?? [])
              ctx.out(
                `  WARNING: tenant ${t.tenantId}: s3://${bucket}/${m.key}: ${m.problem} (published before: deleted or rewritten?)`,
              );
          }
        }
        return report.ok ? EXIT.ok : EXIT.failure;
      } finally {
        s3.s3.destroy();
      }
    },
  );
}

function line(t: TenantArchiveReport, bucket: string): string {
  const archived = t.bundles.length
    ? `${t.bundles.reduce((n, b) => n + b.toSeq - b.fromSeq + 1, 0)} entries in ${t.bundles.length} bundle(s) to s3://${bucket}/evidence/${t.tenantId}/`
    : 'nothing new';
  switch (t.status) {
    case 'broken':
      return `FAILED: tenant ${t.tenantId}: chain broken at seq ${t.break!.seq}: ${t.break!.problem}; nothing archived from there (${archived} before it). Run \`oc verify --tenant ${t.tenantId}\`.`;
    case 'failed':
      return `FAILED: tenant ${t.tenantId}: ${t.error}; retried on the next run`;
    case 'partial':
      return `tenant ${t.tenantId}: ${archived}, archived to seq ${t.head.seq}; ${t.behind} entries left for the next run`;
    default:
      return `tenant ${t.tenantId}: ${archived}; archived to seq ${t.head.seq}`;
  }
}

/**
 * `oc verify --bucket B | --dir D --tenant T [--public-key K]`: the auditor's check of an
 * archive (bin/audit/verify-archive.ts), with a progress bar on a terminal and `--json`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import {
  dirSource,
  savingSource,
  s3Source,
  verifyArchive,
  type ArchiveVerifyReport,
} from '../audit/verify-archive.js';
import { archiveS3 } from './archive-target.js';
import type { CommandContext } from './context.js';
import { CliError, EXIT, RemoteError, UsageError } from './errors.js';
import type { TargetOptions } from './target.js';

export interface ArchiveVerifyOptions {
  bucket?: string;
  dir?: string;
  publicKey?: string;
  save?: string;
}

export async function verifyArchiveCommand(
  opts: ArchiveVerifyOptions & TargetOptions & { tenant: string; json?: boolean },
  ctx: CommandContext,
): Promise<number> {
  if (opts.save !== undefined && opts.bucket === undefined) throw new UsageError('--save needs --bucket.');
  let publicKeyPem: string | undefined;
  if (opts.publicKey !== undefined) {
    try {
      publicKeyPem = readFileSync(opts.publicKey, 'utf8');
    } catch (error) {
      throw new CliError(`cannot read the public key ${opts.publicKey}: ${(error as Error).message}`);
    }
  }
  const s3 = opts.bucket !== undefined ? archiveS3(opts, ctx.env) : undefined;
  let source = s3 ? s3Source(s3.s3, opts.bucket!) : dirSource(opts.dir!);
  if (opts.save !== undefined) source = savingSource(source, opts.save);

  const bar =
    process.stderr.isTTY && !opts.json
      ? new cliProgress.SingleBar(
          {
            format: 'verifying {bar} {value}/{total} entries',
            stream: process.stderr,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  let report: ArchiveVerifyReport;
  try {
    report = await verifyArchive({
      source,
      tenantId: opts.tenant,
      ...(publicKeyPem !== undefined ? { publicKeyPem, publicKeyWhere: path.resolve(opts.publicKey!) } : {}),
      onProgress: bar
        ? (done, total) => {
            if (!bar.getTotal()) bar.start(total, 0);
            bar.update(done);
          }
        : undefined,
    });
  } catch (error) {
    // Reading the archive failed (not a break in it): where, and why.
    if (s3) throw new RemoteError(s3.where, error);
    throw error;
  } finally {
    bar?.stop();
    s3?.s3.destroy();
  }

  if (opts.json) ctx.json(report);
  if (!report.ok) {
    const b = report.break!;
    if (!opts.json)
      ctx.out(
        `FAILED: tenant ${report.tenant_id}: ${b.key}${b.seq !== undefined ? ` seq ${b.seq}` : ''}: ${b.problem}`,
      );
    return EXIT.failure;
  }
  if (!opts.json) {
    ctx.out(
      `ok: tenant ${report.tenant_id}, ${report.entries} entries in ${plural(report.bundles, 'bundle')} (seq ${report.from_seq}-${report.to_seq}), ` +
        `${plural(report.checkpoints, 'signed checkpoint')}, from ${report.source}`,
    );
    ctx.out(`  first hash ${report.first_hash}`);
    ctx.out(`  last hash  ${report.last_hash}`);
    ctx.out(
      `  public key ${report.public_key}${publicKeyPem === undefined ? " (the archive's own: pass --public-key to pin the one you trust)" : ''}`,
    );
  }
  return EXIT.ok;
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

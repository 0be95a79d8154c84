/**
 * `oc verify --bucket B | --dir D --tenant T [--public-key K] [--trusted-checkpoint F]...
 * [--save-checkpoint F]`: the auditor's check of an archive (bin/audit/verify-archive.ts), with a
 * progress bar on a terminal and `--json`; it prints the checkpoint it verified, to keep.
 */
import { readFileSync, writeFileSync } from 'node:fs';
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
  /** Checkpoints the auditor kept (repeatable). */
  trustedCheckpoint?: string[];
  /** Where to write the checkpoint verified. */
  saveCheckpoint?: string;
}

/** A `--public-key` PEM file's text, or one clear line (exit 1) when it cannot be read. */
export function readPublicKeyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read the public key ${file}: ${(error as Error).message}`);
  }
}

export async function verifyArchiveCommand(
  opts: ArchiveVerifyOptions & TargetOptions & { tenant: string; json?: boolean },
  ctx: CommandContext,
): Promise<number> {
  if (opts.save !== undefined && opts.bucket === undefined) throw new UsageError('--save needs --bucket.');
  const publicKeyPem = opts.publicKey === undefined ? undefined : readPublicKeyFile(opts.publicKey);
  const trusted = (opts.trustedCheckpoint ?? []).map((file) => {
    try {
      return { where: path.resolve(file), bytes: readFileSync(file) };
    } catch (error) {
      throw new CliError(`cannot read the kept checkpoint ${file}: ${(error as Error).message}`);
    }
  });
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
      trusted,
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
  if (opts.saveCheckpoint !== undefined && report.checkpoint !== undefined) {
    try {
      writeFileSync(opts.saveCheckpoint, report.checkpoint);
    } catch (error) {
      throw new CliError(
        `cannot write the checkpoint to ${opts.saveCheckpoint}: ${(error as Error).message}`,
      );
    }
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
    if (report.log) ctx.out(`  log        ${report.log.size} entries, root ${report.log.root}`);
    if (report.trusted > 0) ctx.out(`  agrees with ${plural(report.trusted, 'checkpoint')} you kept`);
    if (report.checkpoint !== undefined) {
      ctx.out(
        `checkpoint verified (keep it; pass it to --trusted-checkpoint next time)${opts.saveCheckpoint !== undefined ? `, saved to ${opts.saveCheckpoint}` : ''}:`,
      );
      ctx.out(report.checkpoint.replace(/\n$/, ''));
    }
  }
  return EXIT.ok;
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

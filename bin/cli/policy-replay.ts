/**
 * `oc policy replay --candidate DIR`: every decided fact of a tenant (or of every tenant) read
 * from the verified archive (`--bucket`/`--dir`: bin/audit/verify-archive.ts, bundle by bundle,
 * each handed over only once it verified) or from the live chain (the target's table, each entry's
 * hash, link and seq checked as it streams), decided again under the candidate
 * (functions/core/replay.ts) and summed into the decision diff.
 */
import path from 'node:path';
import cliProgress from 'cli-progress';
import { chainHash, type FactRecord, type SealedRecord } from '../../functions/core/evidence.js';
import { ReplayDiff, replayFact, type ReplayReport, type Transition } from '../../functions/core/replay.js';
import { ViewEvidence } from '../../functions/core/view-evidence.js';
import { ArchiveCheckpointStore } from '../../functions/store/archive-checkpoints.js';
import { ChainStore } from '../../functions/store/chain.js';
import { dirSource, s3Source, verifyArchive, type ArchiveSource } from '../audit/verify-archive.js';
import { archiveS3 } from './archive-target.js';
import type { CommandContext } from './context.js';
import { readPublicKeyFile } from './archive-verify.js';
import { CliError, RemoteError, UsageError } from './errors.js';
import type { PolicyFolder } from './policy-folder.js';
import { tableContext, type TargetOptions } from './target.js';

export interface ReplayOptions extends TargetOptions {
  candidate: string;
  tenant?: string;
  bucket?: string;
  dir?: string;
  publicKey?: string;
  json?: boolean;
  failOn?: Transition[];
}

/** Streams one verified record at a time into `onRecord`; the progress is told per bundle/page. */
interface Progress {
  start(tenantId: string, total: number | undefined): void;
  update(done: number): void;
  stop(): void;
}

function progressBar(enabled: boolean): Progress {
  if (!enabled) return { start: () => undefined, update: () => undefined, stop: () => undefined };
  let bar: cliProgress.SingleBar | undefined;
  return {
    start(tenantId, total) {
      bar?.stop();
      bar = new cliProgress.SingleBar(
        {
          format:
            total === undefined
              ? `replaying ${tenantId} {value} entries`
              : `replaying ${tenantId} {bar} {value}/{total} entries`,
          stream: process.stderr,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total ?? 0, 0);
    },
    update: (done) => bar?.update(done),
    stop: () => bar?.stop(),
  };
}

/**
 * Replays and returns the report; the caller prints it and applies `--fail-on`. `load` loads the
 * candidate (once): from an archive, while the first bundle downloads (loading is CPU, reading is
 * waiting); a candidate that does not load is reported before any other failure, as if loaded first.
 */
export async function replay(
  opts: ReplayOptions,
  load: () => PolicyFolder,
  ctx: CommandContext,
): Promise<ReplayReport> {
  let loaded: PolicyFolder | undefined;
  const candidate = () => (loaded ??= load());
  const diff = new ReplayDiff((tenantId) => candidate().deps.policy.tenant(tenantId)?.approver_group ?? '');
  const onRecord = (record: SealedRecord) => {
    diff.entry(record.tenant_id);
    if (record.kind === 'toolcall.decided') diff.add(replayFact(candidate().deps, record as FactRecord));
  };
  const progress = progressBar(process.stderr.isTTY === true && !opts.json);
  let source: string;
  try {
    source =
      opts.bucket !== undefined || opts.dir !== undefined
        ? await fromArchive(opts, ctx, onRecord, progress, candidate)
        : (candidate(), await fromTable(opts, ctx, onRecord, progress));
  } catch (error) {
    candidate(); // its own failure first
    throw error;
  } finally {
    progress.stop();
  }
  const folder = candidate();
  return diff.report({ dir: folder.dir, version: folder.version }, source);
}

async function fromArchive(
  opts: ReplayOptions,
  ctx: CommandContext,
  onRecord: (record: SealedRecord) => void,
  progress: Progress,
  whileReading: () => void,
): Promise<string> {
  const publicKeyPem = opts.publicKey === undefined ? undefined : readPublicKeyFile(opts.publicKey);
  const s3 = opts.bucket !== undefined ? archiveS3(opts, ctx.env) : undefined;
  const archive: ArchiveSource = s3 ? s3Source(s3.s3, opts.bucket!) : dirSource(opts.dir!);
  try {
    for (const tenantId of await pickTenants(opts.tenant, await archiveTenants(archive), archive.where)) {
      let started = false;
      const report = await verifyArchive({
        source: archive,
        tenantId,
        ...(publicKeyPem !== undefined
          ? { publicKeyPem, publicKeyWhere: path.resolve(opts.publicKey!) }
          : {}),
        onProgress: (done, total) => {
          if (!started) progress.start(tenantId, total);
          started = true;
          progress.update(done);
        },
        onRecords: (records) => {
          for (const record of records) onRecord(record);
        },
        whileReading,
      });
      if (!report.ok) {
        const b = report.break!;
        throw new CliError(
          `tenant ${tenantId}'s archive does not verify: ${b.key}${b.seq !== undefined ? ` seq ${b.seq}` : ''}: ${b.problem}; nothing is replayed from an archive that does not verify (\`oc verify --tenant ${tenantId} ${opts.bucket !== undefined ? `--bucket ${opts.bucket}` : `--dir ${opts.dir}`}\`).`,
        );
      }
    }
  } catch (error) {
    if (s3 && !(error instanceof CliError)) throw new RemoteError(s3.where, error);
    throw error;
  } finally {
    s3?.s3.destroy();
  }
  return archive.where;
}

/** The tenants with objects under `evidence/` (the public key is not a tenant). */
async function archiveTenants(archive: ArchiveSource): Promise<string[]> {
  const tenants = new Set<string>();
  for (const key of await archive.list('evidence/')) {
    const parts = key.split('/');
    if (parts.length >= 3 && parts[1]) tenants.add(parts[1]);
  }
  return [...tenants].sort();
}

/** `--tenant` if it is one of `known` (else a usage error listing them), or every known tenant. */
function pickTenants(tenant: string | undefined, known: string[], where: string): string[] {
  if (tenant === undefined) {
    if (known.length === 0) throw new CliError(`no tenant has evidence in ${where}: nothing to replay.`);
    return known;
  }
  if (!known.includes(tenant))
    throw new UsageError(
      `tenant ${tenant} has no evidence in ${where}; tenants there: ${known.length ? known.join(', ') : 'none'}.`,
    );
  return [tenant];
}

async function fromTable(
  opts: ReplayOptions,
  ctx: CommandContext,
  onRecord: (record: SealedRecord) => void,
  progress: Progress,
): Promise<string> {
  const { doc, table, target } = await ctx.table(opts);
  const where = `table ${table} (${tableContext(target).where})`;
  const chain = new ChainStore(doc, table);
  const tenants = pickTenants(opts.tenant, await new ArchiveCheckpointStore(doc, table).tenants(), where);
  for (const tenantId of tenants) {
    progress.start(tenantId, undefined);
    // As `oc verify` checks the chain: each entry's seq, link and hash, and any approval view.
    const views = new ViewEvidence();
    let prevHash = '';
    let seq = 0;
    for await (const entry of chain.entries(tenantId)) {
      const problem =
        entry.seq !== seq + 1
          ? `expected seq ${seq + 1}, found ${entry.seq}`
          : entry.prev_hash !== prevHash
            ? 'prev_hash does not match the previous hash'
            : entry.record.tenant_id !== tenantId || entry.record.seq !== entry.seq
              ? 'the record is not this entry'
              : chainHash(prevHash, entry.record) !== entry.hash
                ? 'hash does not match the record'
                : views.check(entry.record);
      if (problem)
        throw new CliError(
          `tenant ${tenantId}'s chain does not verify at seq ${seq + 1}: ${problem}; nothing is replayed from a chain that does not verify (\`oc verify --tenant ${tenantId}\`).`,
        );
      prevHash = entry.hash;
      seq = entry.seq;
      onRecord(entry.record);
      if (seq % 1000 === 0) progress.update(seq);
    }
  }
  return where;
}

// ---------------------------------------------------------------------------------------------
// Output

const pad = (text: string | number, width: number) => String(text).padEnd(width);
const padL = (text: string | number, width: number) => String(text).padStart(width);

/** The readable diff: a table per transition, then the approvals forecast. */
export function reportLines(report: ReplayReport): string[] {
  const lines = [
    `replayed ${report.decisions} decisions of ${report.tenants.map((t) => t.tenant_id).join(', ') || 'no tenant'} from ${report.source}`,
    `  under ${report.candidate.dir} (${report.candidate.version})`,
    `  calls from ${report.window.from ?? '-'} to ${report.window.to ?? '-'} (${report.window.days} days)`,
    `  unchanged ${report.unchanged}, changed ${report.changed}${report.unreplayable.count ? `, not replayable ${report.unreplayable.count}` : ''}`,
    '',
  ];
  if (report.transitions.length === 0) lines.push('no decision changes under the candidate', '');
  else {
    lines.push(
      `${pad('transition', 20)} ${padL('count', 7)}  ${pad('tenant', 16)} ${pad('action', 24)} ${padL('count', 7)}`,
    );
    for (const t of report.transitions) {
      t.by.forEach((b, i) =>
        lines.push(
          `${pad(i === 0 ? t.transition : '', 20)} ${padL(i === 0 ? t.count : '', 7)}  ${pad(b.tenant_id, 16)} ${pad(b.action, 24)} ${padL(b.count, 7)}`,
        ),
      );
      if (t.to)
        lines.push(
          `${' '.repeat(30)}becomes: ${Object.entries(t.to)
            .map(([to, n]) => `${to} ${n}`)
            .join(', ')}`,
        );
      lines.push(`${' '.repeat(30)}e.g. ${t.examples.slice(0, 3).join(', ')}`);
    }
    lines.push('');
  }
  for (const u of report.unreplayable.examples)
    lines.push(`not replayable: tenant ${u.tenantId} event ${u.eventId || '(none)'}: ${u.problem}`);
  if (report.approvals_per_day.length > 0) {
    lines.push(`${pad('approvals per day', 24)} ${padL('before', 9)} ${padL('after', 9)}`);
    for (const a of report.approvals_per_day)
      lines.push(`  ${pad(a.approver_group || '(no group)', 22)} ${padL(a.before, 9)} ${padL(a.after, 9)}`);
  }
  return lines;
}

/** The `--fail-on` verdict: the listed transitions that occurred, with their counts. */
export function forbiddenFound(
  report: ReplayReport,
  failOn: Transition[],
): { transition: string; count: number }[] {
  return report.transitions
    .filter((t) => failOn.includes(t.transition))
    .map((t) => ({ transition: t.transition, count: t.count }));
}

/**
 * `oc proof <event_id>`: one C2SP tlog-proof@v1 file per fact of the event (functions/core/
 * decision-proof.ts), written as `<event_id>.<seq>.tlog-proof` under `--out` (default: here), the
 * same files `GET /v1/toolcalls/{event_id}/proof` answers. The event's facts are read from the
 * table (the local stack's, like the other operator commands) or, with `--bucket`, from the
 * archive's own bundles: an auditor who holds no key and no table needs only the bucket. The tiles
 * and the signed checkpoint always come from the bucket (store/log-proofs.ts). Check a file with
 * `oc verify --proof FILE --public-key K`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { proofFileName } from '../../../functions/core/decision-proof.js';
import type { SealedRecord } from '../../../functions/core/evidence.js';
import { LogProofs, type ProvableFact } from '../../../functions/store/log-proofs.js';
import { s3ArchiveObjects } from '../../../functions/store/archiver.js';
import { DynamoToolCallStore } from '../../../functions/store/toolcalls.js';
import { s3Source, type ArchiveSource } from '../../audit/verify-archive.js';
import { archiveS3 } from '../archive-target.js';
import { eventId, tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { CliError, EXIT, RemoteError, UsageError } from '../errors.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface ProofOptions extends TargetOptions {
  eventId: string;
  tenant: string;
  bucket?: string;
  out: string;
  json?: boolean;
}

/** The event's facts as the archive's bundles hold them (no table): every bundle of the tenant, read once. */
export async function factsFromBundles(
  source: ArchiveSource,
  tenant: string,
  event: string,
): Promise<ProvableFact[]> {
  const found: ProvableFact[] = [];
  const bundleKey = /\/(\d{12})-(\d{12})\.json$/;
  for (const key of (await source.list(`evidence/${tenant}/`)).filter((k) => bundleKey.test(k)).sort()) {
    const bytes = await source.get(key);
    if (!bytes) continue;
    // One entry per line (SPEC §8): a line that names the event is parsed, the others only scanned.
    for (const line of bytes.toString('utf8').split('\n')) {
      if (!line.includes(event)) continue;
      const entry = JSON.parse(line.replace(/,$/, '')) as { seq?: number; record?: SealedRecord };
      const record = entry.record;
      if (record && typeof entry.seq === 'number' && record.event_id === event)
        found.push({ seq: entry.seq, fact_id: record.fact_id, kind: record.kind, record });
    }
  }
  return found.sort((a, b) => a.seq - b.seq);
}

export function registerProof(program: Command, act: Act): void {
  const proof = program
    .command('proof')
    .description(
      "write one offline-verifiable proof per fact of an event (C2SP tlog-proof@v1: the record's bytes, its inclusion proof and the signed checkpoint)",
    )
    .argument('<event_id>', 'the event id (as in the POST /v1/toolcalls answer)', eventId)
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .option(
      '--bucket <bucket>',
      "read the event's facts from this archive bucket's bundles (no table, no key: what an auditor holds); default: the table, and the local stack's bucket",
    )
    .option('--out <dir>', 'where to write the .tlog-proof files', '.')
    .option('--json', 'print the proofs as JSON (as the API answers them) instead of a summary')
    .hook('preAction', (command) => {
      command.setOptionValue('eventId', command.processedArgs[0]);
    });
  addTargetOptions(proof);
  proof.addHelpText(
    'after',
    '\nExit codes: 0 written; 1 not archived yet (retry after the archiver runs), no such event, or a log\n' +
      'that does not prove it; 2 usage.',
  );
  examples(proof, [
    'npx oc proof 3f2504e0-4f89-41d3-9a0c-0305e82c3301 --tenant tenant1 --out proofs',
    'npx oc proof <event_id> --bucket oc-evidence --tenant tenant1          # from the archive alone',
    'npx oc proof <event_id> --aws --bucket <EvidenceBucket> --tenant tenant1',
    'npx oc verify --proof proofs/<event_id>.<seq>.tlog-proof --public-key .oc-data/evidence-public-key.pem',
  ]);
  act(
    proof,
    (opts: ProofOptions) => `write the proofs of event ${opts.eventId}`,
    async (opts: ProofOptions, ctx) => {
      if (opts.aws && opts.bucket === undefined)
        throw new UsageError(
          '--aws needs --bucket <EvidenceBucket> (the stack output): the proofs are read from it.',
        );
      const s3 = archiveS3(opts, ctx.env);
      const bucket = opts.bucket ?? s3.local!.bucket;
      try {
        let facts: ProvableFact[];
        if (opts.bucket !== undefined) {
          facts = await factsFromBundles(s3Source(s3.s3, bucket), opts.tenant, opts.eventId);
          if (facts.length === 0)
            throw new CliError(
              `no archived fact of event ${opts.eventId} in tenant ${opts.tenant}'s bundles in s3://${bucket}: not archived yet (retry after the archiver's next run), or another tenant's event.`,
            );
        } else {
          const { doc, table } = await ctx.table(opts);
          const stored = await new DynamoToolCallStore(doc, table).getEvent(opts.tenant, opts.eventId);
          if (!stored)
            throw new CliError(`no event ${opts.eventId} in tenant ${opts.tenant} (table ${table}).`);
          const unsealed = stored.facts.find((f) => f.seq === undefined);
          if (unsealed)
            throw new CliError(
              `fact ${unsealed.fact_id} (${unsealed.kind}) of event ${opts.eventId} is not sealed yet: retry after the archiver's next run.`,
            );
          facts = stored.facts
            .map((f) => ({
              seq: f.seq!,
              fact_id: f.fact_id,
              kind: f.kind,
              record: { ...f.record, seq: f.seq! },
            }))
            .sort((a, b) => a.seq - b.seq);
        }
        let result: Awaited<ReturnType<LogProofs['forFacts']>>;
        try {
          result = await new LogProofs(s3ArchiveObjects(s3.s3, bucket)).forFacts(opts.tenant, facts);
        } catch (error) {
          if ((error as { $metadata?: unknown }).$metadata) throw new RemoteError(s3.where, error);
          throw new CliError(
            `the archive in s3://${bucket} does not prove event ${opts.eventId}: ${(error as Error).message}`,
          );
        }
        if (result.status === 'not-archived') {
          ctx.out(
            `not archived yet: seq ${result.waitingSeq} of event ${opts.eventId}; tenant ${opts.tenant}'s log in s3://${bucket} holds ${result.archivedSize} entries. Retry after the archiver's next run.`,
          );
          return EXIT.failure;
        }
        if (opts.json) {
          ctx.json({
            event_id: opts.eventId,
            tenant_id: opts.tenant,
            checkpoint: {
              origin: result.checkpoint.origin,
              size: result.checkpoint.size,
              note: result.checkpointNote,
            },
            facts: result.facts,
          });
          return EXIT.ok;
        }
        mkdirSync(opts.out, { recursive: true });
        for (const f of result.facts) {
          const file = path.join(opts.out, proofFileName(opts.eventId, f.seq));
          writeFileSync(file, f.proof);
          ctx.out(`wrote ${file}  (seq ${f.seq}, ${f.kind}, fact ${f.fact_id})`);
        }
        ctx.out(`checkpoint: ${result.checkpoint.origin}, size ${result.checkpoint.size}`);
        return EXIT.ok;
      } finally {
        s3.s3.destroy();
      }
    },
  );
}

/**
 * `oc parked`: what the shared pipelines set aside (functions/store/parked-records.ts): the records
 * the outbox, the delivery worker or the archiver could not process, each in its tenant's partition,
 * waiting for release-parked. `list` shows them (the `RecordsParked` alarm's detail); `drop` removes
 * one an operator has dealt with by hand (it is then never retried).
 */
import { Option, type Command } from 'commander';
import { PARKING_CONSUMERS, type ParkingConsumer } from '../../../functions/shared/constants.js';
import { ParkedRecordStore, type ParkedRecord } from '../../../functions/store/parked-records.js';
import { parkingTenant, recordId } from '../args.js';
import { examples, type Act } from '../context.js';
import { UsageError } from '../errors.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface ListOptions extends TargetOptions {
  tenant?: string;
  json?: boolean;
}

interface DropOptions extends TargetOptions {
  tenant: string;
  consumer: ParkingConsumer;
  record: string;
}

const view = (r: ParkedRecord) => ({
  tenant_id: r.tenantId,
  consumer: r.consumer,
  record_id: r.recordId,
  reason: r.reason,
  since: r.since,
  attempts: r.attempts,
  next_retry_at: r.nextRetryAt,
});

export function registerParked(program: Command, act: Act): void {
  const parked = program
    .command('parked')
    .description(
      'records the outbox, the delivery worker or the archiver could not process (release-parked retries them)',
    );
  examples(parked, ['npx oc parked list', 'npx oc parked drop --help']);

  const list = parked
    .command('list')
    .description('every parked record, due first: tenant, consumer, record id, reason, attempts, next retry')
    .option(
      '--tenant <tenant>',
      'only this tenant (`_` for records whose tenant could not be read)',
      parkingTenant,
    )
    .option('--json', 'print the records as JSON');
  addTargetOptions(list);
  examples(list, ['npx oc parked list', 'npx oc parked list --tenant tenant1 --json']);
  act(
    list,
    () => 'list the parked records',
    async (opts: ListOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const records: ParkedRecord[] = [];
      for await (const record of new ParkedRecordStore(doc, table).list())
        if (!opts.tenant || record.tenantId === opts.tenant) records.push(record);
      if (opts.json) {
        ctx.json(records.map(view));
        return;
      }
      if (records.length === 0) {
        ctx.out('no parked records');
        return;
      }
      for (const r of records)
        ctx.out(
          `${r.tenantId} ${r.consumer} ${r.recordId}: ${r.reason} (since ${r.since}, ${r.attempts} release(s), next ${r.nextRetryAt})`,
        );
    },
  );

  const drop = parked
    .command('drop')
    .description('remove a parked record an operator has dealt with by hand: it is never retried')
    .requiredOption('--tenant <tenant>', 'its tenant (as `oc parked list` shows it)', parkingTenant)
    .addOption(
      new Option('--consumer <consumer>', 'the consumer that parked it')
        .choices([...PARKING_CONSUMERS])
        .makeOptionMandatory(),
    )
    .requiredOption('--record <id>', 'its record id (as `oc parked list` shows it)', recordId);
  addTargetOptions(drop);
  examples(drop, ['npx oc parked drop --tenant tenant1 --consumer outbox --record <record id>']);
  act(
    drop,
    (opts: DropOptions) => `drop the parked record ${opts.record}`,
    async (opts: DropOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const store = new ParkedRecordStore(doc, table);
      if (!(await store.get(opts.tenant, opts.consumer, opts.record)))
        throw new UsageError(`no parked record ${opts.record} of ${opts.consumer} in tenant ${opts.tenant}`);
      await store.remove(opts.tenant, opts.consumer, opts.record);
      ctx.out(`dropped: ${opts.tenant} ${opts.consumer} ${opts.record} (it will not be retried)`);
    },
  );
}

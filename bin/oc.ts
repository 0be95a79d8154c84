/**
 * `oc`: the operator's CLI. `oc start` runs the whole system locally (npm start); `oc keys create`
 * issues an agent API key; `oc verify` re-checks a tenant's evidence chain.
 * Against the local stack it reads the same env vars as `npm start` (OC_DYNAMODB_PORT, ...);
 * with `--aws` it uses the standard AWS credentials and the table named by OC_TABLE_NAME or --table.
 */
import { Command, Option } from 'commander';
import { ApiKeyStore, generateApiKey } from '../functions/store/api-keys.js';
import { ChainStore, verifyTenantChain } from '../functions/store/chain.js';
import { createDocumentClient } from '../functions/store/dynamo.js';
import { TABLE } from '../functions/shared/constants.js';
import { startLocalStack } from './local/stack.js';

const program = new Command('oc').description(
  'OpenClause governance gateway: local stack and operator tools',
);

function target(opts: { aws?: boolean; table?: string }) {
  if (!process.env.AWS_REGION && !opts.aws) process.env.AWS_REGION = 'us-east-1';
  if (!opts.aws) {
    process.env.AWS_ACCESS_KEY_ID ??= 'local';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  }
  const endpoint = opts.aws ? undefined : `http://127.0.0.1:${process.env.OC_DYNAMODB_PORT ?? '8000'}`;
  const table = opts.table ?? process.env.OC_TABLE_NAME ?? TABLE.defaultName;
  return { doc: createDocumentClient(endpoint ? { endpoint } : {}), table };
}

const awsOption = new Option(
  '--aws',
  'use the deployed table (standard AWS credentials) instead of the local stack',
);
const tableOption = new Option('--table <name>', 'table name (default: OC_TABLE_NAME or oc-main)');

program
  .command('start')
  .description('run the whole system locally: DynamoDB Local, SQS, S3 and the API on PORT')
  .action(async () => {
    await startLocalStack(process.env);
  });

const keysCmd = program.command('keys').description('agent API keys');
keysCmd
  .command('create')
  .description('create a key for a tenant; the key is printed once and stored only as its SHA-256')
  .requiredOption('--tenant <tenant>', 'tenant id')
  .option('--agent <agent>', 'bind the key to one agent_id')
  .option('--label <label>', 'a note for operators', '')
  .addOption(awsOption)
  .addOption(tableOption)
  .action(async (opts: { tenant: string; agent?: string; label: string; aws?: boolean; table?: string }) => {
    const { doc, table } = target(opts);
    const key = generateApiKey();
    await new ApiKeyStore(doc, table).put(
      key,
      { tenantId: opts.tenant, ...(opts.agent ? { agentId: opts.agent } : {}) },
      opts.label,
    );
    console.log(key);
    doc.destroy();
  });

program
  .command('verify')
  .description(
    "re-check a tenant's evidence chain in DynamoDB; exits 1 on any break or an overdue unsealed fact",
  )
  .requiredOption('--tenant <tenant>', 'tenant id')
  .option('--unsealed-grace-sec <sec>', 'how long a fact may wait for the sequencer', '60')
  .addOption(awsOption)
  .addOption(tableOption)
  .action(async (opts: { tenant: string; unsealedGraceSec: string; aws?: boolean; table?: string }) => {
    const { doc, table } = target(opts);
    const report = await verifyTenantChain(new ChainStore(doc, table), opts.tenant, {
      now: new Date(),
      unsealedGraceMs: Number(opts.unsealedGraceSec) * 1000,
    });
    doc.destroy();
    if (report.ok) {
      console.log(
        `ok: tenant ${report.tenantId}, ${report.entries} entries, head seq ${report.head.seq} ${report.head.hash}`,
      );
    } else {
      console.error(`FAILED: tenant ${report.tenantId}`);
      for (const p of report.problems) console.error(`  - ${p}`);
      process.exitCode = 1;
    }
  });

await program.parseAsync(process.argv);

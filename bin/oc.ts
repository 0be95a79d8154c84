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
import { DEV_JWT, ENV, TABLE } from '../functions/shared/constants.js';
import { startLocalStack } from './local/stack.js';

// Node 20 runs the CLI and the local stack; the lock file pins SDK versions that support it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

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

const executions = program.command('executions').description('approved executions');
executions
  .command('resolve')
  .description(
    'record the outcome of an execution that crashed between claim and record (status unknown); never re-runs the tool',
  )
  .requiredOption('--tenant <tenant>', 'tenant id')
  .requiredOption('--event <event_id>', 'the approval-gated event id')
  .requiredOption('--status <status>', 'what happened: success | error')
  .requiredOption('--note <text>', 'how the operator established the outcome')
  .option('--output <json>', 'the tool output, as a JSON object')
  .addOption(awsOption)
  .addOption(tableOption)
  .action(
    async (opts: {
      tenant: string;
      event: string;
      status: string;
      note: string;
      output?: string;
      aws?: boolean;
      table?: string;
    }) => {
      if (opts.status !== 'success' && opts.status !== 'error')
        throw new Error('--status must be success or error');
      const { doc, table } = target(opts);
      const { DynamoToolCallStore } = await import('../functions/store/toolcalls.js');
      const { ExecutionStore } = await import('../functions/store/executions.js');
      const { resolveExecution } = await import('../functions/core/execute.js');
      const { randomUUID } = await import('node:crypto');
      const body = await resolveExecution(
        {
          events: new DynamoToolCallStore(doc, table),
          executions: new ExecutionStore(doc, table),
          clock: { now: () => new Date() },
          ids: { uuid: () => randomUUID() },
          config: {
            connectorTimeoutMs: Number(process.env.OC_CONNECTOR_TIMEOUT_MS ?? 10_000),
            inFlightWaitMs: 0,
          },
        },
        {
          tenantId: opts.tenant,
          eventId: opts.event,
          status: opts.status,
          note: opts.note,
          operator: `operator:${process.env.USER ?? 'unknown'}`,
          ...(opts.output ? { output: JSON.parse(opts.output) as Record<string, unknown> } : {}),
        },
      );
      doc.destroy();
      console.log(body);
    },
  );

program
  .command('dev-token')
  .description(
    'print a local approver JWT (HS256 with OC_DEV_JWT_SECRET, default dev-jwt-secret; the local stack only)',
  )
  .requiredOption('--tenant <tenant>', "the approver's tenant id")
  .requiredOption('--email <email>', "the approver's email (must be on the tenant's approvers list)")
  .option('--sub <sub>', 'the subject (default: the email)')
  .option('--ttl-sec <sec>', 'lifetime in seconds', '3600')
  .action(async (opts: { tenant: string; email: string; sub?: string; ttlSec: string }) => {
    const ttlSec = Number(opts.ttlSec);
    if (!Number.isInteger(ttlSec) || ttlSec <= 0) program.error('--ttl-sec must be a positive integer');
    const { signDevToken } = await import('../functions/store/approver-tokens.js');
    console.log(
      await signDevToken({
        tenantId: opts.tenant,
        email: opts.email,
        ...(opts.sub ? { sub: opts.sub } : {}),
        ttlSec,
        secret: process.env[ENV.devJwtSecret] || DEV_JWT.defaultSecret,
        tenantClaim: process.env[ENV.jwtTenantClaim] || 'tenant_id',
      }),
    );
  });

await program.parseAsync(process.argv);

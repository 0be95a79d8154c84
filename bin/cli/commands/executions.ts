/** `oc executions resolve`: an operator records an execution's outcome; the tool never runs again. */
import { randomUUID } from 'node:crypto';
import { Option, type Command } from 'commander';
import { resolveExecution } from '../../../functions/core/execute.js';
import { ExecutionStore } from '../../../functions/store/executions.js';
import { DynamoToolCallStore } from '../../../functions/store/toolcalls.js';
import { connectorTimeoutMs, eventId, jsonObject, nonBlank, tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface ResolveOptions extends TargetOptions {
  tenant: string;
  event: string;
  status: 'success' | 'error';
  note: string;
  output?: Record<string, unknown>;
  json?: boolean;
}

export function registerExecutions(program: Command, act: Act): void {
  const executions = program.command('executions').description('approved executions');
  examples(executions, ['npx oc executions resolve --help']);

  const resolve = executions
    .command('resolve')
    .description(
      'record the outcome of a call whose tool may have run with nothing recorded (an allowed call or an approved execution left unknown); never re-runs the tool',
    )
    .requiredOption('--tenant <tenant>', 'tenant id', tenantId)
    .requiredOption(
      '--event <event_id>',
      'the allowed call, or the approval-gated event, to resolve',
      eventId,
    )
    .addOption(
      new Option('--status <status>', 'what happened').choices(['success', 'error']).makeOptionMandatory(),
    )
    .requiredOption('--note <text>', 'how the operator established the outcome', nonBlank)
    .option('--output <json>', 'the tool output, as a JSON object', jsonObject)
    .option('--json', 'print the recorded response body as JSON');
  addTargetOptions(resolve);
  examples(resolve, [
    'npx oc executions resolve --tenant tenant1 --event <event_id> --status success --note "seen in #general"',
    'npx oc executions resolve --tenant tenant1 --event <event_id> --status error --note "never arrived" --json',
    `npx oc executions resolve ... --status success --output '{"ts":"1712.0001"}' --note "ts from Slack"`,
  ]);
  act(
    resolve,
    (opts: ResolveOptions) => `resolve the execution of event ${opts.event}`,
    async (opts: ResolveOptions, ctx) => {
      const timeoutMs = connectorTimeoutMs(ctx.env);
      const { doc, table } = await ctx.table(opts);
      const body = await resolveExecution(
        {
          events: new DynamoToolCallStore(doc, table),
          results: new DynamoToolCallStore(doc, table),
          executions: new ExecutionStore(doc, table),
          clock: { now: () => new Date() },
          ids: { uuid: () => randomUUID() },
          config: { connectorTimeoutMs: timeoutMs, inFlightWaitMs: 0 },
        },
        {
          tenantId: opts.tenant,
          eventId: opts.event,
          status: opts.status,
          note: opts.note,
          operator: `operator:${ctx.env.USER ?? 'unknown'}`,
          ...(opts.output ? { output: opts.output } : {}),
        },
      );
      const recorded = JSON.parse(body) as { event_id?: string; parent_event_id?: string };
      if (opts.json) ctx.json(recorded);
      else
        ctx.out(
          // An approved execution has an event of its own; an allowed call is its own event.
          `resolved: event ${opts.event} recorded as ${opts.status}${recorded.parent_event_id ? ` (execution event ${recorded.event_id})` : ''}; the tool was not run again`,
        );
    },
  );
}

/**
 * The `oc` program: builds the commander tree from bin/cli/commands and runs it. Every failure,
 * commander's own included, leaves through one place: `toFailure` turns it into one line on stderr
 * and an exit code (2 usage, 1 failure); `--debug` adds the stack trace.
 */
import { Command, CommanderError } from 'commander';
import { registerApprovals } from './commands/approvals.js';
import { registerGrants } from './commands/grants.js';
import { registerArchive } from './commands/archive.js';
import { registerDevToken } from './commands/dev-token.js';
import { registerExecutions } from './commands/executions.js';
import { registerKeys } from './commands/keys.js';
import { registerParked } from './commands/parked.js';
import { registerPolicy } from './commands/policy.js';
import { registerProof } from './commands/proof.js';
import { registerVkey } from './commands/vkey.js';
import { registerStart } from './commands/start.js';
import { registerVerify } from './commands/verify.js';
import { registerUpstream } from './commands/upstream.js';
import { registerWebhooks } from './commands/webhooks.js';
import { examples, type Act, type CommandContext } from './context.js';
import { EXIT, UsageError, debugTrace, toFailure, type FailureContext } from './errors.js';
import { openTable, tableContext, type OpenTable } from './target.js';

const commandPath = (command: Command): string =>
  command.parent ? `${commandPath(command.parent)} ${command.name()}` : command.name();

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

export function buildProgram(act: Act, failure: FailureContext): Command {
  const program = new Command('oc')
    .description('OpenClause governance gateway: the local stack and operator tools')
    .option('--debug', 'print the stack trace of a failure')
    .configureHelp({ showGlobalOptions: true })
    // Commander's messages go through the one mapper below, as one line; so does the help it
    // would print to stderr for a group called without its subcommand.
    .configureOutput({ outputError: () => undefined, writeErr: () => undefined });
  examples(program, [
    'npm start                                   # the local stack (in a first terminal)',
    'npx oc verify --tenant tenant1              # finds the running stack by itself',
    'npx oc keys create --tenant tenant1 --json',
    'npx oc verify --tenant tenant1 --aws        # the deployed stack',
    'npx oc <command> --help                     # each command, with examples',
  ]);
  registerStart(program, act);
  registerKeys(program, act);
  registerVerify(program, act);
  registerExecutions(program, act);
  registerApprovals(program, act);
  registerGrants(program, act);
  registerDevToken(program, act);
  registerArchive(program, act);
  registerWebhooks(program, act);
  registerParked(program, act);
  registerPolicy(program, act);
  registerProof(program, act);
  registerVkey(program, act);
  registerUpstream(program, act);
  for (const command of allCommands(program))
    command.exitOverride((error) => {
      failure.commandPath = commandPath(command);
      if (error.code === 'commander.help' && error.exitCode !== 0)
        throw new UsageError(
          `\`${commandPath(command)}\` needs a command: ${command.commands.map((c) => c.name()).join(', ')}.`,
        );
      throw error;
    });
  return program;
}

/** Runs `oc` on argv (as process.argv) and returns the exit code. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // Node 20 runs the CLI; the lock file pins SDK versions that support it.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const failure: FailureContext = {};
  const opened: OpenTable[] = [];
  let exitCode: number = EXIT.ok;
  const ctx: CommandContext = {
    env,
    out: (line) => void process.stdout.write(`${line}\n`),
    json: (value) => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    async table(opts) {
      const open = await openTable(opts, env);
      opened.push(open);
      failure.dynamo = tableContext(open.target);
      return open;
    },
  };
  const act: Act = (command, doing, run) =>
    // Commander passes positional arguments first, then the options, then the command.
    command.action(async (...args: unknown[]) => {
      const opts = args[args.length - 2] as Parameters<typeof doing>[0];
      failure.commandPath = commandPath(command);
      failure.doing = doing(opts);
      exitCode = (await run(opts, ctx)) ?? EXIT.ok;
    });
  const program = buildProgram(act, failure);
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError && error.exitCode === 0) return EXIT.ok; // --help
    const { line, exitCode: code } = toFailure(error, failure);
    // One line, whatever a message from below says.
    process.stderr.write(`oc: ${line.replace(/\s*\n\s*/g, ' ')}\n`);
    if (program.opts().debug || argv.includes('--debug')) process.stderr.write(`${debugTrace(error)}\n`);
    return code;
  } finally {
    for (const { doc } of opened) doc.destroy();
  }
}

/** What every command gets from the CLI runner: output, the target's table, and its failure context. */
import type { Command } from 'commander';
import type { OpenTable, TargetOptions } from './target.js';

export interface CommandContext {
  readonly env: NodeJS.ProcessEnv;
  /** A line on stdout (results; errors go through the runner's one mapper). */
  out(line: string): void;
  /** One JSON document on stdout (`--json`). */
  json(value: unknown): void;
  /**
   * The target's table (bin/cli/target.ts). The runner destroys the client afterwards and names
   * its endpoint in any storage failure.
   */
  table(opts: TargetOptions): Promise<OpenTable>;
}

/**
 * Declares a command's action. `doing` says what it does, for failure lines ("cannot <doing>:
 * ..."); the action returns its exit code (0 when it returns nothing) or throws.
 */
export type Act = <O>(
  command: Command,
  doing: (opts: O) => string,
  run: (opts: O, ctx: CommandContext) => Promise<number | void>,
) => Command;

/** The "Examples:" section of a command's --help. */
export function examples(command: Command, lines: string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
}

/**
 * `oc`: the operator's CLI (`npx oc --help`). The commands live in bin/cli/commands, target
 * resolution (local stack or --aws) in bin/cli/target.ts, the one error mapper in bin/cli/errors.ts.
 */
import { runCli } from './cli/program.js';

// A reader that stops early (`npx oc keys --help | head -2`) closes the pipe: what is left to
// print has no one to read it, which is no failure of ours; stop quietly, as other tools do.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});

process.exitCode = await runCli(process.argv);

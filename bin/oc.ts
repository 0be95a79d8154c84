/**
 * `oc`: the operator's CLI (`npx oc --help`). The commands live in bin/cli/commands, target
 * resolution (local stack or --aws) in bin/cli/target.ts, the one error mapper in bin/cli/errors.ts.
 */
import { runCli } from './cli/program.js';

process.exitCode = await runCli(process.argv);

/**
 * One `oc policy replay` in a process of its own (bench/replay.ts), through the CLI's own entry
 * (`runCli`), so that its peak RSS (`process.resourceUsage().maxRSS`) is the replay's alone. The
 * report goes to stdout as the CLI prints it; the measurement is the last line on stderr.
 */
import { runCli } from '../bin/cli/program.js';

const args = JSON.parse(process.env.OC_BENCH_ARGS ?? '[]') as string[];
const started = performance.now();
const code = await runCli(['node', 'oc', ...args]);
const ms = performance.now() - started;
process.stderr.write(`${JSON.stringify({ code, ms, maxRssKb: process.resourceUsage().maxRSS })}\n`);
process.exitCode = code;

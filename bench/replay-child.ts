/**
 * One `oc policy replay` in a process of its own (bench/replay.ts), through the CLI's own entry
 * (`runCli`), so that its peak RSS (`process.resourceUsage().maxRSS`) is the replay's alone. The
 * report goes to stdout as the CLI prints it; the measurement is the last line on stderr, with the
 * bare evaluation rate over the same requests taken right after (OC_BENCH_BARE).
 */
import { runCli } from '../bin/cli/program.js';
import { bareRate } from './replay-bare.js';

const args = JSON.parse(process.env.OC_BENCH_ARGS ?? '[]') as string[];
const started = performance.now();
const code = await runCli(['node', 'oc', ...args]);
const ms = performance.now() - started;
const maxRssKb = process.resourceUsage().maxRSS; // the replay's, before the bare run below
const bareInput = process.env.OC_BENCH_BARE;
const bare = bareInput
  ? (() => {
      const { candidate, tenantId, decisions } = JSON.parse(bareInput) as {
        candidate: string;
        tenantId: string;
        decisions: number;
      };
      return bareRate(candidate, tenantId, decisions);
    })()
  : undefined;
process.stderr.write(`${JSON.stringify({ code, ms, maxRssKb, bare })}\n`);
process.exitCode = code;

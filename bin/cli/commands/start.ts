/** `oc start` (npm start): the whole system locally. */
import path from 'node:path';
import type { Command } from 'commander';
import { readStackState } from '../../local/state-file.js';
import { examples, type Act } from '../context.js';
import { CliError } from '../errors.js';
import { LOCAL_DEFAULTS } from '../target.js';

export function registerStart(program: Command, act: Act): void {
  const start = program
    .command('start')
    .description(
      'run the whole system locally: DynamoDB Local, SQS, S3 and the API on PORT (Ctrl-C stops it all)',
    );
  examples(start, [
    'npm start                                   # the same, through npm',
    'PORT=3300 OC_DYNAMODB_PORT=8300 OC_AWS_PORT=4866 OC_S3_PORT=4869 OC_DATA_DIR=/tmp/oc2 npm start',
    'OC_IN_MEMORY=true npm start                 # nothing kept on disk',
  ]);
  act(
    start,
    () => 'start the local stack',
    async (_opts, ctx) => {
      // Two stacks on one data folder would share DynamoDB Local's files.
      const running = readStackState(path.resolve(ctx.env.OC_DATA_DIR || LOCAL_DEFAULTS.dataDir));
      if (running.kind === 'found')
        throw new CliError(
          `a local stack already runs from ${running.state.data_dir} (pid ${running.state.pid}, ${running.state.url}). ` +
            'Use it, stop it first, or start another with its own OC_DATA_DIR and ports.',
        );
      // Loaded here: the local host pulls in every handler, which the other commands need not pay for.
      const { startLocalStack } = await import('../../local/stack.js');
      await startLocalStack(ctx.env);
    },
  );
}

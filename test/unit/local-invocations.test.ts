/**
 * The local host runs many handlers at once in one process, all logging through the one shared
 * Powertools logger: each invocation's log lines must still carry its own function's name.
 */
import { invoke } from '../../bin/local/host.js';
import { logger } from '../../functions/shared/powertools.js';

type Sink = { console: Pick<Console, 'warn' | 'info' | 'error' | 'debug' | 'log'> };

describe('local invocations', () => {
  const sink = logger as unknown as Sink;
  const original = sink.console;
  const lines: string[] = [];
  beforeAll(() => {
    const collect = (line: unknown) => void lines.push(String(line));
    sink.console = { warn: collect, info: collect, error: collect, debug: collect, log: collect };
    logger.setLogLevel('WARN');
  });
  afterAll(() => {
    sink.console = original;
    logger.setLogLevel('SILENT');
  });

  it('each log line names the function of the invocation that wrote it, when invocations overlap', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const names = ['deliver-notifications', 'outbox', 'submit-toolcall', 'archive-evidence'];
    // Every invocation starts (and sets its context) before any of them logs.
    const runs = names.map((name) =>
      invoke(name, async (context) => {
        await gate;
        logger.warn('overlapping', { expected: `oc-local-${name}`, request: context.awsRequestId });
        await new Promise((resolve) => setImmediate(resolve));
        logger.warn('overlapping', { expected: `oc-local-${name}`, request: context.awsRequestId });
      }),
    );
    open();
    await Promise.all(runs);
    const logged = lines.map(
      (line) =>
        JSON.parse(line) as {
          function_name: string;
          function_request_id: string;
          expected: string;
          request: string;
        },
    );
    expect(logged).toHaveLength(names.length * 2);
    for (const entry of logged) {
      expect(entry.function_name).toBe(entry.expected);
      expect(entry.function_request_id).toBe(entry.request);
    }
  });

  it('a log line outside any invocation names none', () => {
    lines.length = 0;
    logger.warn('between invocations');
    expect(JSON.parse(lines[0]!)).not.toHaveProperty('function_name');
  });
});

/** The machine's process table, for tests that kill real processes or look for orphans. */
import { spawnSync } from 'node:child_process';

export interface ProcessRow {
  pid: number;
  ppid: number;
  args: string;
}

export function processTable(): ProcessRow[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  if (ps.status !== 0) throw new Error(`ps failed: ${ps.stderr}`);
  return ps.stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] ?? '' }));
}

/** The Java process of the DynamoDB Local listening on this port (not its shell guardian). */
export function dynamoDbJava(port: number): ProcessRow | undefined {
  return processTable().find(
    (p) => p.args.startsWith('java ') && p.args.includes(`DynamoDBLocal.jar -port ${port} `),
  );
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls until `probe` returns something other than undefined. The deadline only keeps a broken
 * run from hanging; nothing is asserted about how long it took.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  deadlineMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `gave up waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs the real `oc` (bin/oc.js, what `npx oc` runs) as a child process. */
import { spawn } from 'node:child_process';
import path from 'node:path';

const OC = path.resolve('bin/oc.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `oc <args>` with only the variables given (plus PATH and HOME): nothing leaks in from the
 * developer's shell, such as OC_DYNAMODB_PORT or AWS credentials.
 */
export function runOc(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [OC, ...args], {
      cwd: path.resolve('.'),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs at most `limit` at once: each `oc` boots tsx, and the machine is shared. */
export async function inBatches<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

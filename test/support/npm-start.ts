/**
 * `npm start` as a developer runs it, for the e2e tests that need the whole process (a restart, a
 * data folder from a fixture): its own free ports, its own process group, the shell's environment
 * without npm's and jest's variables. `stop()` ends the group and waits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../bin/local/emulators.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The four ports a stack listens on, all distinct (the OS can hand out one free port twice). */
export async function stackPorts(): Promise<
  Record<'PORT' | 'OC_DYNAMODB_PORT' | 'OC_AWS_PORT' | 'OC_S3_PORT', string>
> {
  const ports = new Set<number>();
  while (ports.size < 4) ports.add(await freePort());
  const [PORT, OC_DYNAMODB_PORT, OC_AWS_PORT, OC_S3_PORT] = [...ports].map(String) as [
    string,
    string,
    string,
    string,
  ];
  return { PORT, OC_DYNAMODB_PORT, OC_AWS_PORT, OC_S3_PORT };
}

export interface NpmStart {
  npm: ChildProcess;
  exited: Promise<unknown>;
  output(): string;
  /** SIGTERM to the process group (if it still runs), then its exit. */
  stop(): Promise<void>;
}

export function npmStart(env: Record<string, string>): NpmStart {
  const full: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('npm_') && k !== 'NODE_OPTIONS') full[k] = v;
  Object.assign(full, env);
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    env: full,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  npm.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise((resolve) => npm.once('exit', resolve));
  return {
    npm,
    exited,
    output: () => output,
    async stop() {
      if (npm.exitCode === null && npm.signalCode === null) {
        try {
          process.kill(-npm.pid!, 'SIGTERM');
        } catch {
          // gone
        }
        await exited;
      }
    },
  };
}

/**
 * Starts the local stand-ins for AWS: DynamoDB Local (AWS's own engine, a Java jar shipped in
 * amplify-dynamodb-simulator), fauxqs (SQS) and s3rver (S3, file-backed). Used by `npm start`
 * and by the test run's global setup, so both exercise the same engines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);

export interface Emulator {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** An emulator in a process of its own, which can die while we run. */
export interface ChildEmulator extends Emulator {
  /** Resolves when the process ends, for whatever reason, saying how ("killed by SIGKILL"). */
  readonly exited: Promise<string>;
  /** SIGKILL, now (when stopping it cleanly took too long). */
  kill(): void;
}

/** An unused TCP port on loopback (when `preferred` is 0 or taken by nobody we keep it). */
export async function freePort(preferred = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(preferred, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : preferred));
    });
  });
}

/** True if something on this machine listens on the port, on any address (so we could not). */
export async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EADDRINUSE' ? resolve(true) : reject(error),
    );
    // No host: the wildcard address, which conflicts with a listener on any address.
    server.listen(port, () => server.close(() => resolve(false)));
  });
}

/** True if a TCP connection to 127.0.0.1:port is accepted. */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`emulator exited with code ${child.exitCode}`);
    if (await portAnswers(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`emulator did not open port ${port} within ${timeoutMs} ms`);
}

/** How a process ended, in words; a shell reports a child killed by signal N as 128 + N. */
function howItEnded(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `killed by ${signal}`;
  const byShell = code !== null && code > 128 ? os.constants.signals : undefined;
  const name = byShell && Object.entries(byShell).find(([, n]) => n === (code as number) - 128)?.[0];
  return name ? `killed by ${name}` : `exited with code ${code}`;
}

export interface DynamoOptions {
  port: number;
  /** Folder for the database file; in memory when undefined. */
  dataDir?: string;
}

export async function startDynamoDbLocal(options: DynamoOptions): Promise<ChildEmulator> {
  const emulatorDir = path.join(
    path.dirname(require.resolve('amplify-dynamodb-simulator/package.json')),
    'emulator',
  );
  const args = [
    `-Djava.library.path=${path.join(emulatorDir, 'DynamoDBLocal_lib')}`,
    '-Xmx1g',
    '-jar',
    path.join(emulatorDir, 'DynamoDBLocal.jar'),
    '-port',
    String(options.port),
    // Without -sharedDb every access key / region pair sees its own database.
    '-sharedDb',
    '-disableTelemetry',
  ];
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    args.push('-dbPath', options.dataDir);
  } else {
    args.push('-inMemory');
  }
  // A small shell guardian stops Java when this Node process dies without cleaning up (a killed
  // test run, a crash, SIGKILL), within a second, so no orphaned database keeps a port. It runs in
  // a process group of its own (detached): a Ctrl-C reaches only Node, which stops Java last, after
  // the requests in flight and the stream poller, so the data on disk stays consistent.
  const guardian = [
    'java "$@" & j=$!',
    "trap 'kill $j 2>/dev/null; wait $j; exit 0' TERM INT HUP",
    `while kill -0 ${process.pid} 2>/dev/null && kill -0 $j 2>/dev/null; do sleep 1; done`,
    'kill $j 2>/dev/null; wait $j',
  ].join('\n');
  const child = spawn('bash', ['-c', guardian, 'dynamodb-local', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(howItEnded(code, signal))),
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(options.port, child, 30_000);
  } catch (error) {
    killGroup(child, 'SIGKILL');
    throw new Error(`DynamoDB Local failed to start: ${(error as Error).message}\n${stderr}`);
  }
  return {
    endpoint: `http://127.0.0.1:${options.port}`,
    port: options.port,
    exited,
    stop: () => stopChild(child, exited),
    kill: () => killGroup(child, 'SIGKILL'),
  };
}

/** Signals the guardian and Java together (they share the guardian's process group). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGTERM (the guardian stops Java and waits for it), then SIGKILL to both after 5 s. */
function stopChild(child: ChildProcess, exited: Promise<string>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
  child.kill('SIGTERM');
  return exited.then(() => clearTimeout(timer));
}

export async function startSqs(port: number): Promise<Emulator> {
  const { startFauxqs } = await import('fauxqs');
  const server = await startFauxqs({ port, logger: false, host: '127.0.0.1' });
  return {
    endpoint: `http://127.0.0.1:${server.port}`,
    port: server.port,
    stop: () => server.stop(),
  };
}

/** s3rver accepts only its own account's key (any other is 403 InvalidAccessKeyId). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export async function startS3(port: number, directory: string): Promise<Emulator> {
  const { default: S3rver } = (await import('s3rver')) as unknown as {
    default: new (options: Record<string, unknown>) => {
      run(): Promise<{ port: number }>;
      close(): Promise<void>;
    };
  };
  mkdirSync(directory, { recursive: true });
  const server = new S3rver({ port, address: '127.0.0.1', directory, silent: true });
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    port: address.port,
    stop: () => server.close(),
  };
}

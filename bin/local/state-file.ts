/**
 * The running local stack's address book: `npm start` writes `<OC_DATA_DIR>/stack.json` once
 * every part is up and removes it when it stops, so that `npx oc <command>` in a second terminal
 * finds the stack's endpoints with no variables set (even on non-default ports).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as z from 'zod';

export const STATE_FILE_NAME = 'stack.json';

export const StackState = z.object({
  version: z.literal(1),
  /** The process that serves the stack (the node host): a dead pid means a stale file. */
  pid: z.number().int().positive(),
  started_at: z.string(),
  /** The API base URL, e.g. http://localhost:3000. */
  url: z.string(),
  port: z.number().int().positive(),
  dynamodb_endpoint: z.string(),
  sqs_endpoint: z.string(),
  s3_endpoint: z.string(),
  table_name: z.string(),
  evidence_bucket: z.string(),
  in_memory: z.boolean(),
  /** Absolute path of the data folder this file lives in. */
  data_dir: z.string(),
});
export type StackState = z.infer<typeof StackState>;

export function stateFilePath(dataDir: string): string {
  return path.join(path.resolve(dataDir), STATE_FILE_NAME);
}

/** Written atomically (temp file + rename): a reader never sees half a file. */
export function writeStackState(state: StackState): void {
  const file = stateFilePath(state.data_dir);
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, file);
}

/** Removes the file if it is still this process's (a newer stack may have replaced it). */
export function removeStackState(dataDir: string, pid = process.pid): void {
  const current = readStackState(dataDir);
  if (current.kind === 'found' && current.state.pid !== pid) return;
  rmSync(stateFilePath(dataDir), { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type StateLookup =
  | { kind: 'found'; state: StackState; file: string }
  | { kind: 'stale'; state: StackState; file: string }
  | { kind: 'missing'; file: string }
  | { kind: 'invalid'; file: string; problem: string };

/** What `<dataDir>/stack.json` says, and whether the process that wrote it still runs. */
export function readStackState(dataDir: string): StateLookup {
  const file = stateFilePath(dataDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { kind: 'missing', file };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'invalid', file, problem: 'not JSON' };
  }
  const result = StackState.safeParse(parsed);
  if (!result.success)
    return { kind: 'invalid', file, problem: result.error.issues[0]?.message ?? 'bad shape' };
  return { kind: isAlive(result.data.pid) ? 'found' : 'stale', state: result.data, file };
}

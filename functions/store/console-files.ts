/** The console's built files, read from disk and compressed once per container (or local host). */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Config } from '../shared/config.js';
import { ENV } from '../shared/constants.js';

export interface ConsoleFile {
  body: Buffer;
  gzip: Buffer;
  contentType: string;
}

export interface ConsoleFiles {
  index: ConsoleFile;
  /** By file name under `assets/` (a lookup, never a path join: no traversal). */
  assets: ReadonlyMap<string, ConsoleFile>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const loaded = new Map<string, ConsoleFiles>();

function read(file: string): ConsoleFile {
  const body = readFileSync(file);
  return {
    body,
    gzip: gzipSync(body, { level: 9 }),
    contentType: TYPES[path.extname(file)] ?? 'application/octet-stream',
  };
}

export function consoleFiles(config: Pick<Config, 'consoleDir'>): ConsoleFiles {
  const dir = config.consoleDir;
  if (!dir) throw new Error(`${ENV.consoleDir} is not set: the console's files are not in this bundle`);
  let files = loaded.get(dir);
  if (!files) {
    const assetsDir = path.join(dir, 'assets');
    files = {
      index: read(path.join(dir, 'index.html')),
      assets: new Map(
        readdirSync(assetsDir)
          .filter((name) => TYPES[path.extname(name)])
          .map((name) => [name, read(path.join(assetsDir, name))] as const),
      ),
    };
    loaded.set(dir, files);
  }
  return files;
}

/**
 * The independent verifier (issue 23, deliverable 7): a small Go program over Go's checksum
 * database packages (golang.org/x/mod/sumdb/note, sumdb/tlog from Debian's
 * golang-golang-x-mod-dev), built offline in GOPATH mode against /usr/share/gocode.
 *
 * `runGoVerifier({ dir, origin, vkey })` points it at a directory laid out as the archiver lays a
 * tenant's log out under its S3 prefix (`checkpoint`, `tile/<L>/<N>[.p/<W>]`): the archive test
 * downloads the prefix into a directory and calls it the same way. No Go means a failed test with
 * the install line, never a skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tilePath, type FullTile, type PartialTile } from '../../functions/core/tlog.js';

const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'go-verify');
/** Where Debian's golang-golang-x-mod-dev puts the sources GOPATH mode builds against. */
const DEBIAN_GOPATH = '/usr/share/gocode';
const INSTALL = 'apt-get install -y golang-go golang-golang-x-mod-dev (.ci/run does this)';

let built: string | undefined;

function findGo(): string {
  const found = spawnSync('sh', ['-c', 'command -v go'], { encoding: 'utf8' }).stdout.trim();
  const go = found || ['/usr/bin/go', '/usr/lib/go/bin/go'].find((p) => existsSync(p));
  if (!go) throw new Error(`the independent verifier needs Go and is missing it: ${INSTALL}`);
  if (!existsSync(path.join(DEBIAN_GOPATH, 'src/golang.org/x/mod/sumdb/tlog'))) {
    throw new Error(`the independent verifier needs Go's sumdb packages in ${DEBIAN_GOPATH}: ${INSTALL}`);
  }
  return go;
}

/** Builds the verifier once per test process (about a second: Debian ships Go's std prebuilt). */
export function buildGoVerifier(): string {
  if (built) return built;
  const go = findGo();
  const out = mkdtempSync(path.join(process.env.OC_TEST_TMP ?? os.tmpdir(), 'go-verify-'));
  const binary = path.join(out, 'go-verify');
  execFileSync(go, ['build', '-o', binary, '.'], {
    cwd: SOURCE,
    env: {
      ...process.env,
      GO111MODULE: 'off', // GOPATH mode: no module download, ever
      GOPATH: DEBIAN_GOPATH,
      GOFLAGS: '',
      GOPROXY: 'off',
      GOCACHE: process.env.GOCACHE ?? path.join(os.tmpdir(), 'oc-go-build-cache'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  built = binary;
  return binary;
}

export interface GoVerifyInput {
  /** The log directory: `checkpoint` and `tile/…`. Omit to check proof files only. */
  dir?: string;
  origin: string;
  /** The log's vkey (`<origin>+<id>+<base64(0x01 ‖ key)>`). */
  vkey: string;
  /** A checkpoint note other than `<dir>/checkpoint`. */
  checkpoint?: string;
  /** Witness vkeys (type 0x04) whose cosignatures are required. */
  witnesses?: string[];
  /** Checkpoints kept from before; `proof` is a file of base64 lines (our consistency proof). */
  old?: { checkpoint: string; proof?: string }[];
  /** tlog-proof files and the record bytes each proves. */
  proofs?: { proof: string; record: string }[];
}

export interface GoVerifyResult {
  code: number;
  /** One line per check: `ok …`, or a final `FAIL <what>: <why>`. */
  lines: string[];
}

export function runGoVerifier(input: GoVerifyInput): GoVerifyResult {
  const args = ['-origin', input.origin, '-vkey', input.vkey];
  if (input.dir) args.push('-dir', input.dir);
  if (input.checkpoint) args.push('-checkpoint', input.checkpoint);
  for (const w of input.witnesses ?? []) args.push('-witness', w);
  for (const o of input.old ?? []) args.push('-old', o.checkpoint, '-old-proof', o.proof ?? '');
  for (const p of input.proofs ?? []) args.push('-proof', `${p.proof}=${p.record}`);
  const run = spawnSync(buildGoVerifier(), args, { encoding: 'utf8' });
  if (run.error) throw run.error;
  return { code: run.status ?? -1, lines: `${run.stdout}${run.stderr}`.trim().split('\n').filter(Boolean) };
}

/** Writes tiles under `<dir>/tile/…` as the archiver writes them under `<prefix>/tile/…`. */
export function writeTiles(dir: string, tiles: (FullTile | PartialTile)[]): void {
  for (const tile of tiles) {
    const file = path.join(dir, tilePath(tile.level, tile.index, 'width' in tile ? tile.width : undefined));
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, tile.hashes);
  }
}

/**
 * Builds the web console into a folder of static files: `index.html`, `assets/app.js` (with
 * the OIDC client split into its own chunk, loaded only by deployments that sign in with OIDC)
 * and `assets/app.css`. The local host builds it at start; CDK builds it at synth into the
 * console Lambda's bundle. Nothing builds at request time.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export function buildConsole(outDir: string): string {
  const assets = path.join(outDir, 'assets');
  mkdirSync(assets, { recursive: true });
  buildSync({
    entryPoints: { app: path.join(HERE, 'src', 'main.ts') },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    legalComments: 'none',
    outdir: assets,
    chunkNames: 'chunk-[hash]',
    logLevel: 'warning',
  });
  buildSync({
    entryPoints: { app: path.join(HERE, 'src', 'styles.css') },
    bundle: true,
    minify: true,
    outdir: assets,
    logLevel: 'warning',
  });
  copyFileSync(path.join(HERE, 'index.html'), path.join(outDir, 'index.html'));
  // The tab's icon: without one, every page load asks for /favicon.ico and logs its 404.
  copyFileSync(path.join(HERE, 'favicon.svg'), path.join(assets, 'favicon.svg'));
  return outDir;
}

let built: string | undefined;

/**
 * Built once per process into a temporary folder (the local host and synth share it), removed
 * when the process exits: by then the host has stopped serving it and synth has copied it into
 * its asset (CDK stages assets when the construct is created).
 */
export function builtConsoleDir(): string {
  if (!built) {
    const dir = mkdtempSync(path.join(process.env.OC_TEST_TMP ?? tmpdir(), 'oc-console-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    built = buildConsole(dir);
  }
  return built;
}

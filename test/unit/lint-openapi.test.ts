/** `npm run lint`'s OpenAPI step: Redocly's findings and exit code, without its notice boxes. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const lint = (...args: string[]) => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const run = spawnSync(process.execPath, ['scripts/lint-openapi.mjs', ...args], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
  });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
};

describe('scripts/lint-openapi.mjs', () => {
  it('lints the contract with no notice box (Node 20 end-of-life, updates)', () => {
    const { code, output } = lint();
    expect(output).toContain('api/openapi.yaml: validated');
    expect(output).not.toMatch(/[╔╚║]|Node\.js 20|new version/);
    expect(code).toBe(0);
  }, 60_000);

  it('still shows the findings and fails on an invalid description', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'oc-lint-'));
    try {
      const file = path.join(dir, 'bad.yaml');
      writeFileSync(file, 'openapi: 3.1.0\ninfo: {}\n');
      const { code, output } = lint(file);
      expect(output).toMatch(/Validation failed with \d+ errors?/);
      expect(code).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

/**
 * The agent SDK as a package: its checked-in API types match api/openapi.yaml (regenerated here
 * with the same command as `npm run sdk:generate`), it builds with tsc to ESM + declarations,
 * and another project can install it by path, import it and type-check against it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const sdk = join(root, 'sdk');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(process.env.OC_TEST_TMP ?? tmpdir(), 'oc-sdk-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** stdout; a failure throws with the command's stdout and stderr (tsc reports on stdout). */
function run(command: string, args: string[], cwd: string): string {
  try {
    return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

describe('the SDK package', () => {
  it('has API types generated from the current api/openapi.yaml (run `npm run sdk:generate`)', () => {
    const script = JSON.parse(readFileSync(join(sdk, 'package.json'), 'utf8')).scripts.generate as string;
    // The same arguments as the package's script, into a temporary file.
    const args = script
      .replace(/^openapi-typescript\s+/, '')
      .split(/\s+/)
      .map((arg) => (arg === 'src/openapi.ts' ? join(tmp, 'openapi.ts') : arg));
    run(bin('openapi-typescript'), args, sdk);

    const fresh = readFileSync(join(tmp, 'openapi.ts'), 'utf8');
    const checkedIn = readFileSync(join(sdk, 'src', 'openapi.ts'), 'utf8');
    expect(fresh.length).toBeGreaterThan(10_000);
    expect(checkedIn === fresh).toBe(true);
  });

  it('builds to ESM with declarations and installs into another project by path', () => {
    const dist = join(sdk, 'dist');
    run(bin('tsc'), ['-p', 'tsconfig.json'], sdk);
    for (const file of ['index.js', 'index.d.ts', 'client.js', 'errors.d.ts']) {
      expect(existsSync(join(dist, file))).toBe(true);
    }

    const app = join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', type: 'module', private: true }));
    run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', sdk], app);
    writeFileSync(
      join(app, 'check.mjs'),
      `import { createClient, ApprovalDeniedError, OpenClauseError } from '@openclause/sdk';
       const client = createClient({ baseUrl: 'http://127.0.0.1:9', apiKey: 'k' });
       console.log(typeof client.waitForApprovalThenExecute, new ApprovalDeniedError('e', 'r', 'a') instanceof OpenClauseError);`,
    );
    expect(run('node', ['check.mjs'], app).trim()).toBe('function true');

    // The declarations type a consumer's code: a wrong field is a compile error.
    writeFileSync(
      join(app, 'use.ts'),
      `import { createClient, type ToolCall } from '@openclause/sdk';
       const call: ToolCall = { agent_id: 'a', tool: 'jira', action: 'issue.list' };
       export const go = () => createClient({ baseUrl: 'x', apiKey: 'k' }).submit(call).then((r) => r.decision);`,
    );
    writeFileSync(
      join(app, 'bad.ts'),
      `import type { ToolCall } from '@openclause/sdk';\nexport const call: ToolCall = { agent_id: 'a', tool: 'jira', action: 'x', risk: 3 };`,
    );
    const tsc = (file: string) =>
      run(
        bin('tsc'),
        ['--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2022', '--skipLibCheck', file],
        app,
      );
    expect(() => tsc('use.ts')).not.toThrow();
    expect(() => tsc('bad.ts')).toThrow(/bad\.ts.*'risk' does not exist in type/s);
  });
});

/**
 * What `oc` prints besides its commands' results: every `--help` text, and how it leaves when its
 * reader goes away early (`npx oc keys --help | head -2`).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../../bin/cli/program.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

/** Every command's full `--help`, its examples included. */
function helpTexts(): Map<string, string> {
  const program = buildProgram((command) => command, {});
  const texts = new Map<string, string>();
  for (const command of allCommands(program)) {
    let text = '';
    command.configureOutput({ writeOut: (s) => void (text += s) });
    command.outputHelp();
    texts.set(command.name(), text);
  }
  return texts;
}

describe('oc --help', () => {
  it('cites no document the repository does not hold (SPEC or reference sections)', () => {
    const texts = helpTexts();
    expect(texts.size).toBeGreaterThan(5);
    const citing = [...texts].filter(([, text]) => /(SPEC|reference)\s*§/i.test(text)).map(([name]) => name);
    expect(citing).toEqual([]);
  });
});

describe('oc with a reader that stops early', () => {
  it('exits quietly, with no EPIPE stack trace', async () => {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, ['bin/oc.js', 'keys', '--help'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The reader closes its end before reading anything (as `head` does once it has its lines).
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  }, 60_000);
});

// `redocly lint` for `npm run lint`, without the notice boxes Redocly prints on its own. Its update
// notice has a documented switch (REDOCLY_SUPPRESS_UPDATE_NOTICE); its Node 20 end-of-life box has
// none (Redocly CLI 2.x prints it on every run under Node 20, which this project supports), so the
// box, and only a box, is dropped from stderr. Everything else, findings included, passes through,
// and the exit code is Redocly's.
import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
const child = spawn('npx', ['redocly', 'lint', ...(args.length ? args : ['api/openapi.yaml'])], {
  stdio: ['ignore', 'inherit', 'pipe'],
  env: { ...process.env, REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
});
let stderr = '';
child.stderr.on('data', (chunk) => (stderr += chunk.toString()));
child.on('close', (code, signal) => {
  // A box: a line starting (after blanks) with ╔, up to the line with ╚, plus the blank lines around it.
  process.stderr.write(stderr.replace(/(?:^[ \t]*\n)*^[ \t]*╔[^]*?^[ \t]*╚.*\n(?:[ \t]*\n)*/gm, ''));
  process.exitCode = code ?? (signal ? 1 : 0);
});

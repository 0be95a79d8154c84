/**
 * The README's walkthrough as a test script: the ```bash blocks between
 * `<!-- walkthrough:start -->` and `<!-- walkthrough:end -->`, split into steps (commands, then
 * the output lines documented under them), turned into one bash script that marks where each
 * step's output begins, and each step's output compared with what the README shows.
 *
 * How the README documents output, inside those blocks:
 *   `# text`    one line the commands above print (`#` alone: an empty line);
 *   `#   text`  (three spaces or more) the previous documented line, continued: a long line
 *               wrapped for reading, joined back with at most one space;
 *   `…`         anything, on that line (an id, a timestamp, a hash, fields left out);
 *   `$NAME`     the value the shell variable NAME holds once the step has run.
 * Every other line is shell. A step prints exactly its documented lines, no more, no fewer.
 */

export interface WalkthroughStep {
  /** 1-based README line of the step's first command, for messages. */
  line: number;
  shell: string;
  /** One entry per output line: its pieces (a line and its continuations). */
  expected: string[][];
}

export const WALKTHROUGH_START = '<!-- walkthrough:start -->';
export const WALKTHROUGH_END = '<!-- walkthrough:end -->';

const CONTINUATION = /^# {3,}/;
const OUTPUT = /^#( |$)/;
const VARIABLE = /\$([A-Z][A-Z0-9_]*)/g;

export function extractWalkthrough(markdown: string): WalkthroughStep[] {
  const lines = markdown.split('\n');
  const start = lines.indexOf(WALKTHROUGH_START);
  const end = lines.indexOf(WALKTHROUGH_END);
  if (start < 0 || end < start || lines.indexOf(WALKTHROUGH_START, start + 1) >= 0)
    throw new Error(`the README needs one ${WALKTHROUGH_START} followed by one ${WALKTHROUGH_END}`);
  const steps: WalkthroughStep[] = [];
  let step: WalkthroughStep | undefined;
  let inBlock = false;
  for (let i = start + 1; i < end; i++) {
    const text = lines[i]!;
    if (!inBlock) {
      if (text === '```bash') inBlock = true;
      else if (text.startsWith('```'))
        throw new Error(`README line ${i + 1}: walkthrough blocks are \`\`\`bash, not ${text}`);
      continue;
    }
    if (text === '```') {
      inBlock = false;
      step = undefined; // a block always starts a new step
      continue;
    }
    if (OUTPUT.test(text)) {
      if (!step) throw new Error(`README line ${i + 1}: output documented before any command`);
      if (CONTINUATION.test(text)) {
        const last = step.expected.at(-1);
        if (!last) throw new Error(`README line ${i + 1}: a continuation with no line to continue`);
        last.push(text.replace(CONTINUATION, ''));
      } else step.expected.push([text.slice(2)]);
      continue;
    }
    if (!step || step.expected.length > 0) {
      if (text.trim() === '') continue;
      step = { line: i + 1, shell: '', expected: [] };
      steps.push(step);
    }
    step.shell += `${text}\n`;
  }
  if (inBlock) throw new Error(`the walkthrough's last \`\`\`bash block is not closed`);
  if (steps.length === 0) throw new Error('the walkthrough has no ```bash blocks');
  return steps;
}

/** The shell variables the documented output refers to. */
export function referencedVariables(steps: WalkthroughStep[]): string[] {
  const names = new Set<string>();
  for (const step of steps)
    for (const piece of step.expected.flat()) for (const m of piece.matchAll(VARIABLE)) names.add(m[1]!);
  return [...names].sort();
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A documented line as a whole-line pattern; throws if it names a variable that has no value. */
export function linePattern(pieces: string[], vars: Record<string, string>): RegExp {
  const piece = (text: string) =>
    text
      .split('…')
      .map((literal) =>
        literal
          .split(VARIABLE)
          // split with a capture group: odd entries are variable names
          .map((part, i) => {
            if (i % 2 === 0) return escapeRegExp(part);
            const value = vars[part];
            if (value === undefined || value === '')
              throw new Error(`the documented output uses $${part}, which is not set at that step`);
            return escapeRegExp(value);
          })
          .join(''),
      )
      .join('.*?');
  return new RegExp(`^${pieces.map(piece).join(' ?')}$`);
}

/** What is wrong with a step's output, or undefined when it prints what the README shows. */
export function compareOutput(
  step: WalkthroughStep,
  actual: string[],
  vars: Record<string, string>,
): string | undefined {
  const problems: string[] = [];
  const count = Math.max(step.expected.length, actual.length);
  for (let i = 0; i < count; i++) {
    const pieces = step.expected[i];
    const line = actual[i];
    if (pieces === undefined) problems.push(`  line ${i + 1} is not documented: ${line}`);
    else if (line === undefined) problems.push(`  line ${i + 1} is missing: # ${pieces.join(' ')}`);
    else {
      let pattern: RegExp;
      try {
        pattern = linePattern(pieces, vars);
      } catch (error) {
        problems.push(`  line ${i + 1}: ${(error as Error).message}`);
        continue;
      }
      if (!pattern.test(line))
        problems.push(
          `  line ${i + 1} differs:\n    documented: # ${pieces.join(' ')}\n    printed:    ${line}`,
        );
    }
  }
  return problems.length ? problems.join('\n') : undefined;
}

const MARK = '@@oc-walkthrough-mark';
const VAR = '@@oc-walkthrough-var';

/**
 * One bash script for every step, in order, in one session (variables carry over), stopping at
 * the first failing command. Before the first step and after each one it prints a mark line and
 * the values of `variables`, so that each step's output can be cut out and compared.
 */
export function walkthroughScript(steps: WalkthroughStep[], variables: string[]): string {
  const mark = (n: number) => `__oc_mark ${n}\n`;
  return [
    'set -euo pipefail\n',
    'exec 2>&1\n',
    // The leading newline starts the mark on a line of its own after output with no final newline.
    `__oc_mark() { printf '\\n${MARK} %s\\n' "$1"; local v; for v in ${variables.join(' ')}; do printf '${VAR} %s=%s\\n' "$v" "\${!v-}"; done; }\n`,
    mark(0),
    ...steps.map((step, i) => `${step.shell}${mark(i + 1)}`),
  ].join('');
}

export interface WalkthroughRun {
  /** Each step that ran to its end: the lines it printed and the variables after it. */
  steps: { output: string[]; vars: Record<string, string> }[];
  /** What was printed after the last step that ended: the output of the step that stopped the script. */
  rest: string[];
}

/** Cuts the script's output into its steps' outputs. */
export function splitRun(output: string): WalkthroughRun {
  const marker = new RegExp(`\\n${MARK} (\\d+)\\n((?:${VAR} [^\\n]*\\n)*)`, 'g');
  const steps: WalkthroughRun['steps'] = [];
  let end: number | undefined;
  for (const m of output.matchAll(marker)) {
    const vars: Record<string, string> = {};
    for (const line of m[2]!.split('\n').filter(Boolean)) {
      const [name, ...value] = line.slice(VAR.length + 1).split('=');
      vars[name!] = value.join('=');
    }
    if (end !== undefined) steps.push({ output: lines(output.slice(end, m.index)), vars });
    end = m.index + m[0].length;
  }
  return { steps, rest: lines(output.slice(end ?? 0)) };
}

function lines(text: string): string[] {
  if (text === '') return [];
  return (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
}

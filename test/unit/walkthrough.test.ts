/**
 * The README walkthrough runner's own rules (test/support/walkthrough.ts): how blocks become
 * steps, how documented output matches, and how one bash run is cut back into steps. The e2e
 * test (test/e2e/readme.test.ts) relies on them to fail when the README and the system disagree.
 */
import { spawnSync } from 'node:child_process';
import {
  compareOutput,
  extractWalkthrough,
  referencedVariables,
  splitRun,
  walkthroughScript,
  type WalkthroughStep,
} from '../support/walkthrough.js';

const readme = (...body: string[]) =>
  [
    '# Title',
    '',
    '```bash',
    'not-run',
    '```',
    '<!-- walkthrough:start -->',
    ...body,
    '<!-- walkthrough:end -->',
    '',
  ].join('\n');

describe('extractWalkthrough', () => {
  it('takes only the bash blocks between the marks, a step being commands then their documented lines', () => {
    const steps = extractWalkthrough(
      readme(
        'Some prose.',
        '',
        '```bash',
        'A=$(echo one)',
        'echo "$A"',
        '# one',
        'echo two; echo three   # a comment on the command',
        '# two',
        '# three',
        'true',
        '```',
        '',
        '```bash',
        'echo "{"a":1,',
        '# {"a":1,',
        '#   "b":2}',
        '```',
      ),
    );
    expect(steps).toEqual([
      { line: 10, shell: 'A=$(echo one)\necho "$A"\n', expected: [['one']] },
      {
        line: 13,
        shell: 'echo two; echo three   # a comment on the command\n',
        expected: [['two'], ['three']],
      },
      { line: 16, shell: 'true\n', expected: [] },
      { line: 20, shell: 'echo "{"a":1,\n', expected: [['{"a":1,', '"b":2}']] },
    ]);
  });

  it('refuses a README without the marks, a block of another language and output before any command', () => {
    expect(() => extractWalkthrough('# no marks\n')).toThrow(/<!-- walkthrough:start -->/);
    expect(() => extractWalkthrough(readme('```sh', 'ls', '```'))).toThrow(/blocks are ```bash/);
    expect(() => extractWalkthrough(readme('```bash', '# out', '```'))).toThrow(/before any command/);
    expect(() => extractWalkthrough(readme('```bash', 'ls'))).toThrow(/not closed/);
    expect(() => extractWalkthrough(readme('prose only'))).toThrow(/no ```bash blocks/);
  });
});

describe('compareOutput', () => {
  const step = (...expected: string[][]): WalkthroughStep => ({ line: 1, shell: '', expected });

  it('matches … as anything and $NAME as the variable, a wrapped line with or without the space', () => {
    const s = step(['{"id":"$ID","at":"…",', '"ok":true}'], ['exit 1']);
    expect(
      compareOutput(s, ['{"id":"7f","at":"2026-12-01","ok":true}', 'exit 1'], { ID: '7f' }),
    ).toBeUndefined();
    expect(compareOutput(s, ['{"id":"7f","at":"x", "ok":true}', 'exit 1'], { ID: '7f' })).toBeUndefined();
  });

  it('names each difference: another value, a missing line, a line more, an unset variable', () => {
    const s = step(['{"id":"$ID","ok":true}'], ['exit 1']);
    expect(compareOutput(s, ['{"id":"8a","ok":true}', 'exit 1'], { ID: '7f' })).toMatch(/line 1 differs/);
    expect(compareOutput(s, ['{"id":"7f","ok":true}'], { ID: '7f' })).toMatch(/line 2 is missing: # exit 1/);
    expect(compareOutput(s, ['{"id":"7f","ok":true}', 'exit 1', 'more'], { ID: '7f' })).toMatch(
      /line 3 is not documented: more/,
    );
    expect(compareOutput(s, ['{"id":"","ok":true}', 'exit 1'], {})).toMatch(/uses \$ID, which is not set/);
    // Literal text is literal: a dot is a dot, not any character.
    expect(compareOutput(step(['a.b']), ['axb'], {})).toMatch(/differs/);
  });
});

describe('walkthroughScript and splitRun', () => {
  const run = (steps: WalkthroughStep[]) => {
    const script = walkthroughScript(steps, referencedVariables(steps));
    const bash = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    return { status: bash.status, run: splitRun(bash.stdout) };
  };

  it('runs the steps in one session and gives each its own output and the variables after it', () => {
    const steps = extractWalkthrough(
      readme(
        '```bash',
        'X=$(printf "%s" abc)',
        'printf "%s" "$X"',
        '# $X',
        'echo >&2 "to stderr"; echo',
        '# to stderr',
        '#',
        '```',
        '```bash',
        'true',
        '```',
      ),
    );
    const { status, run: result } = run(steps);
    expect(status).toBe(0);
    expect(result).toEqual({
      steps: [
        { output: ['abc'], vars: { X: 'abc' } },
        { output: ['to stderr', ''], vars: { X: 'abc' } },
        { output: [], vars: { X: 'abc' } },
      ],
      rest: [],
    });
  });

  it('stops at the first failing command, keeping what that step printed', () => {
    const steps = extractWalkthrough(
      readme('```bash', 'echo one', '# one', 'echo two; false; echo never', '```'),
    );
    const { status, run: result } = run(steps);
    expect(status).toBe(1);
    expect(result).toEqual({ steps: [{ output: ['one'], vars: {} }], rest: ['two'] });
  });

  it('stops on an unset variable and on a failure inside a pipe', () => {
    const unset = run(extractWalkthrough(readme('```bash', 'echo "$NOPE"', '```')));
    expect(unset.status).not.toBe(0);
    expect(unset.run.steps).toEqual([]);
    const piped = run(extractWalkthrough(readme('```bash', 'false | cat', '```')));
    expect(piped.status).toBe(1);
  });
});

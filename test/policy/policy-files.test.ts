/** Loading the policy folder and its version digest. */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createPolicyEngine, PolicyLoadError } from '../../functions/core/policy.js';
import {
  COMPILED_POLICY_FILE,
  defaultPolicyDir,
  loadPolicyBundle,
} from '../../functions/store/policy-files.js';
import { request } from './builders.js';

const POLICY_FILES = ['schema.cedarschema', 'policies.cedar', 'actions.json', 'tenants.json'];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'oc-policy-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const edit = (name: string, change: (text: string) => string) =>
  writeFileSync(join(dir, name), change(readFileSync(join(dir, name), 'utf8')));

describe('defaultPolicyDir', () => {
  it("is the repository's policy folder", () => {
    for (const name of [...POLICY_FILES, 'README.md'])
      expect(existsSync(join(defaultPolicyDir(), name))).toBe(true);
  });
});

describe('loadPolicyBundle', () => {
  it('reads the four files and parses the data', () => {
    const bundle = loadPolicyBundle(dir);

    expect(bundle.schema).toContain('entity Tenant');
    expect(bundle.policies).toContain('@id("approve-high-risk")');
    expect(bundle.actions.destructive).toEqual(['jira.issue.delete']);
    expect(Object.keys(bundle.tenants)).toEqual(['tenant1', 'tenant2']);
  });

  it('names the missing file', () => {
    rmSync(join(dir, 'tenants.json'));

    expect(() => loadPolicyBundle(dir)).toThrow(PolicyLoadError);
    expect(() => loadPolicyBundle(dir)).toThrow(/tenants\.json: ENOENT/);
  });

  it('names the file with invalid JSON', () => {
    edit('actions.json', (text) => `${text},`);

    expect(() => loadPolicyBundle(dir)).toThrow(/actions\.json: invalid JSON/);
  });

  it('names the file and field that break the data schema', () => {
    edit('tenants.json', (text) =>
      text.replace('"max_risk_auto_approve": 3', '"max_risk_auto_approve": "3"'),
    );

    expect(() => loadPolicyBundle(dir)).toThrow(PolicyLoadError);
    expect(() => loadPolicyBundle(dir)).toThrow(/tenants\.json: tenant2\.max_risk_auto_approve: /);
  });

  it('feeds createPolicyEngine, which uses the folder it was given', () => {
    edit('tenants.json', (text) => text.replace('"max_risk_auto_approve": 5', '"max_risk_auto_approve": 1'));
    const engine = createPolicyEngine(loadPolicyBundle(dir));

    expect(engine.evaluate(request('jira.issue.list', { riskScore: 1 })).decision).toBe('deny');
    expect(engine.evaluate(request('jira.issue.list', { riskScore: 0 })).decision).toBe('allow');
  });
});

describe('policy version', () => {
  it('is a sha256 digest, stable across loads and carried by every decision', () => {
    const version = loadPolicyBundle(dir).version;
    const engine = createPolicyEngine(loadPolicyBundle(dir));

    expect(version).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(loadPolicyBundle(dir).version).toBe(version);
    expect(loadPolicyBundle(defaultPolicyDir()).version).toBe(version);
    expect(engine.version).toBe(version);
    expect(engine.evaluate(request('jira.issue.list')).policyVersion).toBe(version);
    expect(engine.evaluate(request('no.such')).policyVersion).toBe(version);
  });

  it.each(POLICY_FILES)('changes when %s changes, even by one byte', (name) => {
    const before = loadPolicyBundle(dir).version;

    edit(name, (text) => `${text} `);

    expect(loadPolicyBundle(dir).version).not.toBe(before);
  });

  // Issue 24: an approval is bound to the version that parked it, so the version must change with
  // anything in the folder, tenant data and files a later version reads included.
  it.each([
    ['an edited README', (d: string) => writeFileSync(join(d, 'README.md'), 'changed')],
    ['a new file', (d: string) => writeFileSync(join(d, 'notes.txt'), 'new')],
    ['a dot file', (d: string) => writeFileSync(join(d, '.reviewed-by'), 'carol')],
    [
      'a file in a subfolder',
      (d: string) => {
        mkdirSync(join(d, 'reviews'));
        writeFileSync(join(d, 'reviews', 'carol.txt'), 'ok\n');
      },
    ],
  ])('changes with %s: it digests the whole folder', (_what, change) => {
    const before = loadPolicyBundle(dir).version;

    change(dir);

    expect(loadPolicyBundle(dir).version).not.toBe(before);
  });

  it('changes when a file moves between folders (paths are framed, not just contents)', () => {
    mkdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'a', 'x'), 'same');
    const inA = loadPolicyBundle(dir).version;
    rmSync(join(dir, 'a'), { recursive: true });
    mkdirSync(join(dir, 'b'));
    writeFileSync(join(dir, 'b', 'x'), 'same');

    expect(loadPolicyBundle(dir).version).not.toBe(inA);
  });

  it('leaves out only the synth-time compilation and a shadow candidate, which are not the live policy', () => {
    const before = loadPolicyBundle(dir).version;

    writeFileSync(join(dir, COMPILED_POLICY_FILE), '{"format":"oc-compiled-policy/v1"}');
    mkdirSync(join(dir, 'shadow'));
    writeFileSync(join(dir, 'shadow', 'policies.cedar'), '// a candidate');

    expect(loadPolicyBundle(dir).version).toBe(before);
    // Only at the top: a nested folder of that name is the operator's own file.
    mkdirSync(join(dir, 'docs'));
    writeFileSync(join(dir, 'docs', COMPILED_POLICY_FILE), '{}');
    expect(loadPolicyBundle(dir).version).not.toBe(before);
  });

  it('is the same for a copy of the folder, whatever order the files were written in', () => {
    const copy = mkdtempSync(join(tmpdir(), 'oc-policy-copy-'));
    try {
      const names = readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => relative(dir, join(e.parentPath, e.name)));
      expect(names.length).toBeGreaterThan(POLICY_FILES.length); // README.md and tests/ too
      for (const name of names.sort().reverse()) {
        mkdirSync(dirname(join(copy, name)), { recursive: true });
        writeFileSync(join(copy, name), readFileSync(join(dir, name)));
      }
      expect(loadPolicyBundle(copy).version).toBe(loadPolicyBundle(dir).version);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('frames each file, so moving bytes from one file to the next changes it', () => {
    const schema = readFileSync(join(dir, 'schema.cedarschema'), 'utf8');
    const policies = readFileSync(join(dir, 'policies.cedar'), 'utf8');
    const before = loadPolicyBundle(dir).version;

    // policies.cedar and schema.cedarschema are adjacent in name order: shift a comment across
    writeFileSync(join(dir, 'policies.cedar'), `${policies}// x`);
    writeFileSync(join(dir, 'schema.cedarschema'), schema);
    const appended = loadPolicyBundle(dir).version;
    writeFileSync(join(dir, 'policies.cedar'), policies);
    writeFileSync(join(dir, 'schema.cedarschema'), `// x${schema}`);
    const prepended = loadPolicyBundle(dir).version;

    expect(new Set([before, appended, prepended]).size).toBe(3);
  });
});

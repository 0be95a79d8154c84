/** Loading the policy folder and its version digest. */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPolicyEngine, PolicyLoadError } from '../../functions/core/policy.js';
import { defaultPolicyDir, loadPolicyBundle } from '../../functions/store/policy-files.js';
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

  it('does not depend on files the bundle does not read', () => {
    const before = loadPolicyBundle(dir).version;

    writeFileSync(join(dir, 'README.md'), 'changed');
    writeFileSync(join(dir, 'notes.txt'), 'new');

    expect(loadPolicyBundle(dir).version).toBe(before);
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

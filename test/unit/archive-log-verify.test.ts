/**
 * The auditor's verifier on files alone (bin/audit/verify-archive.ts over a folder): the archive
 * made before issue 23 (test/fixtures/archive-v1) keeps verifying, and the findings of issue 23
 * against it: a log cut short still verified, a fact sealed in two bundles still verified, and
 * loosely encoded checkpoints (base64url, junk in the signature, duplicate keys, trailing bytes)
 * were accepted.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dirSource, verifyArchive } from '../../bin/audit/verify-archive.js';

const FIXTURE = path.resolve('test/fixtures/archive-v1');
const PUBLIC_KEY = readFileSync(path.join(FIXTURE, 'public-key.pem'), 'utf8');
const cp = (tenant: string, seq: number) =>
  `evidence/${tenant}/checkpoints/${String(seq).padStart(12, '0')}.json`;
const bundle = (tenant: string, from: number, to: number) =>
  `evidence/${tenant}/${String(from).padStart(12, '0')}-${String(to).padStart(12, '0')}.json`;

/** A copy of the fixture's bucket, changed by `change` (given the copy's folder). */
function copy(change: (file: (key: string) => string) => void = () => undefined): string {
  const dir = mkdtempSync(path.join(process.env.OC_TEST_TMP ?? os.tmpdir(), 'archive-v1-'));
  cpSync(path.join(FIXTURE, 'bucket'), dir, { recursive: true });
  change((key) => path.join(dir, ...key.split('/')));
  return dir;
}

const verify = (dir: string, tenantId: string, extra: Record<string, unknown> = {}) =>
  verifyArchive({ source: dirSource(dir), tenantId, publicKeyPem: PUBLIC_KEY, ...extra });

const kept = (name: string, text: string | Buffer) => ({ where: name, bytes: Buffer.from(text) });

describe('the archive made before issue 23 (test/fixtures/archive-v1)', () => {
  it('verifies as it is, both clean tenants', async () => {
    const dir = copy();
    expect(await verify(dir, 'acme')).toMatchObject({ ok: true, entries: 25, bundles: 3, to_seq: 25 });
    expect(await verify(dir, 'globex')).toMatchObject({ ok: true, entries: 12, bundles: 2, to_seq: 12 });
  });

  it('finding (a): the newest bundle and its checkpoint deleted fail against the checkpoint the auditor kept', async () => {
    const keptCheckpoint = readFileSync(path.join(FIXTURE, 'bucket', ...cp('acme', 25).split('/')));
    const dir = copy((file) => {
      rmSync(file(bundle('acme', 21, 25)));
      rmSync(file(cp('acme', 25)));
    });
    const report = await verify(dir, 'acme', { trusted: [kept('kept-25.json', keptCheckpoint)] });
    expect(report.ok).toBe(false);
    expect(report.break).toMatchObject({
      key: 'kept-25.json',
      problem: expect.stringMatching(
        /the archive's log ends at seq 20, before seq 25 of a checkpoint you kept/,
      ),
    });
    // The same kept checkpoint against the whole archive: fine.
    expect((await verify(copy(), 'acme', { trusted: [kept('kept-25.json', keptCheckpoint)] })).ok).toBe(true);
  });

  it('finding (b): a fact sealed in two bundles is caught across the whole log', async () => {
    const report = await verify(copy(), 'dupco');
    expect(report.ok).toBe(false);
    expect(report.break).toMatchObject({
      key: bundle('dupco', 11, 18),
      seq: 15,
      problem: 'fact 10000000-0000-4000-8000-000000000004 is sealed twice: at seq 4 and at seq 15',
    });
  });

  describe('checkpoints are read strictly', () => {
    const original = readFileSync(path.join(FIXTURE, 'bucket', ...cp('acme', 10).split('/')), 'utf8');
    const tampered = (text: string) => copy((file) => writeFileSync(file(cp('acme', 10)), text));
    const refused = async (text: string, problem: RegExp) => {
      const report = await verify(tampered(text), 'acme');
      expect(report.ok).toBe(false);
      expect(report.break).toMatchObject({ key: cp('acme', 10), problem: expect.stringMatching(problem) });
    };

    it('the untouched bytes verify', async () => {
      expect((await verify(tampered(original), 'acme')).ok).toBe(true);
    });

    it('base64url in the signature', async () => {
      expect(original).toMatch(/"signature":"[^"]*[+/]/);
      await refused(
        original.replace(/"signature":"[^"]*"/, (s) => s.replace(/\+/g, '-').replace(/\//g, '_')),
        /signature is not base64 \(RFC 4648 §4\)/,
      );
    });

    it('junk characters inside the signature', async () => {
      await refused(
        original.replace('"signature":"Jpo', '"signature":"J!p o'),
        /signature is not base64 \(RFC 4648 §4\)/,
      );
    });

    it('a duplicate key (the parser keeps the last one)', async () => {
      await refused(original.replace('{"algorithm"', '{"seq":999,"algorithm"'), /duplicate key "seq"/);
    });

    it('bytes that are not the canonical form, or trailing whitespace', async () => {
      await refused(original.replace('"seq":10,', '"seq": 10,'), /not its canonical bytes/);
      await refused(`${original} \t\n`, /not its canonical bytes/); // JSON.parse skips it
    });
  });
});

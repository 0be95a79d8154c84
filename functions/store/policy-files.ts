/**
 * Reads a policy folder (SPEC §6: `policy/`, or a copy named by OC_POLICY_DIR) into a
 * PolicyBundle. The bundle's version is a digest of the whole folder: the files the engine reads
 * and every other file in it, tenant data included (see `policyFolderFiles`).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { CompiledPolicy, PolicyBundle } from '../core/policy.js';
import { ActionsFile, PolicyLoadError, standingGrantProblems, TenantsFile } from '../core/policy-data.js';

export const POLICY_FILES = {
  schema: 'schema.cedarschema',
  policies: 'policies.cedar',
  actions: 'actions.json',
  tenants: 'tenants.json',
} as const;

/** The repository's `policy/` folder; callers pass another (OC_POLICY_DIR) to override it. */
export function defaultPolicyDir(): string {
  return fileURLToPath(new URL('../../policy/', import.meta.url));
}

/** Where a candidate policy sits beside the live one (shadow mode, issue 24). */
export const SHADOW_POLICY_SUBDIR = 'shadow';

/**
 * Shadow mode's candidate folder: the one named (OC_POLICY_SHADOW_DIR: what CDK sets on the
 * deciding functions), else `<policy dir>/shadow` when there is one (the local stack), and none
 * when shadow mode is off (OC_POLICY_SHADOW=off).
 */
export function shadowPolicyDir(config: {
  policyDir?: string;
  policyShadowDir?: string;
  policyShadow: 'on' | 'off';
}): string | undefined {
  if (config.policyShadow === 'off') return undefined;
  if (config.policyShadowDir) return config.policyShadowDir;
  const beside = join(config.policyDir ?? defaultPolicyDir(), SHADOW_POLICY_SUBDIR);
  return existsSync(beside) ? beside : undefined;
}

/**
 * What the folder may hold that is not the live policy, so not in its version: the compilation
 * `cdk synth` writes into each bundle's copy (derived from the files, it names their version), and
 * a shadow candidate (`shadow/`), which never decides anything and is versioned on its own.
 */
const NOT_VERSIONED = new Set(['compiled.json', SHADOW_POLICY_SUBDIR]);

/**
 * Every file under the folder (subfolders included, dot files too), by its `/`-separated path
 * relative to the folder, apart from NOT_VERSIONED at its top. Whatever else an operator keeps
 * there (a README, test cases, a file a later version reads) changes the version: an approval
 * granted under one folder is re-checked under any other.
 */
export function policyFolderFiles(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (relative: string) => {
    let entries;
    try {
      entries = readdirSync(join(dir, relative), { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'read error';
      throw new PolicyLoadError(`cannot read policy folder ${join(dir, relative)}: ${code}`);
    }
    for (const entry of entries) {
      const path = relative === '' ? entry.name : posix.join(relative, entry.name);
      if (relative === '' && NOT_VERSIONED.has(entry.name)) continue;
      if (entry.isDirectory()) walk(path);
      // A symbolic link is read through (cp -R into the Lambda bundle copies what it points to).
      else if (entry.isFile() || entry.isSymbolicLink()) files.set(path, readFileSync(join(dir, path)));
    }
  };
  walk('');
  return files;
}

/** Reads and checks the policy files; throws PolicyLoadError naming the file at fault. */
export function loadPolicyBundle(dir: string): PolicyBundle {
  const contents = policyFolderFiles(dir);
  for (const name of Object.values(POLICY_FILES)) {
    if (!contents.has(name)) throw new PolicyLoadError(`cannot read policy file ${join(dir, name)}: ENOENT`);
  }
  const text = (name: string) => contents.get(name)!.toString('utf8');
  const actions = parseJsonFile(join(dir, POLICY_FILES.actions), text(POLICY_FILES.actions), ActionsFile);
  const tenants = parseJsonFile(join(dir, POLICY_FILES.tenants), text(POLICY_FILES.tenants), TenantsFile);
  const problems = standingGrantProblems(actions, tenants);
  if (problems.length > 0)
    throw new PolicyLoadError(`${join(dir, POLICY_FILES.tenants)}: ${problems.join('; ')}`);
  return {
    schema: text(POLICY_FILES.schema),
    policies: text(POLICY_FILES.policies),
    actions,
    tenants,
    version: policyFolderDigest(contents),
  };
}

function parseJsonFile<T extends z.ZodType>(path: string, text: string, schema: T): z.infer<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PolicyLoadError(`${path}: invalid JSON: ${(err as Error).message}`);
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new PolicyLoadError(`${path}: ${issues.join('; ')}`);
  }
  return result.data;
}

/**
 * "sha256:" + hex over the files sorted by relative path (byte order of the UTF-8 path: the same
 * on every machine and locale), each framed as `<path byte length>:<path><content byte length>:<content>`,
 * so that no two different folders hash the same input. `cdk synth` (lib/function.ts) and every
 * load (local host, Lambda) call this same function on a copy of the same folder.
 */
export function policyFolderDigest(contents: ReadonlyMap<string, Buffer>): string {
  const hash = createHash('sha256').update('openclause-policy-bundle:v1\n');
  const names = [...contents.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    const content = contents.get(name)!;
    hash.update(`${Buffer.byteLength(name)}:${name}${content.length}:`);
    hash.update(content);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Only the tenant data (approvers, TTLs), for handlers that do not evaluate policy. */
export function loadTenants(dir: string): TenantsFile {
  const path = join(dir, POLICY_FILES.tenants);
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (error) {
    throw new PolicyLoadError(
      `cannot read policy file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  return parseJsonFile(path, raw, TenantsFile);
}

/** The file `cdk synth` writes beside the policy files of each deciding Lambda's package. */
export const COMPILED_POLICY_FILE = 'compiled.json' as const;
// The compilation is derived from the folder: it is never part of the version it names.
NOT_VERSIONED.add(COMPILED_POLICY_FILE);

/**
 * The build-time compilation of this folder, if there is one and it was compiled from exactly
 * these files (same version digest); otherwise undefined, and the caller parses the files.
 */
export function loadCompiledPolicy(dir: string, version: string): CompiledPolicy | undefined {
  const file = join(dir, COMPILED_POLICY_FILE);
  if (!existsSync(file)) return undefined;
  const compiled = JSON.parse(readFileSync(file, 'utf8')) as Partial<CompiledPolicy>;
  return compiled.format === 'oc-compiled-policy/v1' && compiled.version === version
    ? (compiled as CompiledPolicy)
    : undefined;
}

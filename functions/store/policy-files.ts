/**
 * Reads a policy folder (SPEC §6: `policy/`, or a copy named by OC_POLICY_DIR) into a
 * PolicyBundle. The bundle's version is a digest of exactly the files it was built from.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { CompiledPolicy, PolicyBundle } from '../core/policy.js';
import { ActionsFile, PolicyLoadError, TenantsFile } from '../core/policy-data.js';

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

/** Reads and checks the four policy files; throws PolicyLoadError naming the file at fault. */
export function loadPolicyBundle(dir: string): PolicyBundle {
  const contents = new Map<string, Buffer>();
  for (const name of Object.values(POLICY_FILES)) {
    try {
      contents.set(name, readFileSync(join(dir, name)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'read error';
      throw new PolicyLoadError(`cannot read policy file ${join(dir, name)}: ${code}`);
    }
  }
  const text = (name: string) => contents.get(name)!.toString('utf8');
  return {
    schema: text(POLICY_FILES.schema),
    policies: text(POLICY_FILES.policies),
    actions: parseJsonFile(join(dir, POLICY_FILES.actions), text(POLICY_FILES.actions), ActionsFile),
    tenants: parseJsonFile(join(dir, POLICY_FILES.tenants), text(POLICY_FILES.tenants), TenantsFile),
    version: digest(contents),
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
 * "sha256:" + hex over the files sorted by name, each framed as
 * `<name byte length>:<name><content byte length>:<content>`, so that no two different
 * folders hash the same input.
 */
function digest(contents: ReadonlyMap<string, Buffer>): string {
  const hash = createHash('sha256').update('openclause-policy-bundle:v1\n');
  for (const name of [...contents.keys()].sort()) {
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
export const COMPILED_POLICY_FILE = 'compiled.json';

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

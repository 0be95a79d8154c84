/**
 * A policy folder as the gateway loads it (functions/store/policy-files.ts, functions/core/policy.ts)
 * with the deciding parts submit builds beside it (handlers/governance.ts): the engine, the risk
 * floors and the connector actions. For `oc policy replay --candidate` and `oc policy test`.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { ACTION_SPECS } from '../../functions/connectors/registry.js';
import { createPolicyEngine, PolicyLoadError } from '../../functions/core/policy.js';
import type { DecideDeps } from '../../functions/core/replay.js';
import { buildRiskFloors } from '../../functions/core/risk.js';
import { loadPolicyBundle } from '../../functions/store/policy-files.js';
import { CliError, UsageError } from './errors.js';

export interface PolicyFolder {
  dir: string;
  version: string;
  deps: DecideDeps;
}

/**
 * Loads and validates `dir`. A folder that is not there is a usage error (exit 2, naming `flag`);
 * one the gateway would refuse to load is a failure (exit 1) with the loader's own reason.
 */
export function loadPolicyFolder(dir: string, flag: string): PolicyFolder {
  const resolved = path.resolve(dir);
  let isDir = false;
  try {
    isDir = statSync(resolved).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new UsageError(`${flag} ${dir}: no such policy folder.`);
  try {
    const bundle = loadPolicyBundle(resolved);
    return {
      dir: resolved,
      version: bundle.version,
      deps: {
        policy: createPolicyEngine(bundle),
        riskFloors: buildRiskFloors(ACTION_SPECS, bundle.actions.risk_floors),
        actions: new Map(ACTION_SPECS.map((spec) => [spec.name, spec])),
      },
    };
  } catch (error) {
    if (error instanceof PolicyLoadError)
      throw new CliError(`the policy folder ${dir} does not load: ${error.message}`);
    throw error;
  }
}

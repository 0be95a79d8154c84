/**
 * `oc verify --proof FILE --public-key K | --vkey V [--tlog-policy P]`: checks a per-decision
 * proof offline, with nothing but the file and the trusted key(s) (functions/core/
 * decision-proof.ts), and `oc verify --bucket B --tenant T --tlog-policy P`: the quorum of
 * witness cosignatures on the tenant's published log checkpoint.
 */
import { readFileSync } from 'node:fs';
import {
  verifyFactProof,
  type ProofVerdict,
  type TrustedLogKey,
} from '../../functions/core/decision-proof.js';
import {
  parseCheckpointBody,
  parseNote,
  parseVerifierKey,
  rawEd25519,
} from '../../functions/core/signed-note.js';
import { parseTlogPolicy, quorumMet, type TlogPolicy } from '../../functions/core/tlog-policy.js';
import { verifyCosignature, verifyNoteSignature } from '../../functions/core/signed-note.js';
import { logKeys } from '../../functions/store/log-proofs.js';
import type { ArchiveSource } from '../audit/verify-archive.js';
import type { CommandContext } from './context.js';
import { CliError, EXIT, UsageError } from './errors.js';

export interface TrustOptions {
  publicKey?: string;
  vkey?: string;
  tlogPolicy?: string;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read the ${what} ${file}: ${(error as Error).message}`);
  }
}

/** The keys and policy the options name; at least one log key (a key, a vkey or a policy's log). */
export function loadTrust(opts: TrustOptions): { logKeys: TrustedLogKey[]; policy?: TlogPolicy } {
  const keys: TrustedLogKey[] = [];
  if (opts.publicKey !== undefined) {
    try {
      keys.push({ key: rawEd25519(readText(opts.publicKey, 'public key')) });
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(`${opts.publicKey} is not an Ed25519 public key (PEM): ${(error as Error).message}`);
    }
  }
  if (opts.vkey !== undefined) {
    try {
      const v = parseVerifierKey(opts.vkey.trim());
      if (v.type !== 0x01) throw new Error('a log key is of type 0x01 (Ed25519)');
      keys.push({ key: v.publicKey, name: v.name });
    } catch (error) {
      throw new UsageError(
        `--vkey is not a log verifier key (<name>+<id>+<base64>): ${(error as Error).message}`,
      );
    }
  }
  let policy: TlogPolicy | undefined;
  if (opts.tlogPolicy !== undefined) {
    try {
      policy = parseTlogPolicy(readText(opts.tlogPolicy, 'tlog-policy'));
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(`${opts.tlogPolicy}: ${(error as Error).message}`);
    }
  }
  if (keys.length === 0 && !policy?.logs.length)
    throw new UsageError(
      'the log key is needed: --public-key <pem>, --vkey <vkey>, or a --tlog-policy with a log line.',
    );
  return { logKeys: keys, ...(policy ? { policy } : {}) };
}

export async function verifyProofCommand(
  opts: TrustOptions & { proof: string[]; json?: boolean },
  ctx: CommandContext,
): Promise<number> {
  const trust = loadTrust(opts);
  const verdicts: (ProofVerdict & { file: string })[] = opts.proof.map((file) => ({
    file,
    ...verifyFactProof(readText(file, 'proof'), trust),
  }));
  if (opts.json)
    ctx.json(
      verdicts.map((v) => ({
        file: v.file,
        ok: v.ok,
        problems: v.problems,
        ...(v.record
          ? { seq: v.record.seq, kind: v.record.kind, fact_id: v.record.fact_id, event_id: v.record.event_id }
          : {}),
        ...(v.checkpoint ? { origin: v.checkpoint.origin, size: v.checkpoint.size } : {}),
        cosigned_by: v.cosigners,
      })),
    );
  else
    for (const v of verdicts) {
      if (!v.ok) {
        ctx.out(`FAILED: ${v.file}`);
        for (const p of v.problems) ctx.out(`  - ${p}`);
        continue;
      }
      const r = v.record!;
      ctx.out(
        `ok: ${v.file}: seq ${r.seq} (${r.kind}, event ${r.event_id}, tenant ${r.tenant_id}) is leaf ${v.index} of ${v.checkpoint!.origin} at size ${v.checkpoint!.size}, checkpoint signed by the trusted key` +
          (trust.policy
            ? `; cosigned by ${v.cosigners.join(', ') || 'no witness'} (quorum ${trust.policy.quorum} met)`
            : ''),
      );
    }
  return verdicts.every((v) => v.ok) ? EXIT.ok : EXIT.failure;
}

/**
 * The tenant's published log checkpoint against a tlog-policy: signed by a trusted log key and
 * cosigned by the quorum. Returns the problems (empty: it holds).
 */
export async function checkLogCheckpointPolicy(
  source: ArchiveSource,
  tenantId: string,
  policy: TlogPolicy,
  extraKeys: TrustedLogKey[] = [],
): Promise<{ problems: string[]; cosigners: string[]; size?: number }> {
  const bytes = await source.get(logKeys.checkpoint(tenantId));
  if (!bytes)
    return {
      problems: [`no log checkpoint ${logKeys.checkpoint(tenantId)} in ${source.where}`],
      cosigners: [],
    };
  let note: ReturnType<typeof parseNote>;
  let origin: string;
  let size: number;
  try {
    note = parseNote(bytes);
    ({ origin, size } = parseCheckpointBody(note.body));
  } catch (error) {
    return { problems: [`${logKeys.checkpoint(tenantId)}: ${(error as Error).message}`], cosigners: [] };
  }
  const problems: string[] = [];
  const keys = [...extraKeys, ...policy.logs.map((l) => ({ key: l.key, name: l.name }))];
  const owns = (name: string) => origin === name || origin.startsWith(`${name}/t/`);
  if (
    !note.signatures.some(
      (sig) =>
        owns(sig.name) &&
        keys.some(
          (k) => (k.name ?? sig.name) === sig.name && verifyNoteSignature(note.body, sig, sig.name, k.key),
        ),
    )
  )
    problems.push(
      `the log checkpoint of ${origin} is not signed by a log the policy (or --public-key) trusts`,
    );
  const cosigners = [...policy.witnesses]
    .filter(([, w]) =>
      note.signatures.some(
        (sig) => sig.name === w.name && verifyCosignature(note.body, sig, w.name, w.key).ok,
      ),
    )
    .map(([name]) => name);
  if (!quorumMet(policy, new Set(cosigners)))
    problems.push(
      `the log checkpoint of ${origin} (size ${size}) lacks the policy's quorum ${policy.quorum}: cosigned by ${cosigners.join(', ') || 'no witness'}`,
    );
  return { problems, cosigners, size };
}

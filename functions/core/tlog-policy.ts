/**
 * C2SP tlog-policy (c2sp.org/tlog-policy): which logs an auditor accepts, which witnesses it
 * knows, and the quorum of cosignatures a checkpoint needs. `oc verify --tlog-policy FILE` reads
 * one; the archiver's witnesses are configured apart (their URLs), so this is verification only.
 *
 * Strict as the spec words it: lines of space/tab separated items, `#` comments and blank lines
 * ignored, only tab/newline among the control characters, names defined before they are used,
 * each member at most once in a group, 1 <= k <= n, exactly one quorum line, no duplicate keys.
 */
import { parseVerifierKey } from './signed-note.js';

export interface PolicyKey {
  /** The vkey's key name (a log's must be its origin). */
  name: string;
  keyId: Buffer;
  /** The raw 32-byte Ed25519 public key. */
  key: Buffer;
  /** The vkey's signature type: 0x01 Ed25519 (logs), 0x04 cosignature (witnesses). */
  type: number;
  url?: string;
}

export interface TlogPolicy {
  logs: PolicyKey[];
  /** By the policy's own witness name. */
  witnesses: Map<string, PolicyKey>;
  /** `none`, or the name of the witness or group that must have witnessed the checkpoint. */
  quorum: string;
  groups: Map<string, { k: number; members: string[] }>;
}

export class PolicyError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(line > 0 ? `tlog-policy line ${line}: ${message}` : `tlog-policy: ${message}`);
  }
}

function vkey(text: string, line: number, expectedType: number, role: string, url?: string): PolicyKey {
  let parsed: ReturnType<typeof parseVerifierKey>;
  try {
    parsed = parseVerifierKey(text);
  } catch (error) {
    throw new PolicyError(line, `not a verifier key (${(error as Error).message}): ${text}`);
  }
  if (parsed.type !== expectedType)
    throw new PolicyError(
      line,
      `a ${role} key must be of type 0x0${expectedType.toString(16)}, got 0x${parsed.type.toString(16).padStart(2, '0')}`,
    );
  return {
    name: parsed.name,
    keyId: parsed.keyId,
    key: parsed.publicKey,
    type: parsed.type,
    ...(url ? { url } : {}),
  };
}

/** Parses a policy file; throws `PolicyError` naming the line on anything the spec does not allow. */
export function parseTlogPolicy(text: string): TlogPolicy {
  // Only tab and newline among the control characters (0x09, 0x0A, 0x20-0x7E, 0x80-).
  // eslint-disable-next-line no-control-regex -- the control characters are what is refused
  const bad = /[\x00-\x08\x0B-\x1F\x7F]/.exec(text);
  if (bad)
    throw new PolicyError(text.slice(0, bad.index).split('\n').length, 'a control character other than tab');
  const logs: PolicyKey[] = [];
  const witnesses = new Map<string, PolicyKey>();
  const groups = new Map<string, { k: number; members: string[] }>();
  const defined = new Set<string>(['none']);
  const keysSeen = new Set<string>();
  let quorum: string | undefined;
  const noDuplicateKey = (key: PolicyKey, line: number) => {
    const id = key.key.toString('hex');
    if (keysSeen.has(id)) throw new PolicyError(line, 'the same public key is listed twice');
    keysSeen.add(id);
  };
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const items = raw.split(/[ \t]+/).filter((s) => s !== '');
    if (items.length === 0 || items[0]!.startsWith('#')) return;
    const [keyword, ...args] = items as [string, ...string[]];
    switch (keyword) {
      case 'log': {
        if (args.length < 1 || args.length > 2) throw new PolicyError(line, 'expected `log <vkey> [<url>]`');
        const key = vkey(args[0]!, line, 0x01, 'log', args[1]);
        noDuplicateKey(key, line);
        logs.push(key);
        return;
      }
      case 'witness': {
        if (args.length < 2 || args.length > 3)
          throw new PolicyError(line, 'expected `witness <name> <vkey> [<url>]`');
        const name = args[0]!;
        if (defined.has(name)) throw new PolicyError(line, `the name ${name} is already defined`);
        const key = vkey(args[1]!, line, 0x04, 'witness', args[2]);
        noDuplicateKey(key, line);
        witnesses.set(name, key);
        defined.add(name);
        return;
      }
      case 'group': {
        if (args.length < 3) throw new PolicyError(line, 'expected `group <name> all|any|<k> <name>...`');
        const [name, threshold, ...members] = args as [string, string, ...string[]];
        if (defined.has(name)) throw new PolicyError(line, `the name ${name} is already defined`);
        if (new Set(members).size !== members.length)
          throw new PolicyError(line, 'a member is listed twice in the group');
        for (const m of members) {
          if (m === 'none') throw new PolicyError(line, '`none` cannot be a group member');
          if (!defined.has(m)) throw new PolicyError(line, `${m} is not defined on a line before this one`);
        }
        let k: number;
        if (threshold === 'all') k = members.length;
        else if (threshold === 'any') k = 1;
        else if (/^[1-9][0-9]{0,5}$/.test(threshold)) k = Number(threshold);
        else throw new PolicyError(line, `the threshold must be all, any or a decimal k, got ${threshold}`);
        if (k < 1 || k > members.length)
          throw new PolicyError(
            line,
            `the threshold ${k} is not between 1 and the ${members.length} members`,
          );
        groups.set(name, { k, members });
        defined.add(name);
        return;
      }
      case 'quorum': {
        if (args.length !== 1) throw new PolicyError(line, 'expected `quorum <name>`');
        if (quorum !== undefined) throw new PolicyError(line, 'a second quorum line');
        if (!defined.has(args[0]!))
          throw new PolicyError(line, `${args[0]} is not defined on a line before this one`);
        quorum = args[0]!;
        return;
      }
      default:
        throw new PolicyError(line, `unknown keyword ${keyword}`);
    }
  });
  if (quorum === undefined)
    throw new PolicyError(0, 'no quorum line (write `quorum none` to require no witness)');
  return { logs, witnesses, quorum, groups };
}

/**
 * Whether the witnesses that cosigned (by the policy's names) satisfy the quorum. Groups are
 * evaluated bottom-up by their definitions (no cycles: members are defined earlier).
 */
export function quorumMet(policy: TlogPolicy, cosigned: ReadonlySet<string>): boolean {
  if (policy.quorum === 'none') return true;
  const memo = new Map<string, boolean>();
  const witnessed = (name: string): boolean => {
    const known = memo.get(name);
    if (known !== undefined) return known;
    const group = policy.groups.get(name);
    const result = group
      ? group.members.filter((m) => witnessed(m)).length >= group.k
      : policy.witnesses.has(name) && cosigned.has(name);
    memo.set(name, result);
    return result;
  };
  return witnessed(policy.quorum);
}

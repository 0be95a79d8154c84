/**
 * `oc vkey --name N --public-key K [--cosignature]`: prints the C2SP signed-note verifier key of an
 * Ed25519 public key (PEM): `<name>+<key id>+<base64(type ‖ key)>`. What a tlog-policy's `log` and
 * `witness` lines, a witness's `witnessLogs` and the archiver's `witnesses` are written with: the
 * log's name is its deployment (`local`, or the data stack's name in AWS), type 0x01; a witness's
 * is its own name, type 0x04 (`--cosignature`).
 */
import type { Command } from 'commander';
import { rawEd25519, verifierKey } from '../../../functions/core/signed-note.js';
import { examples, type Act } from '../context.js';
import { readPublicKeyFile } from '../archive-verify.js';
import { CliError, UsageError } from '../errors.js';

interface VkeyOptions {
  name: string;
  publicKey: string;
  cosignature?: boolean;
}

export function registerVkey(program: Command, act: Act): void {
  const vkey = program
    .command('vkey')
    .description(
      "print the verifier key (C2SP signed-note vkey) of an Ed25519 public key: a log's or a witness's",
    )
    .requiredOption(
      '--name <name>',
      "the key name: the log's deployment (local, OpenClauseData) or the witness's name",
    )
    .requiredOption('--public-key <file>', 'the Ed25519 public key, PEM')
    .option(
      '--cosignature',
      "a witness's key (cosignature type 0x04) instead of a log's (Ed25519 type 0x01)",
    );
  examples(vkey, [
    'npx oc vkey --name local --public-key .oc-data/evidence-public-key.pem',
    'npx oc vkey --name OpenClauseData --public-key key.pem                     # the deployed log',
    'npx oc vkey --name witness.example.com/oc --public-key witness.pem --cosignature',
  ]);
  act(
    vkey,
    (opts: VkeyOptions) => `make the vkey of ${opts.publicKey}`,
    (opts: VkeyOptions, ctx) => {
      if (!/^[^\s+]+$/.test(opts.name)) throw new UsageError('--name is a key name: no spaces, no "+".');
      const pem = readPublicKeyFile(opts.publicKey);
      let raw: Buffer;
      try {
        raw = rawEd25519(pem);
      } catch (error) {
        throw new CliError(
          `${opts.publicKey} is not an Ed25519 public key (PEM): ${(error as Error).message}`,
        );
      }
      ctx.out(verifierKey(opts.name, raw, opts.cosignature ? 0x04 : 0x01));
      return Promise.resolve();
    },
  );
}

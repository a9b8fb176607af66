import { existsSync } from 'node:fs';
import type { AuditCheckpointView, AuditPublicKeyView } from '@rackseal/api-contracts';
import type { VerifiedCheckpoint } from '@rackseal/audit';
import type { Command } from 'commander';
import { CliError } from '@rackseal/command-line';
import { ServerClient, withServerOptions } from '../server-client';
import { safe, terminalJson } from '../terminal-text';
import { readSavedCheckpoint, writeNoteAtomically } from './audit-note-files';
import { checkExtends, KEY_OPTION_HELP, openTrusted, type TrustedKeys, trustedKeys } from './audit-trust';

/**
 * `rackseal audit checkpoint` and `rackseal audit public-key`: the log's latest signed checkpoint,
 * verified here, optionally saved outside the database (the operator's anchor for `audit verify
 * --since`), and the verifier keys to pin with `--key`.
 */
export function registerAuditCheckpoint(audit: Command): void {
  withServerOptions(
    audit
      .command('checkpoint')
      .description("fetch the log's latest signed checkpoint and verify its signature; --save keeps the signed note for `audit verify --since`")
      .option('--save <file>', 'write the signed note to FILE (atomically); an existing checkpoint there is replaced only by one proven to extend it')
      .option('--key <vkey-or-file>', KEY_OPTION_HELP)
      .option('--json', 'machine-readable output'),
  ).action(async (options: { save?: string; key?: string; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    // Read before anything is fetched: a bad path is a usage error, and the old note must be checked before it is replaced.
    const previous = options.save !== undefined && existsSync(options.save) ? await readSavedCheckpoint(options.save, '--save') : undefined;
    const keys = await trustedKeys(client, options.key);
    const { body } = await client.get<AuditCheckpointView>('v1/audit/checkpoint');
    const note = String(body?.note);
    const checkpoint = await openTrusted(note, keys, "the log's latest checkpoint");
    // Saved (or refused) first: nothing is printed for a checkpoint that could not be kept.
    if (options.save !== undefined) {
      await save(client, options.save, previous, note, checkpoint, keys);
    }
    if (options.json === true) {
      const view: AuditCheckpointView = {
        origin: checkpoint.origin,
        treeSize: checkpoint.size,
        rootHash: checkpoint.rootHash.toString('hex'),
        signedAt: checkpoint.time.toISOString(),
        keyId: checkpoint.keyId,
        note,
      };
      process.stdout.write(`${terminalJson(view)}\n`);
      return;
    }
    process.stdout.write(
      [
        `origin  ${safe(checkpoint.origin)}`,
        `size    ${checkpoint.size}`,
        `root    ${checkpoint.rootHash.toString('hex')}`,
        `time    ${checkpoint.time.toISOString()}`,
        `key id  ${checkpoint.keyId} (signature verified with ${keys.described})`,
      ].join('\n') + '\n',
    );
  });

  withServerOptions(
    audit
      .command('public-key')
      .description("print the log's checkpoint verifier keys (C2SP signed-note vkeys), one per line, oldest first: pin one with --key")
      .option('--json', 'machine-readable output (key IDs, names, raw keys, creation times)'),
  ).action(async (options: { json?: boolean }, command: Command) => {
    const { parseVerifierKey } = await import('@rackseal/audit');
    const { body } = await ServerClient.forCommand(command).get<AuditPublicKeyView[]>('v1/audit/public-keys');
    for (const key of body) {
      try {
        parseVerifierKey(String(key.verifierKey));
      } catch (error) {
        throw CliError.invalid(`the control plane served a verifier key that does not parse: ${safe((error as Error).message)}`);
      }
    }
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    if (body.length === 0) {
      process.stderr.write('the log has no signing key yet: the worker\'s audit sequencer creates it with the first checkpoint\n');
      return;
    }
    process.stdout.write(body.map((k) => `${k.verifierKey}\n`).join(''));
  });
}

/**
 * Keeps the note at `path`: a new file, or the same note again (nothing to do), or — over an
 * earlier saved checkpoint — only a checkpoint proven to extend it, so re-saving can never replace
 * the operator's anchor with a rewritten log's.
 */
async function save(client: ServerClient, path: string, previous: string | undefined, note: string, checkpoint: VerifiedCheckpoint, keys: TrustedKeys): Promise<void> {
  const file = JSON.stringify(path);
  if (previous === note) {
    process.stderr.write(`${file} already holds this checkpoint\n`);
    return;
  }
  if (previous === undefined) {
    writeNoteAtomically(path, note, '--save');
    process.stderr.write(`saved the checkpoint of size ${checkpoint.size} to ${file}\n`);
    return;
  }
  const saved = await openTrusted(previous, keys, `the checkpoint in --save ${file}`);
  await checkExtends(client, saved, checkpoint);
  writeNoteAtomically(path, note, '--save');
  process.stderr.write(`replaced the checkpoint of size ${saved.size} in ${file}: the log's checkpoint of size ${checkpoint.size} extends it\n`);
}

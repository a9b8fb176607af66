import { basename } from 'node:path';
import type { Command } from 'commander';
import { MAX_UPLOAD_FILES, type VendorCaAddResult, type VendorCaAddSummary, type VendorCaChange, type VendorCaSummary } from '@rackseal/api-contracts';
import { EXIT, filesAtPath, readInput } from '@rackseal/command-line';
import { ServerClient, withServerOptions } from '../server-client';
import { safe, terminalJson } from '../terminal-text';

/** Per request: well under the server's 1 MB JSON body limit, and at most its file cap (MAX_UPLOAD_FILES). */
const BATCH_BYTES = 600 * 1024;
/** A CA certificate is a few KB; anything this large is not one (the server caps a file at 64 KiB of text). */
const MAX_FILE_BYTES = 48 * 1024;

/**
 * `rackseal vendor-ca add|list|disable|enable|anchor|unanchor` (docs/architecture.md §4.1, §5): server commands for
 * the trusted TPM vendor CAs. `add` uploads files and directories (not recursive, no dotfiles) of PEM/DER
 * certificates. Exit 0 when every certificate was added or was already there, 1 when any was
 * rejected (not a CA), 2 for usage, unreadable files, a refused request or an unreachable server.
 */
export function registerVendorCa(program: Command): void {
  const vendorCa = program.command('vendor-ca').description('trusted TPM vendor CAs on the control plane (server commands)');

  withServerOptions(
    vendorCa
      .command('add')
      .description('upload vendor CA certificates: files or directories of PEM/DER')
      .argument('<paths...>', 'certificate files (DER, PEM, PEM bundles) or directories of them')
      .option('--anchor', 'pin the uploaded intermediates as trust anchors (vendor roots cross-signed by a CA you do not have)')
      .option('--json', 'print the server\'s per-certificate results as JSON'),
  ).action(async (paths: string[], options: { anchor?: boolean; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const files = paths.flatMap((path) => filesAtPath(path, 'certificate path')).map((path) => {
      const bytes = readInput(path, 'certificate file', MAX_FILE_BYTES);
      return { name: basename(path), content: bytes.toString('base64') };
    });
    const answers: VendorCaAddSummary[] = [];
    for (const batch of batches(files)) {
      answers.push((await client.post<VendorCaAddSummary>('v1/vendor-cas', { files: batch, ...(options.anchor === true ? { anchor: true } : {}) })).body);
    }
    const total: VendorCaAddSummary = {
      added: answers.reduce((n, a) => n + a.added, 0),
      duplicate: answers.reduce((n, a) => n + a.duplicate, 0),
      rejected: answers.reduce((n, a) => n + a.rejected, 0),
      results: answers.flatMap((a): readonly VendorCaAddResult[] => a.results),
    };
    process.stdout.write(options.json === true ? `${terminalJson(total)}\n` : addTable(total));
    if (total.rejected > 0) {
      process.exitCode = EXIT.invalid;
    }
  });

  withServerOptions(
    vendorCa
      .command('list')
      .description('list trusted vendor CAs')
      .option('--all', 'include disabled CAs')
      .option('--json', 'machine-readable output'),
  ).action(async (options: { all?: boolean; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.get<VendorCaSummary[]>('v1/vendor-cas', { query: { includeDisabled: options.all === true ? 'true' : undefined } });
    process.stdout.write(options.json === true ? `${terminalJson(body)}\n` : listTable(body));
  });

  // disable/enable and anchor/unanchor take the fingerprint as `list` shows it, or a unique prefix of
  // it as `add` prints (as git takes an abbreviated commit id); the server resolves the prefix and
  // answers 404 for none and 409 listing the matches for several, which these commands print.
  const changes = [
    { name: 'disable', done: 'disabled', already: 'already disabled', description: 'disable a vendor CA: no chain may use it any more (it stays listed with --all)', send: (c: ServerClient, path: string) => c.delete<VendorCaChange>(path) },
    { name: 'enable', done: 'enabled', already: 'already enabled', description: 'enable a disabled vendor CA again', send: (c: ServerClient, path: string) => c.post<VendorCaChange>(`${path}/enable`, undefined) },
    {
      name: 'anchor',
      done: 'anchored',
      already: 'already an anchor',
      description: 'pin an intermediate as a trust anchor (a vendor root cross-signed by a CA you do not have): chains may end at it',
      send: (c: ServerClient, path: string) => c.patch<VendorCaChange>(path, { anchor: true }),
    },
    {
      name: 'unanchor',
      done: 'unanchored',
      already: 'already not an anchor',
      description: 'unpin an intermediate: chains must go on to a root again (roots are always anchors)',
      send: (c: ServerClient, path: string) => c.patch<VendorCaChange>(path, { anchor: false }),
    },
  ] as const;
  for (const change of changes) {
    withServerOptions(
      vendorCa
        .command(change.name)
        .description(change.description)
        .argument('<fingerprint>', 'SHA-256 fingerprint as `vendor-ca list` shows it (colons allowed), or a unique prefix of it (at least 8 hex digits)')
        .option('--json', 'machine-readable output'),
    ).action(async (fingerprint: string, options: { json?: boolean }, command: Command) => {
      const client = ServerClient.forCommand(command);
      const { body } = await change.send(client, `v1/vendor-cas/${client.segment(fingerprint, 'a fingerprint')}`);
      if (options.json === true) {
        process.stdout.write(`${terminalJson(body)}\n`);
        return;
      }
      process.stdout.write(`${safe(`${body.changed ? change.done : change.already}: ${body.ca.fingerprint} ${body.ca.kind} "${body.ca.subject}"`)}\n`);
    });
  }
}

function batches<T extends { content: string }>(files: T[]): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const file of files) {
    if (current.length > 0 && (current.length >= MAX_UPLOAD_FILES || size + file.content.length > BATCH_BYTES)) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(file);
    size += file.content.length;
  }
  if (current.length > 0) {
    out.push(current);
  }
  return out;
}

function addTable(total: VendorCaAddSummary): string {
  const lines = total.results.map((r) => {
    const where = `${r.source ?? '-'}${r.position > 1 ? `#${r.position}` : ''}`;
    let note = '';
    if (r.status === 'rejected') {
      note = `${r.reason ?? ''}: ${r.message ?? ''}`;
    } else if (r.chain !== undefined) {
      note = r.chain.ok ? `chains to "${r.chain.anchor}"` : `does not chain yet (${r.chain.reason})`;
    } else if (r.anchor === true) {
      note = 'anchor';
    }
    if (r.enabled === false) {
      note = `${note} (disabled)`.trim();
    }
    return safe(`${r.status.padEnd(9)} ${(r.kind ?? '-').padEnd(12)} ${r.fingerprint.slice(0, 16)}  ${where.padEnd(28)} ${r.subject === '' ? '(no subject)' : r.subject}${note === '' ? '' : `  [${note}]`}`);
  });
  lines.push(`${total.results.length} certificates: ${total.added} added, ${total.duplicate} duplicate, ${total.rejected} rejected`);
  return `${lines.join('\n')}\n`;
}

function listTable(cas: readonly VendorCaSummary[]): string {
  const lines = cas.map((ca) => {
    const flags = [ca.anchor ? 'anchor' : '', ca.enabled ? '' : 'DISABLED'].filter((f) => f !== '').join(',');
    return safe(`${ca.fingerprint}  ${ca.kind.padEnd(12)} ${(flags || '-').padEnd(16)} ${ca.notAfter.slice(0, 10)}  ${ca.subject}`);
  });
  lines.push(`${cas.length} vendor CA(s)`);
  return `${lines.join('\n')}\n`;
}

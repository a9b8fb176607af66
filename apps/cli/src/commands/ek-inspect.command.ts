import { EkCertificateError, type EkInspection, inspectEkCertificate, readCertificate } from '@rackseal/ek-trust';
import type { Command } from 'commander';
import { CliError, readInput } from '@rackseal/command-line';
import { terminalJson } from '../terminal-text';

/** The `rackseal ek` command group, created by whichever ek subcommand registers first. */
export function ekCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'ek') ?? program.command('ek').description('EK certificate tools (offline)');
}

/**
 * Reads an EK certificate file in any form a TPM or a vendor hands it over in: DER, PEM, base64 DER,
 * or a raw NV index dump (TCG NV header, 0xFF/0x00 padding). Unreadable → exit 2 naming the file.
 */
export function readEkCertificateFile(path: string, what: string): ReturnType<typeof readCertificate> {
  const bytes = readInput(path, what);
  try {
    return readCertificate(bytes);
  } catch (error) {
    if (error instanceof EkCertificateError) {
      throw CliError.usage(`${JSON.stringify(path)} is not a readable certificate: ${error.message}`);
    }
    throw error;
  }
}

/**
 * `rackseal ek inspect [--json] CERT` (docs/architecture.md §5, issue 5): the TCG manufacturer/model/version, the
 * EK's key, its `ekPubHash`, and which real-world quirks had to be tolerated to read it. Exit 0, or
 * 2 when the file is unreadable or not a usable EK certificate.
 */
export function registerEkInspect(program: Command): void {
  ekCommand(program)
    .command('inspect')
    .description('show the TCG fields, key and ekPubHash of an EK certificate (DER, PEM, base64 or NV dump)')
    .argument('<cert>', 'the EK certificate')
    .option('--json', 'machine-readable output')
    .action((file: string, options: { json?: boolean }) => {
      const read = readEkCertificateFile(file, 'certificate');
      let inspection: EkInspection;
      try {
        inspection = inspectEkCertificate(read);
      } catch (error) {
        if (error instanceof EkCertificateError) {
          throw CliError.usage(`${JSON.stringify(file)} is not a usable EK certificate: ${error.message}`);
        }
        throw error;
      }
      process.stdout.write(options.json ? `${terminalJson(inspection)}\n` : inspectionText(inspection));
    });
}

function inspectionText(i: EkInspection): string {
  const vendor = [i.vendorId, i.vendorName].filter((v) => v !== null).join(', ');
  const rows: [string, string][] = [
    ['manufacturer', i.manufacturer === null ? '(none)' : `${i.manufacturer}${vendor === '' ? '' : ` (${vendor})`}`],
    ['model', i.model ?? '(none)'],
    ['version', i.version ?? '(none)'],
    ['key', i.keyAlgorithm === 'rsa' ? `rsa ${i.keyBits}` : `ecc ${i.curve ?? ''}`],
    ['ekPubHash', i.ekPubHash],
    ['serial', i.serialNumber],
    ['subject', i.subject === '' ? '(empty)' : i.subject],
    ['issuer', i.issuer],
    ['not before', i.notBefore],
    ['not after', i.notAfter],
    ['fingerprint', i.fingerprint],
    ['format', i.format],
    ['EK EKU', i.ekCertificateEku ? 'yes (2.23.133.8.1)' : 'no'],
    ...(i.tpmSpecification === undefined
      ? []
      : [['TPM spec', `${i.tpmSpecification.family} level ${i.tpmSpecification.level} revision ${i.tpmSpecification.revision}`] as [string, string]]),
    ['quirks', i.quirks.length === 0 ? 'none' : i.quirks.join(', ')],
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(14)}${v}\n`).join('');
}

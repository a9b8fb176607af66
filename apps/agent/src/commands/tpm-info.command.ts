import { X509Certificate } from 'node:crypto';
import { type EkCertificateReport, hashAlgorithm, type TpmInfo, tpmInfo } from '@rackseal/tpm2';
import type { Command } from 'commander';
import { CliError } from '@rackseal/command-line';
import { DEFAULT_TPM_DEVICE, withTpmDevice } from '../tpm-device';

interface TpmInfoOptions {
  tpm: string;
  json?: boolean;
}

const hex32 = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/**
 * `rackseal-agent tpm info`: answers "is this TPM usable by rackseal?" on a node, with no server
 * (DESIGN §4). Exit 0 when at least one EK certificate is present and the TPM's EK is its key;
 * exit 1 (the report is still printed) when none is, as enrollment would then be refused.
 */
export function registerTpmInfo(tpm: Command): void {
  tpm
    .command('info')
    .description('manufacturer, firmware, PCR banks and EK certificates of a TPM, and whether its EK matches them')
    .option('--tpm <device>', 'TPM device: /dev/tpmrm0, /dev/tpm0 or swtpm:HOST:PORT', DEFAULT_TPM_DEVICE)
    .option('--json', 'machine-readable output on stdout')
    .action(async (options: TpmInfoOptions) => {
      const info = await withTpmDevice(options.tpm, (client) => tpmInfo(client));
      process.stdout.write(options.json ? `${JSON.stringify(infoJson(options.tpm, info))}\n` : infoText(options.tpm, info));
      if (!info.ekCertificates.some((c) => c.ekMatchesCertificate === true)) {
        throw CliError.invalid(
          info.ekCertificates.length === 0 ? 'no EK certificate found in the TPM' : 'no EK certificate whose key is the TPM\'s EK',
        );
      }
    });
}

function certificateDetails(cert: EkCertificateReport): { subject: string; issuer: string; notAfter: string } | undefined {
  try {
    const x509 = cert.der === undefined ? undefined : new X509Certificate(cert.der);
    return x509 && { subject: x509.subject.replace(/\n/g, ', '), issuer: x509.issuer.replace(/\n/g, ', '), notAfter: x509.validTo };
  } catch {
    return undefined;
  }
}

function infoJson(device: string, info: TpmInfo): object {
  return {
    device,
    manufacturer: info.manufacturer,
    manufacturerId: hex32(info.manufacturerId),
    vendorString: info.vendorString,
    firmwareVersion: info.firmwareVersion,
    firmwareVersionRaw: info.firmwareVersionRaw.map(hex32),
    spec: info.spec,
    pcrBanks: info.pcrBanks.map((b) => ({ bank: hashAlgorithm(b.hash).bank, pcrs: b.pcrs })),
    ekCertificates: info.ekCertificates.map((cert) => ({
      nvIndex: hex32(cert.nvIndex),
      keyType: cert.keyType,
      quirks: cert.quirks,
      ekPubHash: cert.ekPubHash ?? null,
      ek: cert.ek === undefined ? null : { handle: cert.ek.handle === undefined ? null : hex32(cert.ek.handle), source: cert.ek.source, ekPubHash: cert.ek.ekPubHash },
      ekMatchesCertificate: cert.ekMatchesCertificate ?? null,
      ...certificateDetails(cert),
      ...(cert.problem === undefined ? {} : { problem: cert.problem }),
    })),
  };
}

function infoText(device: string, info: TpmInfo): string {
  const [fw1, fw2] = info.firmwareVersionRaw;
  const lines = [
    `TPM at ${device}`,
    `  manufacturer: ${info.manufacturer} (${hex32(info.manufacturerId)})${info.vendorString === '' ? '' : `, vendor string "${info.vendorString}"`}`,
    `  firmware: ${info.firmwareVersion} (${hex32(fw1)} ${hex32(fw2)})`,
    `  specification: TPM ${info.spec.family}, level ${info.spec.level}, revision ${info.spec.revision} (${info.spec.year}, day ${info.spec.dayOfYear})`,
    `  PCR banks: ${info.pcrBanks.map((b) => `${hashAlgorithm(b.hash).bank} (${b.pcrs.length} PCRs)`).join(', ') || 'none allocated'}`,
    `  EK certificates:${info.ekCertificates.length === 0 ? ' none' : ''}`,
  ];
  for (const cert of info.ekCertificates) {
    lines.push(`    ${hex32(cert.nvIndex)} ${cert.keyType}${cert.quirks.length > 0 ? ` (repaired: ${cert.quirks.join(', ')})` : ''}`);
    const details = certificateDetails(cert);
    if (details !== undefined) {
      lines.push(`      subject: ${details.subject}`, `      issuer: ${details.issuer}`, `      notAfter: ${details.notAfter}`);
    }
    if (cert.ekPubHash !== undefined) {
      lines.push(`      ekPubHash: ${cert.ekPubHash}`);
    }
    if (cert.ek !== undefined) {
      const where = cert.ek.handle === undefined ? `derived (${cert.ek.source})` : `persistent at ${hex32(cert.ek.handle)}`;
      lines.push(`      EK: ${where}, ${cert.ekMatchesCertificate === true ? 'matches the certificate' : `does NOT match (its ekPubHash ${cert.ek.ekPubHash})`}`);
    }
    if (cert.problem !== undefined && cert.ekMatchesCertificate !== false) {
      lines.push(`      problem: ${cert.problem}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

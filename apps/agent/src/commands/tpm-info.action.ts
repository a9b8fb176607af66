import { CliError } from '@rackseal/command-line';
import { EkCertificateError, type EkInspection, type EkQuirk, inspectEkCertificate } from '@rackseal/ek-trust';
import { type EkCertificateIndexReport, type EkKeyType, hashAlgorithm, type TpmInfo, tpmInfo } from '@rackseal/tpm2';
import { withTpmDevice } from '../tpm-device';
import type { TpmInfoOptions } from './tpm.command';

/** One EK certificate index as `tpm info` reports it. */
export interface EkCertificateReport {
  readonly nvIndex: number;
  readonly keyType: EkKeyType;
  /** What had to be tolerated to read the certificate, named as the server names them. */
  readonly quirks: readonly EkQuirk[];
  readonly certificate?: Pick<EkInspection, 'subject' | 'issuer' | 'notAfter' | 'ekPubHash'>;
  readonly ek?: EkCertificateIndexReport['ek'];
  /** The TPM's EK public key is the certificate's; undefined when that could not be checked. */
  readonly ekMatchesCertificate?: boolean;
  readonly problem?: string;
}

/**
 * Reads the certificate in an index with `@rackseal/ek-trust`, the reader the control plane uses on
 * imported certificates, so the agent accepts exactly what enrollment will accept (NV header, padding,
 * non-minimal serials, …) and names the same quirks; then compares its key with the TPM's EK.
 */
export function reportEkCertificate(index: EkCertificateIndexReport): EkCertificateReport {
  const base = { nvIndex: index.nvIndex, keyType: index.keyType };
  if (index.nvData === undefined) {
    return { ...base, quirks: [], problem: index.problem };
  }
  let inspection: EkInspection;
  try {
    inspection = inspectEkCertificate(index.nvData);
  } catch (error) {
    const reason = error instanceof EkCertificateError ? error.message : String(error);
    return { ...base, quirks: [], ek: index.ek, problem: `the certificate does not parse: ${reason}` };
  }
  const certificate = { subject: inspection.subject, issuer: inspection.issuer, notAfter: inspection.notAfter, ekPubHash: inspection.ekPubHash };
  const read = { ...base, quirks: inspection.quirks, certificate };
  if (index.ek === undefined) {
    return { ...read, problem: index.problem };
  }
  const matches = index.ek.ekPubHash === inspection.ekPubHash;
  return { ...read, ek: index.ek, ekMatchesCertificate: matches, ...(matches ? {} : { problem: "the TPM's EK is not the certificate's key" }) };
}

export async function runTpmInfo(options: TpmInfoOptions): Promise<void> {
  const info = await withTpmDevice(options.tpm, (client) => tpmInfo(client));
  const certificates = info.ekCertificates.map(reportEkCertificate);
  process.stdout.write(options.json ? `${JSON.stringify(infoJson(options.tpm, info, certificates))}\n` : infoText(options.tpm, info, certificates));
  if (!certificates.some((c) => c.ekMatchesCertificate === true)) {
    throw CliError.invalid(certificates.length === 0 ? 'no EK certificate found in the TPM' : "no EK certificate whose key is the TPM's EK");
  }
}

const hex32 = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

function infoJson(device: string, info: TpmInfo, certificates: readonly EkCertificateReport[]): object {
  return {
    device,
    manufacturer: info.manufacturer,
    manufacturerId: hex32(info.manufacturerId),
    vendorString: info.vendorString,
    firmwareVersion: info.firmwareVersion,
    firmwareVersionRaw: info.firmwareVersionRaw.map(hex32),
    spec: info.spec,
    pcrBanks: info.pcrBanks.map((b) => ({ bank: hashAlgorithm(b.hash).bank, pcrs: b.pcrs })),
    ekCertificates: certificates.map((cert) => ({
      nvIndex: hex32(cert.nvIndex),
      keyType: cert.keyType,
      quirks: cert.quirks,
      ekPubHash: cert.certificate?.ekPubHash ?? null,
      ek: cert.ek === undefined ? null : { handle: cert.ek.handle === undefined ? null : hex32(cert.ek.handle), source: cert.ek.source, ekPubHash: cert.ek.ekPubHash },
      ekMatchesCertificate: cert.ekMatchesCertificate ?? null,
      ...(cert.certificate === undefined ? {} : { subject: cert.certificate.subject, issuer: cert.certificate.issuer, notAfter: cert.certificate.notAfter }),
      ...(cert.problem === undefined ? {} : { problem: cert.problem }),
    })),
  };
}

function infoText(device: string, info: TpmInfo, certificates: readonly EkCertificateReport[]): string {
  const [fw1, fw2] = info.firmwareVersionRaw;
  const lines = [
    `TPM at ${device}`,
    `  manufacturer: ${info.manufacturer} (${hex32(info.manufacturerId)})${info.vendorString === '' ? '' : `, vendor string "${info.vendorString}"`}`,
    `  firmware: ${info.firmwareVersion} (${hex32(fw1)} ${hex32(fw2)})`,
    `  specification: TPM ${info.spec.family}, level ${info.spec.level}, revision ${info.spec.revision} (${info.spec.year}, day ${info.spec.dayOfYear})`,
    `  PCR banks: ${info.pcrBanks.map((b) => `${hashAlgorithm(b.hash).bank} (${b.pcrs.length} PCRs)`).join(', ') || 'none allocated'}`,
    `  EK certificates:${certificates.length === 0 ? ' none' : ''}`,
  ];
  for (const cert of certificates) {
    lines.push(`    ${hex32(cert.nvIndex)} ${cert.keyType}${cert.quirks.length > 0 ? ` (tolerated: ${cert.quirks.join(', ')})` : ''}`);
    if (cert.certificate !== undefined) {
      const { subject, issuer, notAfter, ekPubHash } = cert.certificate;
      lines.push(`      subject: ${subject}`, `      issuer: ${issuer}`, `      notAfter: ${notAfter}`, `      ekPubHash: ${ekPubHash}`);
    }
    if (cert.ek !== undefined) {
      const where = cert.ek.handle === undefined ? `derived (${cert.ek.source})` : `persistent at ${hex32(cert.ek.handle)}`;
      lines.push(`      EK: ${where}, ${cert.ekMatchesCertificate === true ? 'matches the certificate' : cert.ekMatchesCertificate === false ? `does NOT match (its ekPubHash ${cert.ek.ekPubHash})` : `ekPubHash ${cert.ek.ekPubHash}`}`);
    }
    if (cert.problem !== undefined && cert.ekMatchesCertificate !== false) {
      lines.push(`      problem: ${cert.problem}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

import type { ParsedCertificate } from './certificate';
import { nameAttribute } from './names';
import { OID } from './oids';

/**
 * TPM vendor IDs (TPM_PT_MANUFACTURER, the 4 ASCII octets behind `id:XXXXXXXX`) from the TCG TPM
 * Vendor ID Registry, keyed by the ID with trailing NULs/spaces removed.
 */
export const TPM_VENDORS: Readonly<Record<string, string>> = {
  AMD: 'AMD',
  ATML: 'Atmel',
  BRCM: 'Broadcom',
  CSCO: 'Cisco',
  FLYS: 'Flyslice Technologies',
  GOOG: 'Google',
  HISI: 'Huawei',
  HPE: 'HPE',
  HPI: 'HP Inc.',
  IBM: 'IBM',
  IFX: 'Infineon',
  INTC: 'Intel',
  LEN: 'Lenovo',
  MSFT: 'Microsoft',
  NSM: 'National Semiconductor',
  NTC: 'Nuvoton Technology',
  NTZ: 'Nationz Technologies',
  QCOM: 'Qualcomm',
  ROCC: 'Fuzhou Rockchip',
  SECE: 'SecEdge',
  SMSC: 'SMSC',
  SMSN: 'Samsung',
  SNS: 'Sinosun',
  STM: 'STMicroelectronics',
  TXN: 'Texas Instruments',
  WEC: 'Winbond',
};

/**
 * Manufacturer values that are not ASCII vendor IDs. swtpm_setup 0.7.1 writes `id:00001014` (IBM's
 * PCI vendor ID) into the SAN, while its TPM_PT_MANUFACTURER says "IBM" (TPM_PT_MANUFACTURER: Part 2 §6.13).
 */
const NON_ASCII_MANUFACTURERS: Readonly<Record<string, string>> = {
  '00001014': 'IBM (swtpm)',
};

export interface TcgDeviceAttributes {
  /** TCG manufacturer attribute as written, e.g. `id:49465800`. */
  readonly manufacturer: string | null;
  /** The vendor ID it encodes, trailing NULs/spaces removed: `IFX`, `STM`, `NTC`, `INTC`. */
  readonly vendorId: string | null;
  /** Friendly name from the TCG vendor registry. */
  readonly vendorName: string | null;
  readonly model: string | null;
  readonly version: string | null;
}

/** The printable vendor ID behind `id:XXXXXXXX`, or null when the octets are not ASCII. */
export function decodeVendorId(manufacturer: string): string | null {
  const match = /^id:([0-9a-f]{8})$/i.exec(manufacturer.trim());
  if (match === null) {
    return null;
  }
  const octets = Buffer.from(match[1]!, 'hex');
  const text = octets.toString('latin1').replace(/[\0 ]+$/, '');
  return text.length > 0 && /^[\x21-\x7e]+( [\x21-\x7e]+)*$/.test(text) ? text : null;
}

/**
 * Manufacturer, model and version from the TCG attributes 2.23.133.2.1/2/3 (TCG EK Credential
 * Profile §3.2.9): in the subjectAltName's directoryName, or, for certificates that put them there
 * instead, in the subject.
 */
export function tcgDeviceAttributes(cert: ParsedCertificate): TcgDeviceAttributes {
  const lookup = (oid: string): string | null => {
    for (const name of cert.sanDirectoryNames) {
      const value = nameAttribute(name, oid);
      if (value !== undefined) {
        return value;
      }
    }
    return nameAttribute(cert.subject, oid) ?? null;
  };
  const manufacturer = lookup(OID.tpmManufacturer);
  const vendorId = manufacturer === null ? null : decodeVendorId(manufacturer);
  let vendorName: string | null = null;
  if (vendorId !== null) {
    vendorName = TPM_VENDORS[vendorId] ?? null;
  } else if (manufacturer !== null) {
    vendorName = NON_ASCII_MANUFACTURERS[manufacturer.trim().replace(/^id:/i, '').toUpperCase()] ?? null;
  }
  return { manufacturer, vendorId, vendorName, model: lookup(OID.tpmModel), version: lookup(OID.tpmVersion) };
}

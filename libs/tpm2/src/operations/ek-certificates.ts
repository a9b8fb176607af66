import type { TpmClient } from '../client/tpm-client';
import { getHandles } from '../commands/capability';
import { TPM_HT } from '../commands/capability-constants';
import { nvReadAll } from '../commands/nv';

export type EkKeyType = 'rsa-2048' | 'ecc-p256' | 'ecc-p384' | 'rsa-3072' | 'rsa-4096';

/**
 * Where TPM makers store EK certificates (TCG EK Credential Profile 2.5 §2.2.1.4):
 * the low range (L-1 RSA-2048, L-2 P-256) and the high-range indices seen on shipping parts and swtpm.
 */
export const EK_CERTIFICATE_INDICES: readonly { readonly nvIndex: number; readonly keyType: EkKeyType }[] = [
  { nvIndex: 0x01c00002, keyType: 'rsa-2048' },
  { nvIndex: 0x01c0000a, keyType: 'ecc-p256' },
  { nvIndex: 0x01c00016, keyType: 'ecc-p384' },
  { nvIndex: 0x01c0001c, keyType: 'rsa-3072' },
  { nvIndex: 0x01c0001e, keyType: 'rsa-4096' },
];

/**
 * Repairs applied to what the NV index held (the first three EkQuirk values of
 * libs/ek-trust/src/errors.ts), named as libs/ek-trust names them so the server reports the same words:
 * - `nv-header`: the TCG PC Client "certificate with header" prefix `10 01 00` ‖ u16 length;
 * - `trailing-padding`: 0xFF or 0x00 fill after the certificate (ST33 parts pad to 1600 bytes);
 * - `trailing-data`: anything else after it.
 */
export type EkCertificateQuirk = 'nv-header' | 'trailing-padding' | 'trailing-data';

export interface EkCertificate {
  readonly nvIndex: number;
  readonly keyType: EkKeyType;
  /** The certificate alone: the first DER TLV of the index, signature bytes untouched. */
  readonly der: Buffer;
  /** The index content as read. */
  readonly nvData: Buffer;
  readonly quirks: readonly EkCertificateQuirk[];
}

/** An NV index meant for an EK certificate holds something that is not one. */
export class EkCertificateFormatError extends Error {
  constructor(
    readonly nvIndex: number | undefined,
    readonly reason: string,
  ) {
    super(`${nvIndex === undefined ? 'EK certificate' : `EK certificate index 0x${nvIndex.toString(16).padStart(8, '0')}`}: ${reason}`);
    this.name = 'EkCertificateFormatError';
  }
}

const NV_HEADER = Buffer.from([0x10, 0x01, 0x00]);
const NV_HEADER_SIZE = 5;

/** Length of the DER TLV at the start of `bytes` (tag ‖ definite length ‖ content), or why not. */
function derTlvLength(bytes: Buffer): number | string {
  if (bytes.length < 2) {
    return `${bytes.length} byte(s) cannot hold a certificate`;
  }
  if (bytes[0] !== 0x30) {
    return `starts with 0x${bytes[0]!.toString(16).padStart(2, '0')}, not a DER SEQUENCE (0x30)`;
  }
  const first = bytes[1]!;
  if (first < 0x80) {
    return 2 + first;
  }
  const octets = first & 0x7f;
  if (octets === 0 || octets > 4) {
    return octets === 0 ? 'indefinite length is not DER' : `a ${octets}-octet length is not a certificate's`;
  }
  if (bytes.length < 2 + octets) {
    return 'truncated length';
  }
  return 2 + octets + bytes.readUIntBE(2, octets);
}

/**
 * The certificate in an EK certificate index's content: strips the NV header when present and
 * keeps only the first DER TLV, so strict X.509 parsers accept it. The DER itself is not rewritten
 * (its signature covers those bytes).
 */
export function extractEkCertificate(nvData: Buffer, nvIndex?: number): { der: Buffer; quirks: EkCertificateQuirk[] } {
  const quirks: EkCertificateQuirk[] = [];
  let body = nvData;
  if (nvData.length >= NV_HEADER_SIZE && nvData.subarray(0, NV_HEADER.length).equals(NV_HEADER)) {
    const length = nvData.readUInt16BE(NV_HEADER.length);
    if (NV_HEADER_SIZE + length > nvData.length) {
      throw new EkCertificateFormatError(nvIndex, `NV header announces ${length} bytes, only ${nvData.length - NV_HEADER_SIZE} follow`);
    }
    body = nvData.subarray(NV_HEADER_SIZE, NV_HEADER_SIZE + length);
    quirks.push('nv-header');
  }
  const length = derTlvLength(body);
  if (typeof length === 'string') {
    throw new EkCertificateFormatError(nvIndex, length);
  }
  if (length > body.length) {
    throw new EkCertificateFormatError(nvIndex, `DER certificate of ${length} bytes truncated to ${body.length}`);
  }
  // After the DER: the rest of the header's span, and whatever followed that span in the index.
  const rest = Buffer.concat([body.subarray(length), nvData.subarray(quirks.includes('nv-header') ? NV_HEADER_SIZE + body.length : body.length)]);
  if (rest.length > 0) {
    quirks.push(rest.every((b) => b === 0xff) || rest.every((b) => b === 0x00) ? 'trailing-padding' : 'trailing-data');
  }
  return { der: Buffer.from(body.subarray(0, length)), quirks };
}

/** One EK certificate index, read and repaired. */
export async function readEkCertificate(client: TpmClient, slot: { nvIndex: number; keyType: EkKeyType }): Promise<EkCertificate> {
  const nvData = await nvReadAll(client, slot.nvIndex);
  const { der, quirks } = extractEkCertificate(nvData, slot.nvIndex);
  return { nvIndex: slot.nvIndex, keyType: slot.keyType, der, nvData, quirks };
}

/**
 * Every EK certificate the TPM holds, in EK_CERTIFICATE_INDICES order. Which indices exist is asked
 * once (TPM_CAP_HANDLES) rather than probing each, which would make the TPM answer TPM_RC_HANDLE
 * for every absent one.
 */
export async function readEkCertificates(client: TpmClient): Promise<EkCertificate[]> {
  const present = new Set(await getHandles(client, TPM_HT.TPM_HT_NV_INDEX));
  const certificates: EkCertificate[] = [];
  for (const slot of EK_CERTIFICATE_INDICES.filter((s) => present.has(s.nvIndex))) {
    certificates.push(await readEkCertificate(client, slot));
  }
  return certificates;
}

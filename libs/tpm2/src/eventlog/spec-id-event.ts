import type { TpmReader } from '../codec/tpm-reader';
import type { TpmWriter } from '../codec/tpm-writer';
import { algName } from '../constants';
import { hashAlgorithm, isHashAlgorithm } from '../hash-algorithms';

/** PFP §10.4.5.1: the signature that makes the first event a crypto-agile Spec ID event. */
export const SPEC_ID_EVENT03_SIGNATURE = Buffer.from('Spec ID Event03\0', 'latin1');

/** PFP §10.4.5.1 TCG_EfiSpecIdEventAlgorithmSize: one PCR bank of the log and its digest size. */
export interface TCG_EfiSpecIdEventAlgorithmSize {
  readonly algorithmId: number;
  readonly digestSize: number;
}

/**
 * PFP §10.4.5.1 TCG_EfiSpecIDEvent, the event data of the first (TCG_PCR_EVENT) record of a
 * crypto-agile log. It declares every bank the log carries and, crucially, each digest's size: the
 * only way to step over a digest whose algorithm this library does not implement.
 */
export interface TCG_EfiSpecIDEvent {
  readonly signature: string;
  readonly platformClass: number;
  readonly specVersionMinor: number;
  readonly specVersionMajor: number;
  readonly specErrata: number;
  /** 0x01: UINTN is 32 bits, 0x02: 64 bits (sizes the UINTN fields of UEFI_IMAGE_LOAD_EVENT). */
  readonly uintnSize: number;
  readonly digestSizes: readonly TCG_EfiSpecIdEventAlgorithmSize[];
  readonly vendorInfo: Buffer;
}

/** Reads the whole event data of the Spec ID event; the caller refuses trailing bytes. */
export function readSpecIdEvent(r: TpmReader): TCG_EfiSpecIDEvent {
  return r.within('TCG_EfiSpecIDEvent', () => {
    const signatureOffset = r.offset;
    const signatureBytes = r.bytesOf(16, 'signature');
    if (!signatureBytes.equals(SPEC_ID_EVENT03_SIGNATURE)) {
      throw r.error('signature', 'is not "Spec ID Event03"', signatureOffset);
    }
    const platformClass = r.u32le('platformClass');
    const specVersionMinor = r.u8('specVersionMinor');
    const majorOffset = r.offset;
    const specVersionMajor = r.u8('specVersionMajor');
    // Major 2 is the crypto-agile format; the minor and errata have changed without changing the layout.
    if (specVersionMajor !== 2) {
      throw r.error('specVersionMajor', `${specVersionMajor} is not 2 (crypto-agile)`, majorOffset);
    }
    const specErrata = r.u8('specErrata');
    const uintnSize = r.u8('uintnSize');
    const countOffset = r.offset;
    const numberOfAlgorithms = r.u32le('numberOfAlgorithms');
    // Bound the count by the bytes present before looping: 4 bytes per entry plus vendorInfoSize.
    if (numberOfAlgorithms === 0 || numberOfAlgorithms * 4 + 1 > r.remaining) {
      throw r.error(
        'numberOfAlgorithms',
        `${numberOfAlgorithms} algorithm(s) do not fit the ${r.remaining} byte(s) left (at least one is required)`,
        countOffset,
      );
    }
    const digestSizes: TCG_EfiSpecIdEventAlgorithmSize[] = [];
    for (let i = 0; i < numberOfAlgorithms; i += 1) {
      const field = `digestSizes[${i}]`;
      const algOffset = r.offset;
      const algorithmId = r.u16le(`${field}.algorithmId`);
      if (digestSizes.some((known) => known.algorithmId === algorithmId)) {
        throw r.error(`${field}.algorithmId`, `${algName(algorithmId)} is declared twice`, algOffset);
      }
      const sizeOffset = r.offset;
      const digestSize = r.u16le(`${field}.digestSize`);
      // A known bank with the wrong size would silently misalign every following event.
      if (isHashAlgorithm(algorithmId) && digestSize !== hashAlgorithm(algorithmId).size) {
        const expected = hashAlgorithm(algorithmId).size;
        throw r.error(`${field}.digestSize`, `${digestSize} is not the ${expected}-byte size of ${algName(algorithmId)}`, sizeOffset);
      }
      if (digestSize === 0) {
        throw r.error(`${field}.digestSize`, `0 for ${algName(algorithmId)}`, sizeOffset);
      }
      digestSizes.push({ algorithmId, digestSize });
    }
    const vendorInfoSize = r.u8('vendorInfoSize');
    const vendorInfo = r.bytesOf(vendorInfoSize, 'vendorInfo');
    return {
      signature: 'Spec ID Event03',
      platformClass,
      specVersionMinor,
      specVersionMajor,
      specErrata,
      uintnSize,
      digestSizes,
      vendorInfo,
    };
  });
}

export function writeSpecIdEvent(w: TpmWriter, specId: TCG_EfiSpecIDEvent): void {
  w.bytes(SPEC_ID_EVENT03_SIGNATURE)
    .u32le(specId.platformClass)
    .u8(specId.specVersionMinor)
    .u8(specId.specVersionMajor)
    .u8(specId.specErrata)
    .u8(specId.uintnSize)
    .u32le(specId.digestSizes.length);
  for (const { algorithmId, digestSize } of specId.digestSizes) {
    w.u16le(algorithmId).u16le(digestSize);
  }
  w.u8(specId.vendorInfo.length).bytes(specId.vendorInfo);
}

/**
 * True when event data carries the Spec ID Event03 signature. The signature alone decides: a first
 * event that claims the crypto-agile format but is malformed must fail, not fall back to SHA-1.
 */
export function hasSpecIdEvent03Signature(data: Buffer): boolean {
  return data.length >= 16 && data.subarray(0, 16).equals(SPEC_ID_EVENT03_SIGNATURE);
}

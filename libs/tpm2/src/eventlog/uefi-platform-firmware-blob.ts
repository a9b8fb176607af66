import { TpmReader } from '../codec/tpm-reader';

/**
 * PFP §10.2.5 UEFI_PLATFORM_FIRMWARE_BLOB (EV_EFI_PLATFORM_FIRMWARE_BLOB, and EV_POST_CODE /
 * EV_S_CRTM_CONTENTS when firmware logs a blob there) and UEFI_PLATFORM_FIRMWARE_BLOB2
 * (EV_EFI_PLATFORM_FIRMWARE_BLOB2, which adds a description). The digest is of the firmware
 * region, which the log does not contain.
 */
export interface UEFI_PLATFORM_FIRMWARE_BLOB {
  readonly blobDescription?: string;
  readonly blobBase: bigint;
  readonly blobLength: bigint;
}

export function decodePlatformFirmwareBlob(data: Buffer): UEFI_PLATFORM_FIRMWARE_BLOB {
  const r = TpmReader.from(data, 'UEFI_PLATFORM_FIRMWARE_BLOB');
  const blob = { blobBase: r.u64le('BlobBase'), blobLength: r.u64le('BlobLength') };
  r.end();
  return blob;
}

export function decodePlatformFirmwareBlob2(data: Buffer): UEFI_PLATFORM_FIRMWARE_BLOB {
  const r = TpmReader.from(data, 'UEFI_PLATFORM_FIRMWARE_BLOB2');
  const size = r.u8('BlobDescriptionSize');
  const description = r.bytesOf(size, 'BlobDescription');
  const nul = description.indexOf(0);
  const blobDescription = description.toString('latin1', 0, nul < 0 ? description.length : nul);
  const blob = { blobDescription, blobBase: r.u64le('BlobBase'), blobLength: r.u64le('BlobLength') };
  r.end();
  return blob;
}

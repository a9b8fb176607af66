import { TpmReader } from '../codec/tpm-reader';

/**
 * PFP §10.2.3 UEFI_IMAGE_LOAD_EVENT, the event data of EV_EFI_BOOT_SERVICES_APPLICATION,
 * EV_EFI_BOOT_SERVICES_DRIVER and EV_EFI_RUNTIME_SERVICES_DRIVER. The digest is the PE Authenticode
 * hash of the image, which the log does not contain: none of this is bound by the digest.
 */
export interface UEFI_IMAGE_LOAD_EVENT {
  readonly imageLocationInMemory: bigint;
  readonly imageLengthInMemory: bigint;
  readonly imageLinkTimeAddress: bigint;
  readonly lengthOfDevicePath: number;
  /** The EFI_DEVICE_PATH_PROTOCOL bytes, LengthOfDevicePath long. */
  readonly devicePath: Buffer;
  /** The Media/File Path nodes of the device path joined (`\EFI\BOOT\BOOTX64.EFI`), when it has any. */
  readonly filePath: string | undefined;
  /** Bytes after the device path: should be empty, kept when firmware or shim writes more. */
  readonly trailing: Buffer;
}

/**
 * Decodes UEFI_IMAGE_LOAD_EVENT. ImageLength/LinkTimeAddress/LengthOfDevicePath are UINTN: 4 bytes when
 * the Spec ID event's uintnSize is 1, otherwise 8 (uintnSize 2, and SHA-1 logs, which do not say).
 */
export function decodeUefiImageLoadEvent(data: Buffer, uintnSize: number): UEFI_IMAGE_LOAD_EVENT {
  const r = TpmReader.from(data, 'UEFI_IMAGE_LOAD_EVENT');
  const uintn = (field: string): bigint => (uintnSize === 1 ? BigInt(r.u32le(field)) : r.u64le(field));
  const imageLocationInMemory = r.u64le('ImageLocationInMemory');
  const imageLengthInMemory = uintn('ImageLengthInMemory');
  const imageLinkTimeAddress = uintn('ImageLinkTimeAddress');
  const lengthOffset = r.offset;
  const length = uintn('LengthOfDevicePath');
  if (length > BigInt(r.remaining)) {
    throw r.error('LengthOfDevicePath', `${length} byte(s) do not fit the ${r.remaining} byte(s) left`, lengthOffset);
  }
  const devicePath = r.bytesOf(Number(length), 'DevicePath');
  const trailing = r.bytesOf(r.remaining, 'trailing');
  return {
    imageLocationInMemory,
    imageLengthInMemory,
    imageLinkTimeAddress,
    lengthOfDevicePath: Number(length),
    devicePath,
    filePath: devicePathFilePath(devicePath),
    trailing,
  };
}

// UEFI 2.10 §10.3: every node is Type (u8), SubType (u8), Length (u16, ≥ 4, includes the header).
const MEDIA_DEVICE_PATH = 0x04;
const MEDIA_FILEPATH_DP = 0x04;
const END_DEVICE_PATH_TYPE = 0x7f;

/**
 * The file path of a device path (UEFI 2.10 §10.3.5 Media Device Path, File Path node: a NUL-terminated
 * UCS-2 PathName), or undefined when there is none or the node list is malformed — a malformed
 * device path does not make the image event undecodable, it only has no file path.
 */
export function devicePathFilePath(devicePath: Buffer): string | undefined {
  const parts: string[] = [];
  let offset = 0;
  while (offset + 4 <= devicePath.length) {
    const type = devicePath[offset]!;
    const subType = devicePath[offset + 1]!;
    const length = devicePath.readUInt16LE(offset + 2);
    if (length < 4 || offset + length > devicePath.length) {
      return undefined;
    }
    if (type === END_DEVICE_PATH_TYPE) {
      break;
    }
    if (type === MEDIA_DEVICE_PATH && subType === MEDIA_FILEPATH_DP) {
      const name = devicePath.subarray(offset + 4, offset + length);
      let end = name.length - (name.length % 2);
      while (end >= 2 && name.readUInt16LE(end - 2) === 0) {
        end -= 2;
      }
      parts.push(name.toString('utf16le', 0, end));
    }
    offset += length;
  }
  return parts.length === 0 ? undefined : parts.join('');
}

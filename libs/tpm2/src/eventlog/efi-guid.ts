/**
 * EFI_GUID (UEFI 2.10 Appendix A): Data1 (u32), Data2 (u16), Data3 (u16) little-endian, then Data4 as
 * 8 plain bytes — so the text form is not the bytes in order. `8be4df61-93ca-11d2-aa0d-00e098032b8c`
 * (EFI_GLOBAL_VARIABLE) is stored as 61 df e4 8b ca 93 d2 11 aa 0d 00 e0 98 03 2b 8c.
 */
export function efiGuidToString(bytes: Buffer): string {
  if (bytes.length !== 16) {
    throw new RangeError(`an EFI_GUID is 16 bytes, not ${bytes.length}`);
  }
  const hex = (b: Buffer) => b.toString('hex');
  return [
    bytes.readUInt32LE(0).toString(16).padStart(8, '0'),
    bytes.readUInt16LE(4).toString(16).padStart(4, '0'),
    bytes.readUInt16LE(6).toString(16).padStart(4, '0'),
    hex(bytes.subarray(8, 10)),
    hex(bytes.subarray(10, 16)),
  ].join('-');
}

/** The inverse of efiGuidToString, for building logs in tests and matching well-known GUIDs. */
export function efiGuidFromString(text: string): Buffer {
  const match = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(text);
  if (match === null) {
    throw new RangeError(`${JSON.stringify(text)} is not a GUID`);
  }
  const out = Buffer.alloc(16);
  out.writeUInt32LE(parseInt(match[1]!, 16), 0);
  out.writeUInt16LE(parseInt(match[2]!, 16), 4);
  out.writeUInt16LE(parseInt(match[3]!, 16), 6);
  Buffer.from(`${match[4]!}${match[5]!}`, 'hex').copy(out, 8);
  return out;
}

/** UEFI 2.10 §3.3: EFI_GLOBAL_VARIABLE, the vendor GUID of SecureBoot, PK, KEK, Boot####, BootOrder. */
export const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
/** UEFI 2.10 (Secure Boot databases): EFI_IMAGE_SECURITY_DATABASE_GUID, the vendor GUID of db, dbx. */
export const EFI_IMAGE_SECURITY_DATABASE_GUID = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';

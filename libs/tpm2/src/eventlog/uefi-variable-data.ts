import { TpmReader } from '../codec/tpm-reader';
import { efiGuidFromString, efiGuidToString } from './efi-guid';
import { utf16Text } from './event-text';

/**
 * PFP §10.2.6 UEFI_VARIABLE_DATA, the event data of EV_EFI_VARIABLE_DRIVER_CONFIG, _BOOT, _BOOT2 and
 * _AUTHORITY: which variable (vendor GUID + name) and its value. Field names as in the PFP.
 */
export interface UEFI_VARIABLE_DATA {
  /** The vendor GUID (the PFP calls the GUID field VariableName), e.g. EFI_GLOBAL_VARIABLE. */
  readonly variableName: string;
  readonly unicodeName: string;
  readonly variableData: Buffer;
  /**
   * Bytes after VariableData. Should be empty; real logs have them (shim logs its vendor certificate
   * as `Shim` with 6 extra bytes and measures a different length), so they are kept, not refused.
   */
  readonly trailing: Buffer;
}

/** Decodes UEFI_VARIABLE_DATA; throws TpmParseError (offsets relative to the event data). */
export function decodeUefiVariableData(data: Buffer): UEFI_VARIABLE_DATA {
  const r = TpmReader.from(data, 'UEFI_VARIABLE_DATA');
  const variableName = efiGuidToString(r.bytesOf(16, 'VariableName'));
  const nameLengthOffset = r.offset;
  // u64 lengths are compared as bigint against what is left: no Number overflow, no huge allocation.
  const unicodeNameLength = r.u64le('UnicodeNameLength');
  const dataLengthOffset = r.offset;
  const variableDataLength = r.u64le('VariableDataLength');
  if (unicodeNameLength * 2n > BigInt(r.remaining)) {
    throw r.error('UnicodeNameLength', `${unicodeNameLength} UTF-16 characters do not fit the ${r.remaining} byte(s) left`, nameLengthOffset);
  }
  const unicodeName = utf16Text(r.bytesOf(Number(unicodeNameLength) * 2, 'UnicodeName'));
  if (variableDataLength > BigInt(r.remaining)) {
    throw r.error('VariableDataLength', `${variableDataLength} byte(s) do not fit the ${r.remaining} byte(s) left`, dataLengthOffset);
  }
  const variableData = r.bytesOf(Number(variableDataLength), 'VariableData');
  const trailing = r.bytesOf(r.remaining, 'trailing');
  return { variableName, unicodeName, variableData, trailing };
}

/** Marshals UEFI_VARIABLE_DATA (for building logs; `trailing` is appended as is). */
export function encodeUefiVariableData(variable: Omit<UEFI_VARIABLE_DATA, 'trailing'> & { readonly trailing?: Buffer }): Buffer {
  const name = Buffer.from(variable.unicodeName, 'utf16le');
  const header = Buffer.alloc(32);
  efiGuidFromString(variable.variableName).copy(header, 0);
  header.writeBigUInt64LE(BigInt(variable.unicodeName.length), 16);
  header.writeBigUInt64LE(BigInt(variable.variableData.length), 24);
  return Buffer.concat([header, name, variable.variableData, variable.trailing ?? Buffer.alloc(0)]);
}

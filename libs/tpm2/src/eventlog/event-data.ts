import { TpmParseError } from '../codec/tpm-parse-error';
import { EV } from './event-types';
import { asciiText, ucs2Text } from './event-text';
import type { TCG_EfiSpecIDEvent } from './spec-id-event';
import { decodeUefiImageLoadEvent, type UEFI_IMAGE_LOAD_EVENT } from './uefi-image-load-event';
import {
  decodePlatformFirmwareBlob,
  decodePlatformFirmwareBlob2,
  type UEFI_PLATFORM_FIRMWARE_BLOB,
} from './uefi-platform-firmware-blob';
import { decodeUefiVariableData, type UEFI_VARIABLE_DATA } from './uefi-variable-data';

/**
 * The event data, decoded where the PFP defines its layout. Event data is untrusted firmware output
 * and only the digests are replayed, so a layout that does not parse never fails the log: the event
 * is `undecodable` with the reason. Whether the data can be trusted at all is a separate question,
 * answered by the event's `digestCheck`.
 */
export type EventData =
  /** The crypto-agile header (first event). */
  | { readonly kind: 'spec-id'; readonly specId: TCG_EfiSpecIDEvent }
  /** PFP §10.4.5.3 Startup Locality Event (EV_NO_ACTION): TPM2_Startup's locality, PCR 0's initial value. */
  | { readonly kind: 'startup-locality'; readonly locality: number }
  /** Another EV_NO_ACTION event named by its 16-byte signature (`SP800-155 Event`, `NvIndexInstance`…). */
  | { readonly kind: 'no-action'; readonly signature: string }
  | { readonly kind: 'uefi-variable'; readonly variable: UEFI_VARIABLE_DATA }
  | { readonly kind: 'uefi-image-load'; readonly image: UEFI_IMAGE_LOAD_EVENT }
  | { readonly kind: 'firmware-blob'; readonly blob: UEFI_PLATFORM_FIRMWARE_BLOB }
  /** EV_SEPARATOR: 0 normally; the PFP's error value is 0xFFFFFFFF. (Windows writes "WBCL" in PCRs 12–14.) */
  | { readonly kind: 'separator'; readonly value: number; readonly error: boolean }
  /** EV_EFI_ACTION, EV_ACTION, EV_POST_CODE, EV_S_CRTM_VERSION (UCS-2), EV_IPL strings. */
  | { readonly kind: 'text'; readonly text: string }
  /** No layout is defined (or implemented) for this type; the bytes are in `event`. */
  | { readonly kind: 'raw' }
  | { readonly kind: 'undecodable'; readonly reason: string };

/** PFP §10.4.5.3: "StartupLocality\0" followed by the locality byte. */
const STARTUP_LOCALITY_SIGNATURE = Buffer.from('StartupLocality\0', 'latin1');

/**
 * Decodes the data of an event (not of the Spec ID header, which the log parser decodes itself).
 * Only a TpmParseError from a layout decoder becomes `undecodable`; anything else is a bug and escapes.
 */
export function decodeEventData(eventType: number, data: Buffer, uintnSize: number): EventData {
  try {
    return decode(eventType, data, uintnSize);
  } catch (error) {
    if (error instanceof TpmParseError) {
      return { kind: 'undecodable', reason: `${error.message} (offset within the event data)` };
    }
    throw error;
  }
}

function decode(eventType: number, data: Buffer, uintnSize: number): EventData {
  switch (eventType) {
    case EV.EV_NO_ACTION:
      return decodeNoAction(data);
    case EV.EV_SEPARATOR:
      if (data.length !== 4) {
        return { kind: 'undecodable', reason: `EV_SEPARATOR data is ${data.length} byte(s), not 4` };
      }
      return { kind: 'separator', value: data.readUInt32LE(0), error: data.readUInt32LE(0) === 0xffffffff };
    case EV.EV_EFI_VARIABLE_DRIVER_CONFIG:
    case EV.EV_EFI_VARIABLE_BOOT:
    case EV.EV_EFI_VARIABLE_BOOT2:
    case EV.EV_EFI_VARIABLE_AUTHORITY:
    case EV.EV_EFI_SPDM_DEVICE_POLICY:
    case EV.EV_EFI_SPDM_DEVICE_AUTHORITY:
      return { kind: 'uefi-variable', variable: decodeUefiVariableData(data) };
    case EV.EV_EFI_BOOT_SERVICES_APPLICATION:
    case EV.EV_EFI_BOOT_SERVICES_DRIVER:
    case EV.EV_EFI_RUNTIME_SERVICES_DRIVER:
      return { kind: 'uefi-image-load', image: decodeUefiImageLoadEvent(data, uintnSize) };
    case EV.EV_EFI_PLATFORM_FIRMWARE_BLOB:
      return { kind: 'firmware-blob', blob: decodePlatformFirmwareBlob(data) };
    case EV.EV_EFI_PLATFORM_FIRMWARE_BLOB2:
      return { kind: 'firmware-blob', blob: decodePlatformFirmwareBlob2(data) };
    case EV.EV_EFI_ACTION:
    case EV.EV_ACTION:
      return textOr(asciiText(data), `${data.length} byte(s) that are not a printable ASCII string`);
    case EV.EV_S_CRTM_VERSION:
      return textOr(ucs2Text(data), `${data.length} byte(s) that are not a NUL-terminated UCS-2 string`);
    case EV.EV_POST_CODE:
    case EV.EV_S_CRTM_CONTENTS:
      // PFP §3.3.4.1: a string ("POST CODE", "ACPI DATA", …) or, as firmware also does, a blob.
      return textOrBlob(data);
    case EV.EV_IPL: {
      // Implementation-defined (GRUB writes "grub_cmd: …", shim "MokList"): text when it is text.
      const text = asciiText(data);
      return text === undefined ? { kind: 'raw' } : { kind: 'text', text };
    }
    default:
      return { kind: 'raw' };
  }
}

function decodeNoAction(data: Buffer): EventData {
  if (data.length >= 16 && data.subarray(0, 16).equals(STARTUP_LOCALITY_SIGNATURE)) {
    if (data.length !== 17) {
      return { kind: 'undecodable', reason: `StartupLocality event data is ${data.length} byte(s), not 17` };
    }
    return { kind: 'startup-locality', locality: data[16]! };
  }
  // The other EV_NO_ACTION events (PFP §10.4.5) start with a NUL-terminated 16-byte signature.
  const signature = data.length >= 16 ? asciiText(data.subarray(0, 16)) : undefined;
  return signature === undefined ? { kind: 'raw' } : { kind: 'no-action', signature };
}

function textOr(text: string | undefined, reason: string): EventData {
  return text === undefined ? { kind: 'undecodable', reason } : { kind: 'text', text };
}

function textOrBlob(data: Buffer): EventData {
  const text = asciiText(data);
  if (text !== undefined) {
    return { kind: 'text', text };
  }
  if (data.length === 16) {
    return { kind: 'firmware-blob', blob: decodePlatformFirmwareBlob(data) };
  }
  return { kind: 'undecodable', reason: `${data.length} byte(s) that are neither a string nor a UEFI_PLATFORM_FIRMWARE_BLOB` };
}

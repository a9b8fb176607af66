/**
 * Text in event data. Firmware writes ASCII (EV_EFI_ACTION, EV_POST_CODE, EV_IPL) or UCS-2
 * (EV_S_CRTM_VERSION); the data is untrusted, so text is only returned when every character is
 * printable, never a best-effort rendering of arbitrary bytes.
 */

/** Printable ASCII, optionally followed by NUL terminator(s); undefined otherwise. */
export function asciiText(data: Buffer): string | undefined {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) {
    end -= 1;
  }
  if (end === 0) {
    return undefined;
  }
  for (let i = 0; i < end; i += 1) {
    const c = data[i]!;
    if (!((c >= 0x20 && c <= 0x7e) || c === 0x09 || c === 0x0a || c === 0x0d)) {
      return undefined;
    }
  }
  return data.toString('latin1', 0, end);
}

/** A NUL-terminated UCS-2 (UTF-16LE) string of printable characters; undefined otherwise. */
export function ucs2Text(data: Buffer): string | undefined {
  if (data.length < 2 || data.length % 2 !== 0 || data.readUInt16LE(data.length - 2) !== 0) {
    return undefined;
  }
  const text = data.toString('utf16le', 0, data.length - 2);
  return printable(text) ? text : undefined;
}

/** UTF-16LE without terminator (UEFI_VARIABLE_DATA.UnicodeName carries its length). */
export function utf16Text(data: Buffer): string {
  return data.toString('utf16le');
}

function printable(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    // No C0/C1 controls (NUL included) and no replacement characters from malformed surrogates.
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0xfffd) {
      return false;
    }
  }
  return true;
}

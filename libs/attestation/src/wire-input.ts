import { AttestationError } from './attestation-errors';

const BASE64_CHARACTERS = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Standard base64 with padding (RFC 4648 §4), the only form binary fields travel in: the alphabet,
 * at most two `=` at the end, a multiple of 4 characters. Not the one-expression form
 * `^(?:[A-Za-z0-9+/]{4})*(?:…)?$`: V8 backtracks into each group repetition on its stack, and past
 * about 4.4 million characters (a 3.3 MB IMA window, well under the 8 MiB allowed) it throws
 * RangeError, which reached the agent as a 500.
 */
export function isPaddedBase64(value: string): boolean {
  return value.length % 4 === 0 && BASE64_CHARACTERS.test(value);
}

/**
 * The bytes of a base64 field of a node API request, refused as `attestation.malformed` naming the
 * field when it is not a string, not base64, empty or larger than `maxBytes` (checked on the text
 * before decoding, so an oversized value is never decoded).
 */
export function decodeField(field: string, value: unknown, maxBytes: number, exactBytes?: number): Buffer {
  if (typeof value !== 'string' || value.length === 0) {
    throw new AttestationError('attestation.malformed', `${field} must be a non-empty base64 string`);
  }
  if (value.length > Math.ceil(maxBytes / 3) * 4 || !isPaddedBase64(value)) {
    throw new AttestationError('attestation.malformed', `${field} must be base64 of at most ${maxBytes} bytes`);
  }
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length > maxBytes || (exactBytes !== undefined && bytes.length !== exactBytes)) {
    throw new AttestationError('attestation.malformed', `${field} must be ${exactBytes ?? `at most ${maxBytes}`} bytes, not ${bytes.length}`);
  }
  return bytes;
}

/** A registration ID as the control plane issues them (a UUID); anything else is no registration. */
export const REGISTRATION_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The registration ID of a URL in the form the control plane issues and stores (lower case), or
 * undefined when it has not the shape of a UUID. UUIDs compare case-insensitively (RFC 9562 §4:
 * input in upper case is accepted), so an agent or proxy that upper-cases one still names it.
 */
export function canonicalRegistrationId(value: string): string | undefined {
  // Checked before lower-casing: only ASCII A-F may change, nothing else may turn into a hex digit.
  return ANY_CASE_REGISTRATION_ID.test(value) ? value.toLowerCase() : undefined;
}

const ANY_CASE_REGISTRATION_ID = new RegExp(REGISTRATION_ID_PATTERN.source, 'i');

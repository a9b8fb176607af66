import { digestSize, IMA_HASH_ALGORITHMS, type ImaHashAlgorithm } from './hash-algorithms';
import type { ImaEntry, ImaFileDigest, ImaTemplateName } from './ima-entry';

/**
 * Template field layouts (Documentation/security/IMA-templates.rst; security/integrity/ima/
 * ima_template_lib.c). Every field of a non-legacy template is `u32 length ‖ data` in the CPU's byte
 * order (little-endian on the platforms rackseal runs on, and always in the ima_canonical_fmt form):
 *   d-ng  "<algo>:" NUL digest      (ima_eventdigest_init_common, DATA_FMT_DIGEST_WITH_ALGO)
 *   n-ng  name NUL                  (ima_eventname_ng_init; spaces already replaced by '_')
 *   sig   IMA signature, may be empty
 *   buf   the measured buffer
 * The legacy `ima` template is a 20-byte digest (no length) then the name as `u32 length ‖ name`
 * (no NUL) in the binary list; its template hash covers the digest and the name zero-padded to
 * IMA_EVENT_NAME_LEN_MAX + 1 = 256 bytes (ima_crypto.c, ima_calc_field_array_hash_tfm).
 */
export const IMA_EVENT_NAME_LEN_MAX = 255;
/** The legacy template's digest: a SHA-1 (or zero-padded MD5) digest, TPM_DIGEST_SIZE bytes. */
export const IMA_LEGACY_DIGEST_SIZE = 20;

/** Why a field's bytes are not what the template requires; the parsers add where. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly at: number,
    reason: string,
  ) {
    super(reason);
  }
}

/** The fields of a non-legacy template, in order. */
export const TEMPLATE_FIELDS: Record<Exclude<ImaTemplateName, 'ima'>, readonly string[]> = {
  'ima-ng': ['d-ng', 'n-ng'],
  'ima-sig': ['d-ng', 'n-ng', 'sig'],
  'ima-buf': ['d-ng', 'n-ng', 'buf'],
};

/**
 * Checks d-ng's data (bytes[start, end)) — "<algo>:" NUL digest, the digest the algorithm's size —
 * and returns the algorithm; the digest is the data's last digestSize(algorithm) bytes. Read in place:
 * the entry keeps where its fields are (BinaryListEntry), not views of them.
 */
export function digestNgAlgorithm(bytes: Buffer, start: number, end: number): ImaHashAlgorithm {
  let colon = -1;
  for (let i = start; i < end && i < start + 16; i += 1) {
    if (bytes[i] === 0x3a) {
      colon = i;
      break;
    }
  }
  if (colon <= start || colon + 1 >= end || bytes[colon + 1] !== 0x00) {
    throw new FieldError('d-ng', start, 'expected "<algorithm>:" and a NUL before the digest');
  }
  // Compared in place: a string per entry for the algorithm's name showed in the bench's profile.
  const algorithm = oneOfAt(IMA_HASH_ALGORITHM_NAMES, bytes, start, colon - start);
  if (algorithm === undefined) {
    throw new FieldError('d-ng', start, `unsupported digest algorithm "${printable(bytes.toString('latin1', start, colon))}"`);
  }
  const size = end - colon - 2;
  if (size !== digestSize(algorithm)) {
    throw new FieldError('d-ng', start, `a ${algorithm} digest is ${digestSize(algorithm)} bytes, not ${size}`);
  }
  return algorithm;
}

const IMA_HASH_ALGORITHM_NAMES = Object.keys(IMA_HASH_ALGORITHMS) as ImaHashAlgorithm[];

/** bytes[at, at + text.length) spells `text` (ASCII). */
export function bytesSpell(bytes: Uint8Array, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    if (bytes[at + i] !== text.charCodeAt(i)) {
      return false;
    }
  }
  return true;
}

/** The one of `names` that bytes[at, at + length) spells, compared in place. */
export function oneOfAt<T extends string>(names: readonly T[], bytes: Uint8Array, at: number, length: number): T | undefined {
  for (const name of names) {
    if (name.length === length && bytesSpell(bytes, at, name)) {
      return name;
    }
  }
  return undefined;
}

/** Encodes d-ng's data. */
export function encodeDigestNg(digest: ImaFileDigest): Buffer {
  return Buffer.concat([Buffer.from(`${digest.algorithm}:\0`, 'latin1'), digest.digest]);
}

/** Checks n-ng's data (bytes[start, end)): the name and its terminating NUL (no NUL inside). Returns where the name ends. */
export function nameNgEnd(bytes: Buffer, start: number, end: number): number {
  if (end <= start || bytes[end - 1] !== 0x00) {
    throw new FieldError('n-ng', start, 'the name must end with a NUL');
  }
  checkName(bytes, start, end - 1, 'n-ng', start);
  return end - 1;
}

/** A name (bytes[start, end)) holds no NUL (it is a C string) and, being a path or a label, at most PATH_MAX bytes. */
export function checkName(bytes: Uint8Array, start: number, end: number, field: string, at: number): void {
  if (end - start > 4096) {
    throw new FieldError(field, at, `name of ${end - start} bytes exceeds PATH_MAX (4096)`);
  }
  for (let i = start; i < end; i += 1) {
    if (bytes[i] === 0) {
      throw new FieldError(field, at, 'the name contains a NUL');
    }
  }
}

/** Builds the binary template data of a non-legacy template from its field data. */
export function encodeFields(fields: readonly Buffer[]): Buffer {
  let length = 0;
  for (const field of fields) {
    length += 4 + field.length;
  }
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (const field of fields) {
    out.writeUInt32LE(field.length, at);
    field.copy(out, at + 4);
    at += 4 + field.length;
  }
  return out;
}

/** The binary list's template data of the legacy `ima` template: digest ‖ u32 length ‖ name. */
export function encodeLegacyTemplateData(digest: Buffer, name: Buffer): Buffer {
  const out = Buffer.alloc(IMA_LEGACY_DIGEST_SIZE + 4 + name.length);
  digest.copy(out, 0);
  out.writeUInt32LE(name.length, IMA_LEGACY_DIGEST_SIZE);
  name.copy(out, IMA_LEGACY_DIGEST_SIZE + 4);
  return out;
}

/**
 * What the template hash (and every PCR bank's extend) covers: the template data itself for
 * non-legacy templates; for `ima`, the digest and the name zero-padded to 256 bytes. Reads the
 * digest and name only for `ima` (a parsed entry makes them when read, BinaryListEntry).
 */
export function templateHashInput(entry: Pick<ImaEntry, 'templateName' | 'templateData' | 'digest' | 'name'>): Buffer {
  if (entry.templateName !== 'ima') {
    return entry.templateData;
  }
  const out = Buffer.alloc(IMA_LEGACY_DIGEST_SIZE + IMA_EVENT_NAME_LEN_MAX + 1);
  entry.digest.digest.copy(out, 0);
  entry.name.copy(out, IMA_LEGACY_DIGEST_SIZE);
  return out;
}

/** A short, printable rendering of untrusted text for error messages. */
export function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}

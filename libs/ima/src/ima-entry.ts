import type { ImaHashAlgorithm } from './hash-algorithms';

/**
 * The templates this library reads, as the kernel's Documentation/security/IMA-templates.rst defines
 * them: `ima` (d|n, the legacy fixed layout), `ima-ng` (d-ng|n-ng), `ima-sig` (d-ng|n-ng|sig) and
 * `ima-buf` (d-ng|n-ng|buf). Other templates (ima-modsig, evm-sig, custom ima_template_fmt) are refused.
 */
export type ImaTemplateName = 'ima' | 'ima-ng' | 'ima-sig' | 'ima-buf';
export const IMA_TEMPLATE_NAMES: readonly ImaTemplateName[] = ['ima', 'ima-ng', 'ima-sig', 'ima-buf'];

/** The measured file's (or buffer's) digest: the d / d-ng field. */
export interface ImaFileDigest {
  readonly algorithm: ImaHashAlgorithm;
  readonly digest: Buffer;
}

/**
 * One measurement-list entry, parsed, with the bytes it came from. `templateData` is the template
 * data exactly as binary_runtime_measurements carries it (for `ima-ng`/`ima-sig`/`ima-buf` the
 * concatenated length-prefixed fields, which is also what the template hash covers); an entry read
 * from the ASCII list has it rebuilt from the fields, so both forms hash the same.
 */
export interface ImaEntry {
  /** Position in the whole measurement list, from 0 (a window of the list starts at its first index). */
  readonly index: number;
  readonly pcr: number;
  /** The template hash as the log states it (all zero for a violation). */
  readonly templateHash: Buffer;
  readonly templateName: ImaTemplateName;
  readonly templateData: Buffer;
  readonly digest: ImaFileDigest;
  /** The n / n-ng field without its terminating NUL, as bytes (file names need not be UTF-8). */
  readonly name: Buffer;
  /** `name` decoded as UTF-8: what runtime policies key their digests by. */
  readonly path: string;
  /** ima-sig's sig field (empty when the file carried no signature). */
  readonly signature?: Buffer;
  /** ima-buf's buf field. */
  readonly buffer?: Buffer;
  /**
   * An all-zero template hash: IMA recorded a ToMToU or open-writers violation (ima_main.c,
   * ima_add_violation) and extended PCR 10 with all 0xFF instead of a hash.
   */
  readonly violation: boolean;
  /** The input bytes of this entry: its binary record, or its ASCII line without the newline. */
  readonly raw: Buffer;
}

/** The pieces of an entry both parsers produce before it gets its index and raw bytes. */
export type ImaEntryFields = Omit<ImaEntry, 'index' | 'raw' | 'violation' | 'path'>;

/** bytes[start, end) are all zero. */
export function isAllZero(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  for (let i = start; i < end; i += 1) {
    if (bytes[i] !== 0) {
      return false;
    }
  }
  return true;
}

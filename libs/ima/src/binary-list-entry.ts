import { digestSize, type ImaHashAlgorithm } from './hash-algorithms';
import type { ImaEntry, ImaFileDigest, ImaTemplateName } from './ima-entry';

/**
 * An entry of a binary measurement list as parseBinaryMeasurementList returns it: where its fields
 * lie in the list's bytes, its ImaEntry fields made (as views into the list, not copies) when read.
 *
 * Why offsets: an entry parsed into views and objects — five views, the digest, the path, the entry —
 * was eight objects, all alive for the whole round, and a 100,000-entry list spent two fifths of its
 * parsing in the garbage collector (bench/ima.bench.ts). This is one object. The round's hot paths
 * read in place instead of through the fields: the replay compares the logged template hash with
 * templateHashIs, and the digests list is looked up by the name's bytes (PathDigestIndex.allows).
 *
 * A field read twice is made twice (views are cheap when they die young; keeping them is what cost).
 * The fields are getters on the prototype, so an object spread of an entry does not copy them.
 */
export class BinaryListEntry implements ImaEntry {
  constructor(
    /** The whole list the entry was read from. */
    readonly list: Buffer,
    readonly index: number,
    readonly pcr: number,
    readonly templateName: ImaTemplateName,
    readonly violation: boolean,
    /** The record is list[start, end); the template hash follows the u32 PCR. */
    readonly start: number,
    readonly end: number,
    readonly templateHashSize: number,
    /** The template data is list[dataStart, end): it is the record's last part. */
    readonly dataStart: number,
    readonly digestAlgorithm: ImaHashAlgorithm,
    /** The measured digest is list[digestStart, digestStart + its algorithm's size). */
    readonly digestStart: number,
    /** The name, without its NUL, is list[nameStart, nameEnd). */
    readonly nameStart: number,
    readonly nameEnd: number,
    /** ima-sig's sig or ima-buf's buf field, the template data's last, is list[extraStart, end); -1 for other templates. */
    readonly extraStart: number,
  ) {}

  get raw(): Buffer {
    return this.list.subarray(this.start, this.end);
  }

  get templateHash(): Buffer {
    return this.list.subarray(this.start + 4, this.start + 4 + this.templateHashSize);
  }

  get templateData(): Buffer {
    return this.list.subarray(this.dataStart, this.end);
  }

  get digest(): ImaFileDigest {
    return { algorithm: this.digestAlgorithm, digest: this.list.subarray(this.digestStart, this.digestStart + digestSize(this.digestAlgorithm)) };
  }

  get name(): Buffer {
    return this.list.subarray(this.nameStart, this.nameEnd);
  }

  get path(): string {
    return this.list.toString('utf8', this.nameStart, this.nameEnd);
  }

  get signature(): Buffer | undefined {
    return this.templateName === 'ima-sig' ? this.list.subarray(this.extraStart, this.end) : undefined;
  }

  get buffer(): Buffer | undefined {
    return this.templateName === 'ima-buf' ? this.list.subarray(this.extraStart, this.end) : undefined;
  }

  /**
   * The entry as a plain object, as JSON.stringify writes it: its fields, not the offsets — which
   * would write the whole list (`list`) with every entry.
   */
  toJSON(): ImaEntry {
    const { signature, buffer } = this;
    return {
      index: this.index,
      pcr: this.pcr,
      templateHash: this.templateHash,
      templateName: this.templateName,
      templateData: this.templateData,
      digest: this.digest,
      name: this.name,
      path: this.path,
      violation: this.violation,
      raw: this.raw,
      ...(signature !== undefined ? { signature } : {}),
      ...(buffer !== undefined ? { buffer } : {}),
    };
  }

  /** The logged template hash is `hash`, compared in place (a view per entry showed in the replay's profile). */
  templateHashIs(hash: Uint8Array): boolean {
    if (hash.length !== this.templateHashSize) {
      return false;
    }
    const list = this.list;
    const at = this.start + 4;
    for (let i = 0; i < hash.length; i += 1) {
      if (list[at + i] !== hash[i]) {
        return false;
      }
    }
    return true;
  }
}

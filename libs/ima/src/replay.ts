import { BinaryListEntry } from './binary-list-entry';
import { digestOf, digestSize, type ImaBank } from './hash-algorithms';
import type { ImaEntry } from './ima-entry';
import { templateHashInput } from './template-fields';

/** The PCR IMA extends unless a policy rule names another (Documentation/ABI/testing/ima_policy, pcr=). */
export const IMA_PCR = 10;

export interface ExtendOptions {
  /** The PCR bank replayed. */
  readonly bank: ImaBank;
  /** The template-hash algorithm of the list: sha1 unless it is a per-bank list (ImaListOptions). */
  readonly templateHashAlgorithm?: ImaBank;
}

export interface EntryExtend {
  /** What IMA extended the bank's PCR with: the template data under the bank's hash, or all 0xFF. */
  readonly extend: Buffer;
  /** The template hash recomputed from the template data equals the logged one (true for violations, which have none). */
  readonly templateHashValid: boolean;
}

/**
 * The value an entry extends into `bank` (security/integrity/ima/ima_crypto.c,
 * ima_calc_field_array_hash: every allocated bank gets the same template data hashed with its own
 * algorithm) and whether the logged template hash is the template data's. A violation (all-zero
 * template hash) extends all 0xFF in every bank (ima_queue.c, ima_add_template_entry / ima_pcr_extend
 * with digests_arg set to 0xFF, "ToMToU or open-writers").
 */
export function entryExtend(entry: ImaEntry, options: ExtendOptions): EntryExtend {
  const templateAlg = options.templateHashAlgorithm ?? 'sha1';
  if (entry.violation) {
    return { extend: Buffer.alloc(digestSize(options.bank), 0xff), templateHashValid: true };
  }
  const input = templateHashInput(entry);
  const templateHash = digestOf(templateAlg, input);
  const templateHashValid = templateHashIs(entry, templateHash);
  return { extend: templateAlg === options.bank ? templateHash : digestOf(options.bank, input), templateHashValid };
}

/** The entry's logged template hash is `hash`: in place for a parsed binary entry. */
function templateHashIs(entry: ImaEntry, hash: Buffer): boolean {
  return entry instanceof BinaryListEntry ? entry.templateHashIs(hash) : hash.equals(entry.templateHash);
}

/** PCR := H(PCR ‖ value) (TPM 2.0 Part 1 §17.6, TPM2_PCR_Extend). */
export function extendPcr(bank: ImaBank, pcr: Buffer, value: Buffer): Buffer {
  return digestOf(bank, Buffer.concat([pcr, value], pcr.length + value.length));
}

export interface ImaReplay {
  /** PCR 10 after every entry. */
  readonly final: Buffer;
  /**
   * How many of the entries the quoted value covers: the first k with PCR 10 after the k-th equal to
   * the quote (0: the quote equals the starting value), or null when no prefix reaches it.
   */
  readonly matchedAt: number | null;
  /** PCR 10 at the match. */
  readonly matchedValue: Buffer | null;
  /** Positions (in `entries`) whose logged template hash is not the hash of their template data. */
  readonly invalidTemplateHashes: readonly number[];
}

/**
 * Replays `entries` onto `start` (PCR 10 before the first of them; all zero at boot, TPM 2.0 Part 1
 * §17.2, PCR 10 being resettable by nothing but a TPM reset). Because the list and the quote are not
 * read atomically (IMA appends to the list before it extends the PCR, ima_add_template_entry), the
 * quoted value may equal PCR 10 after any prefix of the entries: the first such prefix is the match,
 * as in Keylime's verifier (the same chain cannot reach the same value twice short of a hash collision).
 * Nothing is kept per entry but the template-hash failures: per-entry objects and retained digests
 * doubled the cost of a 100,000-entry list (bench/ima.bench.ts).
 */
export function replayImaEntries(entries: readonly ImaEntry[], start: Buffer, quoted: Buffer | undefined, options: ExtendOptions): ImaReplay {
  let pcr = start;
  let matchedAt: number | null = quoted !== undefined && pcr.equals(quoted) ? 0 : null;
  let matchedValue: Buffer | null = matchedAt === 0 ? pcr : null;
  const invalidTemplateHashes: number[] = [];
  const size = digestSize(options.bank);
  const templateAlg = options.templateHashAlgorithm ?? 'sha1';
  const joined = Buffer.allocUnsafe(2 * size);
  const violationExtend = Buffer.alloc(size, 0xff);
  for (let i = 0; i < entries.length; i += 1) {
    const entry = entries[i]!;
    // entryExtend, inlined.
    let extend: Buffer;
    if (entry.violation) {
      extend = violationExtend;
    } else {
      const input = templateHashInput(entry);
      const templateHash = digestOf(templateAlg, input);
      if (!templateHashIs(entry, templateHash)) {
        invalidTemplateHashes.push(i);
      }
      extend = templateAlg === options.bank ? templateHash : digestOf(options.bank, input);
    }
    if (entry.pcr === IMA_PCR) {
      // One scratch buffer for PCR ‖ value: a concat per entry showed in the bench.
      pcr.copy(joined, 0);
      extend.copy(joined, size);
      pcr = digestOf(options.bank, joined);
    }
    if (matchedAt === null && quoted !== undefined && pcr.equals(quoted)) {
      matchedAt = i + 1;
      matchedValue = pcr;
    }
  }
  return { final: pcr, matchedAt, matchedValue, invalidTemplateHashes };
}

/** PCR 10's value at boot, in `bank`. */
export function zeroPcr(bank: ImaBank): Buffer {
  return Buffer.alloc(digestSize(bank));
}

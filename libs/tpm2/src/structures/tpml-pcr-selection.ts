import { parseExact, type TpmReader } from '../codec/tpm-reader';
import { marshal, type TpmWriter } from '../codec/tpm-writer';
import { algName } from '../constants';
import { hashAlgorithm, hashAlgorithmByBank, isHashAlgorithm } from '../hash-algorithms';

/** Part 2 §10.6.2 TPMS_PCR_SELECTION: one bank, and the PCRs selected in it (ascending). */
export interface TPMS_PCR_SELECTION {
  readonly hash: number;
  readonly pcrs: readonly number[];
  /** sizeofSelect: bytes of the bitmap; 3 (24 PCRs) on PC Client TPMs. */
  readonly sizeofSelect: number;
}

/** Part 2 §10.9.7 TPML_PCR_SELECTION. Order matters: quotes digest banks in list order. */
export type TPML_PCR_SELECTION = readonly TPMS_PCR_SELECTION[];

// Part 2 §10.9.7: at most HASH_COUNT entries; PCR_SELECT_MAX bytes per bitmap (32 → 256 PCRs).
const MAX_BANKS = 16;
const PCR_SELECT_MAX = 32;
const PC_CLIENT_SIZEOF_SELECT = 3;

export function readPcrSelection(r: TpmReader): TPML_PCR_SELECTION {
  return r.within('TPML_PCR_SELECTION', () => {
    const countOffset = r.offset;
    const count = r.u32('count');
    if (count > MAX_BANKS) {
      throw r.error('count', `${count} banks exceeds the maximum of ${MAX_BANKS}`, countOffset);
    }
    const selections: TPMS_PCR_SELECTION[] = [];
    for (let i = 0; i < count; i += 1) {
      selections.push(
        r.within(`TPMS_PCR_SELECTION[${i}]`, () => {
          const hashOffset = r.offset;
          const hash = r.u16('hash');
          if (!isHashAlgorithm(hash)) {
            throw r.error('hash', `${algName(hash)} is not a supported hash algorithm`, hashOffset);
          }
          const sizeOffset = r.offset;
          const sizeofSelect = r.u8('sizeofSelect');
          if (sizeofSelect > PCR_SELECT_MAX) {
            throw r.error('sizeofSelect', `${sizeofSelect} exceeds the maximum of ${PCR_SELECT_MAX}`, sizeOffset);
          }
          const bitmap = r.bytesOf(sizeofSelect, 'pcrSelect');
          const pcrs: number[] = [];
          for (let pcr = 0; pcr < sizeofSelect * 8; pcr += 1) {
            if ((bitmap[pcr >> 3]! >> (pcr & 7)) & 1) {
              pcrs.push(pcr);
            }
          }
          return { hash, pcrs, sizeofSelect };
        }),
      );
    }
    return selections;
  });
}

export function writePcrSelection(w: TpmWriter, selection: TPML_PCR_SELECTION): void {
  w.u32(selection.length);
  for (const bank of selection) {
    const bitmap = Buffer.alloc(bank.sizeofSelect);
    for (const pcr of bank.pcrs) {
      if (pcr >= bank.sizeofSelect * 8) {
        throw new RangeError(`PCR ${pcr} does not fit a ${bank.sizeofSelect}-byte selection`);
      }
      bitmap[pcr >> 3]! |= 1 << (pcr & 7);
    }
    w.u16(bank.hash).u8(bank.sizeofSelect).bytes(bitmap);
  }
}

export function unmarshalPcrSelection(bytes: Uint8Array): TPML_PCR_SELECTION {
  return parseExact(bytes, 'TPML_PCR_SELECTION', readPcrSelection);
}

export function marshalPcrSelection(selection: TPML_PCR_SELECTION): Buffer {
  return marshal((w) => writePcrSelection(w, selection));
}

/** Thrown for a selection string that does not follow `bank:pcr,pcr[+bank:pcr,…]`. */
export class PcrSelectionSyntaxError extends Error {
  constructor(text: string, reason: string) {
    super(`invalid PCR selection "${text}": ${reason}`);
    this.name = 'PcrSelectionSyntaxError';
  }
}

/**
 * Parses tpm2-tools' selection syntax (`sha256:0,7` or `sha1:0+sha256:0,7`) into a
 * TPML_PCR_SELECTION with PC Client 3-byte bitmaps (more when a PCR above 23 is named).
 * PCRs in a bank are sorted and must not repeat; banks must not repeat.
 */
export function parsePcrSelection(text: string): TPML_PCR_SELECTION {
  const banks = text.split('+');
  const seen = new Set<number>();
  return banks.map((part) => {
    const match = /^([a-z0-9_]+):(\d+(?:,\d+)*)$/i.exec(part.trim());
    if (match === null) {
      throw new PcrSelectionSyntaxError(text, `"${part}" is not BANK:PCR[,PCR…]`);
    }
    let hash: number;
    try {
      hash = hashAlgorithmByBank(match[1]!).alg;
    } catch {
      throw new PcrSelectionSyntaxError(text, `unknown bank "${match[1]}"`);
    }
    if (seen.has(hash)) {
      throw new PcrSelectionSyntaxError(text, `bank ${match[1]} is named twice`);
    }
    seen.add(hash);
    const pcrs = match[2]!.split(',').map(Number);
    if (new Set(pcrs).size !== pcrs.length) {
      throw new PcrSelectionSyntaxError(text, `a PCR is named twice in ${match[1]}`);
    }
    if (pcrs.some((p) => p >= PCR_SELECT_MAX * 8)) {
      throw new PcrSelectionSyntaxError(text, `PCR index above ${PCR_SELECT_MAX * 8 - 1}`);
    }
    const highest = Math.max(...pcrs);
    return {
      hash,
      pcrs: [...pcrs].sort((a, b) => a - b),
      sizeofSelect: Math.max(PC_CLIENT_SIZEOF_SELECT, (highest >> 3) + 1),
    };
  });
}

/** `sha256:0,7` for a selection (the inverse of parsePcrSelection). */
export function formatPcrSelection(selection: TPML_PCR_SELECTION): string {
  return selection.map((b) => `${hashAlgorithm(b.hash).bank}:${b.pcrs.join(',')}`).join('+');
}

/*
 * PCR values as tpm2-tools writes them (`tpm2_quote -o … -F values`, `tpm2_pcrread -o`): one value per
 * selected PCR, concatenated in selection order. Here rather than in verify/quote.ts so that the
 * agent's PolicyPCR arithmetic (policy/pcr-values.ts) does not load quote verification.
 */

/** Bytes of PCR values a selection needs: Σ banks (digest size × PCRs selected). */
export function pcrValuesLength(selection: TPML_PCR_SELECTION): number {
  return selection.reduce((total, bank) => total + hashAlgorithm(bank.hash).size * bank.pcrs.length, 0);
}

/**
 * Splits concatenated PCR values (`tpm2_quote -o q.pcrs -F values`, `tpm2_pcrread -o`) per PCR, in
 * selection order. Returns undefined when the length does not fit the selection.
 */
export function splitPcrValues(selection: TPML_PCR_SELECTION, values: Uint8Array): Buffer[] | undefined {
  if (values.length !== pcrValuesLength(selection)) {
    return undefined;
  }
  const out: Buffer[] = [];
  let offset = 0;
  for (const bank of selection) {
    const size = hashAlgorithm(bank.hash).size;
    for (let i = 0; i < bank.pcrs.length; i += 1) {
      out.push(Buffer.from(values.subarray(offset, offset + size)));
      offset += size;
    }
  }
  return out;
}

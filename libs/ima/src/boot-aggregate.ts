import { digestOf, type ImaBank } from './hash-algorithms';

/**
 * The boot_aggregate IMA records first (security/integrity/ima/ima_crypto.c,
 * ima_calc_boot_aggregate): the bank's hash over PCRs 0–7 in order, and for banks other than SHA-1
 * also PCRs 8 and 9 (Linux ≥ 5.8). `pcrs[i]` is PCR i's quoted value.
 */
export function bootAggregate(bank: ImaBank, pcrs: readonly Buffer[]): Buffer {
  const count = bank === 'sha1' ? 8 : 10;
  if (pcrs.length < count) {
    throw new RangeError(`boot_aggregate over ${bank} needs PCRs 0..${count - 1}`);
  }
  return digestOf(bank, Buffer.concat(pcrs.slice(0, count)));
}

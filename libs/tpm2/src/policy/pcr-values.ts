import { digest, hashAlgorithm } from '../hash-algorithms';
import { formatPcrSelection, pcrValuesLength, splitPcrValues, type TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import { PcrValuesLengthError, PolicyInputError } from './policy-error';

/**
 * Concatenated PCR values (as `tpm2_pcrread -o`, `tpm2_quote -o … -F values` and
 * `tpm2_createpolicy -f` write them) split into one value per selected PCR, in selection order; a
 * length that does not match the selection is a PcrValuesLengthError naming both lengths.
 */
export function parsePcrValues(selection: TPML_PCR_SELECTION, bytes: Buffer): Buffer[] {
  const values = splitPcrValues(selection, bytes);
  if (values === undefined) {
    throw new PcrValuesLengthError(pcrValuesLength(selection), bytes.length, formatPcrSelection(selection));
  }
  return values;
}

/**
 * The pcrDigest of TPM2_PolicyPCR and of a quote (Part 3 §23.7): H_hashAlg of the selected PCR
 * values concatenated in selection order. `hashAlg` is the policy session's (or signing scheme's)
 * hash, not the banks'. `values` holds one value per selected PCR, each of its bank's digest size.
 */
export function pcrDigest(hashAlg: number, selection: TPML_PCR_SELECTION, values: readonly Buffer[]): Buffer {
  const sizes = selection.flatMap((bank) => bank.pcrs.map(() => hashAlgorithm(bank.hash).size));
  const text = formatPcrSelection(selection);
  if (values.length !== sizes.length) {
    throw new PolicyInputError(`${text} selects ${sizes.length} PCR(s), ${values.length} value(s) given`);
  }
  values.forEach((value, i) => {
    if (value.length !== sizes[i]) {
      throw new PolicyInputError(`PCR value #${i} for ${text} must be ${sizes[i]} bytes, got ${value.length}`);
    }
  });
  return digest(hashAlg, ...values);
}

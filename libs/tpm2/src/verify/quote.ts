import { algName, TPM_ST } from '../constants';
import { digest, hashAlgorithm } from '../hash-algorithms';
import { signatureHash } from '../structures/tpmt-signature';
import { formatPcrSelection, type TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import { type AttestationInput, type AttestationRefusalReason, type Refusal, type VerifiedAttestation, verifyAttestation } from './attestation';

export type QuoteRefusalReason =
  | AttestationRefusalReason
  /** The quote covers other PCRs than expected, or the values supplied do not fit its selection. */
  | 'selection-mismatch'
  /** The PCR values supplied are not the ones the TPM quoted. */
  | 'pcr-digest-mismatch';

export interface QuoteInput extends AttestationInput {
  /**
   * The PCR values, in the quote's selection order: banks in list order, ascending index within a
   * bank (what `tpm2_quote -o … -F values` writes, split per PCR; see splitPcrValues).
   */
  readonly pcrValues: readonly Uint8Array[];
  /** The selection the verifier asked for; the quote's must match it exactly. Omitted: whatever was quoted. */
  readonly selection?: TPML_PCR_SELECTION;
}

/** One quoted PCR: bank (hash algorithm), index and the value the quote vouches for. */
export interface QuotedPcr {
  readonly hash: number;
  readonly bank: string;
  readonly index: number;
  readonly value: Buffer;
}

export type VerifiedQuote = VerifiedAttestation<typeof TPM_ST.TPM_ST_ATTEST_QUOTE> & {
  /** The PCR values, now proven to be the ones quoted, in selection order. */
  readonly pcrs: readonly QuotedPcr[];
};

/** Same banks in the same order, same PCRs in each; the bitmap size (sizeofSelect) is encoding only. */
function sameSelection(a: TPML_PCR_SELECTION, b: TPML_PCR_SELECTION): boolean {
  return (
    a.length === b.length &&
    a.every((bank, i) => {
      const other = b[i]!;
      return bank.hash === other.hash && bank.pcrs.length === other.pcrs.length && bank.pcrs.every((pcr, j) => pcr === other.pcrs[j]);
    })
  );
}

/**
 * Verifies a TPM2_Quote (Part 3 §18.4) made by an AK over `nonce`, and that `pcrValues` are the values
 * it quoted. Checks, in order, each with its own refusal reason:
 * 1. the AK is a restricted signing key bound to its TPM ('ak-attributes'; skipped for a bare key);
 * 2. the signature's scheme and hash are the AK's ('scheme-mismatch', 'unsupported-scheme') and it
 *    verifies over the raw TPMS_ATTEST ('signature-invalid'); the TPMS_ATTEST parses ('malformed');
 * 3. magic == TPM_GENERATED_VALUE ('bad-magic'), type == TPM_ST_ATTEST_QUOTE ('wrong-type');
 * 4. extraData == nonce, compared in constant time ('nonce-mismatch');
 * 5. the quoted selection equals `selection` exactly, and the values supplied fit it, one value of
 *    the bank's digest size per PCR ('selection-mismatch');
 * 6. pcrDigest == H(values in selection order) with the signing scheme's hash, which is how the TPM
 *    computes it whatever the banks ('pcr-digest-mismatch').
 * Never throws for bad input.
 */
export function verifyQuote(input: QuoteInput): VerifiedQuote | Refusal<QuoteRefusalReason> {
  const verified = verifyAttestation(input, TPM_ST.TPM_ST_ATTEST_QUOTE);
  if (!verified.ok) {
    return verified;
  }
  const { pcrSelect, pcrDigest } = verified.attest.attested;
  if (input.selection !== undefined && !sameSelection(input.selection, pcrSelect)) {
    return {
      ok: false,
      reason: 'selection-mismatch',
      message: `quote covers ${describeSelection(pcrSelect)}, expected ${describeSelection(input.selection)}`,
    };
  }

  if (input.pcrValues.length !== pcrCount(pcrSelect)) {
    return {
      ok: false,
      reason: 'selection-mismatch',
      message: `quote covers ${pcrCount(pcrSelect)} PCRs (${describeSelection(pcrSelect)}), ${input.pcrValues.length} values supplied`,
    };
  }
  const pcrs: QuotedPcr[] = [];
  for (const bank of pcrSelect) {
    const { size, bank: bankName } = hashAlgorithm(bank.hash);
    for (const index of bank.pcrs) {
      const value = input.pcrValues[pcrs.length]!;
      if (value.length !== size) {
        return {
          ok: false,
          reason: 'selection-mismatch',
          message: `value supplied for ${bankName} PCR ${index} has ${value.length} bytes, the bank's digests have ${size}`,
        };
      }
      pcrs.push({ hash: bank.hash, bank: bankName, index, value: Buffer.from(value) });
    }
  }

  // verifyAttestation has verified a signature, so the scheme has a hash.
  const hash = signatureHash(verified.signature)!;
  const computed = digest(hash, ...pcrs.map((p) => p.value));
  if (!computed.equals(pcrDigest)) {
    return {
      ok: false,
      reason: 'pcr-digest-mismatch',
      message: `${algName(hash)} of the PCR values supplied is ${computed.toString('hex')}, the quote's pcrDigest is ${pcrDigest.toString('hex')}`,
    };
  }
  return { ...verified, pcrs };
}

function pcrCount(selection: TPML_PCR_SELECTION): number {
  return selection.reduce((n, bank) => n + bank.pcrs.length, 0);
}

function describeSelection(selection: TPML_PCR_SELECTION): string {
  // formatPcrSelection names banks as tpm2-tools does; an empty bank prints as "sha1:".
  return selection.length === 0 ? '(no PCRs)' : formatPcrSelection(selection);
}

import { hashAlgorithmByBank, type QuoteRefusalReason, type TPML_PCR_SELECTION, type TPMS_CLOCK_INFO, unmarshalTpmtPublic, verifyQuote } from '@rackseal/tpm2';
import type { AttestationErrorCode } from './attestation-errors';
import type { Registration } from './attestation.repository';

export type QuoteCheck = { ok: true; values: Map<number, Buffer>; clockInfo: TPMS_CLOCK_INFO } | { ok: false; code: AttestationErrorCode; message: string };

/**
 * The quote of a finish checked against its registration: signed by the registration's AK, over its
 * nonce, of exactly the selection asked for, and the PCR values sent digesting to the quoted
 * pcrDigest (TPM 2.0 Part 2 §10.12.1 TPMS_QUOTE_INFO). Answers the PCR values by index and the
 * quote's clock info, whose resetCount tells boots apart (Part 2 §10.11.1; not obfuscated for an AK
 * of the endorsement hierarchy).
 */
export function checkQuote(registration: Registration, attest: Buffer, signature: Buffer, pcrValues: Buffer): QuoteCheck {
  const bank = hashAlgorithmByBank(registration.pcrBank);
  const selection: TPML_PCR_SELECTION = [{ hash: bank.alg, pcrs: registration.pcrs, sizeofSelect: 3 }];
  if (pcrValues.length % bank.size !== 0) {
    return { ok: false, code: 'attestation.pcr-values-mismatch', message: `pcrValues is ${pcrValues.length} bytes, not a whole number of ${registration.pcrBank} digests` };
  }
  // Split by digest size, not by the expected selection: a narrowed quote is refused as such by verifyQuote.
  const split = Array.from({ length: pcrValues.length / bank.size }, (_, i) => pcrValues.subarray(i * bank.size, (i + 1) * bank.size));
  const akPublic = unmarshalTpmtPublic(registration.akPublic);
  const result = verifyQuote({ akPublic, attest, signature, nonce: registration.nonce, pcrValues: split, selection });
  if (!result.ok) {
    return { ok: false, code: QUOTE_REFUSALS[result.reason] ?? 'attestation.quote-invalid', message: `quote refused (${result.reason}): ${result.message}` };
  }
  return { ok: true, values: new Map(result.pcrs.map((p) => [p.index, p.value])), clockInfo: result.attest.clockInfo };
}

/** verifyQuote's reasons that have their own refusal code; any other is `attestation.quote-invalid`. */
const QUOTE_REFUSALS: Partial<Record<QuoteRefusalReason, AttestationErrorCode>> = {
  'nonce-mismatch': 'attestation.nonce-mismatch',
  'selection-mismatch': 'attestation.selection-mismatch',
  'pcr-digest-mismatch': 'attestation.pcr-values-mismatch',
};

/**
 * The TPM accepted a command (TPM_RC_SUCCESS) but its answer cannot serve the request: a property
 * it does not report, a PCR in a bank it has not allocated, an NV read shorter than asked, a
 * counter that would not settle. Distinct from TpmError (the TPM refused) and from TpmParseError /
 * TpmTransportError (the bytes were not a well-formed response).
 */
export class TpmAnswerError extends Error {
  constructor(
    /** e.g. TPM2_PCR_Read. */
    readonly command: string,
    message: string,
  ) {
    super(`${command}: ${message}`);
    this.name = 'TpmAnswerError';
  }
}

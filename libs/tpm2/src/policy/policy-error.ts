/** Input a policy command would refuse (TPM_RC_SIZE, TPM_RC_VALUE …), named before any digest is computed. */
export class PolicyInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyInputError';
  }
}

/**
 * PCR values that do not fit a selection: `expected` bytes (each selected PCR's bank digest size,
 * summed) against the `got` bytes supplied.
 */
export class PcrValuesLengthError extends PolicyInputError {
  constructor(
    readonly expected: number,
    readonly got: number,
    selectionText: string,
  ) {
    super(`PCR values for ${selectionText} must be ${expected} bytes, got ${got}`);
    this.name = 'PcrValuesLengthError';
  }
}

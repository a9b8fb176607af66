/**
 * The one error the measurement-list parsers throw on malformed input: which entry (its index in the
 * list), which field, at which byte offset of the input, and why. Callers (the attestation service,
 * the agent, the fuzzer) rely on nothing else escaping a parser.
 */
export class ImaParseError extends Error {
  constructor(
    readonly entry: number,
    readonly field: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`IMA entry ${entry}: ${field} at offset ${offset}: ${reason}`);
    this.name = 'ImaParseError';
  }
}

/**
 * The one error every libs/tpm2 parser throws on malformed input: which structure, which field, at
 * which byte offset, and why. Callers (HTTP handlers, the CLI, the fuzzer) rely on nothing else
 * escaping a parser.
 */
export class TpmParseError extends Error {
  constructor(
    readonly structure: string,
    readonly field: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${structure}.${field} at offset ${offset}: ${reason}`);
    this.name = 'TpmParseError';
  }
}

/**
 * The configured master key cannot be used: the token is absent, the PIN is refused, the key is
 * missing, ambiguous or exportable. Messages name the module, token and key label, never the PIN.
 */
export class MasterKeyUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyUnavailableError';
  }
}

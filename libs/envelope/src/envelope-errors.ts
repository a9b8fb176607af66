/**
 * Why an envelope was refused. Messages name the problem and the context at most: never key,
 * data-key or plaintext bytes (the context is a caller's label such as `audit-signing-key:<id>`).
 */
export class EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

/** The blob is not an envelope this code reads: truncated, trailing bytes, unknown version. */
export class EnvelopeFormatError extends EnvelopeError {
  constructor(message: string) {
    super(message);
    this.name = 'EnvelopeFormatError';
  }
}

/**
 * The blob was sealed under another master key (its key-encryption-key ID differs), known without
 * trying to decrypt: the deployment's `masterKey` was changed or belongs to another deployment.
 */
export class EnvelopeKeyMismatchError extends EnvelopeError {
  constructor(
    readonly expectedKekId: string,
    readonly foundKekId: string,
  ) {
    super(
      `the envelope was sealed under another master key (key ID ${foundKekId}, this deployment's is ${expectedKekId}); ` +
        'was masterKey changed?',
    );
    this.name = 'EnvelopeKeyMismatchError';
  }
}

/** AES-GCM refused the blob: it was modified, or it is opened with another context than it was sealed with. */
export class EnvelopeAuthenticationError extends EnvelopeError {
  constructor(
    readonly context: string,
    readonly layer: 'data-key' | 'data',
  ) {
    super(
      `the envelope for "${context}" failed authentication (${layer === 'data-key' ? 'wrapped data key' : 'data'}): ` +
        'it was modified, or it was sealed for another context',
    );
    this.name = 'EnvelopeAuthenticationError';
  }
}

/**
 * The refusals of wrapping and unwrapping, each a class of its own with a stable `code` (the agent
 * reports it to the control plane with a delivery's outcome). Messages name the field, the
 * algorithm or the size that is wrong, never a byte of a key, a payload or a ciphertext.
 */
export type WrappingErrorCode =
  | 'envelope.format'
  | 'envelope.version'
  | 'envelope.algorithm'
  | 'envelope.too-large'
  | 'envelope.authentication'
  | 'envelope.recipient-key';

export abstract class WrappingError extends Error {
  abstract readonly code: WrappingErrorCode;
}

/** The bytes are not a version-1 envelope: which field is malformed, and at which offset. */
export class EnvelopeFormatError extends WrappingError {
  readonly code = 'envelope.format';
  constructor(readonly reason: string) {
    super(`not a rackseal envelope: ${reason}`);
    this.name = 'EnvelopeFormatError';
  }
}

/** An envelope of a format version this build does not read (a newer control plane). */
export class EnvelopeVersionError extends WrappingError {
  readonly code = 'envelope.version';
  constructor(readonly version: number) {
    super(`envelope format version ${version} is not supported (this build reads version 1)`);
    this.name = 'EnvelopeVersionError';
  }
}

/** The envelope names an algorithm (AEAD, key transport, hash, curve) this build does not use. */
export class EnvelopeAlgorithmError extends WrappingError {
  readonly code = 'envelope.algorithm';
  constructor(readonly field: string, readonly value: number) {
    super(`envelope ${field} 0x${value.toString(16).padStart(4, '0')} is not one this build uses`);
    this.name = 'EnvelopeAlgorithmError';
  }
}

/** A payload (wrapping) or an envelope (parsing) over the size limit. */
export class EnvelopeTooLargeError extends WrappingError {
  readonly code = 'envelope.too-large';
  constructor(readonly what: 'payload' | 'envelope', readonly size: number, readonly limit: number) {
    super(`the ${what} is ${size} bytes; at most ${limit} are accepted`);
    this.name = 'EnvelopeTooLargeError';
  }
}

/**
 * AES-256-GCM refused the envelope: its header (delivery id, secret version, recipient, the key
 * transport) or its ciphertext was altered, or the content key recovered is not the one it was
 * sealed with. Nothing of the payload is released.
 */
export class EnvelopeAuthenticationError extends WrappingError {
  readonly code = 'envelope.authentication';
  constructor() {
    super('the envelope does not authenticate (AES-256-GCM): its header or ciphertext was altered, or it was not made with this content key');
    this.name = 'EnvelopeAuthenticationError';
  }
}

/** The server side cannot wrap to this key: not an RSA/ECC decrypt key of a kind the agent unwraps. */
export class RecipientKeyError extends WrappingError {
  readonly code = 'envelope.recipient-key';
  constructor(reason: string) {
    super(`cannot wrap to this key: ${reason}`);
    this.name = 'RecipientKeyError';
  }
}

import { algName } from '../constants';

/**
 * The public area given to protect a secret (an EK for MakeCredential, a storage parent for an import
 * blob) cannot do so: wrong type or attributes, or a symmetric definition or curve this library does
 * not implement. The message names what is wrong.
 */
export class ProtectorKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtectorKeyError';
  }
}

/** Not a Name of an object (Part 1 §16): nameAlg (u16) ‖ a digest of that algorithm's size. */
export class ObjectNameError extends Error {
  constructor(
    readonly objectName: Buffer,
    reason: string,
  ) {
    super(`invalid object Name ${objectName.toString('hex') || '(empty)'}: ${reason}`);
    this.name = 'ObjectNameError';
  }
}

/**
 * A credential longer than the EK's nameAlg digest. TPM2_MakeCredential (Part 3 §12.6) answers
 * TPM_RC_SIZE for it; ActivateCredential could not return it either.
 */
export class CredentialTooLargeError extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
    nameAlg: number,
  ) {
    super(`credential of ${size} bytes exceeds the ${limit}-byte limit (digest size of the EK nameAlg ${algName(nameAlg)})`);
    this.name = 'CredentialTooLargeError';
  }
}

/**
 * Sealed data longer than MAX_SYM_DATA: the sensitive area of a keyedHash data object is a
 * TPM2B_SENSITIVE_DATA (Part 2 §11.1.14), bounded by MAX_SYM_DATA = 128 (Part 2 §11.1.13: "for
 * interoperability, MAX_SYM_DATA should be 128"). Seal a 32-byte key and encrypt anything larger.
 */
export class SealedDataTooLargeError extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`sealed data of ${size} bytes exceeds MAX_SYM_DATA (${limit} bytes)`);
    this.name = 'SealedDataTooLargeError';
  }
}

/** An authPolicy whose length is not the digest size of the object's nameAlg (TPM_RC_SIZE on Import). */
export class AuthPolicySizeError extends Error {
  constructor(
    readonly size: number,
    readonly expected: number,
    nameAlg: number,
  ) {
    super(`authPolicy of ${size} bytes does not match the ${expected}-byte digest of ${algName(nameAlg)}`);
    this.name = 'AuthPolicySizeError';
  }
}

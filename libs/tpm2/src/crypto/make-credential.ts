import { marshal } from '../codec/tpm-writer';
import { algName } from '../constants';
import { hashAlgorithm, isHashAlgorithm } from '../hash-algorithms';
import { writeTpm2bEncryptedSecret } from '../structures/tpm2b-encrypted-secret';
import { writeTpm2bIdObject } from '../structures/tpm2b-id-object';
import type { TPMT_PUBLIC } from '../structures/tpmt-public';
import { CredentialTooLargeError, ObjectNameError } from './errors';
import { ENCAPSULATION_LABEL, type EncapsulationOptions, labeledEncapsulate } from './labeled-encapsulation';
import { outerWrap, protectorParameters } from './outer-wrap';

/** The two outputs of TPM2_MakeCredential (Part 3 §12.6), marshalled as the TPM returns them. */
export interface MadeCredential {
  /** TPM2B_ID_OBJECT: u16 size ‖ integrityHMAC (TPM2B_DIGEST) ‖ encIdentity. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET: u16 size ‖ the seed encapsulated to the EK with label "IDENTITY". */
  readonly encryptedSecret: Buffer;
}

/**
 * Checks that `name` is an object Name (Part 1 §16): nameAlg ‖ H_nameAlg(public area). ActivateCredential
 * recomputes the HMAC with the loaded AK's Name, so any other byte string yields a credential no
 * TPM will release.
 */
export function checkObjectName(name: Buffer): void {
  if (name.length < 2) {
    throw new ObjectNameError(name, 'shorter than a nameAlg');
  }
  const nameAlg = name.readUInt16BE(0);
  if (!isHashAlgorithm(nameAlg)) {
    throw new ObjectNameError(name, `nameAlg ${algName(nameAlg)} is not a hash algorithm`);
  }
  const expected = 2 + hashAlgorithm(nameAlg).size;
  if (name.length !== expected) {
    throw new ObjectNameError(name, `${name.length} bytes, a ${algName(nameAlg)} Name has ${expected}`);
  }
}

/**
 * TPM2_MakeCredential in software (Part 1 §24, Part 3 §12.6; ref SecretToCredential): protects
 * `credential` so that only the TPM holding `ekPublic`'s private key, and only for the object named
 * `akName`, can recover it with TPM2_ActivateCredential.
 *   seed, encryptedSecret = labeled encapsulation to the EK, label "IDENTITY"
 *   encIdentity, integrityHMAC = outer wrap of TPM2B_DIGEST(credential) with the AK Name as context
 * Everything uses the EK's nameAlg and symmetric definition, whatever they are (SHA-256 and
 * AES-128-CFB for the L-1/L-2 templates, SHA-384 and AES-256-CFB for swtpm's P-384 EK).
 */
export function makeCredential(
  ekPublic: TPMT_PUBLIC,
  akName: Buffer,
  credential: Buffer,
  options: EncapsulationOptions = {},
): MadeCredential {
  const protector = protectorParameters(ekPublic, 'EK');
  checkObjectName(akName);
  // Part 3 §12.6: TPM_RC_SIZE when the credential is larger than the EK nameAlg's digest.
  const limit = hashAlgorithm(protector.nameAlg).size;
  if (credential.length > limit) {
    throw new CredentialTooLargeError(credential.length, limit, protector.nameAlg);
  }
  const { seed, encryptedSecret } = labeledEncapsulate(protector.key, ENCAPSULATION_LABEL.IDENTITY, options);
  const wrapped = outerWrap(protector, seed, akName, marshal((w) => w.tpm2b(credential)));
  return {
    credentialBlob: marshal((w) => writeTpm2bIdObject(w, { integrityHMAC: wrapped.integrityHMAC, encIdentity: wrapped.encrypted })),
    encryptedSecret: marshal((w) => writeTpm2bEncryptedSecret(w, encryptedSecret)),
  };
}
